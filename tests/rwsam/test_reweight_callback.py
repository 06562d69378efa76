"""KDEReweighting inside a real `fit`, with a small stand-in for the package's pre-trainers."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssl_lt.evaluation.features import extract_features
from keras_ssl_lt.rwsam import KDEReweighting
from keras_ssl_lt.rwsam.weights import kde_weights

NUM_SOURCE = 48
IMG = (4, 4, 3)
INITIAL = 3.0  # initial table value: its square (9) is what the metric shows before any refresh


class StandIn(keras.Model):
    """The pre-trainer contract the callback relies on: encoder, augmenter, example-weight table.

    `call` returns `[w[index], features]` so that a plain `compile`/`fit` (no custom train step)
    looks the weights up inside every backend's train step; the metric `w_sq` is the mean of the
    squared looked-up weights over the epoch.
    """

    def __init__(self, num_examples):
        super().__init__()
        self.encoder = keras.Sequential(
            [
                keras.layers.Input(IMG),
                keras.layers.Rescaling(1.0 / 255),
                keras.layers.Flatten(),
                keras.layers.Dense(6),
            ]
        )
        self.augmenter = None
        self.example_weights = self.add_weight(
            shape=(num_examples,),
            initializer=keras.initializers.Constant(INITIAL),
            trainable=False,
            name="example_weights",
        )

    def set_example_weights(self, weights, indices=None):
        weights = np.asarray(weights, np.float32)
        table = np.array(ops.convert_to_numpy(self.example_weights))
        if indices is None:
            table[:] = weights
        else:
            table[np.asarray(indices)] = weights
        self.example_weights.assign(table)

    def call(self, inputs):
        feats = self.encoder(inputs["image"])
        w = ops.take(self.example_weights, inputs["index"], axis=0)
        return ops.concatenate([w[:, None], feats], axis=1)


def _weighted_loss(y_true, y_pred):
    return y_pred[:, 0] * ops.mean(ops.square(y_pred[:, 1:]), axis=1)


def w_sq(y_true, y_pred):
    return ops.square(y_pred[:, 0])


class TableRecorder(keras.callbacks.Callback):
    """Snapshots the table at every epoch end and the expected KDE weights at that moment."""

    def __init__(self, images, **kde_kwargs):
        super().__init__()
        self.images, self.kde_kwargs = images, kde_kwargs
        self.tables, self.expected = [], []

    def _snapshot(self):
        self.tables.append(np.array(ops.convert_to_numpy(self.model.example_weights)))
        feats = extract_features(self.model, self.images, batch_size=64)
        self.expected.append(kde_weights(feats, **self.kde_kwargs))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        self._snapshot()


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, size=(NUM_SOURCE,) + IMG, dtype=np.uint8)
    indices = np.sort(rng.choice(NUM_SOURCE, 32, replace=False))
    return source, indices


def _fit(model, source, indices, callbacks, epochs):
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=_weighted_loss, metrics=[w_sq])
    x = {"image": source[indices], "index": indices.astype("int32")}
    y = np.zeros((len(indices), 1), np.float32)
    return model.fit(x, y, batch_size=8, epochs=epochs, shuffle=True, callbacks=callbacks, verbose=0)


KDE = {"bandwidth": "median", "power": 1.0, "clip": (0.2, 5.0)}


def test_refresh_every_two_epochs_without_start(data):
    source, indices = data
    model = StandIn(NUM_SOURCE)
    cb = KDEReweighting(source[indices], indices, every_n_epochs=2, at_start=False, batch_size=64, **KDE)
    rec = TableRecorder(source[indices], **KDE)
    hist = _fit(model, source, indices, [cb, rec], epochs=4)

    assert cb.refreshes == [(1, "end"), (3, "end")]
    outside = np.setdiff1d(np.arange(NUM_SOURCE), indices)
    # rec.tables[0] is before epoch 0, rec.tables[e + 1] after epoch e
    np.testing.assert_array_equal(rec.tables[1], np.full(NUM_SOURCE, INITIAL, np.float32))
    for e in (1, 3):
        t = rec.tables[e + 1]
        np.testing.assert_array_equal(t[outside], INITIAL)
        np.testing.assert_allclose(t[indices], rec.expected[e + 1], rtol=1e-5, atol=1e-6)
        assert np.mean(t[indices], dtype=np.float64) == pytest.approx(1.0, abs=1e-5)
        assert t[indices].min() >= 0.2 and t[indices].max() <= 5.0
        assert t[indices].max() > 1.01  # non-trivial weights
    # after epoch 2 (no refresh) the table is that of epoch 1
    np.testing.assert_array_equal(rec.tables[3], rec.tables[2])
    # what the train steps looked up: 9 before the first refresh; in epoch 2 (and 3) the
    # weights set at the end of epoch 1 (this checks that JAX's train state picks them up)
    m = hist.history["w_sq"]
    assert m[0] == pytest.approx(INITIAL**2, rel=1e-5)
    assert m[1] == pytest.approx(INITIAL**2, rel=1e-5)
    expected_2 = float(np.mean(rec.tables[2][indices].astype(np.float64) ** 2))
    assert expected_2 > 1.0 + 1e-3
    assert m[2] == pytest.approx(expected_2, rel=1e-4)
    assert m[3] == pytest.approx(expected_2, rel=1e-4)
    # logs
    np.testing.assert_allclose(hist.history["kde_weight_max"][0], INITIAL)
    np.testing.assert_allclose(hist.history["kde_weight_max"][1], rec.tables[2][indices].max())
    np.testing.assert_allclose(hist.history["kde_weight_min"][3], rec.tables[4][indices].min())
    assert np.isnan(hist.history["kde_bandwidth"][0])
    assert hist.history["kde_bandwidth"][3] == pytest.approx(cb.last_bandwidth)
    assert cb.last_bandwidth > 0


def test_refresh_at_start(data):
    source, indices = data
    model = StandIn(NUM_SOURCE)
    cb = KDEReweighting(source[indices], indices, every_n_epochs=3, at_start=True, batch_size=64, **KDE)
    rec = TableRecorder(source[indices], **KDE)
    hist = _fit(model, source, indices, [cb, rec], epochs=2)
    assert cb.refreshes == [(0, "begin")]
    # weights computed from the initial model, in use from the first train step on
    t0 = rec.tables[0]
    np.testing.assert_allclose(t0[indices], rec.expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rec.tables[2], t0)
    expected = float(np.mean(t0[indices].astype(np.float64) ** 2))
    assert hist.history["w_sq"][0] == pytest.approx(expected, rel=1e-4)
    assert hist.history["w_sq"][1] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"bandwidth": "auto"}, "bandwidth"),
        ({"power": -1.0}, "power"),
        ({"clip": (2.0, 3.0)}, "clip"),
        ({"batch_size": 0}, "batch_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"indices": np.arange(5)}, "indices"),
        ({"indices": np.zeros(8, int)}, "indices"),
        ({"images": np.zeros((8, 4, 3), np.uint8)}, "images"),
    ],
)
def test_validation(kwargs, match):
    args = {"images": np.zeros((8,) + IMG, np.uint8), "indices": np.arange(8)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        KDEReweighting(**args)


def test_model_contract_checked(data):
    source, indices = data
    small = StandIn(10)  # table smaller than the largest index
    cb = KDEReweighting(source[indices], indices, bandwidth=0.5)
    with pytest.raises(ValueError, match="indices"):
        _fit(small, source[:10], np.arange(10), [cb], epochs=1)
    plain = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    cb = KDEReweighting(source[indices], indices, bandwidth=0.5)
    with pytest.raises(ValueError, match="example_weights"):
        plain.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, callbacks=[cb], verbose=0)
