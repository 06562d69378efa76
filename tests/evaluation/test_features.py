"""Feature extraction: inference mode, no side effects, and a feature model that follows replaced parts."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.evaluation import extract_features, feature_model


def _encoder(seed, dim=3):
    return keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(dim, kernel_initializer=keras.initializers.RandomNormal(seed=seed)),
        ],
        name=f"encoder_{seed}",
    )


def _pretrainer(encoder, augmenter):
    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(encoder(augmenter(inp))))
    model.encoder = encoder
    model.augmenter = augmenter
    return model


def _reference(encoder, augmenter, x):
    h = x if augmenter is None else augmenter(x, training=False)
    return keras.ops.convert_to_numpy(encoder(h, training=False))


def test_features_follow_a_replaced_encoder_or_augmenter():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3)).astype("uint8")
    enc_a, enc_b = _encoder(1), _encoder(2)
    aug_a = keras.Sequential([keras.layers.Rescaling(1 / 255.0)])
    aug_b = keras.Sequential([keras.layers.Rescaling(-2 / 255.0, offset=1.0)])
    model = _pretrainer(enc_a, aug_a)

    first = extract_features(model, x)
    np.testing.assert_allclose(first, _reference(enc_a, aug_a, x), rtol=1e-5, atol=1e-6)
    assert feature_model(model) is feature_model(model)  # reused while nothing changes

    model.encoder = enc_b
    np.testing.assert_allclose(extract_features(model, x), _reference(enc_b, aug_a, x), rtol=1e-5, atol=1e-6)
    model.augmenter = aug_b
    np.testing.assert_allclose(extract_features(model, x), _reference(enc_b, aug_b, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(extract_features(model, x), first)
    model.augmenter = None  # a pre-trainer without preprocessing: the encoder alone
    assert feature_model(model) is enc_b


def test_features_follow_weight_changes_of_the_same_encoder():
    x = np.random.default_rng(1).normal(size=(4, 4, 4, 3)).astype("float32")
    enc = _encoder(3)
    before = extract_features(enc, x)
    enc.set_weights([w * 2.0 for w in enc.get_weights()])
    np.testing.assert_allclose(extract_features(enc, x), 2.0 * before, rtol=1e-5, atol=1e-6)


def test_extraction_is_inference_mode_and_changes_nothing():
    x = np.random.default_rng(2).normal(size=(8, 4, 4, 3)).astype("float32")
    enc = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    weights = [np.array(w) for w in enc.get_weights()]
    a = extract_features(enc, x, batch_size=3)
    np.testing.assert_allclose(a, extract_features(enc, x), rtol=1e-6)  # no dropout, no batch statistics
    np.testing.assert_allclose(a, x.mean(axis=(1, 2)) / np.sqrt(1 + 1e-3), rtol=1e-4, atol=1e-6)  # fresh BN
    for w0, w1 in zip(weights, enc.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)


def test_bad_input():
    enc = _encoder(4)
    with pytest.raises(ValueError, match="N, H, W, C"):
        extract_features(enc, np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="empty"):
        extract_features(enc, np.zeros((0, 4, 4, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(enc, np.zeros((1, 4, 4, 3)), batch_size=0)
    with pytest.raises(ValueError, match="flat features"):
        extract_features(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3)]), np.zeros((1, 4, 4, 3)))
