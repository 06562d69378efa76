"""Few-shot probes and fine-tuning: cloning, the backbone learning-rate multiplier, input rules (every backend)."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.evaluation import GradientScale, few_shot_features, fine_tune


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 4).astype("int32")
    x = rng.integers(0, 256, (n, 8, 8, 3)).astype("uint8")
    x[..., 0] = np.clip(x[..., 0].astype(int) // 2 + 40 * y[:, None, None], 0, 255)
    return x, y


GROUPS = {"many": [0, 1], "medium": [2], "few": [3]}


def _pretrainer_like():
    augmenter = keras.Sequential([keras.layers.Rescaling(1 / 255.0)], name="augmenter")
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(6, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="encoder",
    )
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(4)(encoder(augmenter(inp))))
    model.encoder = encoder
    model.augmenter = augmenter
    return model


def test_fine_tune_clones_and_scales_backbone_lr():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4, 4, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")
    enc = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(5, activation="tanh")])
    original = [np.array(w) for w in enc.get_weights()]
    deltas = {}
    for m in (1.0, 0.1):
        r = fine_tune(
            enc,
            (x, y),
            (x, y),
            num_classes=3,
            epochs=1,
            head_lr=0.5,
            backbone_lr_multiplier=m,
            momentum=0.0,
            batch_size=32,
            schedule="constant",
        )
        backbone = next(l for l in r["model"].layers if isinstance(l, keras.Sequential))
        deltas[m] = [np.array(a) - b for a, b in zip(backbone.get_weights(), original, strict=True)]
        assert 0.0 <= r["acc"] <= 1.0 and "loss" in r["history"]
    # the original encoder is untouched
    for a, b in zip(enc.get_weights(), original, strict=True):
        np.testing.assert_array_equal(a, b)
    # one plain SGD step from identical weights: backbone update scales with the multiplier
    assert np.abs(deltas[1.0][0]).max() > 1e-4
    for d1, d01 in zip(deltas[1.0], deltas[0.1], strict=True):
        np.testing.assert_allclose(d01, 0.1 * d1, rtol=1e-3, atol=1e-7)


def test_fine_tune_uses_augmenter_and_validates():
    x, y = _data(32)
    model = _pretrainer_like()
    enc_w = [np.array(w) for w in model.encoder.get_weights()]
    r = fine_tune(model, (x, y), (x, y), num_classes=4, epochs=1, head_lr=0.05, batch_size=16, class_groups=GROUPS)
    assert {"acc", "top5", "acc_many", "acc_medium", "acc_few"} <= set(r)
    for a, b in zip(model.encoder.get_weights(), enc_w, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="num_classes"):
        fine_tune(model, (x, y), (x, y), num_classes=3, epochs=1, head_lr=0.1)


def test_fine_tune_input_rules():
    x, y = _data(16)
    enc = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    xf = x.astype("float32") / 255.0
    # whole-valued float labels are class ids, as in every other evaluation
    r = fine_tune(enc, (xf, y.astype("float32")), (xf, y.astype("float64")), num_classes=4, epochs=1, head_lr=0.01)
    assert 0.0 <= r["acc"] <= 1.0
    with pytest.raises(ValueError, match="integer class ids"):
        fine_tune(enc, (xf, y + 0.7), (xf, y), num_classes=4, epochs=1, head_lr=0.01)
    bad = xf.copy()
    bad[2, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"`train_data` images contain NaN or infinite values \(image 2\)"):
        fine_tune(enc, (bad, y), (xf, y), num_classes=4, epochs=1, head_lr=0.01)
    with pytest.raises(ValueError, match="`test_data` images"):
        fine_tune(enc, (xf, y), (bad, y), num_classes=4, epochs=1, head_lr=0.01)
    with pytest.raises(ValueError, match="single class"):
        fine_tune(enc, (xf, np.zeros(16, int)), (xf, y), num_classes=4, epochs=1, head_lr=0.01)
    with pytest.raises(ValueError, match="num_classes"):
        fine_tune(enc, (xf, y), (xf, y), num_classes=None, epochs=1, head_lr=0.01)


def test_fine_tune_divergence_raises():
    x, y = _data(16)
    enc = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(FloatingPointError, match="diverged"):
        fine_tune(
            enc,
            (x.astype("float32") * 1e18, y),
            (x, y),
            num_classes=4,
            epochs=1,
            head_lr=1e3,
            batch_size=4,
            schedule="constant",
        )


def test_gradient_scale_round_trip_and_validation():
    layer = GradientScale(0.25, name="gs")
    clone = GradientScale.from_config(layer.get_config())
    assert clone.multiplier == 0.25 and clone.name == "gs"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, GradientScale) and restored.multiplier == 0.25
    with pytest.raises(ValueError, match="multiplier"):
        GradientScale(-1.0)


def test_few_shot_draws_exactly_shots_per_class_and_follows_the_rules():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [10, 6, 4])
    x = (rng.normal(size=(20, 3)) + 3 * np.eye(3)[y]).astype("float32")
    r = few_shot_features(x, y, x, y, shots=4, num_draws=3, seed=1)
    assert len(r["accs"]) == 3 and r["acc"] == pytest.approx(np.mean(r["accs"]))
    assert r == few_shot_features(x, y.astype("float32"), x, y, shots=4, num_draws=3, seed=1)  # seeded, float labels
    with pytest.raises(ValueError, match="exceeds the 4 training examples of class 2"):
        few_shot_features(x, y, x, y, shots=5)
    with pytest.raises(ValueError, match="single class"):
        few_shot_features(x[y == 0], y[y == 0], x, y, shots=2, num_classes=3)
    with pytest.raises(ValueError, match="never occur"):
        few_shot_features(x[y < 2], y[y < 2], x, y, shots=2)
    with pytest.raises(ValueError, match="protocol"):
        few_shot_features(x, y, x, y, shots=2, protocol="lbfgs")
