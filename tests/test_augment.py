"""Per-example view augmentation: references, randomness per example, jit/fit, serialisation."""

import colorsys
import math

import numpy as np
import pytest
import keras
from keras import ops

from keras_ssl_lt import augment
from keras_ssl_lt.augment import (
    RandomColorJitter,
    RandomCropWithPadding,
    RandomFlip,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomResizedCrop,
    ViewAugmenter,
    crop_and_resize,
)

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, size=(8, 32, 32, 3)).astype("uint8")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x)).astype("float64")


def _plain(**kw):
    """A ViewAugmenter with mean 0 / std 1 so outputs are the [0, 1] views."""
    kw.setdefault("mean", (0.0, 0.0, 0.0))
    kw.setdefault("std", (1.0, 1.0, 1.0))
    return ViewAugmenter(**kw)


# ---------------------------------------------------------------------------- resampling reference
def _torch_resize(img, size, antialias):
    torch = pytest.importorskip("torch")
    t = torch.tensor(img, dtype=torch.float64).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("size, antialias", [(12, True), (12, False), (40, True)])
def test_crop_and_resize_matches_pytorch_interpolate(size, antialias):
    x = RNG.random((3, 20, 24, 2)).astype("float32")
    boxes = np.array([[0, 0, 20, 24], [3, 5, 9, 17], [10, 2, 10, 7]], "float32")
    got = _np(crop_and_resize(x, boxes, size, antialias=antialias))
    for i, (t, l, h, w) in enumerate(boxes.astype(int)):
        ref = _torch_resize(x[i, t : t + h, l : l + w], size, antialias)
        np.testing.assert_allclose(got[i], ref, atol=1e-5)


def test_identity_crop_with_unit_scale_and_ratio():
    aug = RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=1)
    x = IMGS.astype("float32") / 255
    np.testing.assert_allclose(_np(aug(x, training=True)), x, atol=1e-6)


# ---------------------------------------------------------------------------- crop box sampling
def test_crop_boxes_follow_torchvision_rule_and_differ_per_example():
    layer = RandomResizedCrop(32, scale=(0.2, 1.0), seed=3)
    boxes = _np(layer.sample_boxes(512, 32, 40)).astype(int)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 40).all()
    assert (h >= 1).all() and (w >= 1).all()
    frac = h * w / (32 * 40)
    assert frac.min() > 0.15 and frac.max() <= 1.0  # 0.2 minus rounding of each side
    r = w / h
    assert r.min() >= 0.6 and r.max() <= 1.6  # 3/4..4/3 up to rounding
    assert len({tuple(b) for b in boxes}) > 400  # per-example boxes, not one per batch
    assert abs(np.median(frac) - 0.6) < 0.1  # uniform area fraction on [0.2, 1] has median 0.6
    # Offsets are uniform over the feasible range: top spans it.
    slack = 32 - h
    assert (top[slack > 10] > 0).any() and (top[slack > 10] == 0).any()


def test_crop_box_fallback_is_the_clamped_central_crop():
    # ratio (3, 4) never fits a square image for areas near 1: all 10 tries fail.
    layer = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(3.0, 4.0), seed=0)
    boxes = _np(layer.sample_boxes(4, 30, 30)).astype(int)
    # torchvision: in_ratio 1 < 3 -> w = 30, h = round(30 / 3) = 10, centred.
    np.testing.assert_array_equal(boxes, np.tile([[10, 0, 10, 30]], (4, 1)))


