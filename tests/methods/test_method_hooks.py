"""The base's hooks for the long-tail methods: `uses_index` (per-example state) and `fit_callbacks`."""

import keras
import numpy as np
import pytest
from keras import ops


def _encoder():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="zeros")(inputs))


class _IndexMethod:
    """A method whose per-example loss is its example's `index` (plus 0 * the encoder, for a gradient)."""

    num_views = 1
    uses_index = True

    def compute_loss_terms(self, views, labels, training=True, index=None):
        z = self.encoder(views[0], training=training)
        base = ops.sum(z, axis=-1) * 0.0
        value = base if index is None else base + ops.cast(index, "float32")
        return {"loss": value, "embedding": z}


def _index_model(num_examples=8):
    import keras_ssl_lt

    cls = type("IndexMethod", (_IndexMethod, keras_ssl_lt.Pretrainer), {})
    model = cls(_encoder(), num_examples=num_examples)
    model.compile(optimizer="sgd")
    return model


def test_training_steps_pass_index_and_evaluation_passes_none():
    model = _index_model()
    x = np.ones((4, 3), "float32")
    logs = model.train_on_batch({"images": x, "index": np.array([0, 2, 4, 6])}, return_dict=True)
    assert logs["loss"] == pytest.approx(3.0)  # mean of the indices
    assert model.evaluate({"images": x}, verbose=0, return_dict=True)["loss"] == pytest.approx(0.0)


def test_a_batch_without_index_is_refused_by_name():
    model = _index_model()
    with pytest.raises(ValueError, match=r"IndexMethod keeps per-example state.*'index'"):
        model.train_on_batch({"images": np.ones((4, 3), "float32")})


def test_an_index_outside_the_table_is_refused():
    model = _index_model(num_examples=4)
    with pytest.raises(ValueError, match="index"):
        model.train_on_batch({"images": np.ones((4, 3), "float32"), "index": np.array([0, 1, 2, 9])})


class _Counter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs += 1


@pytest.mark.parametrize("positional", [False, True])
def test_fit_adds_the_methods_callbacks_after_the_users(positional):
    import keras_ssl_lt

    own, user = _Counter(), _Counter()

    class Method(keras_ssl_lt.Pretrainer):
        num_views = 1

        def compute_loss_terms(self, views, labels, training=True):
            z = self.encoder(views[0], training=training)
            return {"loss": ops.sum(ops.square(z), axis=-1), "embedding": z}

        def fit_callbacks(self):
            return [own]

    model = Method(_encoder())
    model.compile(optimizer="sgd")
    x = np.ones((8, 3), "float32")
    if positional:
        model.fit(x, None, 4, 2, 0, [user])
    else:
        model.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[user])
    assert (own.epochs, user.epochs) == (2, 2)
