"""Imbalance metrics against hand counts (pure numpy)."""

import numpy as np
import pytest

from keras_ssl_lt import metrics

GROUPS = {"many": [0, 1], "medium": [2], "few": [3, 4]}


def test_gap_and_relative_gap_exact():
    assert metrics.gap(0.9, 0.85) == pytest.approx(0.05, abs=1e-15)
    assert metrics.relative_gap(0.8, 0.6) == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_allclose(metrics.gap([0.9, 0.8], [0.7, 0.8]), [0.2, 0.0], atol=1e-15)
    np.testing.assert_allclose(metrics.relative_gap([0.5, 0.8], [0.25, 0.2]), [0.5, 0.75])
    with pytest.raises(ValueError, match="acc_balanced"):
        metrics.relative_gap(0.0, 0.1)


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
