"""One name per regulariser: the menu that configs, recipes and the command line pick from, with its defaults.

A run's `sharpness` is one of `regularizer_names()`:

- `"none"`: plain training;
- `"sam"`: SAM at `sam_rho`;
- `"asam"`: adaptive SAM (ASAM) at `rho`, no weights (the control of the rwSAM arms);
- `"rwsam_rank"`: rwSAM as the authors ran it on CIFAR: ASAM at `rho`, example weights `rank_base ** rank`
  of the example's class, ranked by the long-tailed subset's class counts (the rarest class ranks highest);
- `"rwsam_kde"`: rwSAM as the paper describes it: ASAM at `rho`, weights from the inverse kernel density of
  the encoder's representations, refreshed every `kde_every` epochs (`KDEReweighting`), `kde_power`.

`DEFAULTS` holds the settings a config's `sharpness` dict overrides: `rho` 7.0 (the authors' ASAM radius on
CIFAR), `sam_rho` 0.05, `rank_base` 1.2, `kde_every` 1, `kde_power` 1.0, and `bn_update` "first" (BatchNorm
statistics of the first pass only; "both", what the authors' code did, keeps both passes' updates).

Example:

>>> import numpy as np
>>> from keras_ssl_lt.rwsam import registry
>>> reg, callbacks = registry.build_regularizer("asam", {"rho": 2.0})
>>> reg.name, reg.rho, callbacks
('asam', 2.0, [])
>>> labels = np.repeat([0, 1], [8, 2]); counts = np.array([8, 2])
>>> reg, _ = registry.build_regularizer("rwsam_rank", {}, labels=labels, class_counts=counts)
>>> round(float(reg.weights[-1] / reg.weights[0]), 2)  # the rare class weighs 1.2x the frequent one
1.2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_ssl_lt._checks import check_choice, check_number, check_positive_int

__all__ = ["DEFAULTS", "REGULARIZERS", "build_regularizer", "regularizer_names", "settings"]

REGULARIZERS = ("none", "sam", "asam", "rwsam_rank", "rwsam_kde")

DEFAULTS = {"rho": 7.0, "sam_rho": 0.05, "rank_base": 1.2, "kde_every": 1, "kde_power": 1.0, "bn_update": "first"}


def regularizer_names() -> tuple[str, ...]:
    """The names a run's `sharpness` may take."""
    return REGULARIZERS


def settings(overrides: dict | None = None) -> dict:
    """`DEFAULTS` updated with `overrides` (a config's `sharpness` dict), each checked; unknown keys are refused.

    >>> settings({"rho": 0.5})["rho"], settings()["rank_base"]
    (0.5, 1.2)
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown sharpness setting(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    out = dict(DEFAULTS, **overrides)
    out["rho"] = check_number(out["rho"], "sharpness.rho", low=0.0, low_open=True)
    out["sam_rho"] = check_number(out["sam_rho"], "sharpness.sam_rho", low=0.0, low_open=True)
    out["rank_base"] = check_number(out["rank_base"], "sharpness.rank_base", low=1.0)
    out["kde_every"] = check_positive_int(out["kde_every"], "sharpness.kde_every")
    out["kde_power"] = check_number(out["kde_power"], "sharpness.kde_power", low=0.0, low_open=True)
    out["bn_update"] = check_choice(out["bn_update"], "sharpness.bn_update", ("first", "both"))
    return out


def build_regularizer(
    name: str,
    overrides: dict | None = None,
    labels: np.ndarray | None = None,
    class_counts: np.ndarray | None = None,
    kde_images: np.ndarray | None = None,
    kde_index: np.ndarray | None = None,
) -> tuple[Any, list]:
    """The `(regularizer, callbacks)` of the menu entry `name` with `settings(overrides)`.

    `"rwsam_rank"` needs `labels` (every example's class, indexed like the pre-trainer's `index`) and
    `class_counts` (the training subset's count per class, which defines the ranks); `"rwsam_kde"` needs
    `kde_images` and `kde_index` (the training examples and their positions in the weight table).
    """
    from keras_ssl_lt.rwsam.callback import KDEReweighting
    from keras_ssl_lt.rwsam.sharpness import RWSAM, SAM
    from keras_ssl_lt.rwsam.weights import class_rank_weights

    check_choice(name, "sharpness", REGULARIZERS)
    s = settings(overrides)
    if name == "none":
        return None, []
    if name == "sam":
        return SAM(rho=s["sam_rho"], bn_update=s["bn_update"]), []
    if name == "asam":
        return SAM(rho=s["rho"], adaptive=True, bn_update=s["bn_update"]), []
    if name == "rwsam_rank":
        if labels is None or class_counts is None:
            raise ValueError("sharpness 'rwsam_rank' needs `labels` and `class_counts` (the subset's counts)")
        weights = class_rank_weights(np.asarray(labels), base=s["rank_base"], class_counts=np.asarray(class_counts))
        return RWSAM(rho=s["rho"], adaptive=True, weights=weights, bn_update=s["bn_update"]), []
    if kde_images is None or kde_index is None:
        raise ValueError("sharpness 'rwsam_kde' needs `kde_images` and `kde_index` (the training examples)")
    callback = KDEReweighting(
        kde_images, np.asarray(kde_index), every_n_epochs=s["kde_every"], power=s["kde_power"], at_start=True
    )
    return RWSAM(rho=s["rho"], adaptive=True, bn_update=s["bn_update"]), [callback]
