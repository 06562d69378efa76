"""The pre-train/evaluate protocol: subsets, model building, the floor, regularisers and one whole run."""

import numpy as np
import pytest

from keras_ssl_lt.experiments import RunSpec, build, evaldata, evaluate, protocol
from keras_ssl_lt.experiments.presets import PRESETS, get_preset
from keras_ssl_lt.experiments.robustness import cost_estimate, gap_grid


def _tiny_data(per_class=24, classes=4, test_per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class)
    # class-dependent colour so that a trained or even a random encoder has something to find
    x = (rng.integers(0, 60, (y.size, 16, 16, 3)) + 40 * y[:, None, None, None]).astype("uint8")
    yt = np.repeat(np.arange(classes), test_per_class)
    xt = (rng.integers(0, 60, (yt.size, 16, 16, 3)) + 40 * yt[:, None, None, None]).astype("uint8")
    return (x, y), (xt, yt)


def test_balanced_counterpart_has_the_long_tailed_n():
    labels = np.repeat(np.arange(10), 5000)
    cfg = get_preset("cpu")
    for r in (0.1, 0.01):
        lt = evaldata.draw_subset(labels, RunSpec("simclr", ratio=r), cfg)
        bal = evaldata.draw_subset(labels, RunSpec("simclr", ratio=1.0, extra={"counterpart_of": r}), cfg)
        assert lt.n == bal.n
        assert bal.counts.max() - bal.counts.min() <= 1
    assert evaldata.draw_subset(labels, RunSpec("simclr", ratio=0.01), cfg).n == 12406  # PAPER.md
    half = evaldata.draw_subset(labels, RunSpec("simclr", ratio=0.01, sampling=0.5), cfg)
    assert half.counts.tolist() == [2500, 1498, 898, 538, 322, 193, 116, 69, 41, 25]


def test_same_seed_gives_every_method_the_same_untrained_encoder():
    cfg = get_preset("smoke")
    weights = []
    for method in ("simclr", "supervised", "simsiam"):
        m = build.build_pretrainer(method, cfg, num_classes=4, seed=3)
        weights.append([np.asarray(w) for w in m.encoder.get_weights()])
    for other in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], other, strict=True))
    m = build.build_pretrainer("simclr", cfg, num_classes=4, seed=4)
    assert not all(np.array_equal(a, np.asarray(b)) for a, b in zip(weights[0], m.encoder.get_weights(), strict=True))


def test_bad_names_raise_clear_errors():
    cfg = get_preset("smoke")
    with pytest.raises(ValueError, match="`method` must be one of"):
        build.build_pretrainer("swav", cfg, num_classes=4)
    with pytest.raises(ValueError, match="`sharpness` must be one of"):
        protocol.regularizer(None, None, cfg, "sam2")
    with pytest.raises(ValueError, match="`preset` must be one of"):
        get_preset("laptop")
    with pytest.raises(ValueError, match="unknown config key"):
        get_preset("cpu", epoch=3)
    with pytest.raises(ValueError, match="`ratios` must be"):
        gap_grid(["simclr"], ratios=[1.0])
    with pytest.raises(ValueError, match="bank_per_class"):
        evaldata.balanced_positions(np.array([0, 0, 1]), 2)


def test_rank_weights_follow_the_long_tailed_counts():
    import keras_ssl_lt as ksl

    labels = np.repeat(np.arange(10), 50)
    src = ksl.data.from_arrays(np.zeros((500, 8, 8, 3), "uint8"), labels)
    lt = evaldata.draw_subset(labels, RunSpec("simclr", ratio=0.1), {})
    reg, callbacks = protocol.regularizer(src, lt, {"sharpness": {"rank_base": 2.0, "rho": 3.0}}, "rwsam_rank")
    assert isinstance(reg, ksl.RWSAM) and reg.adaptive and reg.rho == 3.0 and callbacks == []
    # class 0 is the most frequent (rank 0, weight 1), class 9 the rarest (rank 9, weight 2**9)
    assert reg.weights[labels == 0][0] == 1.0 and reg.weights[labels == 9][0] == 2.0**9
    reg, callbacks = protocol.regularizer(src, lt, {}, "rwsam_kde")
    assert isinstance(reg, ksl.RWSAM) and len(callbacks) == 1
    assert isinstance(callbacks[0], ksl.rwsam.KDEReweighting)
    assert type(protocol.regularizer(src, lt, {}, "sam")[0]) is ksl.SAM


def test_cost_estimate_uses_the_measured_table():
    cfg = get_preset("cpu")
    est = cost_estimate(cfg)
    spec = RunSpec("simclr", ratio=0.01)
    assert est(spec) == pytest.approx(12406 * cfg["epochs"] * cfg["cost"]["simclr"] + cfg["cost"]["eval"])
    assert cost_estimate(get_preset("paper")) is None  # no measured table: no guess
    assert set(PRESETS) == {"smoke", "cpu", "gpu", "paper"}


def test_one_run_records_metrics_beside_the_floor(tmp_path):
    train, test = _tiny_data()
    data = evaldata.EvalData.from_arrays(
        train, test, ood={"name": "same", "train": train, "test": test}, bank_per_class=12
    )
    cfg = get_preset("smoke")
    cfg["eval"]["generalization_gap"] = True
    out = protocol.run(RunSpec("supervised", dataset="tiny", ratio=0.5, seed=0, preset="smoke"), cfg, data)
    m = out["metrics"]
    for key in ("knn_acc", "probe_acc", "ood_probe_acc", "knn_acc_few", "gen_gap"):
        assert 0.0 <= m[key] <= 1.0 or key == "gen_gap"
        assert f"floor_{key}" in m or key == "gen_gap"
    assert out["n"] == sum(out["counts"]) and out["counts"][0] == 24 and out["counts"][-1] == 12
    assert set(out["history"]) >= {"loss"} and len(out["history"]["loss"]) == cfg["epochs"]
    assert len(out["manifest_sha256"]) == 64
    # the floor is cached: the same seed's floor again is identical and costs no new evaluation
    again = evaluate.floor_metrics(
        cfg,
        data,
        0,
        class_groups=evaldata.draw_subset(data.source.labels, RunSpec("supervised", ratio=0.5), cfg).groups,
    )
    assert again == {k[len("floor_") :]: v for k, v in m.items() if k.startswith("floor_")}


def test_floor_cache_belongs_to_its_data():
    cfg = get_preset("smoke")
    train, test = _tiny_data(seed=1)
    with_ood = evaldata.EvalData.from_arrays(train, test, ood={"train": train, "test": test})
    without = evaldata.EvalData.from_arrays(train, test)
    a = evaluate.floor_metrics(cfg, with_ood, seed=0)
    b = evaluate.floor_metrics(cfg, without, seed=0)
    assert "ood_probe_acc" in a and "ood_probe_acc" not in b
    assert a["knn_acc"] == b["knn_acc"]  # same encoder, same in-domain data
    assert len(with_ood.floor_cache) == 1 and len(without.floor_cache) == 1
