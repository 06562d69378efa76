"""Metrics against hand counts and independent references; the tie rule; bad input (pure numpy)."""

import numpy as np
import pytest

from keras_ssl_lt.evaluation import metrics

GROUPS = {"many": [0, 1], "medium": [2], "few": [3, 4]}


def test_gap_and_relative_gap_exact():
    assert metrics.gap(0.9, 0.85) == pytest.approx(0.05, abs=1e-15)
    assert metrics.relative_gap(0.8, 0.6) == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_allclose(metrics.gap([0.9, 0.8], [0.7, 0.8]), [0.2, 0.0], atol=1e-15)
    np.testing.assert_allclose(metrics.relative_gap([0.5, 0.8], [0.25, 0.2]), [0.5, 0.75])
    with pytest.raises(ValueError, match="acc_balanced"):
        metrics.relative_gap(0.0, 0.1)


@pytest.mark.parametrize(
    "balanced, imbalanced",
    [
        ([0.9, 0.8, 0.7], [[0.7], [0.6], [0.5]]),  # a row against a column: was a 3x3 matrix
        ([0.9, 0.8], [0.7]),  # two entries against one: was two values
        ([[0.9, 0.8]], [0.7, 0.6]),
        ([0.9, 0.8, 0.7], [0.7, 0.6]),
    ],
)
def test_gaps_refuse_mismatched_shapes(balanced, imbalanced):
    for fn in (metrics.gap, metrics.relative_gap):
        with pytest.raises(ValueError, match=r"same shape \(or one be a scalar\)"):
            fn(balanced, imbalanced)


def test_gaps_scalar_rule():
    # A scalar (number or 0-d array) on one side is compared with every entry of the other.
    np.testing.assert_allclose(metrics.gap(0.9, [0.8, 0.7]), [0.1, 0.2], atol=1e-15)
    np.testing.assert_allclose(metrics.gap(np.array([0.9, 0.8]), np.float64(0.7)), [0.2, 0.1], atol=1e-15)
    np.testing.assert_allclose(metrics.relative_gap([0.5, 0.8], 0.4), [0.2, 0.5])
    assert metrics.gap([[0.9, 0.8]], [[0.7, 0.8]]).shape == (1, 2)


def test_per_class_accuracy_refuses_predictions_outside_the_classes():
    with pytest.raises(ValueError, match=r"`y_pred` must lie in \[0, num_classes\) = \[0, 3\); got 3"):
        metrics.per_class_accuracy([0, 1, 2], [0, 1, 3], 3)
    with pytest.raises(ValueError, match="`y_pred` must be non-negative"):
        metrics.per_class_accuracy([0, 1, 2], [0, -1, 2], 3)
    with pytest.raises(ValueError, match="`y_true` must lie"):
        metrics.per_class_accuracy([0, 1, 3], [0, 1, 2], 3)


def test_accuracy_summary_refuses_mismatched_lengths():
    # one label for two score rows must not broadcast into an accuracy
    with pytest.raises(ValueError, match=r"len\(labels\) = 1"):
        metrics.accuracy_summary(np.array([[2.0, 1.0], [0.0, 3.0]]), [0])


def test_per_group_accuracy_hand_count():
    y_true = np.array([0, 0, 1, 2, 2, 3, 4, 4, 4])
    y_pred = np.array([0, 1, 1, 2, 0, 3, 0, 4, 1])
    got = metrics.per_group_accuracy(y_true, y_pred, GROUPS)
    # many: (0 ok, 0 wrong, 1 ok) = 2/3; medium: 1/2; few: (3 ok, 4 wrong, 4 ok, 4 wrong) = 2/4
    assert got == {"many": 2 / 3, "medium": 0.5, "few": 0.5}
    pc = metrics.per_class_accuracy(y_true, y_pred, 6)
    np.testing.assert_allclose(pc[:5], [0.5, 1.0, 0.5, 1.0, 1 / 3])
    assert np.isnan(pc[5])


def test_group_without_examples_is_nan():
    got = metrics.per_group_accuracy([0, 1], [0, 0], {"many": [0, 1], "few": [2]})
    assert got["many"] == 0.5 and np.isnan(got["few"])


def test_generalization_gap_hand_count():
    tr_l = np.array([0.1, 0.3, 0.2, 0.6])
    tr_y = np.array([0, 0, 3, 3])
    te_l = np.array([0.25, 0.9, 1.0])
    te_y = np.array([0, 3, 3])
    g = metrics.generalization_gap(tr_l, tr_y, te_l, te_y, GROUPS)
    assert g["all"] == pytest.approx((0.25 + 0.9 + 1.0) / 3 - 0.3)
    assert g["many"] == pytest.approx(0.25 - 0.2)
    assert g["few"] == pytest.approx(0.95 - 0.4)
    assert np.isnan(g["medium"])


def test_generalization_gap_from_model_calls_per_example_losses():
    calls = []

    class Fake:
        def per_example_losses(self, images, labels=None, batch_size=256):
            calls.append((len(images), batch_size))
            return images.reshape(len(images), -1).sum(1)

    tr = np.array([[0.0], [1.0]])
    te = np.array([[2.0], [4.0]])
    g = metrics.generalization_gap_from_model(Fake(), tr, [0, 3], te, [0, 3], GROUPS, batch_size=7)
    assert calls == [(2, 7), (2, 7)]
    assert g["all"] == pytest.approx(2.5) and g["many"] == 2.0 and g["few"] == 3.0
    with pytest.raises(ValueError, match="per_example_losses"):
        metrics.generalization_gap_from_model(object(), tr, [0, 1], te, [0, 1])


