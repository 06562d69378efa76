"""The numerical conventions a config runs with (optimizer decay, initialisers, BatchNorm), for every record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["PRECISIONS", "conventions", "precision", "precision_scope", "weight_decay_convention"]

# `cfg["precision"]`: the Keras dtype policy of a run. bfloat16 needs no loss scaling (float16 would, and the
# two-pass SAM-type step does not scale losses, so it is not offered).
PRECISIONS = ("float32", "mixed_bfloat16")


def precision(cfg: dict) -> str:
    """The dtype policy of a config: `cfg["precision"]`, one of `PRECISIONS` (absent: "float32").

    >>> precision({}), precision({"precision": "mixed_bfloat16"})
    ('float32', 'mixed_bfloat16')
    """
    from keras_ssl_lt._checks import check_choice

    return check_choice(cfg.get("precision", "float32"), "precision", PRECISIONS)


@contextlib.contextmanager
def precision_scope(cfg: dict) -> Iterator[str]:
    """Builds and trains under the config's dtype policy, then restores the global policy it found.

    >>> import keras
    >>> with precision_scope({"precision": "mixed_bfloat16"}):
    ...     keras.config.dtype_policy().name
    'mixed_bfloat16'
    >>> keras.config.dtype_policy().name
    'float32'
    """
    import keras

    wanted = precision(cfg)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(wanted)
    try:
        yield wanted
    finally:
        keras.config.set_dtype_policy(before)


def weight_decay_convention(cfg: dict) -> str:
    """The optimizer's weight-decay convention of a config (`keras_ssl_lt.optimizers.get_sgd`).

    `cfg["optimizer"]["weight_decay_convention"]`: `"coupled"` (PyTorch's and the paper's), `"decoupled"`, or
    `"keras"` (`keras.optimizers.SGD`, also what a config without the key gets: what the presets ran before the
    convention was a setting).

    Example:

    >>> weight_decay_convention({"optimizer": {"weight_decay_convention": "coupled"}})
    'coupled'
    """
    from keras_ssl_lt._checks import check_choice
    from keras_ssl_lt.optimizers import CONVENTIONS

    convention = dict(cfg.get("optimizer", {})).get("weight_decay_convention", "keras")
    return check_choice(convention, "optimizer.weight_decay_convention", CONVENTIONS)


def conventions(cfg: dict) -> dict:
    """The numerical conventions a config runs with, written into every record (docs/fidelity.md).

    Example:

    >>> from keras_ssl_lt.experiments.presets import smoke_config
    >>> conventions(smoke_config())["weight_decay"]
    'keras'
    """
    backbone = dict(cfg.get("backbone", {}))
    conv_init = backbone.get("kernel_initializer")
    heads = {m: dict(hp).get("head_init", "keras") for m, hp in cfg.get("methods", {}).items()}
    return {
        "precision": precision(cfg),
        "weight_decay": weight_decay_convention(cfg),
        "conv_init": "he_normal_fan_out" if conv_init is None else conv_init,
        "head_init": heads,
        "batchnorm": "momentum 0.9 (PyTorch's 0.1), epsilon 1e-5, biased moving variance",
        "lr_schedule": "cosine per step (keras CosineDecay), no warm-up",
    }
