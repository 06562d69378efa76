"""BCL's strength-driven RandAugment: the PIL operations against PIL, the layer's draws replayed, the views."""

import json

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


def _state(layer):
    """The layer's random-generator state (its non-trainable variables) as numpy."""
    return [np.array(to_numpy(v.value)) for v in layer.non_trainable_variables]


def _runner(layer, as_numpy=True):
    """`run(*args, state=None, **kwargs)`: `layer(*args, training=True, **kwargs)` (as numpy by default), from the generator
    `state` (`_state` of a layer of the same structure; the layer's own when None), which the run then advances.

    On JAX every run is one jitted stateless call, compiled once for all runs of the same argument structure
    (eager JAX compiles op by op, which dominates these tiny tests).
    """
    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(lambda state, args, kwargs: layer.stateless_call([], state, *args, training=True, **kwargs))

    def run(*args, state=None, **kwargs):
        variables = layer.non_trainable_variables
        if state is not None:
            for v, value in zip(variables, state, strict=True):
                v.assign(value)
        if keras.backend.backend() != "jax":
            out = layer(*args, training=True, **kwargs)
        else:
            out, new_state = step([v.value for v in variables], args, kwargs)
            for v, value in zip(variables, new_state, strict=True):
                v.assign(value)
        return to_numpy(out) if as_numpy else out

    return run


def _compiled(fn):
    """`fn` jitted on JAX (one compiled call instead of op-by-op eager compiles), as it is elsewhere."""
    if keras.backend.backend() != "jax":
        return fn
    import jax

    return jax.jit(fn)


SIDE, CENTRE = 3.3, (4.2, 5.7)  # the cutout of the PIL comparison
FACTORS = (0.3, 1.6)  # the enhancers' factors


def _ours(x, flat):
    """Every operation of the PIL comparison on `x` (1, H, W, 3), batched per operation, plus the degenerate
    cases on `flat` (a constant image): one function, so one compiled call on JAX."""
    one = lambda v: np.array([v], "float32")  # noqa: E731
    matrices = ops.concatenate(
        [
            pil_ops.shear_matrix(one(0.3), "x"),
            pil_ops.shear_matrix(one(-0.17), "y"),
            pil_ops.translate_matrix(one(-2.7), one(1.9)),
            pil_ops.rotate_matrix(np.array([30.0, -41.0], "float32"), 8, 9),
        ],
        axis=0,
    )
    pair, factors = ops.concatenate([x, x], axis=0), np.array(FACTORS, "float32")
    return {
        "geometry": pil_ops.affine_nearest(ops.tile(x, (5, 1, 1, 1)), matrices),
        "auto_contrast": pil_ops.auto_contrast(x),
        "invert": pil_ops.invert(x),
        "equalize": pil_ops.equalize(x),
        "solarize": pil_ops.solarize(x, one(77.0)),
        "posterize": pil_ops.posterize(x, one(5)),
        "contrast": pil_ops.enhance_contrast(pair, factors),
        "color": pil_ops.enhance_color(pair, factors),
        "brightness": pil_ops.enhance_brightness(pair, factors),
        "sharpness": pil_ops.enhance_sharpness(pair, factors),
        "cutout": pil_ops.cutout(x, one(SIDE), np.array([CENTRE], "float32")),
        "equalize_flat": pil_ops.equalize(flat),
        "cutout_zero_side": pil_ops.cutout(x, np.zeros(1, "float32"), np.array([[3.0, 3.0]], "float32")),
    }


def _pil_references():
    """name -> (PIL's results, one per example of `_ours`'s output, tolerance in grey levels)."""
    Image, ImageOps, ImageEnhance, ImageDraw = (
        pytest.importorskip(f"PIL.{m}") for m in ("Image", "ImageOps", "ImageEnhance", "ImageDraw")
    )
    pil = Image.fromarray(IMG)
    affine = lambda coeffs: pil.transform(pil.size, Image.AFFINE, coeffs)  # noqa: E731
    refs = {
        "geometry": (
            [
                affine((1, 0.3, 0, 0, 1, 0)),
                affine((1, 0, 0, -0.17, 1, 0)),
                affine((1, 0, -2.7, 0, 1, 1.9)),
                pil.rotate(30.0),
                pil.rotate(-41.0),
            ],
            0,
        ),
        "auto_contrast": ([ImageOps.autocontrast(pil)], 1),
        "invert": ([ImageOps.invert(pil)], 0),
        "equalize": ([ImageOps.equalize(pil)], 0),
        "solarize": ([ImageOps.solarize(pil, 77)], 0),
        "posterize": ([ImageOps.posterize(pil, 5)], 0),
    }
    for name, enhancer in (
        ("contrast", ImageEnhance.Contrast),
        ("color", ImageEnhance.Color),
        ("brightness", ImageEnhance.Brightness),
        ("sharpness", ImageEnhance.Sharpness),
    ):
        # PIL rounds its degenerate image to uint8 before blending, and truncates the blend: <= 1.5 levels.
        refs[name] = ([enhancer(pil).enhance(f) for f in FACTORS], 1.5)
    drawn = pil.copy()
    (cx, cy), side = CENTRE, SIDE
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    ImageDraw.Draw(drawn).rectangle((x0, y0, min(9, x0 + side), min(8, y0 + side)), pil_ops.CUTOUT_FILL)
    refs["cutout"] = ([drawn], 0)
    return refs


