"""Aggregation over seeds, gaps paired by seed, floor checks, Markdown and CSV, against hand-computed numbers."""

import csv
import math

import pytest

from keras_ssl_lt.experiments import (
    RunSpec,
    floor_flags,
    fmt_mean_std,
    gap_rows,
    provenance,
    seed_summary,
    select,
    to_csv,
    to_markdown,
)


def rec(method="simsiam", ratio=0.01, seed=0, sampling=1.0, n=None, status="done", extra=None, **metrics):
    r = {
        "spec": RunSpec(method, ratio=ratio, seed=seed, sampling=sampling, extra=extra).to_dict(),
        "status": status,
        "metrics": metrics,
    }
    r["run_id"] = RunSpec.from_dict(r["spec"]).run_id
    if n is not None:
        r["n"] = n
    return r


def test_seed_summary_mean_and_sample_std():
    recs = [
        rec(seed=0, acc=0.5, n=100),
        rec(seed=1, acc=0.6, n=100),
        rec(seed=2, acc=0.8, n=100),
        rec(seed=3, acc=0.1, status="failed"),
        rec(method="byol", seed=0, acc=0.4, n=50),
    ]
    rows = seed_summary(recs, ["acc"])
    assert [r["method"] for r in rows] == ["byol", "simsiam"]
    byol, simsiam = rows
    assert simsiam["seeds"] == [0, 1, 2] and simsiam["n_seeds"] == 3 and not simsiam["single_seed"]
    assert simsiam["acc_mean"] == pytest.approx(0.6333333333333333)
    # by hand: deviations -0.1333, -0.0333, +0.1667; sum of squares 0.0466667; / (3 - 1); sqrt
    assert simsiam["acc_std"] == pytest.approx(math.sqrt(0.0466666666667 / 2))
    assert simsiam["n"] == 100.0
    assert byol["acc_std"] == 0.0 and byol["single_seed"] and byol["n"] == 50.0
    assert {k: simsiam[k] for k in ("dataset", "profile", "ratio", "sampling", "preset")} == {
        "dataset": "cifar10",
        "profile": "exp",
        "ratio": 0.01,
        "sampling": 1.0,
        "preset": "cpu",
    }


def test_seed_summary_groups_by_extra_keys_and_refuses_silent_merges():
    recs = [
        rec(seed=s, acc=a, extra=e)
        for s, a, e in [(0, 0.5, {"sharpness": "sam"}), (1, 0.7, {"sharpness": "sam"}), (0, 0.4, None)]
    ]
    with pytest.raises(ValueError, match=r"seed 0 .*differ in \['sharpness'\]"):
        seed_summary(recs, "acc")  # SAM and plain runs would be averaged together
    rows = seed_summary(recs, "acc", by=("method", "sharpness"))
    assert [(r["sharpness"], r["n_seeds"]) for r in rows] == [(None, 1), ("sam", 2)]
    assert rows[1]["acc_mean"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="sharpnes"):
        seed_summary(recs, "acc", by=("method", "sharpnes"))


def test_seed_summary_errors():
    with pytest.raises(ValueError, match="no metric 'knn'"):
        seed_summary([rec(acc=0.1)], "knn")
    with pytest.raises(ValueError, match="records"):
        seed_summary(rec(acc=0.1), "acc")
    with pytest.raises(ValueError, match="by"):
        seed_summary([rec(acc=0.1)], "acc", by=())


