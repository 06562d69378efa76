"""The Keras behaviour the pre-trainers rely on, checked directly so that a Keras release that changes it
fails here, loudly, rather than as a subtly wrong training step.

- `keras.StatelessScope`: a variable read inside a scope asks the scope's public `get_current_value`, and
  `Variable.assign` inside a scope records the new value there and leaves the variable alone (the JAX
  step chains scopes through this; keras_ssl_lt/training/jax.py);
- `keras.Model.layers` lists the sub-layers of subclassed and functional models (the BatchNorm walk);
- Keras builds its train function through the public `make_train_function`, which the pre-trainer wraps
  with its host-side batch check;
- no module of the package imports `keras.src`.
"""

import pathlib
import re

import keras
import numpy as np
from keras import ops

import keras_ssl_lt
from keras_ssl_lt.rwsam import RWSAM


class _Redirect(keras.StatelessScope):
    def __init__(self, target, value):
        super().__init__()
        self.target, self.value = target, value

    def get_current_value(self, variable):
        if variable is self.target:
            return self.value
        return super().get_current_value(variable)


def test_stateless_scope_reads_through_get_current_value_and_records_assign():
    v = keras.Variable(np.zeros(3, "float32"))
    replacement = ops.convert_to_tensor(np.full(3, 5.0, "float32"))
    with _Redirect(v, replacement):
        np.testing.assert_array_equal(ops.convert_to_numpy(v.value), [5.0, 5.0, 5.0])
        np.testing.assert_array_equal(ops.convert_to_numpy(v + 1.0), [6.0, 6.0, 6.0])
    with keras.StatelessScope(state_mapping=[(v, np.ones(3, "float32"))]) as scope:
        v.assign(v.value * 3.0)
        np.testing.assert_array_equal(ops.convert_to_numpy(v.value), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(ops.convert_to_numpy(scope.get_current_value(v)), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(ops.convert_to_numpy(v.value), [0.0, 0.0, 0.0])


def test_model_layers_lists_sub_layers():
    inputs = keras.Input((4,))
    inner = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(3)(inputs)))

    class Outer(keras.Model):
        def __init__(self):
            super().__init__()
            self.body = inner
            self.head = keras.layers.Dense(2)

        def call(self, x):
            return self.head(self.body(x))

    outer = Outer()
    assert [layer for layer in outer.layers] == [inner, outer.head]
    assert any(layer.name == "bn" for layer in inner.layers)


def test_train_function_is_built_through_make_train_function():
    inputs = keras.Input((3,))
    encoder = keras.Model(inputs, keras.layers.Dense(2)(inputs))

    class Method(keras_ssl_lt.Pretrainer):
        num_views = 1

        def compute_loss_terms(self, views, labels, training=True):
            z = self.encoder(views[0], training=training)
            return {"loss": ops.sum(ops.square(z), axis=-1), "embedding": z}

    model = Method(encoder, num_examples=4)
    model.compile(optimizer="sgd", sharpness=RWSAM(rho=0.1), run_eagerly=True)
    model.train_on_batch({"images": np.ones((4, 3), "float32"), "index": np.arange(4)})
    assert getattr(model.train_function, "_ksl_guarded", False)


def test_package_never_imports_keras_src():
    root = pathlib.Path(keras_ssl_lt.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+keras\.src\b", re.MULTILINE)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
