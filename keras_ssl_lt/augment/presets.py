"""The view augmentations of the paper's methods, as `ViewAugmenter` configurations."""

from keras_ssl_lt.augment.ops import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from keras_ssl_lt.augment.views import ViewAugmenter

__all__ = ["moco_v2_imagenet", "simclr_cifar", "simsiam_cifar", "supervised_cifar"]


def simsiam_cifar(crop_size=32, seed=None, **overrides):
    """SimSiam's CIFAR views (the paper's code): resized crop scale 0.2-1, flip, jitter 0.4/0.4/0.4/0.1
    with p=0.8, grayscale p=0.2, no blur, CIFAR-10 mean/std. Keyword `overrides` replace any argument.

    Example:

    >>> simsiam_cifar(seed=0).get_config()["scale"]
    (0.2, 1.0)
    """
    config = {
        "crop_size": crop_size,
        "crop": "resized",
        "scale": (0.2, 1.0),
        "flip": True,
        "jitter": (0.4, 0.4, 0.4, 0.1),
        "jitter_p": 0.8,
        "grayscale_p": 0.2,
        "blur_p": 0.0,
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "seed": seed,
    }
    config.update(overrides)
    return ViewAugmenter(**config)


def simclr_cifar(crop_size=32, seed=None, **overrides):
    """SimCLR's CIFAR views: the same as `simsiam_cifar` (SimCLR's CIFAR recipe also drops the blur;
    its crop scale is 0.08-1 in the SimCLR paper but 0.2-1 in the SimSiam-style CIFAR code the paper
    builds on, which is kept here so methods differ only in their loss).

    Example:

    >>> simclr_cifar(seed=0).get_config()["blur_p"]
    0.0
    """
    return simsiam_cifar(crop_size=crop_size, seed=seed, **overrides)


def moco_v2_imagenet(size=224, seed=None, **overrides):
    """MoCo v2's ImageNet views: resized crop scale 0.2-1, jitter 0.4/0.4/0.4/0.1 p=0.8, grayscale
    p=0.2, Gaussian blur p=0.5 (sigma 0.1-2, kernel ~10% of `size`), flip, ImageNet mean/std;
    inference: centre crop 0.875 of the shorter side (resize-256 / crop-224) resized to `size`.

    Example:

    >>> moco_v2_imagenet(seed=0).get_config()["blur_p"]
    0.5
    """
    config = {
        "crop_size": size,
        "crop": "resized",
        "scale": (0.2, 1.0),
        "flip": True,
        "jitter": (0.4, 0.4, 0.4, 0.1),
        "jitter_p": 0.8,
        "grayscale_p": 0.2,
        "blur_p": 0.5,
        "blur_sigma": (0.1, 2.0),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "eval_crop_fraction": 0.875,
        "seed": seed,
    }
    config.update(overrides)
    return ViewAugmenter(**config)


def supervised_cifar(crop_size=32, seed=None, **overrides):
    """The standard supervised CIFAR recipe: zero-pad 4 and random 32x32 crop, flip, no colour
    augmentation, CIFAR-10 mean/std (per example).

    Example:

    >>> supervised_cifar(seed=0).get_config()["crop"]
    'pad'
    """
    config = {
        "crop_size": crop_size,
        "crop": "pad",
        "padding": 4,
        "flip": True,
        "jitter": None,
        "jitter_p": 0.0,
        "grayscale_p": 0.0,
        "blur_p": 0.0,
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "seed": seed,
    }
    config.update(overrides)
    return ViewAugmenter(**config)
