"""`ViewAugmenter`: composition of the stage layers, per-example randomness, inference, jit, dtype, arguments."""

import keras
import numpy as np
import pytest
from augment_helpers import IMGS, per_example_equal, to_np, torch_resize

from keras_ssl_lt import augment
from keras_ssl_lt.augment import RandomColorJitter, RandomCropWithPadding, RandomResizedCrop, ViewAugmenter


def _plain(**kw):
    """A ViewAugmenter with mean 0 / std 1, so outputs are the [0, 1] views."""
    kw.setdefault("mean", (0.0, 0.0, 0.0))
    kw.setdefault("std", (1.0, 1.0, 1.0))
    return ViewAugmenter(**kw)


def _seed_states(layer):
    return [v for v in layer.non_trainable_variables if "seed_generator" in v.path]


# ---------------------------------------------------------------------------- composition
def test_stages_are_the_block_layers_and_keras_flip_and_grayscale():
    aug = augment.moco_v2_imagenet(size=32, seed=0)
    kinds = [type(layer) for layer in aug.stages]
    assert kinds == [
        RandomResizedCrop,
        keras.layers.RandomFlip,
        RandomColorJitter,
        keras.layers.RandomGrayscale,
        augment.RandomGaussianBlur,
    ]
    assert aug.stages[1].mode == "horizontal" and aug.stages[3].factor == 0.2
    assert aug.stages[4].p == 0.5 and aug.stages[4].sigma == (0.1, 2.0)
    sup = augment.supervised_cifar(seed=0)
    assert [type(layer) for layer in sup.stages] == [RandomCropWithPadding, keras.layers.RandomFlip]
    # Every stage has its own tracked seed generator, seeded apart from the others.
    states = _seed_states(aug)
    assert len(states) == 5
    assert len({tuple(to_np(s.value)) for s in states}) == 5


def test_switched_off_stages_are_left_out():
    aug = ViewAugmenter(flip=False, jitter=None, grayscale_p=0.0, blur_p=0.0)
    assert [type(layer) for layer in aug.stages] == [RandomResizedCrop]
    assert len(_seed_states(aug)) == 1
    aug = ViewAugmenter(jitter=(0.0, 0.0, 0.0, 0.0))
    assert RandomColorJitter not in [type(layer) for layer in aug.stages]