def test_floor_clears_rule_and_flags():
    recs = [
        # clears: differences 0.30, 0.32 -> mean 0.31, std 0.01414
        rec(method="a", seed=0, knn=0.60, floor_knn=0.30),
        rec(method="a", seed=1, knn=0.60, floor_knn=0.28),
        # positive but within 2 std: differences 0.05, -0.01 -> mean 0.02, std 0.04243
        rec(method="b", seed=0, knn=0.35, floor_knn=0.30),
        rec(method="b", seed=1, knn=0.29, floor_knn=0.30),
        # below the floor
        rec(method="c", seed=0, knn=0.25, floor_knn=0.30),
        rec(method="c", seed=1, knn=0.26, floor_knn=0.30),
    ]
    rows = {r["method"]: r for r in seed_summary(recs, "knn", by=("method",))}
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert a["knn_minus_floor_mean"] == pytest.approx(0.31)
    assert a["knn_minus_floor_std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert a["floor_knn_mean"] == pytest.approx(0.29) and a["floor_knn_std"] == pytest.approx(math.sqrt(2e-4))
    assert b["knn_minus_floor_mean"] == pytest.approx(0.02)
    assert b["knn_minus_floor_std"] == pytest.approx(math.sqrt(2 * 0.03**2))
    assert (a["knn_clears_floor"], b["knn_clears_floor"], c["knn_clears_floor"]) == (True, False, False)
    flags = floor_flags(list(rows.values()), "knn")
    assert [(f["method"], f["metric"]) for f in flags] == [("b", "knn"), ("c", "knn")]
    assert "2 x std" in flags[0]["reason"]
    flags = floor_flags(list(rows.values()), ["knn"], margin=0.35)
    assert [f["method"] for f in flags] == ["a", "b", "c"] and "margin 0.35" in flags[0]["reason"]
    with pytest.raises(ValueError, match="floor_acc"):
        floor_flags(seed_summary([rec(acc=0.5)], "acc"), "acc")
    with pytest.raises(ValueError, match="floor_knn"):
        seed_summary([rec(seed=0, knn=0.5, floor_knn=0.2), rec(seed=1, knn=0.5)], "knn")


def test_gap_rows_pair_by_seed():
    recs = [
        rec(ratio=1.0, seed=0, acc=0.80, n=1000),
        rec(ratio=1.0, seed=1, acc=0.70, n=1000),
        rec(ratio=1.0, seed=2, acc=0.90, n=1000),
        rec(ratio=0.01, seed=0, acc=0.60, n=1000),
        rec(ratio=0.01, seed=1, acc=0.63, n=1000),
        rec(ratio=0.01, seed=3, acc=0.10, n=1000),  # no balanced partner: left out
        rec(ratio=0.1, seed=2, acc=0.81, n=1000),
    ]
    rows = gap_rows(recs, "acc")
    assert [r["ratio"] for r in rows] == [0.01, 0.1]
    r01, r1 = rows
    assert r01["seeds"] == [0, 1] and r01["n_seeds"] == 2 and r01["n"] == 1000.0 and r01["metric"] == "acc"
    # seed 0: gap 0.20, rel 0.25; seed 1: gap 0.07, rel 0.1
    assert r01["balanced_mean"] == pytest.approx(0.75) and r01["balanced_std"] == pytest.approx(math.sqrt(0.005))
    assert r01["imbalanced_mean"] == pytest.approx(0.615)
    assert r01["gap_mean"] == pytest.approx(0.135) and r01["gap_std"] == pytest.approx(0.13 / math.sqrt(2))
    assert r01["rel_gap_mean"] == pytest.approx(0.175) and r01["rel_gap_std"] == pytest.approx(0.15 / math.sqrt(2))
    assert r1["seeds"] == [2] and r1["single_seed"] and r1["gap_mean"] == pytest.approx(0.09)
    assert r1["rel_gap_mean"] == pytest.approx(0.1) and r1["gap_std"] == 0.0
    assert {k: r01[k] for k in ("method", "dataset", "profile", "sampling", "preset")} == {
        "method": "simsiam",
        "dataset": "cifar10",
        "profile": "exp",
        "sampling": 1.0,
        "preset": "cpu",
    }


def test_gap_rows_groups_per_method_and_sampling_with_floors():
    recs = []
    for method, pen in (("simsiam", 0.02), ("supervised", 0.10)):
        for sampling, base in ((1.0, 0.6), (0.5, 0.5)):
            for seed in (0, 1):
                for ratio in (1.0, 0.01):
                    acc = base - (pen if ratio < 1 else 0.0) + 0.01 * seed
                    recs.append(
                        rec(
                            method,
                            ratio=ratio,
                            seed=seed,
                            sampling=sampling,
                            n=int(1000 * sampling),
                            acc=acc,
                            floor_acc=0.2,
                        )
                    )
    rows = gap_rows(recs, "acc")
    assert [(r["method"], r["sampling"], r["n"]) for r in rows] == [
        ("simsiam", 0.5, 500.0),
        ("simsiam", 1.0, 1000.0),
        ("supervised", 0.5, 500.0),
        ("supervised", 1.0, 1000.0),
    ]
    for r in rows:
        assert r["gap_mean"] == pytest.approx(0.02 if r["method"] == "simsiam" else 0.10)
        assert r["gap_std"] == pytest.approx(0.0, abs=1e-12)
        assert r["balanced_floor_mean"] == pytest.approx(0.2) and r["imbalanced_floor_mean"] == pytest.approx(0.2)
    sup = rows[3]
    assert sup["rel_gap_mean"] == pytest.approx(((0.10 / 0.6) + (0.10 / 0.61)) / 2)


def test_gap_rows_pair_each_ratio_with_its_own_counterpart():
    recs = []
    for seed in (0, 1):
        for r, n, bal, imb in ((0.1, 2000, 0.70, 0.65), (0.01, 1000, 0.60, 0.50)):
            recs.append(rec(ratio=1.0, seed=seed, n=n, acc=bal + 0.01 * seed, extra={"counterpart_of": r}))
            recs.append(rec(ratio=r, seed=seed, n=n, acc=imb))
    rows = {r["ratio"]: r for r in gap_rows(recs, "acc")}
    assert rows[0.1]["n"] == 2000.0 and rows[0.1]["balanced_mean"] == pytest.approx(0.705)
    assert rows[0.1]["gap_mean"] == pytest.approx(0.055)
    assert rows[0.01]["n"] == 1000.0 and rows[0.01]["gap_mean"] == pytest.approx(0.105)
    assert rows[0.01]["rel_gap_mean"] == pytest.approx((0.1 / 0.6 + 0.11 / 0.61) / 2)
    # without the marks the two balanced runs of a seed are ambiguous: an error, never a silent mix
    unmarked = [dict(r, spec=dict(r["spec"], extra={})) for r in recs]
    with pytest.raises(ValueError, match="seed 0"):
        gap_rows(unmarked, "acc")
    with pytest.raises(ValueError, match="counterpart_of"):
        gap_rows(recs, "acc", by=("method", "counterpart_of"))
    # seed_summary keeps the counterparts apart when asked to
    summary = seed_summary(recs, "acc", by=("method", "ratio", "counterpart_of"))
    assert [(r["ratio"], r["counterpart_of"]) for r in summary] == [(0.01, None), (0.1, None), (1.0, 0.01), (1.0, 0.1)]


def test_select():
    recs = [
        rec(method=m, ratio=r, seed=s, acc=0.5, extra=e)
        for m in ("simsiam", "supervised")
        for r in (1.0, 0.01)
        for s in (0, 1)
        for e in (None, {"sharpness": "sam"})
    ]
    recs.append(rec(method="simsiam", ratio=0.01, seed=2, acc=0.1, status="failed"))
    assert len(select(recs)) == 16 and len(select(recs, status=None)) == 17
    got = select(recs, method="simsiam", ratio=0.01, sharpness="sam")
    assert [(r["spec"]["seed"], r["spec"]["extra"]) for r in got] == [
        (0, {"sharpness": "sam"}),
        (1, {"sharpness": "sam"}),
    ]
    assert len(select(recs, sharpness=None)) == 8 and len(select(recs, seed=[0, 1], method={"supervised"})) == 8
    assert select(recs, method="byol") == []


def test_gap_rows_warnings_and_errors():
    with pytest.warns(UserWarning, match="no balanced"):
        assert gap_rows([rec(ratio=0.1, acc=0.5)], "acc") == []
    with pytest.warns(UserWarning, match="no seed"):
        assert gap_rows([rec(ratio=1.0, seed=0, acc=0.5), rec(ratio=0.1, seed=1, acc=0.4)], "acc") == []
    with pytest.warns(UserWarning, match="same n"):
        gap_rows([rec(ratio=1.0, acc=0.5, n=100), rec(ratio=0.1, acc=0.4, n=90)], "acc")
    with pytest.raises(ValueError, match="ratio"):
        gap_rows([rec(acc=0.5)], "acc", by=("method", "ratio"))
    with pytest.raises(ValueError, match="> 0"):
        gap_rows([rec(ratio=1.0, acc=0.0), rec(ratio=0.1, acc=0.0)], "acc")
    with pytest.raises(ValueError, match="metric"):
        gap_rows([rec(acc=0.5)], ["acc"])


def test_fmt_mean_std():
    assert fmt_mean_std(0.45234, 0.012) == "45.23 ± 1.20"
    assert fmt_mean_std(0.45234, None) == "45.23"
    assert fmt_mean_std(1.5, 0.25, percent=False) == "1.5000 ± 0.2500"
    assert fmt_mean_std(0.5, 0.01, digits=1) == "50.0 ± 1.0"
    assert fmt_mean_std(float("nan"), 0.1) == "n/a"


def test_to_markdown():
    rows = [
        {
            "method": "simsiam",
            "ratio": 0.01,
            "n": 12406.0,
            "acc_mean": 0.5,
            "acc_std": 0.02,
            "ok": True,
            "loss_mean": 1.25,
            "loss_std": 0.5,
            "note": "a|b",
        },
        {
            "method": "supervised",
            "ratio": 1.0,
            "n": 12406.0,
            "acc_mean": 0.4,
            "acc_std": 0.0,
            "ok": False,
            "loss_mean": 2.0,
            "loss_std": 0.0,
        },
    ]
    text = to_markdown(rows, ["method", "ratio", "n", "acc", "loss", "ok", "note"], percent=["acc"])
    assert text.splitlines() == [
        "| method | ratio | n | acc | loss | ok | note |",
        "|---|---|---|---|---|---|---|",
        "| simsiam | 0.01 | 12406 | 50.00 ± 2.00 | 1.2500 ± 0.5000 | yes | a\\|b |",
        "| supervised | 1 | 12406 | 40.00 ± 0.00 | 2.0000 ± 0.0000 | NO |  |",
    ]
    assert "125.00 ± 50.00" in to_markdown(rows, ["loss"])  # percent=True: every mean ± std column
    assert to_markdown(rows, ["ratio"], percent=["ratio"]).splitlines()[2] == "| 1.00 |"  # a plain column in %
    with pytest.raises(ValueError, match="headers"):
        to_markdown(rows, ["method"], headers=["a", "b"])
    with pytest.raises(ValueError, match="knn"):
        to_markdown(rows, ["knn"])
    with pytest.raises(ValueError, match="percent"):
        to_markdown(rows, ["acc"], percent=["loss"])


def test_to_csv(tmp_path):
    rows = [
        {"method": "simsiam", "gap_mean": 0.1234567890123, "gap_std": 0.01, "seeds": [0, 1], "n": None},
        {"method": "byol", "gap_mean": 0.2, "gap_std": 0.0, "seeds": [0], "n": 50.0},
    ]
    path = to_csv(rows, tmp_path / "sub" / "gaps.csv", ["method", "gap", "seeds", "n"])
    with open(path, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["method", "gap_mean", "gap_std", "seeds", "n"]
    assert got[1] == ["simsiam", "0.1234567890123", "0.01", "[0, 1]", ""]
    assert float(got[1][1]) == rows[0]["gap_mean"]
    assert got[2] == ["byol", "0.2", "0.0", "[0]", "50.0"]
    all_cols = to_csv(rows, tmp_path / "all.csv")
    with open(all_cols, newline="") as f:
        assert next(csv.reader(f)) == ["method", "gap_mean", "gap_std", "seeds", "n"]
    with pytest.raises(ValueError, match="knn"):
        to_csv(rows, tmp_path / "x.csv", ["knn"])


def test_provenance_caption():
    env = {
        "backend": "torch",
        "backend_version": "2.4",
        "cpu_model": "Xeon",
        "cpu_count": 2,
        "accelerators": ["cuda:NVIDIA H100"],
    }
    recs = [dict(rec(seed=s, acc=0.5), environment=env, wall_seconds=60.0 * (s + 1)) for s in (0, 1)]
    recs.append(dict(rec(seed=2, acc=0.5, status="failed"), environment=env, wall_seconds=999.0))
    p = provenance(recs)
    assert p["n_runs"] == 2 and p["wall_seconds"] == 180.0 and p["presets"] == ["cpu"]
    assert p["caption"] == "preset cpu | torch 2.4 | Xeon x 2 CPUs, cuda:NVIDIA H100 | 2 runs, 3m00s of run time"
