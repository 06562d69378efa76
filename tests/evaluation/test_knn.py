"""kNN against independent numpy / scikit-learn references, ties and bad input (every backend).

Every test runs twice: with `compute="device"` (the `keras.ops` path an accelerator runs) and `compute="host"`
(the numpy path that `"auto"` picks on a CPU), so both are held to the same references.
"""

import functools
import importlib

import numpy as np
import pytest

from keras_ssl_lt.evaluation import knn_features, knn_predict

knn_module = importlib.import_module("keras_ssl_lt.evaluation.knn")  # the module (the package exports `knn`)

_KNN_PREDICT = knn_module.knn_predict


@pytest.fixture(autouse=True, params=["device", "host"])
def compute(request, monkeypatch):
    """Runs the test with `knn_predict` (also as `knn_features` calls it) pinned to one `compute` path."""
    pinned = functools.partial(_KNN_PREDICT, compute=request.param)
    monkeypatch.setattr(knn_module, "knn_predict", pinned)
    monkeypatch.setitem(globals(), "knn_predict", pinned)
    return request.param


def _reference(xtr, ytr, xte, num_classes, k, temperature, weighting):
    """float64 numpy: stable sort (lower training index first among equal similarities), arg-max votes."""
    a = xtr / np.maximum(np.linalg.norm(xtr, axis=1, keepdims=True), 1e-300)
    b = xte / np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-300)
    preds = []
    for row in b @ a.T:
        top = np.argsort(-row, kind="stable")[:k]
        w = {"exp": np.exp(row[top] / temperature), "similarity": row[top], "uniform": np.ones(k)}[weighting]
        votes = np.zeros(num_classes)
        for lab, wi in zip(ytr[top], w, strict=True):
            votes[lab] += wi
        preds.append(np.argmax(votes))
    return np.array(preds)


@pytest.mark.parametrize("weighting", ["exp", "similarity", "uniform"])
def test_knn_matches_numpy_reference(weighting):
    rng = np.random.default_rng(0)
    xtr = rng.normal(size=(300, 16)).astype("float32")
    ytr = rng.integers(0, 5, 300)
    xte = rng.normal(size=(45, 16)).astype("float32")
    ref = _reference(xtr.astype("float64"), ytr, xte.astype("float64"), 5, 25, 0.1, weighting)
    for chunk in (7, None):  # several chunks with a remainder, and a single chunk
        pred = knn_predict(xtr, ytr, xte, 5, k=25, weighting=weighting, chunk_size=chunk)
        np.testing.assert_array_equal(pred, ref)


def test_knn_matches_sklearn_with_the_same_weights():
    neighbors = pytest.importorskip("sklearn.neighbors")
    rng = np.random.default_rng(1)
    xtr = rng.normal(size=(200, 8)).astype("float32") + 0.5
    ytr = rng.integers(0, 4, 200)
    xte = rng.normal(size=(40, 8)).astype("float32") + 0.5
    sk = neighbors.KNeighborsClassifier(
        n_neighbors=30, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1 - d) / 0.1)
    ).fit(xtr, ytr)
    np.testing.assert_array_equal(knn_predict(xtr, ytr, xte, 4, k=30), sk.predict(xte))


def test_knn_votes_hand_computed():
    xtr = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]], "float32")
    ytr = np.array([0, 1, 1])
    pred, votes = knn_predict(xtr, ytr, np.array([[1.0, 0.0]], "float32"), 2, k=2, temperature=0.5, return_scores=True)
    s1 = 1.0 / np.sqrt(1.01)
    # exp(sim / T) divided by exp(max sim / T): the nearest neighbour weighs 1.
    np.testing.assert_allclose(votes[0], [1.0, np.exp((s1 - 1.0) / 0.5)], rtol=1e-5)
    assert pred.tolist() == [0]
    _, votes = knn_predict(
        xtr, ytr, np.array([[1.0, 0.0]], "float32"), 2, k=2, weighting="similarity", return_scores=True
    )
    np.testing.assert_allclose(votes[0], [1.0, s1], rtol=1e-5)


