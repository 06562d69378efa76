"""Shared test checks for the package's models and layers (in the spirit of keras-hub's `TestCase`).

- `run_serialization_test(obj, inputs, tmp_path)`: the `get_config` / `from_config` round trip, then a
  `.keras` save and load whose outputs equal the original's exactly (inference mode);
- `run_precision_test(build, inputs)`: builds the object under `mixed_bfloat16`, checks that its variables
  stay float32, that it computes in bfloat16 and that its outputs are finite.

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
