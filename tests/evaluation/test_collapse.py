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
