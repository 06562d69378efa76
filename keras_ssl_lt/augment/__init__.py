"""On-device view augmentation with per-example randomness, for all three Keras backends.

The data pipeline only moves uint8 images; these layers turn a batch into random views inside the
(jit-compiled) train step. Every random choice (crop box, flip, jitter factors and order, grayscale,
blur sigma) is drawn **per example** with `keras.random` from a `keras.random.SeedGenerator` owned by
the layer, whose state is a non-trainable variable of any model containing it (JAX stays functional).
No Python randomness, no data-dependent Python control flow, static output shapes.

The package, one concept per module:

* `ops`: pure image maths (`crop_and_resize`, grayscale, torchvision's colour adjustments, Gaussian
  blur, normalisation statistics);
* `crop`, `color`, `blur`: the random layers Keras does not have in per-example form
  (`RandomResizedCrop`, `RandomCropWithPadding`, `RandomColorJitter`, `RandomGaussianBlur`);
  the flip and grayscale stages are Keras' own `keras.layers.RandomFlip` and
  `keras.layers.RandomGrayscale`, which already draw per example;
* `views`: `ViewAugmenter`, which composes these layers and normalises;
* `presets`: the augmentations of SimSiam, SimCLR, MoCo v2 and supervised training;
* `pil_ops`, `strength`, `boosted`: BCL's boosted views (docs/longtail.md): PIL's RandAugment operations
  written per example, `StrengthRandAugment` (probability and magnitude from a per-example strength),
  `BoostedViewAugmenter` and its `bcl_cifar` preset.

Example:

>>> import numpy as np
>>> from keras_ssl_lt import augment
>>> aug = augment.simsiam_cifar(seed=0)
>>> tuple(aug(np.zeros((2, 32, 32, 3), "uint8"), training=True).shape)
(2, 32, 32, 3)
"""

from keras_ssl_lt.augment import ops, pil_ops
from keras_ssl_lt.augment.blur import RandomGaussianBlur
from keras_ssl_lt.augment.boosted import BoostedViewAugmenter, bcl_cifar
from keras_ssl_lt.augment.color import RandomColorJitter
from keras_ssl_lt.augment.crop import RandomCropWithPadding, RandomResizedCrop
from keras_ssl_lt.augment.ops import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, crop_and_resize
from keras_ssl_lt.augment.presets import moco_v2_imagenet, simclr_cifar, simsiam_cifar, supervised_cifar
from keras_ssl_lt.augment.strength import StrengthRandAugment
from keras_ssl_lt.augment.views import ViewAugmenter

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BoostedViewAugmenter",
    "RandomColorJitter",
    "RandomCropWithPadding",
    "RandomGaussianBlur",
    "RandomResizedCrop",
    "StrengthRandAugment",
    "ViewAugmenter",
    "bcl_cifar",
    "crop_and_resize",
    "moco_v2_imagenet",
    "ops",
    "pil_ops",
    "simclr_cifar",
    "simsiam_cifar",
    "supervised_cifar",
]
