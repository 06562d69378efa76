"""Linear-probe solvers against scikit-learn on the same features (every backend)."""

import numpy as np
import pytest

from keras_ssl_lt import probes

sklearn_lm = pytest.importorskip("sklearn.linear_model")


def _blobs(n=1500, d=32, k=6, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = spread * rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    x = centres[y] + rng.normal(size=(n, d))
    x[:, 1] = 2.0 * x[:, 0] + 0.05 * rng.normal(size=n)  # a nearly collinear pair
    return x.astype("float32"), y


def _standardise(xtr, xte):
    mu, sd = xtr.mean(0), xtr.std(0)
    return (xtr - mu) / sd, (xte - mu) / sd


def _objective(x, y, kernel, bias, l2):
    z = x.astype("float64") @ kernel + bias
    z -= z.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1))
    return np.mean(lse - z[np.arange(len(y)), y]) + 0.5 * l2 * np.sum(kernel.astype("float64") ** 2)


def _compare_with_sklearn(xtr, ytr, xte, yte, l2):
    clf = probes.fit_logistic_regression(xtr, ytr, l2=l2, max_iter=3000, tol=1e-6)
    assert clf.converged
    str_, ste = _standardise(xtr, xte)
    sk = sklearn_lm.LogisticRegression(C=1.0 / (l2 * len(xtr)), max_iter=5000, tol=1e-8)
    sk.fit(str_, ytr)
    ours = clf.score(xte, yte)
    ref = sk.score(ste, yte)
    assert abs(ours - ref) <= 0.005, (ours, ref)
    # Same objective: our minimum is at least as low as sklearn's (tiny float32 slack).
    f_ours = _objective(str_, ytr, clf.kernel, clf.bias, l2)
    f_ref = _objective(str_, ytr, sk.coef_.T, sk.intercept_, l2)
    assert f_ours <= f_ref + 1e-4 * max(1.0, abs(f_ref)), (f_ours, f_ref)
    return clf, sk, ste


def test_logreg_matches_sklearn_on_blobs():
    x, y = _blobs(spread=0.35)
    xtr, ytr, xte, yte = x[:1000], y[:1000], x[1000:], y[1000:]
    for l2 in (1e-2, 1e-4):
        _compare_with_sklearn(xtr, ytr, xte, yte, l2)


def test_logreg_matches_sklearn_on_cifar_features(cifar10_small):
    import keras

    enc = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(48, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    from keras_ssl_lt.features import extract_features

    d = cifar10_small
    ftr = extract_features(enc, d["x_train"])
    fte = extract_features(enc, d["x_test"])
    clf, sk, ste = _compare_with_sklearn(ftr, d["y_train"], fte, d["y_test"], l2=1e-3)
    # Not a trivial problem: the features carry signal but are far from separable.
    assert 0.15 < clf.score(fte, d["y_test"]) < 0.9
    assert np.mean(clf.predict(fte) == sk.predict(ste)) > 0.97


def test_logreg_without_standardisation_and_with_C():
    x, y = _blobs(n=400, d=8, k=3, seed=1)
    clf = probes.fit_logistic_regression(x, y, C=0.5, standardize=False, tol=1e-6, max_iter=3000)
    sk = sklearn_lm.LogisticRegression(C=0.5, max_iter=5000, tol=1e-8).fit(x, y)
    np.testing.assert_allclose(clf.kernel, sk.coef_.T, atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(clf.bias - clf.bias.mean(), sk.intercept_ - sk.intercept_.mean(), atol=2e-3)


def test_sample_weight_equals_repetition():
    x, y = _blobs(n=200, d=5, k=3, seed=2)
    w = np.ones(len(x))
    w[:50] = 2.0
    a = probes.fit_logistic_regression(x, y, l2=1e-2, sample_weight=w, standardize=False, tol=1e-7)
    xr = np.concatenate([x, x[:50]])
    yr = np.concatenate([y, y[:50]])
    b = probes.fit_logistic_regression(xr, yr, l2=1e-2, standardize=False, tol=1e-7)
    np.testing.assert_allclose(a.kernel, b.kernel, atol=1e-3)


def test_paper_protocol_sgd_learns_and_follows_milestones():
    x, y = _blobs(n=600, d=16, k=4, seed=3, spread=1.5)
    clf = probes.fit_linear_sgd(x, y, epochs=4, milestones=(2, 3), learning_rate=0.5, batch_size=64)
    assert clf.score(x, y) > 0.9
    assert clf.n_iter == 4 * 10
    with pytest.raises(ValueError, match="milestones"):
        probes.fit_linear_sgd(x, y, milestones=(80, 60))


def test_topk_accuracy_hand_count():
    logits = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    y = np.array([2, 0, 0, 1])
    assert probes.topk_accuracy(logits, y, 1) == 0.25  # only row 1
    assert probes.topk_accuracy(logits, y, 2) == 0.75  # rows 0, 1, 3 (tie counts for the label)
    assert probes.topk_accuracy(logits, y, 5) == 1.0


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((4, 3)), np.zeros(3, int), "one label per example"),
        (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"\[0, 3\)"),
        (np.zeros((0, 3)), np.zeros(0, int), "empty"),
        (np.zeros((4, 3, 2)), np.zeros(4, int), "flat features"),
        (np.zeros((4, 3)), np.array([0.5, 1, 1, 0]), "integer"),
        (np.zeros((4, 3)), np.array([-1, 1, 1, 0]), "non-negative"),
    ],
)
def test_bad_input_raises(x, y, match):
    with pytest.raises(ValueError, match=match):
        probes.fit_logistic_regression(x, y, num_classes=3 if match == r"\[0, 3\)" else None)


def test_bad_hyperparameters_raise():
    x, y = _blobs(n=50, d=3, k=2)
    with pytest.raises(ValueError, match="l2"):
        probes.fit_logistic_regression(x, y, l2=0.0)
    with pytest.raises(ValueError, match="C"):
        probes.fit_logistic_regression(x, y, C=-1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        probes.fit_logistic_regression(x, y, sample_weight=np.ones(3))