# ---------------------------------------------------------------------------- colour references
def test_colour_ops_match_numpy_and_colorsys():
    x_np = RNG.random((2, 5, 6, 3)).astype("float32")
    x = ops.convert_to_tensor(x_np)
    f_np = np.array([0.7, 1.3], "float32")
    f = ops.convert_to_tensor(f_np)
    gray = x_np @ np.array([0.2989, 0.587, 0.114])
    np.testing.assert_allclose(_np(augment._adjust_brightness(x, f)), np.clip(x_np * f_np[:, None, None, None], 0, 1), atol=1e-6)
    m = gray.mean(axis=(1, 2))[:, None, None, None]
    fb = f_np[:, None, None, None]
    ref = np.clip(fb * x_np + (1 - fb) * m, 0, 1)
    np.testing.assert_allclose(_np(augment._adjust_contrast(x, f)), ref, atol=1e-6)
    ref = np.clip(fb * x_np + (1 - fb) * gray[..., None], 0, 1)
    np.testing.assert_allclose(_np(augment._adjust_saturation(x, f)), ref, atol=1e-6)
    shift = np.array([0.08, -0.1], "float32")
    ref = np.zeros_like(x_np, dtype="float64")
    for b in range(2):
        for i in range(5):
            for j in range(6):
                hh, ss, vv = colorsys.rgb_to_hsv(*x_np[b, i, j])
                ref[b, i, j] = colorsys.hsv_to_rgb((hh + shift[b]) % 1.0, ss, vv)
    np.testing.assert_allclose(_np(augment._adjust_hue(x, ops.convert_to_tensor(shift))), ref, atol=1e-5)


def test_gaussian_blur_matches_numpy_reference():
    x = RNG.random((2, 9, 11, 3)).astype("float32")
    sigma = np.array([0.5, 1.7], "float32")
    got = _np(augment._gaussian_blur(ops.convert_to_tensor(x), ops.convert_to_tensor(sigma), 5))
    for b in range(2):
        k = np.exp(-0.5 * (np.arange(-2, 3) / sigma[b]) ** 2)
        k /= k.sum()
        p = np.pad(x[b].astype("float64"), ((2, 2), (2, 2), (0, 0)), mode="reflect")
        v = sum(k[d] * p[d : d + 9] for d in range(5))
        ref = sum(k[d] * v[:, d : d + 11] for d in range(5))
        np.testing.assert_allclose(got[b], ref, atol=1e-5)


# ---------------------------------------------------------------------------- per-example randomness
def test_identical_inputs_get_different_views_and_stay_in_range():
    x = np.repeat(IMGS[:1], 6, axis=0)
    aug = _plain(crop_size=32, blur_p=0.5, seed=0)
    v = _np(aug(x, training=True))
    assert v.shape == (6, 32, 32, 3)
    assert v.min() >= -1e-6 and v.max() <= 1 + 1e-6
    assert all(not np.allclose(v[0], v[i]) for i in range(1, 6))
    v2 = _np(aug(x, training=True))  # a second call is a new, independent draw
    assert not np.allclose(v, v2)


def test_flip_grayscale_jitter_probabilities_are_per_example():
    n = 400
    x = RNG.random((n, 4, 4, 3)).astype("float32")
    flipped = _np(RandomFlip(p=0.5, seed=1)(x, training=True))
    is_flip = np.all(np.isclose(flipped, x[:, :, ::-1]), axis=(1, 2, 3))
    assert np.all(is_flip | np.all(np.isclose(flipped, x), axis=(1, 2, 3)))
    assert 0.4 < is_flip.mean() < 0.6
    g = _np(RandomGrayscale(p=0.2, seed=2)(x, training=True))
    is_gray = np.all(np.isclose(g[..., 0], g[..., 1]) & np.isclose(g[..., 1], g[..., 2]), axis=(1, 2))
    assert 0.13 < is_gray.mean() < 0.27
    np.testing.assert_allclose(g[~is_gray], x[~is_gray], atol=1e-6)
    j = _np(RandomColorJitter(p=0.8, seed=3)(x, training=True))
    changed = ~np.all(np.isclose(j, x, atol=1e-6), axis=(1, 2, 3))
    assert 0.72 < changed.mean() < 0.88
    assert j.min() >= 0 and j.max() <= 1 + 1e-6