def test_zero_query_takes_the_lowest_training_indices_on_every_backend():
    # An all-zero query is equally similar (0) to every training example: the neighbours are the first k.
    xtr = np.eye(8, 4, dtype="float32") + 0.1
    ytr = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    for k, want in ((2, 0), (3, 0), (5, 1)):  # k=3: votes 2 vs 1; k=5: 2 vs 3
        pred, votes = knn_predict(xtr, ytr, np.zeros((3, 4), "float32"), 2, k=k, return_scores=True)
        assert pred.tolist() == [want] * 3, (k, pred)
        ref = np.bincount(ytr[:k], minlength=2)
        np.testing.assert_allclose(votes, np.tile(ref, (3, 1)))
    # k=4: two votes each, a vote tie: the lower class id wins.
    assert knn_predict(xtr, ytr, np.zeros((1, 4), "float32"), 2, k=4).tolist() == [0]


def _signed_subsets(rng, n, d=8, nonzero=4):
    """Rows with `nonzero` entries of +-1: unit rows are +-0.5, so every similarity is an exact multiple of 1/4."""
    x = np.zeros((n, d), "float32")
    for row in x:
        row[rng.choice(d, nonzero, replace=False)] = rng.choice([-1.0, 1.0], nonzero)
    return x


def test_ties_at_the_kth_neighbour_match_the_stable_reference():
    # Similarities are exact multiples of 1/4 on every backend, so many training examples tie at the k-th
    # place; the lower training index must win, as in a stable sort. Uniform and similarity votes are sums
    # of exact values, so the reference's vote ties are ties here too (the lower class id wins).
    rng = np.random.default_rng(3)
    xtr = _signed_subsets(rng, 60)
    ytr = rng.integers(0, 4, 60)
    xte = _signed_subsets(rng, 25)
    for k in (1, 5, 13):
        for weighting in ("uniform", "similarity"):
            ref = _reference(xtr.astype("float64"), ytr, xte.astype("float64"), 4, k, 0.1, weighting)
            pred = knn_predict(xtr, ytr, xte, 4, k=k, weighting=weighting, chunk_size=10)
            np.testing.assert_array_equal(pred, ref, err_msg=f"k={k} {weighting}")


def test_every_training_example_a_neighbour_and_mixed_tied_rows():
    # k = N_train (no (k + 1)-th place), and chunks mixing rows tied at the k-th place (all-zero queries and
    # duplicated training rows) with untied rows: the fast path and the exact tie path in one chunk.
    rng = np.random.default_rng(6)
    base = rng.normal(size=(40, 6)).astype("float32")
    xtr = np.concatenate([base, base[:10]])  # rows 40..49 duplicate rows 0..9
    ytr = rng.integers(0, 3, len(xtr))
    xte = rng.normal(size=(30, 6)).astype("float32")
    xte[::4] = 0.0
    for k in (len(xtr), 7):
        for weighting in ("uniform", "exp"):
            ref = _reference(xtr.astype("float64"), ytr, xte.astype("float64"), 3, k, 0.1, weighting)
            pred = knn_predict(xtr, ytr, xte, 3, k=k, weighting=weighting, chunk_size=10)
            np.testing.assert_array_equal(pred, ref, err_msg=f"k={k} {weighting}")


def test_huge_and_tiny_features_are_normalised_without_overflow():
    rng = np.random.default_rng(4)
    xtr = rng.normal(size=(60, 5)).astype("float32")
    ytr = rng.integers(0, 3, 60)
    xte = rng.normal(size=(20, 5)).astype("float32")
    ref = knn_predict(xtr, ytr, xte, 3, k=7)
    for scale in (1e20, 1e-30):  # squares overflow / underflow float32
        np.testing.assert_array_equal(knn_predict(xtr * scale, ytr, xte * scale, 3, k=7), ref)


