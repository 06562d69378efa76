"""Temperature schedules for contrastive losses: TS, the cosine schedule of Kukleva et al. (ICLR 2023).

"Temperature Schedules for Self-Supervised Contrastive Methods on Long-Tail Data" (Kukleva, Boehle,
Schiele, Kuehne, Rupprecht; ICLR 2023), Algorithm 1: at epoch `ep` the temperature of the contrastive loss is

    tau(ep) = tau_min + (tau_max - tau_min) * (1 + cos(2 pi ep / T)) / 2,

with tau- = 0.1, tau+ = 1.0. Checked against the authors' code (github.com/Annusha/temperature_schedules,
`train_simCLR.py`): `tau = min_tau + 0.5 * (max_tau - min_tau) * (1 + cos(pi * epoch / t_max))` with
`--t_max 200` in the README's CIFAR-10-LT, CIFAR-100-LT and ImageNet-100-LT commands, so the period is
`T = 2 * t_max = 400` epochs (2000 epochs of training: five periods); `epoch` is the integer epoch counted from 1
(its training loop starts at epoch 1), so the temperature is constant within an epoch and the schedule starts
near tau+ (group-wise discrimination) and reaches tau- (instance discrimination) at epoch 200.

In a `Pretrainer` the schedule's value is computed inside the compiled step from the optimizer's step counter
`k` (`optimizer.iterations`, saved with the model, so a resumed run continues its schedule) and the number of
steps per epoch `S` (taken from each `fit`'s `steps` by `TemperatureCallback`, or fixed by `steps_per_epoch=`):
the epoch is `ep = 1 + floor(k / S)` (or `1 + k / S` with `per_step=True`, a smooth variant that agrees at every
epoch's first step). Nothing is recompiled per epoch and `steps_per_execution > 1` sees each step's own value.

Example:

>>> import numpy as np
>>> ts = CosineTemperature(tau_min=0.1, tau_max=1.0, period_epochs=400)
>>> [round(float(ts.value_at_epoch(e)), 4) for e in (0, 100, 200, 400)]
[1.0, 0.55, 0.1, 1.0]
>>> get({"schedule": "cosine", "tau_min": 0.1, "tau_max": 1.0, "period_epochs": 400}) == ts
True
>>> get(0.5)
0.5
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_ssl_lt._checks import check_bool, check_choice, check_number, check_positive_int

__all__ = ["SCHEDULES", "CosineTemperature", "ScheduledTemperature", "TemperatureCallback", "config_of", "get"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class CosineTemperature:
    """TS: the cosine temperature schedule of Kukleva et al. (ICLR 2023, Algorithm 1).

    `tau(ep) = tau_min + (tau_max - tau_min) * (1 + cos(2 pi ep / period_epochs)) / 2` at epoch `ep`, counted from 1
    as in the authors' training loop (so the first epoch's value is just below `tau_max`).

    Args:
        tau_min: the lowest temperature tau- (paper and code: 0.1).
        tau_max: the highest temperature tau+ (paper and code: 1.0); `tau_max >= tau_min`.
        period_epochs: the period T in epochs (the authors' code: `2 * t_max` with `t_max = 200`, so 400).
        per_step: `False` (default, as the authors' code): one value per epoch; `True`: the epoch is fractional,
            `1 + k / S` at step `k`, so the temperature changes at every step.
        steps_per_epoch: the steps per epoch `S`; `None` (default) takes each `fit`'s number of steps.

    Example:

    >>> ts = CosineTemperature(0.1, 1.0, 400)
    >>> round(float(ts(step=0, steps_per_epoch=10)), 4)  # epoch 1: just below tau_max
    0.9999
    """

    name = "cosine"

    def __init__(
        self,
        tau_min: float = 0.1,
        tau_max: float = 1.0,
        period_epochs: float = 400,
        per_step: bool = False,
        steps_per_epoch: int | None = None,
    ) -> None:
        self.tau_min = check_number(tau_min, "tau_min", low=0.0, low_open=True)
        self.tau_max = check_number(tau_max, "tau_max", low=0.0, low_open=True)
        if self.tau_max < self.tau_min:
            raise ValueError(f"`tau_max` must be >= `tau_min` ({self.tau_min}); got {tau_max!r}")
        self.period_epochs = check_number(period_epochs, "period_epochs", low=0.0, low_open=True)
        self.per_step = check_bool(per_step, "per_step")
        self.steps_per_epoch = (
            None if steps_per_epoch is None else check_positive_int(steps_per_epoch, "steps_per_epoch")
        )

    def value_at_epoch(self, epoch):
        """The temperature at (possibly fractional) epoch `epoch`, a float32 tensor (keras.ops)."""
        ep = ops.cast(epoch, "float32")
        cos = ops.cos(2.0 * math.pi * ep / self.period_epochs)
        return self.tau_min + (self.tau_max - self.tau_min) * (1.0 + cos) / 2.0

    def epoch(self, step, steps_per_epoch):
        """The epoch (from 1) of 0-based optimizer step `step` with `steps_per_epoch` steps per epoch."""
        k = ops.cast(step, "float32")
        s = ops.maximum(ops.cast(steps_per_epoch, "float32"), 1.0)
        return 1.0 + (k / s if self.per_step else ops.floor(k / s))

    def __call__(self, step, steps_per_epoch):
        """The temperature of 0-based optimizer step `step` (a float32 scalar tensor)."""
        return self.value_at_epoch(self.epoch(step, steps_per_epoch))

    def get_config(self) -> dict[str, Any]:
        return {
            "schedule": self.name,
            "tau_min": self.tau_min,
            "tau_max": self.tau_max,
            "period_epochs": self.period_epochs,
            "per_step": self.per_step,
            "steps_per_epoch": self.steps_per_epoch,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CosineTemperature:
        config = dict(config)
        config.pop("schedule", None)
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "schedule")
        return f"CosineTemperature({args})"


SCHEDULES = {"cosine": CosineTemperature}


def get(value):
    """A temperature: a positive float (returned as a float), a schedule (returned as is), or a schedule's config.

    A config is a dict `{"schedule": "cosine", "tau_min": ..., "tau_max": ..., "period_epochs": ...}` (JSON,
    as experiment records carry it; unknown keys are refused) or a Keras-serialised schedule.

    >>> get({"schedule": "cosine", "period_epochs": 10})
    CosineTemperature(tau_min=0.1, tau_max=1.0, period_epochs=10.0, per_step=False, steps_per_epoch=None)
    """
    if isinstance(value, CosineTemperature):
        return value
    if isinstance(value, dict):
        if "class_name" in value:
            return keras.saving.deserialize_keras_object(value)
        config = dict(value)
        kind = check_choice(config.pop("schedule", None), "temperature['schedule']", tuple(SCHEDULES))
        allowed = ("tau_min", "tau_max", "period_epochs", "per_step", "steps_per_epoch")
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in the `temperature` schedule; allowed: {list(allowed)}")
        return SCHEDULES[kind](**config)
    if isinstance(value, str):
        raise ValueError(
            f"`temperature` must be a positive number, a schedule such as `CosineTemperature(...)` or its config dict "
            f"{{'schedule': 'cosine', ...}}; got {value!r}"
        )
    try:
        return check_number(value, "temperature", low=0.0, low_open=True)
    except ValueError:
        raise ValueError(
            "`temperature` must be a positive number, a schedule such as `CosineTemperature(...)` or its config "
            f"dict {{'schedule': 'cosine', ...}}; got {value!r}"
        ) from None


def config_of(temperature):
    """What a pre-trainer's `get_config` stores: the float, or the schedule's JSON config dict.

    >>> config_of(0.2)
    0.2
    """
    return temperature.get_config() if isinstance(temperature, CosineTemperature) else temperature


class TemperatureCallback(keras.callbacks.Callback):
    """Writes the steps per epoch of each `fit` into the model's schedule state before its first step.

    Returned by the pre-trainer's `fit_callbacks()` when its temperature is a schedule. The steps per epoch are
    the schedule's `steps_per_epoch` when set, else Keras' `params["steps"]` of this `fit` (from the data's
    length or `steps_per_epoch=`); a dataset of unknown length without either raises a ValueError.

    Example:

    >>> TemperatureCallback().__class__.__name__
    'TemperatureCallback'
    """

    def on_train_begin(self, logs=None):
        schedule = self.model.temperature
        steps = schedule.steps_per_epoch or (self.params or {}).get("steps")
        if not steps:
            raise ValueError(
                "the temperature schedule needs the number of steps per epoch: the data's length is unknown, so "
                "pass `steps_per_epoch=` to `fit` or to the schedule (`CosineTemperature(..., steps_per_epoch=...)`)"
            )
        self.model._ksl_sync_state()
        self.model.temperature_steps_per_epoch.assign(float(steps))


class ScheduledTemperature:
    """Mixin of a contrastive pre-trainer whose `temperature` may be a float or a schedule (`CosineTemperature`).

    `_init_temperature(temperature)` (after `Pretrainer.__init__`) parses it; with a schedule it creates the
    non-trainable `temperature_steps_per_epoch` variable (saved with the model), logs the metric `temperature`
    (the epoch's mean of the value the loss used) and adds `TemperatureCallback` to every `fit`.
    `current_temperature()` is the float, or the schedule's value at the optimizer's step counter (inside the
    compiled step; 0 before `compile`). Used by `SimCLR` and `MoCoV2`.

    Example:

    >>> ScheduledTemperature.__name__
    'ScheduledTemperature'
    """

    def _init_temperature(self, temperature):
        self.temperature = get(temperature)
        self.temperature_steps_per_epoch = None
        if self.temperature_scheduled:
            self.temperature_steps_per_epoch = self.add_weight(
                shape=(), initializer="zeros", trainable=False, dtype="float32", name="temperature_steps_per_epoch"
            )
            self.extra_trackers.append(keras.metrics.Mean(name="temperature"))

    @property
    def temperature_scheduled(self) -> bool:
        """True when the temperature follows a schedule."""
        return isinstance(self.temperature, CosineTemperature)

    def current_temperature(self):
        """The temperature of the current step: the float, or the schedule's value (a float32 scalar tensor)."""
        if not self.temperature_scheduled:
            return self.temperature
        optimizer = getattr(self, "optimizer", None)
        step = 0 if optimizer is None else optimizer.iterations
        return self.temperature(step, self.temperature_steps_per_epoch)

    def fit_callbacks(self):
        callbacks = list(super().fit_callbacks())
        if self.temperature_scheduled:
            callbacks.append(TemperatureCallback())
        return callbacks
