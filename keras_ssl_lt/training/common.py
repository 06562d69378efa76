"""Backend-neutral helpers shared by the per-backend training modules."""

import itertools

import keras
import numpy as np

__all__ = ["LOSS_KEYS", "LossWatch", "checked_batches", "nonfinite_losses"]

# The logged values that are losses: one of them non-finite means the step's gradient was not finite either.
LOSS_KEYS = ("loss", "perturbed_loss", "weighted_loss")


def checked_batches(iterator, count, check):
    """Takes up to `count` batches from `iterator`, runs `check(batch)` on each, returns an iterator over them.

    Every batch of one `train_function` call is checked before the first of them reaches the device, so
    a rejected batch leaves the model exactly as it was. Raises `StopIteration` when `iterator` is
    exhausted (as Keras' own step functions do).

    Example:

    >>> list(checked_batches(iter([1, 2, 3]), 2, lambda b: None))
    [1, 2]
    """
    batches = list(itertools.islice(iterator, max(int(count), 1)))
    if not batches:
        raise StopIteration
    for batch in batches:
        check(batch)
    return iter(batches)


def nonfinite_losses(logs, keys=LOSS_KEYS, to_numpy=None):
    """The entries of `logs` named in `keys` that hold a NaN or infinite value, as `{name: that value}`.

    `to_numpy` brings a value to the host (default `keras.ops.convert_to_numpy`; a model passes its backend's
    `_ksl_to_numpy`, which also reads values spread over several hosts). Reading a value waits for the step
    that computed it (a device synchronisation for that value).

    Example:

    >>> nonfinite_losses({"loss": float("nan"), "z_std": 0.1, "perturbed_loss": 2.0})
    {'loss': nan}
    """
    to_numpy = to_numpy or keras.ops.convert_to_numpy
    out = {}
    for key in keys:
        if key in logs:
            values = np.asarray(to_numpy(logs[key]), dtype="float64").reshape(-1)
            bad = values[~np.isfinite(values)]
            if bad.size:
                out[key] = float(bad[0])
    return out


class LossWatch:
    """Stops a `fit` whose loss became NaN or infinite, checking each `train_function` call one call late.

    `push(logs)` is called with the logs of every call of the train function (each call runs
    `steps_per_call` steps); it checks the logs of the *previous* call and keeps these. `flush()` checks the
    last ones (at the end of `fit`). On a non-finite loss, `error(first_step, last_step, bad)` builds the
    exception raised (steps counted from 1 over the `fit`; `bad` as from `nonfinite_losses`, with `to_numpy`).

    Why one call late: reading a logged value waits for the step that computed it. Reading the logs of the
    call just made would make the host wait for every step before it fetches and dispatches the next batch,
    leaving the accelerator idle meanwhile. Reading the previous call's logs after the current call has
    been dispatched waits only for a step that is normally finished, while the current one keeps the device
    busy: no additional device idle time as long as one step is in flight (Keras' own loop keeps at most a
    few in flight). The logged losses are the running means of the epoch, so a non-finite step leaves them
    non-finite until the epoch ends and cannot be missed between two checks; the error names the call's
    steps and is raised one call after the step that failed.

    Example:

    >>> watch = LossWatch(1, lambda first, last, bad: FloatingPointError(f"step {first}: {bad}"))
    >>> watch.push({"loss": 0.5})
    >>> watch.push({"loss": float("nan")})  # checks the first call's logs
    >>> watch.flush()
    Traceback (most recent call last):
    ...
    FloatingPointError: step 2: {'loss': nan}
    """

    def __init__(self, steps_per_call, error, to_numpy=None):
        self.steps_per_call = max(int(steps_per_call), 1)
        self.error = error
        self.to_numpy = to_numpy
        self._calls = 0
        self._pending = None

    def push(self, logs):
        pending, self._pending = self._pending, (self._calls, logs)
        self._calls += 1
        if pending is not None:
            self._check(*pending)

    def flush(self):
        pending, self._pending = self._pending, None
        if pending is not None:
            self._check(*pending)

    def _check(self, call, logs):
        bad = nonfinite_losses(logs, to_numpy=self.to_numpy)
        if bad:
            first = call * self.steps_per_call + 1
            raise self.error(first, first + self.steps_per_call - 1, bad)
