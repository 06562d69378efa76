"""BCL's strength-driven RandAugment: the PIL operations against PIL, the layer's draws replayed, the views."""

import keras
import numpy as np
import pytest
from helpers import dtype_policy, run_serialization_test, to_numpy
from keras import ops

from keras_ssl_lt.augment import ViewAugmenter, pil_ops
from keras_ssl_lt.augment.boosted import BoostedViewAugmenter, bcl_cifar
from keras_ssl_lt.augment.strength import RANDAUGMENT_OPS, StrengthRandAugment

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (8, 9, 3), dtype=np.uint8)  # H=8, W=9: catches swapped axes
X = (IMG.astype("float32") / 255.0)[None]


def _train_call(layer, *args, **kwargs):
    """`layer(*args, training=True, **kwargs)`; on JAX one jitted stateless call (eager JAX compiles op by op)."""
    if keras.backend.backend() != "jax":
        return layer(*args, training=True, **kwargs)
    import jax

    variables = layer.non_trainable_variables
    step = jax.jit(lambda state, *a: layer.stateless_call([], state, *a, training=True, **kwargs))
    out, new_state = step([v.value for v in variables], *args)
    for v, value in zip(variables, new_state, strict=True):
        v.assign(value)
    return out


def _pil_cases():
    """(name, ours(x), PIL result, tolerance in grey levels)."""
    Image, ImageOps, ImageEnhance, ImageDraw = (
        pytest.importorskip(f"PIL.{m}") for m in ("Image", "ImageOps", "ImageEnhance", "ImageDraw")
    )
    pil = Image.fromarray(IMG)
    one = lambda v: np.array([v], "float32")  # noqa: E731
    affine = lambda coeffs: pil.transform(pil.size, Image.AFFINE, coeffs)  # noqa: E731
    cases = [
        ("shear_x", pil_ops.affine_nearest(X, pil_ops.shear_matrix(one(0.3), "x")), affine((1, 0.3, 0, 0, 1, 0)), 0),
        (
            "shear_y",
            pil_ops.affine_nearest(X, pil_ops.shear_matrix(one(-0.17), "y")),
            affine((1, 0, 0, -0.17, 1, 0)),
            0,
        ),
        (
            "translate",
            pil_ops.affine_nearest(X, pil_ops.translate_matrix(one(-2.7), one(1.9))),
            affine((1, 0, -2.7, 0, 1, 1.9)),
            0,
        ),
        ("rotate_30", pil_ops.affine_nearest(X, pil_ops.rotate_matrix(one(30.0), 8, 9)), pil.rotate(30.0), 0),
        ("rotate_-41", pil_ops.affine_nearest(X, pil_ops.rotate_matrix(one(-41.0), 8, 9)), pil.rotate(-41.0), 0),
        ("auto_contrast", pil_ops.auto_contrast(X), ImageOps.autocontrast(pil), 1),
        ("invert", pil_ops.invert(X), ImageOps.invert(pil), 0),
        ("equalize", pil_ops.equalize(X), ImageOps.equalize(pil), 0),
        ("solarize", pil_ops.solarize(X, one(77.0)), ImageOps.solarize(pil, 77), 0),
        ("posterize", pil_ops.posterize(X, one(5)), ImageOps.posterize(pil, 5), 0),
    ]
    for f in (0.3, 1.6):
        for name, fn, enhancer in (
            ("contrast", pil_ops.enhance_contrast, ImageEnhance.Contrast),
            ("color", pil_ops.enhance_color, ImageEnhance.Color),
            ("brightness", pil_ops.enhance_brightness, ImageEnhance.Brightness),
            ("sharpness", pil_ops.enhance_sharpness, ImageEnhance.Sharpness),
        ):
            # PIL rounds its degenerate image to uint8 before blending, and truncates the blend: <= 1.5 levels.
            cases.append((f"{name}_{f}", fn(X, one(f)), enhancer(pil).enhance(f), 1.5))
    drawn = pil.copy()
    side, cx, cy = 3.3, 4.2, 5.7
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    ImageDraw.Draw(drawn).rectangle((x0, y0, min(9, x0 + side), min(8, y0 + side)), pil_ops.CUTOUT_FILL)
    cases.append(("cutout", pil_ops.cutout(X, one(side), np.array([[cx, cy]], "float32")), drawn, 0))
    return cases