def test_operations_match_pil_and_keep_degenerate_inputs():
    flat = np.full((1, 4, 4, 3), 0.5, "float32")
    ours = {name: to_numpy(y) for name, y in _compiled(_ours)(X, flat).items()}
    for name, (refs, levels) in _pil_references().items():
        got = ours[name] * 255.0
        want = np.stack([np.asarray(r) for r in refs]).astype("float64")
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, atol=levels + 1e-3, err_msg=name)
    # A constant channel is left alone by equalize, and a cutout of side 0 draws nothing.
    np.testing.assert_array_equal(ours["equalize_flat"], flat)
    np.testing.assert_array_equal(ours["cutout_zero_side"], X)


# The replay's operations on one example (1, H, W, 3), compiled once each on JAX.
_ROTATE = _compiled(
    lambda x, degrees: pil_ops.affine_nearest(x, pil_ops.rotate_matrix(degrees, x.shape[1], x.shape[2]))
)
_POSTERIZE = _compiled(pil_ops.posterize)
_CUTOUT = _compiled(pil_ops.cutout)
_INVERT = _compiled(pil_ops.invert)


def _replay(layer, x, strength):
    """The layer's output rebuilt from the same random stream, one op per example, in numpy + pil_ops."""
    sg = keras.random.SeedGenerator(layer.seed)
    b, n = len(x), len(layer.ops)
    out = x.copy()
    s = strength * to_numpy(keras.random.uniform((b,), seed=sg)) if layer.magnitude_jitter else strength
    m = layer.min_magnitude + (layer.max_magnitude - layer.min_magnitude) * s
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
                y = _ROTATE(xi, np.array([v * sign[i]], "float32"))
            elif name == "posterize":
                y = _POSTERIZE(xi, np.array([max(np.floor(v), 1.0)], "float32"))
            elif name == "cutout":
                y = _CUTOUT(xi, np.array([v * x.shape[2]], "float32"), centre[i : i + 1].astype("float32"))
            else:
                y = _INVERT(xi)
            nxt[i] = to_numpy(y)[0]
        out = nxt
    return out


# BCL-I's rule (one op, magnitude 10 + 20 s) and BCL-D's (two ops, magnitude 5 + 25 s u).
@pytest.mark.parametrize(("num_ops", "min_magnitude", "jitter"), [(1, 10.0, False), (2, 5.0, True)])
def test_layer_draws_ops_probability_and_magnitude_per_example(num_ops, min_magnitude, jitter):
    layer = StrengthRandAugment(
        num_ops=num_ops,
        min_magnitude=min_magnitude,
        magnitude_jitter=jitter,
        ops=("rotate", "invert", "posterize", "cutout"),
        seed=5,
    )
    x = RNG.random((12, 8, 8, 3)).astype("float32")
    strength = np.linspace(0.0, 1.0, 12).astype("float32")
    got = _runner(layer)(x, strength)
    np.testing.assert_allclose(got, _replay(layer, x, strength), atol=1e-6)
    assert np.array_equal(got[0], x[0])  # strength 0: never applied


