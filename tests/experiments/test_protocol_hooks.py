"""`protocol.run`'s hooks: a custom source, subset, evaluation and extra metrics, each beside its floor."""

import os

import numpy as np
import pytest

from keras_ssl_lt.experiments import RunSpec, evaldata, protocol
from keras_ssl_lt.experiments.presets import get_preset


def _tiny(seed=0, n=48, classes=4):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 8, 8, 3), dtype="uint8")
    y = np.repeat(np.arange(classes), n // classes)
    return (x, y), (x[::4], y[::4])


# The hooks are orchestration (no backend code): their runs train once, on the fastest backend here; protocol.run
# itself is tested on every backend (tests/experiments/test_protocol.py).
only_torch = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "torch", reason="orchestration: runs on torch")


@only_torch
def test_hooks_replace_source_subset_evaluation_and_add_metrics():
    import keras_ssl_lt as ksl

    train, test = _tiny()
    data = evaldata.EvalData.from_arrays(train, test)
    other = ksl.data.from_arrays(*_tiny(seed=1, n=64)[0])  # a different pre-training source
    subset = ksl.data.make_subset(other.labels, profile="exp", ratio=0.5, seed=0)
    calls = []

    def evaluate(model, groups):
        calls.append(("evaluate", sorted(groups)))
        return {"custom_acc": 0.25}

    def extra(model, spec):
        calls.append(("extra", spec.seed))
        return {"transfer_acc": 0.5}

    cache = {}
    out = protocol.run(
        RunSpec("simclr", ratio=0.5, seed=0, preset="smoke"),
        get_preset("smoke"),
        data,
        source=other,
        subset=subset,
        evaluate=evaluate,
        extra_metrics=extra,
        description={"dataset": "other"},
        floor_cache=cache,
    )
    m = out["metrics"]
    assert m["custom_acc"] == 0.25 and m["floor_custom_acc"] == 0.25
    assert m["transfer_acc"] == 0.5 and m["floor_transfer_acc"] == 0.5
    assert "knn_acc" not in m  # the default evaluation was replaced, not run
    assert out["n"] == subset.n and out["data"] == {"dataset": "other"}
    assert len(cache) == 1 and not data.floor_cache  # the floor went to the given cache
    assert calls == [("evaluate", ["few", "many", "medium"]), ("extra", 0)] * 2  # floor, then trained
    assert out["timings"]["seconds_per_epoch"] > 0


@only_torch
def test_subset_hook_may_be_a_function_and_data_may_be_none():
    import keras_ssl_lt as ksl

    src = ksl.data.from_arrays(*_tiny()[0])
    drawn = []

    def subset_fn(spec, cfg):
        s = ksl.data.make_subset(src.labels, profile="step", ratio=0.5, seed=0)
        drawn.append(s.n)
        return s

    out = protocol.run(
        RunSpec("supervised", ratio=0.5, preset="smoke"),
        get_preset("smoke"),
        None,
        source=src,
        subset=subset_fn,
        evaluate=lambda model, groups: {"acc": 1.0},
        num_classes=4,
    )
    assert drawn == [out["n"]] and out["metrics"]["floor_acc"] == 1.0 and out["data"] == {}


def test_hooks_refuse_what_they_cannot_run():
    train, test = _tiny()
    data = evaldata.EvalData.from_arrays(train, test)
    with pytest.raises(ValueError, match="`data` may be None only"):
        protocol.run(RunSpec("simclr", ratio=0.5), get_preset("smoke"), None)
    with pytest.raises(ValueError, match="`method` must be one of"):
        protocol.run(RunSpec("swav", ratio=0.5), get_preset("smoke"), data)
