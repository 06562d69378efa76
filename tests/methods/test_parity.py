"""Trajectory parity (docs/fidelity.md): the package's `fit` against the plain-PyTorch reference, on every backend.

`benchmarks/parity/harness.py` starts the package and the reference (`benchmarks/parity/reference.py`, written
without Keras) from the same weights, feeds both the same pre-made views and trains both 50 steps with the same
optimizer semantics and regulariser. The tolerance is the growth of rounding itself: three more references
started one float32 ulp away (the "rounding twins"); the package must stay within ten times the widest twin's
distance (plus a float32 floor), at every checkpoint. Measured on the CPU: over 50 steps the package stays within
1e-7 to 1e-5 of the reference (relative L2 of all weights) where the twins do too, and where the dynamics amplify
rounding (SimSiam, SAM's normalised ascent, a ReLU near its threshold) it drifts no farther than the twins.
"""

import numpy as np
import pytest

from benchmarks.parity.harness import run_parity

pytest.importorskip("torch")

SETTING = dict(steps=50, batch=32, size=8, lr=0.01, checkpoints=(1, 10, 25))


def _check(out):
    for row in out["checkpoints"]:
        # Within ten times what rounding alone does to the reference, plus a float32 floor.
        assert row["weight_gap"] <= 10 * row["rounding_weight_gap"] + 1e-6, row
        assert row["loss_gap"] <= 10 * row["rounding_loss_gap"] + 2e-6, row
        if row["rounding_weight_gap"] < 1e-5:  # where rounding does not grow, the moving variances differ only
            # by the biased (Keras) against the unbiased (PyTorch) batch variance
            assert row["moving_variance_ratio"] <= 1.05 * out["moving_variance_bound"], row
    first = out["checkpoints"][0]
    assert first["step"] == 1 and first["weight_gap"] < 1e-6, first


# The other method / regulariser pairs run in benchmarks/parity/trajectory.py (docs/fidelity.md has their figures).
@pytest.mark.parametrize(
    ("method", "regularizer", "batch"),
    [("supervised", "none", 32), ("simsiam", "none", 32), ("simclr", "rwsam", 16)],
)
def test_fit_follows_the_pytorch_reference(method, regularizer, batch):
    out = run_parity(method, regularizer, **dict(SETTING, batch=batch))
    assert len(out["keras_loss"]) == SETTING["steps"]
    _check(out)


def test_harness_exposes_a_real_difference():
    """Keras' own SGD (decoupled decay, lr in the buffer) against torch.optim.SGD: far outside the rounding band."""
    out = run_parity("supervised", "none", keras_optimizer="keras", weight_decay=5e-2, steps=5, batch=8, twins=1)
    last = out["checkpoints"][-1]
    assert last["weight_gap"] > 100 * last["rounding_weight_gap"] + 1e-4, last


def test_mismatched_views_are_refused():
    with pytest.raises(ValueError, match="steps \\* batch, views"):
        run_parity("simclr", steps=2, batch=4, size=8, views=np.zeros((8, 1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="batch"):
        run_parity("simclr", steps=2, batch=1)
    with pytest.raises(ValueError, match="method"):
        run_parity("byol")


def test_mismatched_architectures_are_refused():
    import keras_ssl_lt as ksl
    from benchmarks.parity import reference as R

    model = ksl.SimCLR(ksl.backbones.small_resnet((8, 8, 3), width=0.25), projection_dim=8, projection_hidden_dim=8)
    with pytest.raises(ValueError, match="differ in their layers"):
        R.load_keras_weights(R.SimSiam(R.resnet("small_resnet", 0.25), 8, 8, 4), model)
    with pytest.raises(ValueError, match="shape mismatch"):
        R.load_keras_weights(R.SimCLR(R.resnet("small_resnet", 0.25), 16, 8), model)