def test_operations_match_pil():
    for name, ours, ref, levels in _pil_cases():
        got = to_numpy(ours)[0] * 255.0
        want = np.asarray(ref).astype("float64")
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, atol=levels + 1e-3, err_msg=name)


def test_equalize_of_a_constant_channel_and_a_zero_side_cutout_are_identities():
    flat = np.full((1, 4, 4, 3), 0.5, "float32")
    np.testing.assert_array_equal(to_numpy(pil_ops.equalize(flat)), flat)
    np.testing.assert_array_equal(to_numpy(pil_ops.cutout(X, np.zeros(1), np.array([[3.0, 3.0]]))), X)


def _replay(layer, x, strength):
    """The layer's output rebuilt from the same random stream, one op per example, in numpy + pil_ops."""
    sg = keras.random.SeedGenerator(layer.seed)
    b, n = len(x), len(layer.ops)
    out = x.copy()
    m = layer.min_magnitude + (layer.max_magnitude - layer.min_magnitude) * strength
    for _ in range(layer.num_ops):
        which = np.minimum(np.floor(to_numpy(keras.random.uniform((b,), seed=sg)) * n), n - 1).astype(int)
        apply = to_numpy(keras.random.uniform((b,), seed=sg)) < strength
        sign = np.where(to_numpy(keras.random.uniform((b,), seed=sg)) > 0.5, -1.0, 1.0)
        centre = to_numpy(keras.random.uniform((b, 2), seed=sg)) * np.array([x.shape[2], x.shape[1]])
        nxt = out.copy()
        for i in range(b):
            if not apply[i]:
                continue
            name = layer.ops[which[i]]
            low, high = RANDAUGMENT_OPS[name]
            v = m[i] / 30.0 * (high - low) + low
            xi = out[i : i + 1]
            if name == "rotate":
                y = pil_ops.affine_nearest(xi, pil_ops.rotate_matrix(np.array([v * sign[i]]), x.shape[1], x.shape[2]))
            elif name == "posterize":
                y = pil_ops.posterize(xi, np.array([max(np.floor(v), 1.0)]))
            elif name == "cutout":
                y = pil_ops.cutout(xi, np.array([v * x.shape[2]]), centre[i : i + 1])
            else:
                y = pil_ops.invert(xi)
            nxt[i] = to_numpy(y)[0]
        out = nxt
    return out


@pytest.mark.parametrize("num_ops", [1, 2])
def test_layer_draws_ops_probability_and_magnitude_per_example(num_ops):
    layer = StrengthRandAugment(num_ops=num_ops, ops=("rotate", "invert", "posterize", "cutout"), seed=5)
    x = RNG.random((12, 8, 8, 3)).astype("float32")
    strength = np.linspace(0.0, 1.0, 12).astype("float32")
    got = to_numpy(_train_call(layer, x, strength))
    np.testing.assert_allclose(got, _replay(layer, x, strength), atol=1e-6)
    assert np.array_equal(got[0], x[0])  # strength 0: never applied


def test_strength_zero_is_identity_larger_strength_changes_more_and_seed_repeats():
    x = RNG.random((16, 8, 8, 3)).astype("float32")
    few = ("shear_x", "rotate", "invert", "contrast")  # a few ops keep the eager test quick

    def change(s, seed=1):
        y = to_numpy(_train_call(StrengthRandAugment(num_ops=2, ops=few, seed=seed), x, np.full(16, s, "float32")))
        return y, np.abs(y - x).mean()

    y0, _ = change(0.0)
    np.testing.assert_array_equal(y0, x)
    (_, d_low), (y_high, d_high) = change(0.2), change(1.0)
    assert 0 < d_low < d_high
    np.testing.assert_array_equal(change(1.0)[0], y_high)  # same seed, same views
    assert not np.array_equal(change(1.0, seed=2)[0], y_high)
    inference = StrengthRandAugment(seed=1)(x, np.ones(16, "float32"), training=False)
    np.testing.assert_array_equal(to_numpy(inference), x)


