"""`ViewAugmenter`: the composed view augmentation, uint8 images in, normalised random views out."""

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_bool, check_choice, check_probability, check_seed, check_triple
from keras_ssl_lt.augment.blur import RandomGaussianBlur
from keras_ssl_lt.augment.color import RandomColorJitter
from keras_ssl_lt.augment.crop import RandomCropWithPadding, RandomResizedCrop
from keras_ssl_lt.augment.ops import CIFAR10_MEAN, CIFAR10_STD, normalize, require_rgb, to_float01

__all__ = ["ViewAugmenter"]

# Argument names of the crop layers -> the `ViewAugmenter` arguments they come from.
_CROP_NAMES = {"size": "crop_size", "center_crop_fraction": "eval_crop_fraction"}


def _stage_seeds(seed, n):
    """Independent seeds for the `n` stages: None stays None; an int is spread by numpy's SeedSequence.

    Far-apart seeds matter on PyTorch, where Keras seeds a draw with `seed + counter`: the stages'
    streams must not run into each other as their counters advance.
    """
    if seed is None:
        return [None] * n
    return [int(s) % (2**31 - 1) for s in np.random.SeedSequence(seed % 2**32).generate_state(n)]


def _renamed(renames, fn, *args, **kwargs):
    """Call `fn` (a stage's constructor or call), reporting a bad argument under its `ViewAugmenter` name."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        message = str(e)
        for inner, outer in renames.items():
            message = message.replace(f"`{inner}`", f"`{outer}`")
        raise ValueError(f"ViewAugmenter: {message}") from None


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class ViewAugmenter(keras.layers.Layer):
    """The composed view augmentation: 0..255 images in, normalised float views out.

    Training (`training=True`), per example and in this order:

    1. crop: `crop="resized"` is `RandomResizedCrop(crop_size, scale, ratio, antialias)`;
       `crop="pad"` is `RandomCropWithPadding(crop_size, padding)`;
    2. `keras.layers.RandomFlip("horizontal")` when `flip` (each example flipped with probability 1/2);
    3. `RandomColorJitter(*jitter, p=jitter_p, random_order=random_order)`, skipped when `jitter` is None;
    4. `keras.layers.RandomGrayscale(factor=grayscale_p)` when `grayscale_p > 0`;
    5. `RandomGaussianBlur(blur_p, blur_sigma, blur_kernel_size)` when `blur_p > 0` (kernel None: about 10%
       of `crop_size`);

    then `(x / 255 - mean) / std`. The stages are sub-layers built here, each with its own seed generator
    (their states are non-trainable variables of the model, so a compiled JAX step threads them); an int
    `seed` gives each stage a distinct seed derived from it. The flip commutes with the colour stages.

    Inference (`training=False`, the default and what `predict` uses) is deterministic: the central square
    crop with side `eval_crop_fraction` times the shorter side resized to `crop_size` (`crop="resized"`) or
    the central `crop_size` crop (`crop="pad"`), then the normalisation. So
    `keras.Sequential([augmenter, encoder]).predict(uint8_images)` gives features.

    Every argument is validated (also those of stages that are switched off); an error names the argument
    as given here.

    Example:

    >>> import numpy as np
    >>> aug = ViewAugmenter(crop_size=32, seed=0)
    >>> views = aug(np.zeros((2, 32, 32, 3), "uint8"), training=True)
    >>> tuple(views.shape)
    (2, 32, 32, 3)
    >>> [type(layer).__name__ for layer in aug.stages]
    ['RandomResizedCrop', 'RandomFlip', 'RandomColorJitter', 'RandomGrayscale']
    """

    def __init__(
        self,
        crop_size=32,
        crop="resized",
        scale=(0.2, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        padding=4,
        flip=True,
        jitter=(0.4, 0.4, 0.4, 0.1),
        jitter_p=0.8,
        random_order=True,
        grayscale_p=0.2,
        blur_p=0.0,
        blur_sigma=(0.1, 2.0),
        blur_kernel_size=None,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        eval_crop_fraction=1.0,
        antialias=True,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self.crop = check_choice(crop, "crop", ("resized", "pad"))
        self.flip = check_bool(flip, "flip")
        if jitter is not None and (not isinstance(jitter, (tuple, list)) or len(jitter) != 4):
            raise ValueError(
                "`jitter` must be None or (brightness, contrast, saturation, hue) non-negative numbers "
                f"with hue <= 0.5; got {jitter!r}"
            )
        self.grayscale_p = check_probability(grayscale_p, "grayscale_p")
        self.mean = check_triple(mean, "mean")
        self.std = check_triple(std, "std", positive=True)
        seeds = _stage_seeds(self.seed, 5)
        # The stages compute in float32 (the result is cast to this layer's compute dtype at the end); Keras'
        # layers are told the layout, as the global `image_data_format` may be "channels_first".
        sub = {"dtype": "float32"}
        keras_sub = {**sub, "data_format": "channels_last"}

        resized = _renamed(
            _CROP_NAMES,
            RandomResizedCrop,
            crop_size,
            scale=scale,
            ratio=ratio,
            antialias=antialias,
            center_crop_fraction=eval_crop_fraction,
            seed=seeds[0],
            **sub,
        )
        padded = _renamed(_CROP_NAMES, RandomCropWithPadding, crop_size, padding=padding, seed=seeds[0], **sub)
        self.crop_layer = resized if self.crop == "resized" else padded
        self.crop_size, self.padding = resized.size, padded.padding
        self.scale, self.ratio, self.antialias = resized.scale, resized.ratio, resized.antialias
        self.eval_crop_fraction = resized.center_crop_fraction

        self.flip_layer = keras.layers.RandomFlip("horizontal", seed=seeds[1], **keras_sub) if self.flip else None

        names = ("brightness", "contrast", "saturation", "hue")
        jitter_layer = _renamed(
            {"p": "jitter_p", **{n: f"jitter[{i}] ({n})" for i, n in enumerate(names)}},
            RandomColorJitter,
            *(jitter if jitter is not None else (0.0, 0.0, 0.0, 0.0)),
            p=jitter_p,
            random_order=random_order,
            seed=seeds[2],
            **sub,
        )
        self.jitter = None if jitter is None else tuple(getattr(jitter_layer, n) for n in names)
        self.jitter_p, self.random_order = jitter_layer.p, jitter_layer.random_order
        self.jitter_layer = None if jitter_layer.is_identity else jitter_layer

        self.grayscale_layer = (
            keras.layers.RandomGrayscale(factor=self.grayscale_p, seed=seeds[3], **keras_sub)
            if self.grayscale_p > 0
            else None
        )

        blur_names = {"p": "blur_p", "sigma": "blur_sigma", "kernel_size": "blur_kernel_size"}
        blur = _renamed(
            blur_names, RandomGaussianBlur, blur_p, sigma=blur_sigma, kernel_size=blur_kernel_size, seed=seeds[4], **sub
        )
        _renamed(blur_names, blur.kernel_for, self.crop_size)  # the kernel must fit the crop
        self.blur_p, self.blur_sigma, self.blur_kernel_size = blur.p, blur.sigma, blur.kernel_size
        self.blur_layer = blur if blur.p > 0 else None

        for layer in self.stages:
            layer.build((None, None, None, 3))
        self.built = True

    @property
    def stages(self):
        """The training-time stages in the order they run (switched-off stages left out)."""
        candidates = (self.crop_layer, self.flip_layer, self.jitter_layer, self.grayscale_layer, self.blur_layer)
        return [layer for layer in candidates if layer is not None]

    def call(self, inputs, training=False):
        x = require_rgb(to_float01(inputs, integer_scale=1.0) / 255.0)  # 0..255 in, whatever the dtype
        x = _renamed(_CROP_NAMES, self.crop_layer, x, training=training)
        if training:
            for layer in self.stages[1:]:
                x = layer(x, training=True)
        return ops.cast(normalize(x, self.mean, self.std), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.crop_size, self.crop_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            crop_size=self.crop_size,
            crop=self.crop,
            scale=self.scale,
            ratio=self.ratio,
            padding=self.padding,
            flip=self.flip,
            jitter=self.jitter,
            jitter_p=self.jitter_p,
            random_order=self.random_order,
            grayscale_p=self.grayscale_p,
            blur_p=self.blur_p,
            blur_sigma=self.blur_sigma,
            blur_kernel_size=self.blur_kernel_size,
            mean=self.mean,
            std=self.std,
            eval_crop_fraction=self.eval_crop_fraction,
            antialias=self.antialias,
            seed=self.seed,
        )
        return config
