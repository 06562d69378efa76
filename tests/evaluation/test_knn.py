"""kNN monitor maths against an independent numpy reference (every backend)."""

import numpy as np
import pytest

from keras_ssl_lt import probes
from keras_ssl_lt.evaluate import knn_features


def _reference(xtr, ytr, xte, num_classes, k, temperature, weighting):
    a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    b = xte / np.linalg.norm(xte, axis=1, keepdims=True)
    preds = []
    for row in b @ a.T:
        top = np.argsort(-row, kind="stable")[:k]
        w = {"exp": np.exp(row[top] / temperature), "similarity": row[top], "uniform": np.ones(k)}[
            weighting
        ]
        votes = np.zeros(num_classes)
        for lab, wi in zip(ytr[top], w):
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
        pred = probes.knn_predict(xtr, ytr, xte, 5, k=25, weighting=weighting, chunk_size=chunk)
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
    np.testing.assert_array_equal(probes.knn_predict(xtr, ytr, xte, 4, k=30), sk.predict(xte))


def test_knn_votes_hand_computed():
    xtr = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]], "float32")
    ytr = np.array([0, 1, 1])
    pred, votes = probes.knn_predict(
        xtr, ytr, np.array([[1.0, 0.0]], "float32"), 2, k=2, temperature=0.5, return_scores=True
    )
    s1 = 1.0 / np.sqrt(1.01)
    np.testing.assert_allclose(votes[0], [np.exp(1 / 0.5), np.exp(s1 / 0.5)], rtol=1e-5)
    assert pred.tolist() == [0]


def test_knn_features_accuracy_and_groups():
    xtr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], "float32")
    ytr = np.array([0, 0, 1, 1])
    xte = np.array([[1.0, 0.05], [0.05, 1.0], [0.8, 0.2]], "float32")
    yte = np.array([0, 1, 1])
    r = knn_features(xtr, ytr, xte, yte, k=2, class_groups={"many": [0], "few": [1]})
    assert r["acc"] == pytest.approx(2 / 3)
    assert r["acc_many"] == 1.0 and r["acc_few"] == 0.5


def test_knn_bad_input():
    x = np.ones((5, 3), "float32")
    y = np.array([0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="`k`"):
        probes.knn_predict(x, y, x, k=6)
    with pytest.raises(ValueError, match="temperature"):
        probes.knn_predict(x, y, x, k=2, temperature=0)
    with pytest.raises(ValueError, match="dimension"):
        probes.knn_predict(x, y, np.ones((2, 4)), k=2)
    with pytest.raises(ValueError, match="one label per example"):
        probes.knn_predict(x, y[:4], x, k=2)
    with pytest.raises(ValueError, match="weighting"):
        probes.knn_predict(x, y, x, k=2, weighting="distance")