@pytest.mark.parametrize(
    "groups, match",
    [
        ([0, 1], "dict"),
        ({"many": [0, 0]}, "repeats"),
        ({"many": [0, 7]}, r"\[0, 5\)"),
        ({"many": [0], "few": [0]}, "both"),
        ({"many": [0.5]}, "integer"),
    ],
)
def test_bad_class_groups(groups, match):
    with pytest.raises(ValueError, match=match):
        metrics.check_class_groups(groups, num_classes=5)


def test_bad_lengths():
    with pytest.raises(ValueError, match="same length"):
        metrics.per_group_accuracy([0, 1], [0], GROUPS)
    with pytest.raises(ValueError, match="empty"):
        metrics.per_group_accuracy([], [], GROUPS)
    with pytest.raises(ValueError, match="train_losses"):
        metrics.generalization_gap([0.1], [0, 1], [0.1], [0])


def _topk_reference(scores, labels, k):
    """Independent reference: a stable descending sort keeps the lower class id first among equal scores."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([y in row for row, y in zip(order, labels, strict=True)]))


def test_topk_hand_count_with_ties():
    logits = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    y = np.array([2, 0, 0, 1])
    assert metrics.topk_accuracy(logits, y, 1) == 0.25  # only row 1
    # row 3: class 1 ties class 0 at 0.3 and ranks after it (lower id first): rank 2, not a top-2 hit
    assert metrics.topk_accuracy(logits, y, 2) == 0.5  # rows 0 and 1
    assert metrics.topk_accuracy(logits, y, 3) == 1.0
    assert metrics.topk_accuracy(logits, y, 5) == 1.0


def test_topk_against_a_stable_sort_reference_on_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (400, 10)).astype("float32")  # heavy ties
    scores[:50] = 0.0  # rows with no information at all (e.g. a label without kNN votes)
    labels = rng.integers(0, 10, 400)
    for k in (1, 2, 5, 9, 10, 12):
        assert metrics.topk_accuracy(scores, labels, k) == pytest.approx(_topk_reference(scores, labels, k)), k
    # top-1 is exactly the accuracy of the predictions
    assert metrics.topk_accuracy(scores, labels, 1) == pytest.approx(np.mean(metrics.predict_classes(scores) == labels))


def test_zero_votes_on_many_classes_are_not_a_top5_hit():
    # 100 classes, all scores zero: only labels 0..4 are in the top 5 (not every label, as a favourable tie rule gives).
    labels = np.arange(100)
    assert metrics.topk_accuracy(np.zeros((100, 100)), labels, 5) == pytest.approx(0.05)


def test_accuracy_summary_uses_one_tie_rule():
    scores = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    r = metrics.accuracy_summary(scores, [1, 2], {"a": [0, 1], "b": [2]}, k=2)
    assert metrics.predict_classes(scores).tolist() == [0, 1]
    assert r == {"acc": 0.0, "top5": 1.0, "acc_a": 0.0, "acc_b": 0.0}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.topk_accuracy(np.array([[np.nan, 1.0]]), [0]), "NaN"),
        (lambda: metrics.topk_accuracy(np.ones((2, 2)), [0, 1.7]), "integer class ids"),
        (lambda: metrics.topk_accuracy(np.ones((2, 2)), [0, 2]), r"\[0, 2\)"),
        (lambda: metrics.topk_accuracy(np.ones((2, 2)), [0, 1], k=0), "`k`"),
        (lambda: metrics.gap(np.nan, 0.5), "acc_balanced"),
        (lambda: metrics.gap(0.9, 1.2), "acc_imbalanced"),
        (lambda: metrics.gap(90.0, 85.0), "fractions, not percents"),
        (lambda: metrics.gap("0.9", 0.8), "string"),
        (lambda: metrics.relative_gap([0.8, np.nan], [0.5, 0.5]), "acc_balanced"),
        (lambda: metrics.relative_gap(0.8, -0.1), "acc_imbalanced"),
        (lambda: metrics.per_class_accuracy([0, 1.7], [0, 1], 3), "y_true"),
        (lambda: metrics.per_class_accuracy([0, 1], [0, np.nan], 3), "y_pred"),
        (lambda: metrics.per_class_accuracy(["a", "b"], [0, 1], 3), "y_true"),
        (lambda: metrics.per_group_accuracy([0, 1.5], [0, 1], GROUPS), "y_true"),
        (lambda: metrics.generalization_gap([0.1, 0.2], [0, 1.7], [0.1], [0]), "train_labels"),
        (lambda: metrics.generalization_gap([0.1, np.nan], [0, 1], [0.1], [0]), "train_losses"),
        (lambda: metrics.generalization_gap(["a"], [0], [0.1], [0]), "train_losses"),
    ],
)
def test_metrics_reject_bad_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_float_labels_with_whole_values_are_accepted():
    got = metrics.per_group_accuracy([0.0, 1.0, 2.0, 3.0], [0, 1, 1, 3.0], GROUPS)
    assert (
        got
        == metrics.per_group_accuracy([0, 1, 2, 3], [0, 1, 1, 3], GROUPS)
        == {"many": 1.0, "medium": 0.0, "few": 1.0}
    )
    np.testing.assert_array_equal(metrics.check_class_groups({"few": [3.0, 4.0]}, 5)["few"], [3, 4])
