"""RankMe in every pre-trainer's logs: the epoch's value equals RankMe of the stacked embeddings (numpy)."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.methods.simclr import SimCLR


def _numpy_rankme(z, eps=1e-7):
    s = np.linalg.svd(np.asarray(z, "float64"), compute_uv=False)
    p = s / s.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def _model():
    x = keras.Input((8, 8, 3))
    encoder = keras.Model(x, keras.layers.Dense(6)(keras.layers.Flatten()(x)))
    return SimCLR(encoder, projection_dim=5, projection_hidden_dim=8)


def test_evaluate_logs_rankme_of_all_the_embeddings():
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.random.default_rng(0).uniform(0, 1, (12, 8, 8, 3)).astype("float32")
    logs = model.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "rankme", "z_std"]
    z = keras.ops.convert_to_numpy(model.projector(model.encoder(x, training=False), training=False))
    assert logs["rankme"] == pytest.approx(_numpy_rankme(z), rel=1e-4)


def test_fit_logs_rankme_per_epoch_and_zero_per_batch():
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    batches = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(float(np.asarray(logs["rankme"])))

    x = np.random.default_rng(1).uniform(0, 1, (8, 8, 8, 3)).astype("float32")
    history = model.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[Record()])
    values = history.history["rankme"]
    assert len(values) == 2 and all(1.0 <= v <= 5.0 for v in values)
    assert batches == [0.0] * 4  # not computed in the step (a computed RankMe is >= 1)


def test_rankme_can_be_turned_off_and_the_switch_is_saved():
    import keras_ssl_lt as ksl

    inputs = keras.Input((3,))
    encoder = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    model = ksl.SimCLR(encoder, projection_dim=2, projection_hidden_dim=4, rankme=False)
    model.compile(optimizer="sgd")
    history = model.fit(np.random.default_rng(0).normal(size=(8, 3)).astype("float32"), batch_size=4, verbose=0)
    assert "rankme" not in history.history and "z_std" in history.history
    assert model.get_config()["rankme"] is False
    assert type(model).from_config(model.get_config()).rankme is False
    with pytest.raises(ValueError, match="rankme"):
        ksl.SimCLR(encoder, rankme="yes")


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="shapes only: once, on the fastest backend here")
def test_every_registered_method_declares_its_embedding_dim():
    from keras_ssl_lt.experiments.build import build_pretrainer
    from keras_ssl_lt.experiments.grids import longtail_config
    from keras_ssl_lt.methods import registry

    cfg = longtail_config("smoke")
    for name in registry.method_names():
        model = build_pretrainer(name, cfg, num_classes=10, num_examples=8)
        assert model.embedding_dim is not None, name
        declared = model.embedding_dim
        views = [keras.ops.zeros((2, 8, 8, 3)) for _ in range(model.num_views)]
        terms = model._loss_terms(views, keras.ops.zeros((2,), "int32"), False)
        assert terms["embedding"].shape[-1] == declared, name