def test_random_order_permutes_per_example():
    # Brightness then contrast differs from contrast then brightness once clipping bites; with a
    # fixed order all examples with the same factors agree, with random order they do not.
    x = np.tile(RNG.random((1, 6, 6, 3)).astype("float32"), (64, 1, 1, 1))
    fixed = _np(RandomColorJitter(0.4, 0.4, 0, 0, p=1.0, random_order=False, seed=5)(x, training=True))
    rand = _np(RandomColorJitter(0.4, 0.4, 0, 0, p=1.0, random_order=True, seed=5)(x, training=True))
    # Same seed, same factors: the two differ only where the order was swapped (about half).
    differs = ~np.all(np.isclose(fixed, rand, atol=1e-6), axis=(1, 2, 3))
    assert 0.25 < differs.mean() < 0.75


def test_pad_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = RNG.random((16, 8, 8, 3)).astype("float32") + 0.1
    out = _np(RandomCropWithPadding(8, padding=2, seed=4)(x, training=True))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = []
    for b in range(16):
        match = [(i, j) for i in range(5) for j in range(5) if np.allclose(out[b], padded[b, i : i + 8, j : j + 8])]
        assert len(match) == 1
        offsets.append(match[0])
    assert len(set(offsets)) > 5


# ---------------------------------------------------------------------------- inference mode
def test_inference_is_deterministic_resize_and_normalise():
    aug = augment.simsiam_cifar(seed=0)
    a, b = _np(aug(IMGS, training=False)), _np(aug(IMGS))
    np.testing.assert_array_equal(a, b)
    ref = (IMGS / 255.0 - np.array(augment.CIFAR10_MEAN)) / np.array(augment.CIFAR10_STD)
    np.testing.assert_allclose(a, ref, atol=1e-5)
    small = _plain(crop_size=16)
    ref = np.stack([_torch_resize(im / 255.0, 16, antialias=True) for im in IMGS])
    np.testing.assert_allclose(_np(small(IMGS)), ref, atol=1e-5)


def test_moco_inference_centre_crops_then_resizes():
    aug = augment.moco_v2_imagenet(size=28, mean=(0, 0, 0), std=(1, 1, 1))
    # 0.875 * 32 = 28: a pure central 28x28 crop.
    np.testing.assert_allclose(_np(aug(IMGS)), IMGS[:, 2:30, 2:30] / 255.0, atol=1e-5)