def test_an_int_seed_reproduces_the_views_and_another_seed_changes_them():
    a = to_np(augment.simsiam_cifar(seed=3)(IMGS, training=True))
    b = to_np(augment.simsiam_cifar(seed=3)(IMGS, training=True))
    c = to_np(augment.simsiam_cifar(seed=4)(IMGS, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# ---------------------------------------------------------------------------- per-example randomness
def test_identical_inputs_get_different_views_and_stay_in_range():
    x = np.repeat(IMGS[:1], len(IMGS), axis=0)
    aug = _plain(crop_size=32, blur_p=0.5, seed=0)
    v = to_np(aug(x, training=True))
    assert v.shape == (len(IMGS), 32, 32, 3)
    assert v.min() >= -1e-6 and v.max() <= 1 + 1e-6
    assert all(not np.allclose(v[0], v[i]) for i in range(1, len(IMGS)))
    v2 = to_np(aug(x, training=True))  # a second call is a new, independent draw
    assert not np.allclose(v, v2)


def test_two_examples_of_one_batch_get_different_crops():
    x = np.repeat(IMGS[:1], 16, axis=0)
    for crop in ("resized", "pad"):
        aug = _plain(crop=crop, flip=False, jitter=None, grayscale_p=0.0, seed=1)
        v = to_np(aug(x, training=True))
        assert len({np.round(e, 5).tobytes() for e in v}) >= 12, crop


@pytest.mark.parametrize("image_data_format", ["channels_last", "channels_first"])
def test_two_examples_of_one_batch_get_different_flips(image_data_format):
    """Left-right flips per example; images are channels-last whatever Keras' global layout setting."""
    x = np.repeat(IMGS[:1], 64, axis=0)
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(image_data_format)
    try:
        aug = _plain(scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter=None, grayscale_p=0.5, seed=2)
    finally:
        keras.config.set_image_data_format(previous)
    v = to_np(aug(x, training=True))
    ref = x.astype("float64") / 255
    gray = np.repeat(ref @ np.array([0.2989, 0.587, 0.114])[:, None], 3, axis=-1)
    flipped = per_example_equal(v, ref[:, :, ::-1], 1e-5) | per_example_equal(v, gray[:, :, ::-1], 1e-5)
    kept = per_example_equal(v, ref, 1e-5) | per_example_equal(v, gray, 1e-5)
    assert np.all(flipped | kept)
    assert 0.25 < flipped.mean() < 0.75
    grayed = per_example_equal(v, gray, 1e-5) | per_example_equal(v, gray[:, :, ::-1], 1e-5)
    assert 0.25 < grayed.mean() < 0.75


def test_grayscale_stage_is_per_example():
    x = np.repeat(IMGS[:1], 64, axis=0)
    aug = _plain(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, jitter=None, grayscale_p=0.5, seed=3)
    v = to_np(aug(x, training=True))
    gray = np.isclose(v[..., 0], v[..., 1], atol=1e-5).all(axis=(1, 2))
    assert 0.25 < gray.mean() < 0.75


# ---------------------------------------------------------------------------- inference mode
def test_inference_is_deterministic_resize_and_normalise():
    aug = augment.simsiam_cifar(seed=0)
    a, b = to_np(aug(IMGS, training=False)), to_np(aug(IMGS))
    np.testing.assert_array_equal(a, b)
    ref = (IMGS / 255.0 - np.array(augment.CIFAR10_MEAN)) / np.array(augment.CIFAR10_STD)
    np.testing.assert_allclose(a, ref, atol=1e-5)
    small = _plain(crop_size=16)
    ref = np.stack([torch_resize(im / 255.0, 16, antialias=True) for im in IMGS])
    np.testing.assert_allclose(to_np(small(IMGS)), ref, atol=1e-5)
    pad = _plain(crop="pad", crop_size=24)
    np.testing.assert_allclose(to_np(pad(IMGS)), IMGS[:, 4:28, 4:28] / 255.0, atol=1e-6)


def test_moco_inference_centre_crops_then_resizes():
    aug = augment.moco_v2_imagenet(size=28, mean=(0, 0, 0), std=(1, 1, 1))
    # 0.875 * 32 = 28: a pure central 28x28 crop.
    np.testing.assert_allclose(to_np(aug(IMGS)), IMGS[:, 2:30, 2:30] / 255.0, atol=1e-5)


def test_float_inputs_are_on_the_0_255_scale():
    aug = _plain(seed=0)
    np.testing.assert_allclose(to_np(aug(IMGS.astype("float32"))), to_np(aug(IMGS)), atol=1e-6)


# ---------------------------------------------------------------------------- jit / fit / dtype
def test_runs_inside_fit_and_predict_on_every_backend():
    aug = augment.simsiam_cifar(crop_size=16, blur_p=0.5, seed=7)
    model = keras.Sequential(
        [keras.Input((32, 32, 3), dtype="uint8"), aug, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    model.compile(optimizer="sgd", loss="mse")
    states = _seed_states(aug)
    assert len(states) == 5
    before = [to_np(s.value) for s in states]
    hist = model.fit(IMGS, np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    # Every stage's state is a model variable and is threaded through the compiled step.
    model_vars = {id(v) for v in model.non_trainable_variables}
    assert all(id(s) in model_vars for s in states)
    assert all(not np.array_equal(to_np(s.value), b) for s, b in zip(states, before, strict=True))
    p1 = model.predict(IMGS, batch_size=4, verbose=0)
    p2 = model.predict(IMGS, batch_size=4, verbose=0)
    np.testing.assert_array_equal(p1, p2)


def test_stateless_call_threads_every_seed_state():
    """What a JAX train step does: the layer's variables in, the views and the new seed states out."""
    aug = augment.moco_v2_imagenet(size=16, seed=5)
    non_trainable = [v.value for v in aug.non_trainable_variables]

    def step(state, x):
        return aug.stateless_call([], state, x, training=True)

    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(step)
    views, new_state = step(non_trainable, IMGS)
    views_again, _ = step(non_trainable, IMGS)
    np.testing.assert_allclose(to_np(views), to_np(views_again), atol=1e-6)  # same state in, same views out
    views_next, _ = step(new_state, IMGS)
    assert not np.allclose(to_np(views), to_np(views_next))  # the returned state moves on
    assert len(new_state) == 5
    assert all(not np.array_equal(to_np(a), to_np(b)) for a, b in zip(non_trainable, new_state, strict=True))
    # The layer's own variables are untouched by a stateless call.
    np.testing.assert_array_equal(to_np(aug.non_trainable_variables[0].value), to_np(non_trainable[0]))


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop_size": 0}, "`crop_size`"),
        ({"crop": "random"}, "`crop`"),
        ({"scale": (0.5, 0.2)}, "`scale`"),
        ({"scale": (0.2, 1.5)}, "`scale`"),
        ({"ratio": (0, 1)}, "`ratio`"),
        ({"padding": -1}, "`padding`"),
        ({"flip": "yes"}, "`flip`"),
        ({"jitter": (0.4, 0.4, 0.4)}, "`jitter`"),
        ({"jitter": (0.4, -0.4, 0.4, 0.1)}, r"`jitter\[1\] \(contrast\)`"),
        ({"jitter": (0.4, 0.4, 0.4, 0.7)}, r"`jitter\[3\] \(hue\)`"),
        ({"jitter_p": 1.5}, "`jitter_p`"),
        ({"jitter": None, "jitter_p": 2.0}, "`jitter_p`"),
        ({"random_order": 1}, "`random_order`"),
        ({"grayscale_p": -0.2}, "`grayscale_p`"),
        ({"grayscale_p": "0.2"}, "`grayscale_p`"),
        ({"blur_p": 1.2}, "`blur_p`"),
        ({"blur_sigma": (2.0, 1.0)}, "`blur_sigma`"),
        ({"blur_kernel_size": 4}, "`blur_kernel_size`"),
        ({"blur_kernel_size": 71}, "`blur_kernel_size`"),  # radius 35 does not fit a 32 crop
        ({"std": (1, 0, 1)}, "`std`"),
        ({"mean": (0.5, 0.5)}, "`mean`"),
        ({"eval_crop_fraction": 1.5}, "`eval_crop_fraction`"),
        ({"antialias": "no"}, "`antialias`"),
        ({"seed": "x"}, "`seed`"),
    ],
)
def test_bad_arguments_raise_naming_the_view_augmenter_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViewAugmenter(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="RGB"):
        ViewAugmenter()(np.zeros((2, 8, 8, 1), "uint8"))
    with pytest.raises(ValueError, match="batch"):
        ViewAugmenter()(np.zeros((8, 8, 3), "uint8"))
    with pytest.raises(ValueError, match="crop_size"):
        ViewAugmenter(crop="pad", crop_size=40)(np.zeros((1, 32, 32, 3), "uint8"))