def test_strength_zero_is_identity_larger_strength_changes_more_and_seed_repeats():
    x = RNG.random((16, 8, 8, 3)).astype("float32")
    few = ("shear_x", "rotate", "invert", "contrast")  # a few ops keep the test quick
    layer = StrengthRandAugment(num_ops=2, ops=few, seed=1)
    run, start = _runner(layer), _state(layer)

    def change(s, state=start):  # every run starts from the same draws: only the strength differs
        y = run(x, np.full(16, s, "float32"), state=state)
        return y, np.abs(y - x).mean()

    y0, _ = change(0.0)
    np.testing.assert_array_equal(y0, x)
    (_, d_low), (y_high, d_high) = change(0.2), change(1.0)
    assert 0 < d_low < d_high
    same, other = (_state(StrengthRandAugment(num_ops=2, ops=few, seed=seed)) for seed in (1, 2))
    np.testing.assert_array_equal(change(1.0, same)[0], y_high)  # same seed, same views
    assert not np.array_equal(change(1.0, other)[0], y_high)
    inference = StrengthRandAugment(seed=1)(x, np.ones(16, "float32"), training=False)
    np.testing.assert_array_equal(to_numpy(inference), x)


def test_magnitude_rules_of_bcl_i_and_bcl_d():
    s, u = np.array([0.0, 0.25, 1.0], "float32"), np.array([0.5, 0.5, 0.1], "float32")
    np.testing.assert_allclose(to_numpy(StrengthRandAugment().magnitude(s)), 10 + 20 * s, rtol=1e-6)
    d = StrengthRandAugment(num_ops=2, min_magnitude=5, magnitude_jitter=True)
    np.testing.assert_allclose(to_numpy(d.magnitude(s, u)), 5 + 25 * s * u, rtol=1e-6)


def test_boosted_view_augmenter_without_strength_is_the_view_augmenter():
    images = RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    args = {"crop_size": 8, "crop": "pad", "jitter": None, "jitter_p": 0.0, "seed": 3}  # cheap stages
    plain = _runner(ViewAugmenter(**args))(images)
    np.testing.assert_array_equal(_runner(BoostedViewAugmenter(**args))(images), plain)
    boosted_aug = BoostedViewAugmenter(ops=["invert", "rotate"], **args)
    run, start = _runner(boosted_aug), _state(boosted_aug)
    zero = run(images, strength=np.zeros(4, "float32"), state=start)
    np.testing.assert_allclose(zero, plain, atol=1e-6)
    boosted = run(images, strength=np.ones(4, "float32"), state=start)
    assert not np.allclose(boosted, plain)


def test_shapes_dtypes_and_bfloat16():
    images = RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    with dtype_policy("mixed_bfloat16"):
        aug = bcl_cifar("D", crop_size=8, seed=0, crop="pad", jitter=None, ops=["rotate", "equalize"])
        layer = StrengthRandAugment(ops=["posterize", "sharpness", "cutout"], seed=0)
        outputs = (
            _runner(aug, as_numpy=False)(images, strength=np.ones(2, "float32")),
            _runner(layer, as_numpy=False)(images, np.ones(2, "float32")),
        )
    for y in outputs:
        assert tuple(y.shape) == (2, 8, 8, 3) and keras.backend.standardize_dtype(y.dtype) == "bfloat16"
        assert np.all(np.isfinite(to_numpy(ops.cast(y, "float32"))))


def test_serialization(tmp_path):
    x = RNG.random((2, 8, 8, 3)).astype("float32")
    layer = StrengthRandAugment(num_ops=2, min_magnitude=5, magnitude_jitter=True, ops=["rotate", "cutout"], seed=1)
    assert run_serialization_test(layer, x, tmp_path).ops == ("rotate", "cutout")
    loaded = run_serialization_test(bcl_cifar("D", crop_size=8, seed=2), (x * 255).astype("uint8"), tmp_path)
    assert loaded.get_config()["num_ops"] == 2 and loaded.boost_layer.magnitude_jitter


def test_boosted_config_holds_the_boost_options_and_a_saved_one_loads():
    # The boost stage's arguments are saved as flat keys beside the view ones (the format of saved models):
    # `BoostedViewAugmenter.get_config` takes them from `StrengthRandAugment.options`, so the two cannot drift.
    boost = dict(num_ops=3, min_magnitude=2.0, max_magnitude=25.0, magnitude_jitter=True, ops=["cutout", "rotate"])
    aug = BoostedViewAugmenter(crop_size=8, seed=4, name="boosted", **boost)
    config = aug.get_config()
    assert {k: config[k] for k in boost} == boost == aug.boost_layer.options()
    saved = json.loads(json.dumps(config))  # as a .keras file stores it (tuples become lists)
    loaded = BoostedViewAugmenter.from_config(saved)
    assert loaded.boost_layer.options() == boost and loaded.get_config() == config
    assert loaded.boost_layer.seed == aug.boost_layer.seed


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