# ---------------------------------------------------------------------------- jit / fit / dtype / saving
def test_runs_inside_fit_and_predict_on_every_backend():
    aug = augment.simsiam_cifar(crop_size=16, blur_p=0.5, seed=7)
    model = keras.Sequential(
        [keras.Input((32, 32, 3), dtype="uint8"), aug, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    model.compile(optimizer="sgd", loss="mse")
    state_before = _np(aug.seed_generator.state)
    hist = model.fit(IMGS, np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert not np.array_equal(_np(aug.seed_generator.state), state_before)  # state threaded through jit
    assert any(v is aug.seed_generator.state for v in model.non_trainable_variables)
    p1 = model.predict(IMGS, batch_size=4, verbose=0)
    p2 = model.predict(IMGS, batch_size=4, verbose=0)
    np.testing.assert_array_equal(p1, p2)


def test_mixed_precision_output_dtype():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        aug = augment.simsiam_cifar(seed=0)
        for training in (True, False):
            assert keras.backend.standardize_dtype(aug(IMGS, training=training).dtype) == "bfloat16"
    finally:
        keras.config.set_dtype_policy(policy)


def test_config_round_trip_and_keras_file(tmp_path):
    for aug in (
        augment.simsiam_cifar(seed=1),
        augment.simclr_cifar(seed=1),
        augment.moco_v2_imagenet(size=24, seed=1),
        augment.supervised_cifar(seed=1),
    ):
        clone = ViewAugmenter.from_config(aug.get_config())
        assert clone.get_config() == aug.get_config()
    for layer in (
        RandomResizedCrop(16, seed=1),
        RandomCropWithPadding(16, padding=2, seed=1),
        RandomFlip(0.3, seed=1),
        RandomColorJitter(0.1, 0.2, 0.3, 0.05, p=0.5, seed=1),
        RandomGrayscale(0.3, seed=1),
        RandomGaussianBlur(0.5, kernel_size=5, seed=1),
    ):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((32, 32, 3)), augment.simsiam_cifar(crop_size=16, seed=2)])
    path = tmp_path / "aug.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = IMGS.astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert isinstance(loaded.layers[0], ViewAugmenter)


def test_presets_have_the_documented_settings():
    s = augment.simsiam_cifar().get_config()
    assert s["scale"] == (0.2, 1.0) and s["jitter"] == (0.4, 0.4, 0.4, 0.1) and s["jitter_p"] == 0.8
    assert s["grayscale_p"] == 0.2 and s["blur_p"] == 0.0 and s["mean"] == augment.CIFAR10_MEAN
    m = augment.moco_v2_imagenet().get_config()
    assert m["crop_size"] == 224 and m["blur_p"] == 0.5 and m["std"] == augment.IMAGENET_STD
    assert augment._default_blur_kernel(224) == 23
    sup = augment.supervised_cifar().get_config()
    assert sup["crop"] == "pad" and sup["padding"] == 4 and sup["jitter"] is None and sup["flip"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ViewAugmenter(crop_size=0), "crop_size"),
        (lambda: ViewAugmenter(crop="random"), "crop"),
        (lambda: ViewAugmenter(scale=(0.5, 0.2)), "scale"),
        (lambda: ViewAugmenter(scale=(0.2, 1.5)), "scale"),
        (lambda: ViewAugmenter(jitter=(0.4, 0.4, 0.4)), "jitter"),
        (lambda: ViewAugmenter(jitter_p=1.5), "jitter_p"),
        (lambda: ViewAugmenter(blur_kernel_size=4), "blur_kernel_size"),
        (lambda: ViewAugmenter(std=(1, 0, 1)), "std"),
        (lambda: ViewAugmenter(seed="x"), "seed"),
        (lambda: RandomColorJitter(hue=0.7), "hue"),
        (lambda: RandomResizedCrop(8, ratio=(0, 1)), "ratio"),
        (lambda: ViewAugmenter()(np.zeros((2, 8, 8, 1), "uint8")), "RGB"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_uses_log_uniform_aspect_ratio():
    layer = RandomResizedCrop(8, scale=(0.05, 0.05), ratio=(0.25, 4.0), seed=9)
    boxes = _np(layer.sample_boxes(2000, 200, 200))
    log_r = np.log(boxes[:, 3] / boxes[:, 2])
    # log-uniform on [log 1/4, log 4]: symmetric around 0, about a quarter beyond +-log 2 each side.
    assert abs(np.mean(log_r)) < 0.05
    assert 0.2 < np.mean(log_r > math.log(2)) < 0.3


def test_random_order_jitter_equals_the_ops_applied_in_each_examples_order():
    """Rebuild each example's order from the same random draws and apply the ops one by one."""
    x = ops.convert_to_tensor(RNG.random((16, 4, 4, 3)).astype("float32"))
    seed = keras.random.SeedGenerator(11)
    got = _np(augment._color_jitter(x, seed, (0.4, 0.4, 0.4, 0.1), 1.0, True))
    replay = keras.random.SeedGenerator(11)
    ranges = ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    factors = [_np(keras.random.uniform((16,), lo, hi, seed=replay)) for lo, hi in ranges]
    keras.random.uniform((16,), seed=replay)  # the apply draw
    order = np.argsort(_np(keras.random.uniform((16, 4), seed=replay)), axis=1)
    fns = (augment._adjust_brightness, augment._adjust_contrast, augment._adjust_saturation, augment._adjust_hue)
    xs = _np(x).astype("float32")
    assert len({tuple(o) for o in order}) > 6
    for e in range(16):
        y = ops.convert_to_tensor(xs[e : e + 1])
        for op in order[e]:
            y = fns[op](y, ops.convert_to_tensor(factors[op][e : e + 1].astype("float32")))
        np.testing.assert_allclose(got[e], _np(y)[0], atol=1e-5)
