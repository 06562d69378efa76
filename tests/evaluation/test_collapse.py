"""RankMe against a numpy reference on every backend, and its limits (collapse, isotropy)."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.evaluation.collapse import rankme


def _numpy_rankme(z, eps=1e-7):
    s = np.linalg.svd(z.astype(np.float64), compute_uv=False)
    p = s / s.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (200, 32)])
def test_rankme_matches_numpy(shape):
    rng = np.random.default_rng(0)
    z = rng.normal(size=shape).astype("float32") @ np.diag(np.linspace(0.1, 3, shape[1])).astype("float32")
    got = float(keras.ops.convert_to_numpy(rankme(keras.ops.convert_to_tensor(z))))
    assert got == pytest.approx(_numpy_rankme(z), rel=1e-4)


def test_rankme_limits_and_bad_input():
    rng = np.random.default_rng(1)
    collapsed = np.outer(rng.normal(size=32), rng.normal(size=8)).astype("float32")
    assert float(keras.ops.convert_to_numpy(rankme(collapsed))) == pytest.approx(1.0, abs=1e-3)
    iso = np.linalg.qr(rng.normal(size=(32, 8)))[0].astype("float32")  # orthonormal columns: equal singular values
    assert float(keras.ops.convert_to_numpy(rankme(iso))) == pytest.approx(8.0, rel=1e-4)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        rankme(np.zeros((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="`eps`"):
        rankme(iso, eps=0.0)


def test_rankme_metric_equals_rankme_of_the_stacked_embeddings():
    """The epoch's Gram, accumulated batch by batch, gives the RankMe of all the embeddings stacked."""
    from keras_ssl_lt.evaluation.collapse import RankMeMetric

    rng = np.random.default_rng(2)
    z = rng.normal(size=(60, 12)).astype("float32") * np.linspace(0.01, 2, 12).astype("float32") + 0.5
    metric = RankMeMetric(12)
    for part in np.split(z, 5):
        metric.update_state(keras.ops.convert_to_tensor(part))
    assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(_numpy_rankme(z), rel=1e-5)
    np.testing.assert_allclose(metric.gram_matrix(), z.astype("float64").T @ z, rtol=1e-5, atol=1e-4)
    # After a reset the sums are taken about the previous data's mean: same answer for new data.
    metric.reset_state()
    assert float(keras.ops.convert_to_numpy(metric.result())) == 0.0
    z2 = z[::-1].copy()
    for part in np.split(z2, 3):
        metric.update_state(part)
    assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(_numpy_rankme(z2), rel=1e-5)


def test_rankme_metric_reads_collapse_and_takes_bfloat16():
    from keras_ssl_lt.evaluation.collapse import RankMeMetric

    rng = np.random.default_rng(3)
    v = rng.normal(size=64).astype("float32") * 30
    z = v + 1e-5 * rng.normal(size=(256, 64)).astype("float32")  # collapsed: one direction
    metric = RankMeMetric(64)
    # The first pass accumulates about 0: float32 rounding of the one large direction adds a little (about 3%
    # here); the second pass accumulates about the first pass's mean and reads collapse as exactly as the SVD.
    for tolerance in (0.05, 2e-4):
        metric.reset_state()
        for part in np.split(z, 4):
            metric.update_state(part)
        assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(_numpy_rankme(z), abs=tolerance)
    zb = keras.ops.cast(keras.ops.convert_to_tensor(z[:8]), "bfloat16")
    metric.reset_state()
    metric.update_state(zb)
    want = _numpy_rankme(keras.ops.convert_to_numpy(keras.ops.cast(zb, "float32")))
    assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(want, rel=1e-3)


def test_rankme_metric_bad_input():
    from keras_ssl_lt.evaluation.collapse import RankMeMetric

    with pytest.raises(ValueError, match="`dim`"):
        RankMeMetric(0)
    with pytest.raises(ValueError, match="`eps`"):
        RankMeMetric(4, eps=-1.0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        RankMeMetric(4).update_state(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="needs `dim`"):
        RankMeMetric().update_state(np.zeros((2, 4), "float32"))


def test_rankme_metric_reads_nan_after_non_finite_embeddings_and_recovers_after_reset():
    from keras_ssl_lt.evaluation.collapse import RankMeMetric

    m = RankMeMetric(3)
    z = np.eye(3, dtype="float32")
    m.update_state(z)
    m.update_state(np.full((2, 3), np.nan, "float32"))
    assert np.isnan(float(np.asarray(m.result())))  # no LinAlgError: the loss check names the diverged step
    m.reset_state()
    m.update_state(z)
    assert float(np.asarray(m.result())) == pytest.approx(3.0, rel=1e-4)