def test_magnitude_rules_of_bcl_i_and_bcl_d():
    s, u = np.array([0.0, 0.25, 1.0], "float32"), np.array([0.5, 0.5, 0.1], "float32")
    np.testing.assert_allclose(to_numpy(StrengthRandAugment().magnitude(s)), 10 + 20 * s, rtol=1e-6)
    d = StrengthRandAugment(num_ops=2, min_magnitude=5, magnitude_jitter=True)
    np.testing.assert_allclose(to_numpy(d.magnitude(s, u)), 5 + 25 * s * u, rtol=1e-6)


def test_boosted_view_augmenter_without_strength_is_the_view_augmenter():
    images = RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    args = {"crop_size": 8, "scale": (0.1, 1.0), "jitter": None, "jitter_p": 0.0, "seed": 3}
    plain = to_numpy(_train_call(ViewAugmenter(**args), images))
    np.testing.assert_array_equal(to_numpy(_train_call(BoostedViewAugmenter(**args), images)), plain)
    zero = _train_call(BoostedViewAugmenter(**args), images, strength=np.zeros(4, "float32"))
    np.testing.assert_allclose(to_numpy(zero), plain, atol=1e-6)
    boosted_aug = BoostedViewAugmenter(num_ops=3, ops=["invert", "rotate"], **args)
    boosted = to_numpy(_train_call(boosted_aug, images, strength=np.ones(4, "float32")))
    assert not np.allclose(boosted, plain)


def test_shapes_dtypes_and_bfloat16():
    images = RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    with dtype_policy("mixed_bfloat16"):
        aug = bcl_cifar("D", crop_size=8, seed=0, jitter=None, ops=["rotate", "equalize"])
        out = _train_call(aug, images, strength=np.ones(2, "float32"))
        layer = StrengthRandAugment(ops=["posterize", "sharpness", "cutout"], seed=0)
        layer_out = _train_call(layer, images, np.ones(2, "float32"))
    for y in (out, layer_out):
        assert tuple(y.shape) == (2, 8, 8, 3) and keras.backend.standardize_dtype(y.dtype) == "bfloat16"
        assert np.all(np.isfinite(to_numpy(ops.cast(y, "float32"))))


def test_serialization(tmp_path):
    x = RNG.random((2, 8, 8, 3)).astype("float32")
    layer = StrengthRandAugment(num_ops=2, min_magnitude=5, magnitude_jitter=True, ops=["rotate", "cutout"], seed=1)
    assert run_serialization_test(layer, x, tmp_path).ops == ("rotate", "cutout")
    loaded = run_serialization_test(bcl_cifar("D", crop_size=8, seed=2), (x * 255).astype("uint8"), tmp_path)
    assert loaded.get_config()["num_ops"] == 2 and loaded.boost_layer.magnitude_jitter


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_ops": 0}, "`num_ops`"),
        ({"min_magnitude": -1}, "`min_magnitude`"),
        ({"max_magnitude": 31}, "`max_magnitude`"),
        ({"min_magnitude": 20, "max_magnitude": 10}, "`max_magnitude` must be >="),
        ({"magnitude_jitter": 1}, "`magnitude_jitter`"),
        ({"ops": "rotate"}, "`ops`"),
        ({"ops": ["rotate", "blur"]}, "`ops`"),
        ({"ops": ["rotate", "rotate"]}, "`ops`"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StrengthRandAugment(**kwargs)


def test_bad_strength_shape_and_variant_are_refused():
    with pytest.raises(ValueError, match="`strength` must have shape"):
        StrengthRandAugment()(X, np.ones(3, "float32"), training=True)
    with pytest.raises(ValueError, match="`variant`"):
        bcl_cifar("X")
