"""Models of a protocol run: the encoder, the augmenter and the pre-trainer a config describes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keras_ssl_lt.methods import Pretrainer

__all__ = ["AUGMENT_PRESETS", "build_pretrainer"]


def _encoder(cfg):
    from keras_ssl_lt import backbones

    b = dict(cfg["backbone"])
    name = b.pop("name")
    fn = getattr(backbones, name, None)
    if fn is None or name.startswith("_") or name == "count_flops":
        raise ValueError(f"config backbone name must be one of resnet18_cifar, resnet50, small_resnet; got {name!r}")
    if "blocks" in b:
        b["blocks"] = tuple(b["blocks"])
    size = int(cfg["input_size"])
    return fn(input_shape=(size, size, 3), **b)


# `cfg["augment_preset"]`: the SSL views (`keras_ssl_lt.augment` presets); CIFAR's by default.
AUGMENT_PRESETS = ("simsiam_cifar", "moco_v2_imagenet")


def _boost_variant(method):
    """BCL's views variant (`bcl_cifar`'s "I" or "D") of a method with boosted views, else None."""
    from keras_ssl_lt.methods import registry
    from keras_ssl_lt.methods.bcl import _MemoryBoost

    cls = registry.get_method(method)
    return cls.boost_variant if issubclass(cls, _MemoryBoost) else None


def _augmenter(method, cfg, seed):
    from keras_ssl_lt import augment

    size = int(cfg["input_size"])
    overrides = dict(cfg.get("augment", {}).get(method, {}))
    preset = cfg.get("augment_preset", "simsiam_cifar")
    if preset not in AUGMENT_PRESETS:
        raise ValueError(f"config `augment_preset` must be one of {AUGMENT_PRESETS}; got {preset!r}")
    if method != "supervised" and preset == "moco_v2_imagenet":
        return augment.moco_v2_imagenet(size=size, seed=seed, **overrides)
    variant = _boost_variant(method)
    if variant is not None:  # BCL: views that take a per-example strength (BCL-I's on SimCLR, BCL-D's on SDCLR)
        from keras_ssl_lt.augment.boosted import bcl_cifar

        return bcl_cifar(variant, crop_size=size, seed=seed, **overrides)
    if method == "supervised":
        # Standard supervised views at the run's resolution: random resized crop and flip, no colour.
        base = dict(crop="resized", scale=(0.35, 1.0), jitter=None, jitter_p=0.0, grayscale_p=0.0)
        base.update(overrides)
        return augment.supervised_cifar(crop_size=size, seed=seed, **base)
    return augment.simsiam_cifar(crop_size=size, seed=seed, **overrides)


def build_pretrainer(
    method: str, cfg: dict, num_classes: int, num_examples: int | None = None, seed: int = 0
) -> Pretrainer:
    """The pre-trainer of `method` (a name of `keras_ssl_lt.methods.registry`) as the config describes it, its encoder built first.

    The encoder is created right after `keras.utils.set_random_seed(seed)`, so every method (and the
    untrained floor) starts from the same encoder weights for a seed.

    Example:

    >>> from keras_ssl_lt.experiments.presets import smoke_config
    >>> m = build_pretrainer("simclr", smoke_config(), num_classes=10, seed=0)
    >>> type(m).__name__
    'SimCLR'
    """
    import keras

    from keras_ssl_lt.methods import registry

    cls = registry.get_method(method)
    keras.utils.set_random_seed(int(seed))
    encoder = _encoder(cfg)
    hp = dict(cfg["methods"][method])
    hp.pop("lr", None)
    hp.pop("epochs", None)
    aug = _augmenter(method, cfg, seed)
    # `cfg["rankme"]` (default True): RankMe in the training logs (its per-epoch cost, `Pretrainer`).
    common = dict(augmenter=aug, num_examples=num_examples, name=f"{method}_seed{seed}", rankme=cfg.get("rankme", True))
    if registry.needs_labels(method):
        common["num_classes"] = num_classes
    return cls(encoder, **hp, **common)
