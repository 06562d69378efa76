"""Data-parallel training (docs/scaling.md): equality with the single-device step, and the helpers it uses.

The multi-device checks run `distributed_check.py` in a subprocess (two virtual CPU devices must be set
up before the backend starts, and this process already started it): JAX under
`keras.distribution.DataParallel`, TensorFlow under `tf.distribute.MirroredStrategy`. Each case trains a
model for two steps of `fit` on one device and on two replicas from the same weights and global batches,
and every weight (BatchNorm statistics, momentum/target networks and MoCo's queue included) must agree to
float32 round-off, for the plain step and the SAM / ASAM / rwSAM step. PyTorch has no data-parallel `fit`
in Keras 3, so those tests skip there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_ssl_lt as ksl
from keras_ssl_lt import losses
from keras_ssl_lt.training import distributed

BACKEND = keras.backend.backend()
CHECK = Path(__file__).with_name("distributed_check.py")

# Method:regulariser[:options] (see distributed_check.py). JAX's distributed step is one global program,
# so BatchNorm is global there ("bn": an encoder BatchNorm besides the heads'); TensorFlow keeps BatchNorm
# per replica unless synchronised ("sync"), so the cases with BatchNorm heads synchronise it. "local":
# SimCLR with per-replica negatives, against one device computing NT-Xent per half-batch; "refresh": new
# example weights written by a callback between the two steps; "coupled": keras_ssl_lt.optimizers.SGD with
# coupled weight decay and Nesterov momentum instead of Keras' SGD.
CASES = {
    "jax": [
        "SimSiam:plain:bn",
        "Supervised:sam",
        "SimSiam:rwasam:refresh",
        "SimCLR:rwasam",
        "SimCLR:plain:local",
        "MoCoV2:rwasam",
        "BYOL:rwsam",
        "Supervised:rwasam:coupled",
    ],
    "tensorflow": [
        "Supervised:plain",
        "Supervised:rwasam:refresh",
        "MoCoV2:rwasam",
        "SimCLR:rwasam:sync",
        "SimCLR:plain:local:sync",
        "BYOL:rwsam:sync",
        "SimSiam:rwasam:sync",
        "Supervised:sam:coupled",
    ],
}
# Largest weight difference allowed, relative to the largest weight change of the two steps. Measured
# (CPU, float32): 3e-8 .. 5e-7 relative without BatchNorm or with JAX's global BatchNorm; up to 7e-5 with
# TensorFlow's synchronised BatchNorm, whose variance E[x^2] - E[x]^2 rounds differently from the
# single-device two-pass moments. A wrong reduction (per-replica SAM gradient, local negatives, per-replica
# BatchNorm) gives differences of 1e-1 and more.
RTOL = {"sync": 5e-4, "default": 5e-6}


# Checks other than the equality, run in the same subprocess (see distributed_check.py).
EXTRA = {"tensorflow": ["augment"]}


@pytest.fixture(scope="module")
def results():
    if BACKEND not in CASES:
        pytest.skip(f"Keras 3 has no data-parallel fit on the {BACKEND} backend (docs/scaling.md)")
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    proc = subprocess.run(
        [sys.executable, str(CHECK), *CASES[BACKEND], *EXTRA.get(BACKEND, [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            out[result["case"]] = result
            print(line)  # the measured differences, shown with `pytest -s` (docs/scaling.md quotes them)
    if proc.returncode != 0 or len(out) != len(CASES[BACKEND]) + len(EXTRA.get(BACKEND, [])):
        pytest.fail(
            f"distributed_check.py failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return out


@pytest.mark.parametrize("case", CASES.get(BACKEND, ["none"]))
def test_data_parallel_fit_equals_single_device(results, case):
    r = results[case]
    assert r["replicas"] == 2
    assert r["max_weight_change"] > 1e-2, "the two steps must change the weights for the comparison to mean anything"
    rtol = RTOL["sync"] if "sync" in case.split(":") else RTOL["default"]
    assert r["max_weight_diff"] <= rtol * max(r["max_weight_change"], 1.0), r
    np.testing.assert_allclose(r["loss_parallel"], r["loss_single"], rtol=1e-4)
    if "refresh" in case.split(":"):
        assert r["table_refreshed"], "the example weights written by a callback during fit were lost"


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="a tf.distribute check: JAX draws for the global batch at once, torch has no data-parallel fit",
)
def test_replicas_draw_their_own_augmentations(results):
    """Under tf.distribute every replica holds the same seed state: without the per-replica offset they would
    apply identical augmentation parameters to their slices. Identical images on both replicas must get
    different views, and the generator states must be equal (and advanced) afterwards."""
    r = results["augment"]
    assert r["replicas"] == 2
    assert r["views_differ"], "both replicas drew the same augmentations"
    assert r["states_equal"] and r["states_advanced"], r


# ---------------------------------------------------------------- helpers, on every backend (one device)
def _views(b=8, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, d)).astype("float32"), rng.normal(size=(b, d)).astype("float32")


def test_nt_xent_global_negatives_split_equals_whole_batch():
    """Each replica's anchors against the gathered global batch: the parts are the single-device loss."""
    z1, z2 = _views()
    whole = to_numpy(losses.nt_xent(z1, z2, 0.5))
    parts = [
        to_numpy(losses.nt_xent(z1[s : s + 4], z2[s : s + 4], 0.5, global_z1=z1, global_z2=z2, offset=s))
        for s in (0, 4)
    ]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6, atol=1e-6)


