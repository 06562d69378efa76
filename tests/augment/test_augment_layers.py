"""The package's own random layers: torchvision's rules, per-example draws, replays of the random stream."""

import math

import keras
import numpy as np
import pytest
from augment_helpers import IMGS, RNG, per_example_equal, to_np
from keras import ops

from keras_ssl_lt.augment import RandomColorJitter, RandomCropWithPadding, RandomGaussianBlur, RandomResizedCrop
from keras_ssl_lt.augment import ops as aug_ops

# The jitter tests share one input shape (JAX compiles each op once per shape).
JITTER_X = RNG.random((128, 4, 4, 3)).astype("float32")


# ---------------------------------------------------------------------------- crops
def test_identity_crop_with_unit_scale_and_ratio():
    layer = RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=1)
    x = IMGS.astype("float32") / 255
    np.testing.assert_allclose(to_np(layer(x, training=True)), x, atol=1e-6)
    np.testing.assert_allclose(to_np(layer(IMGS, training=True)), x, atol=1e-6)  # uint8 in: divided by 255


def test_crop_boxes_follow_torchvision_rule_and_differ_per_example():
    layer = RandomResizedCrop(32, scale=(0.2, 1.0), seed=3)
    boxes = to_np(layer.sample_boxes(512, 32, 40)).astype(int)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 40).all()
    assert (h >= 1).all() and (w >= 1).all()
    frac = h * w / (32 * 40)
    assert frac.min() > 0.15 and frac.max() <= 1.0  # 0.2 minus rounding of each side
    r = w / h
    assert r.min() >= 0.6 and r.max() <= 1.6  # 3/4..4/3 up to rounding
    assert len({tuple(b) for b in boxes}) > 400  # per-example boxes, not one per batch
    assert abs(np.median(frac) - 0.6) < 0.1  # uniform area fraction on [0.2, 1] has median 0.6
    slack = 32 - h  # offsets are uniform over the feasible range: top spans it
    assert (top[slack > 10] > 0).any() and (top[slack > 10] == 0).any()


def test_crop_box_fallback_is_the_clamped_central_crop():
    # ratio (3, 4) never fits a square image for areas near 1: all 10 tries fail.
    layer = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(3.0, 4.0), seed=0)
    boxes = to_np(layer.sample_boxes(4, 30, 30)).astype(int)
    # torchvision: in_ratio 1 < 3 -> w = 30, h = round(30 / 3) = 10, centred.
    np.testing.assert_array_equal(boxes, np.tile([[10, 0, 10, 30]], (4, 1)))


def test_uses_log_uniform_aspect_ratio():
    layer = RandomResizedCrop(8, scale=(0.05, 0.05), ratio=(0.25, 4.0), seed=9)
    boxes = to_np(layer.sample_boxes(2000, 200, 200))
    log_r = np.log(boxes[:, 3] / boxes[:, 2])
    # log-uniform on [log 1/4, log 4]: symmetric around 0, about a quarter beyond +-log 2 each side.
    assert abs(np.mean(log_r)) < 0.05
    assert 0.2 < np.mean(log_r > math.log(2)) < 0.3


def test_resized_crop_inference_is_the_central_crop():
    layer = RandomResizedCrop(28, center_crop_fraction=0.875, seed=0)
    x = IMGS.astype("float32") / 255
    np.testing.assert_allclose(to_np(layer(x)), x[:, 2:30, 2:30], atol=1e-5)


def test_pad_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = RNG.random((16, 8, 8, 3)).astype("float32") + 0.1
    out = to_np(RandomCropWithPadding(8, padding=2, seed=4)(x, training=True))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = []
    for b in range(16):
        match = [(i, j) for i in range(5) for j in range(5) if np.allclose(out[b], padded[b, i : i + 8, j : j + 8])]
        assert len(match) == 1
        offsets.append(match[0])
    assert len(set(offsets)) > 5
    central = to_np(RandomCropWithPadding(6, padding=2)(x))
    np.testing.assert_allclose(central, x[:, 1:7, 1:7], atol=1e-7)


# ---------------------------------------------------------------------------- colour jitter
def test_jitter_probability_is_per_example_and_stays_in_range():
    x = JITTER_X
    j = to_np(RandomColorJitter(p=0.8, seed=3)(x, training=True))
    changed = ~per_example_equal(j, x)
    assert 0.68 < changed.mean() < 0.92
    assert j.min() >= 0 and j.max() <= 1 + 1e-6
    np.testing.assert_array_equal(to_np(RandomColorJitter(p=0.8, seed=3)(x)), x)  # inference: identity


def test_random_order_permutes_per_example():
    # Brightness then contrast differs from contrast then brightness once clipping bites; same seed,
    # same factors: the fixed- and random-order outputs differ only where the order was swapped.
    x = np.tile(JITTER_X[:1], (len(JITTER_X), 1, 1, 1))
    fixed = to_np(RandomColorJitter(0.4, 0.4, 0, 0, p=1.0, random_order=False, seed=5)(x, training=True))
    rand = to_np(RandomColorJitter(0.4, 0.4, 0, 0, p=1.0, random_order=True, seed=5)(x, training=True))
    differs = ~per_example_equal(fixed, rand)
    assert 0.25 < differs.mean() < 0.75


