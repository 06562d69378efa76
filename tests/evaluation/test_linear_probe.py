"""Linear-probe solvers against scikit-learn on the same features; ties and bad input (every backend)."""

import numpy as np
import pytest

from keras_ssl_lt.evaluation import (
    LinearClassifier,
    extract_features,
    fit_linear_sgd,
    fit_logistic_regression,
    probe_features,
)

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
    clf = fit_logistic_regression(xtr, ytr, l2=l2, max_iter=3000, tol=1e-6)
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
    d = cifar10_small
    ftr = extract_features(enc, d["x_train"])
    fte = extract_features(enc, d["x_test"])
    clf, sk, ste = _compare_with_sklearn(ftr, d["y_train"], fte, d["y_test"], l2=1e-3)
    # Not a trivial problem: the features carry signal but are far from separable.
    assert 0.15 < clf.score(fte, d["y_test"]) < 0.9
    assert np.mean(clf.predict(fte) == sk.predict(ste)) > 0.97


def test_logreg_without_standardisation_and_with_C():
    x, y = _blobs(n=400, d=8, k=3, seed=1)
    clf = fit_logistic_regression(x, y, C=0.5, standardize=False, tol=1e-6, max_iter=3000)
    sk = sklearn_lm.LogisticRegression(C=0.5, max_iter=5000, tol=1e-8).fit(x, y)
    np.testing.assert_allclose(clf.kernel, sk.coef_.T, atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(clf.bias - clf.bias.mean(), sk.intercept_ - sk.intercept_.mean(), atol=2e-3)


def test_sample_weight_equals_repetition():
    x, y = _blobs(n=200, d=5, k=3, seed=2)
    w = np.ones(len(x))
    w[:50] = 2.0
    a = fit_logistic_regression(x, y, l2=1e-2, sample_weight=w, standardize=False, tol=1e-7)
    xr = np.concatenate([x, x[:50]])
    yr = np.concatenate([y, y[:50]])
    b = fit_logistic_regression(xr, yr, l2=1e-2, standardize=False, tol=1e-7)
    np.testing.assert_allclose(a.kernel, b.kernel, atol=1e-3)


def test_paper_protocol_sgd_learns_and_follows_milestones():
    x, y = _blobs(n=600, d=16, k=4, seed=3, spread=1.5)
    clf = fit_linear_sgd(x, y, epochs=4, milestones=(2, 3), learning_rate=0.5, batch_size=64)
    assert clf.score(x, y) > 0.9
    assert clf.n_iter == 4 * 10
    with pytest.raises(ValueError, match="milestones"):
        fit_linear_sgd(x, y, milestones=(80, 60))


def test_all_zero_classifier_score_agrees_with_predict():
    # Every logit is 0: predict takes the lowest class id, and score(k) uses the same tie rule.
    clf = LinearClassifier(np.zeros((4, 3), "float32"), np.zeros(3, "float32"))
    x = np.random.default_rng(0).normal(size=(9, 4)).astype("float32")
    y = np.array([0, 1, 2] * 3)
    assert clf.predict(x).tolist() == [0] * 9
    assert clf.score(x, y, k=1) == pytest.approx(np.mean(clf.predict(x) == y)) == pytest.approx(1 / 3)
    assert clf.score(x, y, k=2) == pytest.approx(2 / 3)  # classes 0 and 1 make the top 2
    assert clf.score(x, y, k=3) == 1.0


def test_predict_rejects_nan_and_inf_rows():
    clf = LinearClassifier(np.eye(2, dtype="float32"), np.zeros(2, "float32"))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((3, 2), "float32")
        x[2, 0] = bad
        with pytest.raises(ValueError, match=r"NaN or infinite values \(row 2\)"):
            clf.predict(x)
        with pytest.raises(ValueError, match="NaN or infinite"):
            clf.score(x, [0, 1, 0])
    with pytest.raises(ValueError, match="dimension"):
        clf.predict(np.ones((2, 3)))


def test_single_class_training_set_is_refused():
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    for fit in (fit_logistic_regression, lambda x, y: fit_linear_sgd(x, y, epochs=1, milestones=())):
        with pytest.raises(ValueError, match="single class"):
            fit(x, np.full(10, 2))
    with pytest.raises(ValueError, match="single class"):
        probe_features(x, np.zeros(10, int), x, np.zeros(10, int), num_classes=3)


def test_float_labels_with_whole_values_give_the_same_probe():
    x, y = _blobs(n=200, d=5, k=3, seed=4)
    a = fit_logistic_regression(x, y, l2=1e-2)
    b = fit_logistic_regression(x, y.astype("float64"), l2=1e-2)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    assert probe_features(x, y.astype("float32"), x, y)["acc"] == probe_features(x, y, x, y)["acc"]
    with pytest.raises(ValueError, match="integer class ids"):
        fit_logistic_regression(x, np.where(y == 1, 1.7, y))


@pytest.mark.parametrize("scale", [1e19, 1e25, 1e-20])
def test_standardised_probe_is_scale_invariant_without_overflow(scale):
    # Standardisation makes the probe invariant to the feature scale; at 1e19 the squares overflow float32
    # unless the statistics are computed on rescaled columns (the probe used to become all-zero there).
    x, y = _blobs(n=300, d=6, k=3, seed=5, spread=1.0)
    ref = fit_logistic_regression(x, y, l2=1e-2, tol=1e-6)
    big = fit_logistic_regression(x * np.float32(scale), y, l2=1e-2, tol=1e-6)
    assert big.converged and np.abs(big.kernel).max() > 0.1
    np.testing.assert_allclose(big.kernel, ref.kernel, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(big.predict(x * np.float32(scale)), ref.predict(x))


def test_unstandardised_overflow_raises():
    x, y = _blobs(n=100, d=4, k=2, seed=6)
    with pytest.raises(ValueError, match="standardize=True"):
        fit_logistic_regression(x * np.float32(1e20), y, standardize=False)
    with pytest.raises(FloatingPointError, match="diverged"):
        fit_linear_sgd(x * np.float32(1e20), y, epochs=1, milestones=())


def test_unseen_test_labels_raise_without_num_classes():
    x, y = _blobs(n=60, d=4, k=3, seed=7)
    with pytest.raises(ValueError, match=r"test labels \[3\] never occur"):
        probe_features(x, y, x[:4], [0, 1, 3, 2])
    yte = np.where(np.arange(len(y)) == 0, 3, y)
    r, clf = probe_features(x, y, x, yte, num_classes=4, return_classifier=True)
    assert clf.num_classes == 4 and 3 not in clf.predict(x).tolist()
    assert r["acc"] == pytest.approx(np.mean(clf.predict(x) == yte))


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((4, 3)), np.zeros(3, int), "one label per example"),
        (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"\[0, 3\)"),
        (np.zeros((0, 3)), np.zeros(0, int), "empty"),
        (np.zeros((4, 3, 2)), np.zeros(4, int), "flat features"),
        (np.zeros((4, 3)), np.array([0.5, 1, 1, 0]), "integer"),
        (np.zeros((4, 3)), np.array(["a", "b", "a", "b"]), "integer"),
        (np.zeros((4, 3)), np.array([0, 1, np.nan, 0]), "integer"),
        (np.zeros((4, 3)), np.array([-1, 1, 1, 0]), "non-negative"),
        (np.full((4, 3), np.nan), np.array([0, 1, 1, 0]), "NaN"),
    ],
)
def test_bad_input_raises(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_logistic_regression(x, y, num_classes=3 if match == r"\[0, 3\)" else None)


def test_bad_hyperparameters_raise():
    x, y = _blobs(n=50, d=3, k=2)
    with pytest.raises(ValueError, match="l2"):
        fit_logistic_regression(x, y, l2=0.0)
    with pytest.raises(ValueError, match="C"):
        fit_logistic_regression(x, y, C=-1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_logistic_regression(x, y, sample_weight=np.ones(3))
