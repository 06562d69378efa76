"""Shared test checks for the package's models and layers (in the spirit of keras-hub's `TestCase`).

- `run_serialization_test(obj, inputs, tmp_path)`: the `get_config` / `from_config` round trip, then a
  `.keras` save and load whose outputs equal the original's exactly (inference mode);
- `run_precision_test(build, inputs)`: builds the object under `mixed_bfloat16`, checks that its variables
  stay float32, that it computes in bfloat16 and that its outputs are finite;
- BCL / BCL-D references: `LastStepRecorder` (a mixin keeping a step's per-example losses and indices),
  `np_boost_strength` and `replay_momentum` (numpy's momentum losses and strengths from recorded steps);
- `sdclr_tiny_params(model)`: the float64 parameters of the tiny SDCLR-family model the hand derivations use.

Import with `from helpers import ...` (tests/ is on `sys.path` through tests/conftest.py).
"""

import contextlib
import copy

import keras
import numpy as np
from keras import ops


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


@contextlib.contextmanager
def dtype_policy(name):
    """Sets the global dtype policy for the block and restores the previous one afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _outputs(obj, inputs):
    if isinstance(obj, keras.Model):
        return obj.predict(inputs, verbose=0)
    return obj(inputs, training=False)


def run_serialization_test(obj, inputs, tmp_path, compare_config=True):
    """Config round trip and `.keras` save/load of a model or layer; returns the reloaded object.

    A layer is saved inside a one-layer functional model (the `.keras` format stores models). Outputs of
    the reloaded object on `inputs` (inference mode; a model through `predict`) must equal the original's
    bit for bit, and so must every weight.
    """
    config = obj.get_config()
    if compare_config:
        clone = type(obj).from_config(copy.deepcopy(config))  # Keras' Functional.from_config consumes its input
        assert clone.get_config() == config, "from_config(get_config()) must give the same config"
    serialized = keras.saving.serialize_keras_object(obj)
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(obj)

    model = obj
    if not isinstance(obj, keras.Model):
        x = keras.Input(tuple(np.shape(inputs))[1:], dtype=str(getattr(inputs, "dtype", "float32")))
        model = keras.Model(x, obj(x, training=False))
    path = tmp_path / f"{type(obj).__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    want = to_numpy(_outputs(model, inputs))
    got = to_numpy(_outputs(loaded, inputs))
    np.testing.assert_array_equal(got, want)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    return loaded if isinstance(obj, keras.Model) else loaded.layers[-1]


def run_precision_test(build, inputs, policy="mixed_bfloat16", train=None):
    """Builds an object with `build()` under `policy` and checks its variables, compute dtype and outputs.

    Variables must stay float32 (the mixed policies keep master weights in float32), the object must
    compute in the policy's compute dtype, and the inference outputs on `inputs` must be finite. `train`,
    if given, is called as `train(obj)` under the policy (e.g. one `train_on_batch`) and must return a
    dict of finite numbers. Returns the object.
    """
    with dtype_policy(policy):
        obj = build()
        compute = keras.config.dtype_policy().compute_dtype
        assert obj.compute_dtype == compute, (obj.compute_dtype, compute)
        for v in obj.trainable_variables:
            assert v.dtype == "float32", (v.path, v.dtype)
        out = to_numpy(ops.cast(obj(inputs, training=False), "float32"))
        assert np.all(np.isfinite(out))
        if train is not None:
            logs = train(obj)
            assert logs and all(np.isfinite(float(v)) for v in logs.values()), logs
    return obj


# ------------------------------------------------------------------------------ BCL / BCL-D references
class LastStepRecorder:
    """Mixin for a BCL-family model: keeps the last step's per-example losses and indices (batch of 4) in
    variables, read between steps also when the step is compiled. Use as `class _Recording(LastStepRecorder, BCL)`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        table = {"shape": (4,), "initializer": "zeros", "trainable": False}
        self.last_loss = self.add_weight(name="last_loss", dtype="float32", **table)
        self.last_index = self.add_weight(name="last_index", dtype="int32", **table)

    def after_optimizer_step(self, terms):
        self.last_loss.assign(ops.cast(terms["loss"], "float32"))
        self.last_index.assign(ops.cast(terms["index"], "int32"))
        super().after_optimizer_step(terms)


def np_boost_strength(m, seen):
    """BCL's strengths from the momentum losses `m` of the `seen` examples, in numpy (0 for the unseen)."""
    out = np.zeros_like(m)
    v = m[seen]
    z = (v - v.mean()) / v.std(ddof=1)
    out[seen] = z / np.abs(z).max() / 2 + 0.5
    return out


def replay_momentum(steps, index, beta, m, seen, strength):
    """Replays recorded `(losses, indices)` steps of epochs of two batches of 4 over `index` in numpy: checks each
    step's indices, updates the momentum losses `m` (in place, with `seen`) and the strengths at each epoch's end.
    Returns `(strength, logged)`: the final strengths and each epoch's mean looked-up strength (its log)."""
    logged = []
    for step, (loss, idx) in enumerate(steps):
        np.testing.assert_array_equal(idx, index[4 * (step % 2) : 4 * (step % 2) + 4])
        if step % 2 == 0:
            logged.append(strength[index].mean())
        m[idx] = np.where(seen[idx], beta * m[idx] + (1 - beta) * loss, loss)
        seen[idx] = True
        if step % 2 == 1:
            strength = np_boost_strength(m, seen)
    return strength, logged


def sdclr_tiny_params(model):
    """The float64 parameters of the tiny SDCLR-family model of the hand derivations (an encoder with layers "fc"
    and "bn", a projector "dense_0", "bn_0", "dense_out"): dense and pruned-twin BatchNorm parameters, the mask."""
    enc, proj = model.encoder, model.projector
    tw, tp = model.pruned_encoder.bn_variables, model.pruned_projector.bn_variables
    p = {
        "fc": enc.get_layer("fc").kernel,
        "mask": model.pruned_encoder.masks[0],
        "dense_g": enc.get_layer("bn").gamma,
        "dense_b": enc.get_layer("bn").beta,
        "pruned_g": tw[0],
        "pruned_b": tw[1],
        "p0": proj.get_layer("dense_0").kernel,
        "dense_pg": proj.get_layer("bn_0").gamma,
        "dense_pb": proj.get_layer("bn_0").beta,
        "pruned_pg": tp[0],
        "pruned_pb": tp[1],
        "p1": proj.get_layer("dense_out").kernel,
        "p1_bias": proj.get_layer("dense_out").bias,
    }
    return {k: to_numpy(v).astype("float64") for k, v in p.items()}