@pytest.mark.parametrize("random_order", [True, False])
def test_jitter_equals_the_ops_applied_in_each_examples_order(random_order):
    """Replay the layer's random stream and apply torchvision's ops one by one, per example."""
    x, n, checked = JITTER_X, len(JITTER_X), 24
    got = to_np(RandomColorJitter(0.4, 0.4, 0.4, 0.1, p=0.7, random_order=random_order, seed=11)(x, training=True))
    replay = keras.random.SeedGenerator(11)
    ranges = ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    factors = [to_np(keras.random.uniform((n,), lo, hi, seed=replay)) for lo, hi in ranges]
    apply = to_np(keras.random.uniform((n,), seed=replay)) < 0.7
    keys = to_np(keras.random.uniform((n, 4), seed=replay))
    order = np.argsort(keys, axis=1) if random_order else np.tile(np.arange(4), (n, 1))
    fns = (aug_ops.adjust_brightness, aug_ops.adjust_contrast, aug_ops.adjust_saturation, aug_ops.adjust_hue)
    assert 0 < apply[:checked].sum() < checked
    if random_order:
        assert len({tuple(o) for o in order[:checked]}) > 6
    for e in range(checked):
        y = ops.convert_to_tensor(x[e : e + 1])
        if apply[e]:
            for op in order[e]:
                y = fns[op](y, ops.convert_to_tensor(factors[op][e : e + 1].astype("float32")))
        np.testing.assert_allclose(got[e], to_np(y)[0], atol=1e-5)


# ---------------------------------------------------------------------------- blur
def test_blur_draws_sigma_and_coin_per_example():
    x = np.tile(RNG.random((1, 16, 16, 3)).astype("float32"), (64, 1, 1, 1))
    always = to_np(RandomGaussianBlur(p=1.0, sigma=(0.5, 2.0), kernel_size=5, seed=2)(x, training=True))
    # One input, 64 sigmas: all outputs differ (Keras' RandomGaussianBlur uses one sigma per batch).
    assert len({np.round(a, 5).tobytes() for a in always}) == 64
    half = to_np(RandomGaussianBlur(p=0.5, kernel_size=5, seed=2)(x, training=True))
    unchanged = per_example_equal(half, x)
    assert 0.3 < unchanged.mean() < 0.7
    # Replay: sigma then the coin, from the layer's seed.
    replay = keras.random.SeedGenerator(2)
    sigma = keras.random.uniform((64,), 0.5, 2.0, seed=replay)
    np.testing.assert_allclose(always, to_np(aug_ops.gaussian_blur(ops.convert_to_tensor(x), sigma, 5)), atol=1e-6)


def test_blur_default_kernel_follows_the_image_size():
    assert RandomGaussianBlur().kernel_for(224) == 23
    assert RandomGaussianBlur().kernel_for(32) == 3
    with pytest.raises(ValueError, match="kernel_size"):
        RandomGaussianBlur(kernel_size=9).kernel_for(4)
    with pytest.raises(ValueError, match="kernel_size"):
        RandomGaussianBlur(p=1.0, kernel_size=9)(np.zeros((1, 4, 4, 3), "float32"), training=True)


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: RandomResizedCrop(0), "`size`"),
        (lambda: RandomResizedCrop(8, scale=(0.5, 0.2)), "`scale`"),
        (lambda: RandomResizedCrop(8, scale=(0.2, 1.5)), "`scale`"),
        (lambda: RandomResizedCrop(8, ratio=(0, 1)), "`ratio`"),
        (lambda: RandomResizedCrop(8, antialias=1), "`antialias`"),
        (lambda: RandomResizedCrop(8, center_crop_fraction=0), "`center_crop_fraction`"),
        (lambda: RandomResizedCrop(8, seed="x"), "`seed`"),
        (lambda: RandomCropWithPadding(8, padding=-1), "`padding`"),
        (lambda: RandomCropWithPadding(8, padding=1.5), "`padding`"),
        (lambda: RandomCropWithPadding(40, padding=2)(np.zeros((1, 32, 32, 3)), training=True), "padded image"),
        (lambda: RandomColorJitter(hue=0.7), "`hue`"),
        (lambda: RandomColorJitter(brightness=-0.1), "`brightness`"),
        (lambda: RandomColorJitter(contrast=float("nan")), "`contrast`"),
        (lambda: RandomColorJitter(p=1.5), "`p`"),
        (lambda: RandomColorJitter(random_order="yes"), "`random_order`"),
        (lambda: RandomColorJitter()(np.zeros((1, 4, 4, 1))), "RGB"),
        (lambda: RandomGaussianBlur(p=-0.1), "`p`"),
        (lambda: RandomGaussianBlur(sigma=(0.0, 1.0)), "`sigma`"),
        (lambda: RandomGaussianBlur(kernel_size=4), "`kernel_size`"),
        (lambda: RandomGaussianBlur(kernel_size=True), "`kernel_size`"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