def test_knn_features_accuracy_and_groups():
    xtr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], "float32")
    ytr = np.array([0, 0, 1, 1])
    xte = np.array([[1.0, 0.05], [0.05, 1.0], [0.8, 0.2]], "float32")
    yte = np.array([0, 1, 1])
    r = knn_features(xtr, ytr, xte, yte, k=2, class_groups={"many": [0], "few": [1]})
    assert r["acc"] == pytest.approx(2 / 3)
    assert r["acc_many"] == 1.0 and r["acc_few"] == 0.5


def test_top5_of_a_label_without_votes_is_not_a_hit():
    # 20 classes, k=1: each query's only neighbour is of class 19; every other class gets zero votes.
    # Ties among zero-vote classes go to the lowest ids: labels 0..3 fill the top 5 after class 19,
    # so label 10 (zero votes) is not a top-5 hit while label 2 is.
    xtr = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    ytr = np.array([19, 0])
    xte = np.array([[1.0, 0.1], [1.0, 0.2]], "float32")
    r = knn_features(xtr, ytr, xte, np.array([10, 2]), num_classes=20, k=1)
    assert r["acc"] == 0.0 and r["top5"] == 0.5


def test_float_labels_with_whole_values_are_class_ids():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4)).astype("float32")
    y = rng.integers(0, 3, 30)
    np.testing.assert_array_equal(knn_predict(x, y.astype("float32"), x, k=3), knn_predict(x, y, x, k=3))
    with pytest.raises(ValueError, match="integer class ids"):
        knn_predict(x, y + 0.5, x, k=3)


def test_knn_bad_input():
    x = np.ones((5, 3), "float32")
    y = np.array([0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="`k`"):
        knn_predict(x, y, x, k=6)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(x, y, x, k=2, temperature=0)
    with pytest.raises(ValueError, match="dimension"):
        knn_predict(x, y, np.ones((2, 4)), k=2)
    with pytest.raises(ValueError, match="one label per example"):
        knn_predict(x, y[:4], x, k=2)
    with pytest.raises(ValueError, match="weighting"):
        knn_predict(x, y, x, k=2, weighting="distance")
    with pytest.raises(ValueError, match="compute"):
        _KNN_PREDICT(x, y, x, k=2, compute="gpu")
    for bad in (np.nan, np.inf, -np.inf):
        xte = np.ones((3, 3), "float32")
        xte[1, 2] = bad
        with pytest.raises(ValueError, match=r"`test` features contain NaN or infinite values \(row 1\)"):
            knn_predict(x, y, xte, k=2)
        with pytest.raises(ValueError, match="NaN or infinite"):
            knn_features(x, y, xte, [0, 1, 0], k=2)
    with pytest.raises(ValueError, match="never occur in the training labels"):
        knn_features(x, y, x, [0, 1, 2, 0, 1], k=2)
    # all-equal features: every query's neighbours are training rows 0 and 1 (labels 0, 1), a vote tie -> class 0
    assert knn_features(x, y, x, [0, 1, 2, 0, 1], k=2, num_classes=3)["acc"] == pytest.approx(0.4)


def test_auto_picks_the_host_path_exactly_when_the_backend_computes_on_the_cpu(monkeypatch):
    from keras_ssl_lt.training import fused

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((60, 8)).astype("float32"), rng.integers(0, 3, 60)
    used = []
    real_host = knn_module._host_knn

    def spy(*args, **kwargs):
        used.append("host")
        return real_host(*args, **kwargs)

    monkeypatch.setattr(knn_module, "_host_knn", spy)
    for on_cpu in (True, False):
        monkeypatch.setattr(fused, "device_is_cpu", lambda on_cpu=on_cpu: on_cpu)
        used.clear()
        pred = _KNN_PREDICT(x, y, x[:20], 3, k=5, compute="auto")
        assert used == (["host"] if on_cpu else [])
        np.testing.assert_array_equal(pred, _KNN_PREDICT(x, y, x[:20], 3, k=5, compute="device"))