def test_nt_xent_groups_equal_per_block_losses():
    """`num_groups` (per-replica negatives inside one global program) equals the loss of each block alone."""
    z1, z2 = _views()
    grouped = to_numpy(losses.nt_xent(z1, z2, 0.5, num_groups=2))
    blocks = [to_numpy(losses.nt_xent(z1[s : s + 4], z2[s : s + 4], 0.5)) for s in (0, 4)]
    np.testing.assert_allclose(grouped, np.concatenate(blocks), rtol=1e-6, atol=1e-6)
    assert not np.allclose(grouped, to_numpy(losses.nt_xent(z1, z2, 0.5)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_groups": 0}, "num_groups"),
        ({"num_groups": True}, "num_groups"),
        ({"global_z1": np.zeros((8, 5), "float32")}, "global_z1"),
        (
            {"global_z1": np.zeros((8, 5), "float32"), "global_z2": np.zeros((8, 5), "float32"), "num_groups": 2},
            "num_groups",
        ),
        ({"global_z1": np.zeros((8, 4), "float32"), "global_z2": np.zeros((8, 4), "float32")}, "global_z1"),
    ],
)
def test_nt_xent_rejects_bad_distributed_arguments(kwargs, match):
    z1, z2 = _views()
    with pytest.raises(ValueError, match=match):
        losses.nt_xent(z1, z2, 0.5, **kwargs)


def _encoder():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.BatchNormalization()(keras.layers.Dense(8)(x))
    return keras.Model(inputs, x)


def test_simclr_global_negatives_argument():
    model = ksl.SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, global_negatives=False)
    assert model.get_config()["global_negatives"] is False
    assert ksl.SimCLR.from_config(model.get_config()).global_negatives is False
    with pytest.raises(ValueError, match="global_negatives"):
        ksl.SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, global_negatives="yes")


def test_one_device_global_and_local_negatives_agree():
    """Without replicas the two SimCLR options are the same loss."""
    x = np.random.default_rng(0).uniform(size=(8, 6, 6, 3)).astype("float32")
    out = []
    for flag in (True, False):
        keras.utils.set_random_seed(3)
        model = ksl.SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, global_negatives=flag)
        out.append(to_numpy(model.compute_loss_terms([x, x[::-1]], None, training=False)["loss"]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_num_replicas_is_one_without_distribution():
    assert distributed.num_replicas() == 1


def test_synchronize_batchnorm_reaches_every_network():
    """Encoder, heads and MoCo's key encoder (a clone): every BatchNorm is found; TF sets `synchronized`."""
    model = ksl.MoCoV2(_encoder(), projection_dim=4, queue_size=16)
    layers = distributed.synchronize_batchnorm(model)
    assert len(layers) == 2  # the encoder's and the key encoder's (MoCo v2's head has no BatchNorm)
    assert all(layer.synchronized is (BACKEND == "tensorflow") for layer in layers)
    distributed.synchronize_batchnorm(model, False)
    assert not any(layer.synchronized for layer in layers)


class _HiddenBatchNorm(keras.layers.Layer):
    """A plain Layer holding a BatchNormalization: not reachable through `keras.Model.layers`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x, training=False):
        return self.bn(x, training=training)


def test_synchronize_batchnorm_refuses_hidden_batchnorm():
    """A BatchNorm it cannot reach must not silently stay per replica."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, _HiddenBatchNorm()(keras.layers.Dense(4)(inputs)))
    with pytest.raises(ValueError, match="BatchNormalization statistics"):
        distributed.synchronize_batchnorm(model)


@pytest.mark.parametrize("kwargs, match", [({"model": "m"}, "model"), ({"synchronized": 1}, "synchronized")])
def test_synchronize_batchnorm_rejects_bad_arguments(kwargs, match):
    kwargs = {"model": _encoder(), **kwargs}
    with pytest.raises(ValueError, match=match):
        distributed.synchronize_batchnorm(**kwargs)


@pytest.mark.skipif(BACKEND != "torch", reason="the statement is about the torch backend")
def test_torch_backend_has_no_keras_distribution():
    """docs/scaling.md says Keras 3 has no data-parallel fit on torch: this fails when Keras adds one."""
    with pytest.raises(AttributeError):
        keras.distribution.list_devices()
