"""The GPU campaign (issue 21): its data slice, its planner and one chunk, rehearsed on the CPU."""

import json
import os

import numpy as np
import pytest

from keras_ssl_lt.experiments import campaign
from keras_ssl_lt.experiments.presets import get_preset


def _cifar_like(per_class=60, test_per_class=8, classes=10, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class)
    x = (rng.integers(0, 40, (y.size, size, size, 3)) + 20 * y[:, None, None, None]).astype("uint8")
    yt = np.repeat(np.arange(classes), test_per_class)
    xt = (rng.integers(0, 40, (yt.size, size, size, 3)) + 20 * yt[:, None, None, None]).astype("uint8")
    return x, y, xt, yt


@pytest.fixture(scope="module")
def tiny_slice(tmp_path_factory):
    x, y, xt, yt = _cifar_like()
    path = tmp_path_factory.mktemp("slice") / "slice.npz"
    manifest = campaign.build_slice(x, y, xt, yt, path, ratio=0.1, bank_per_class=6, test_per_class=4)
    return path, manifest, (x, y, xt, yt)


def test_slice_is_lossless_and_holds_exactly_the_protocols_subsets(tiny_slice):
    from keras_ssl_lt.data import balanced_counterpart, make_subset

    path, manifest, (x, y, xt, yt) = tiny_slice
    s = campaign.load_slice(path)
    lt = make_subset(y, "exp", ratio=0.1, seed=0)
    bal = balanced_counterpart(y, lt, seed=0)
    union = np.union1d(lt.indices, bal.indices)
    assert manifest["train_index"] == union.tolist()
    # the delta encoding is lossless: the slice's images are the originals, bit for bit
    np.testing.assert_array_equal(s.data.source.images(union), x[union])
    test_index = np.asarray(manifest["test_index"])
    np.testing.assert_array_equal(s.data.test[0], xt[test_index])
    np.testing.assert_array_equal(s.data.test[1], yt[test_index])
    assert np.bincount(s.data.bank[1]).tolist() == [6] * 10 and np.isin(s.data.bank_index, union).all()
    # the subsets drawn from the slice are the full set's draws (same manifest hash as a draw here)
    spec_lt, spec_bal = campaign.grid_specs(
        [
            {"name": "lt", "method": "simsiam", "ratio": 0.1, "seed": 0, "epochs": 1},
            {"name": "bal", "method": "simsiam", "ratio": 1.0, "seed": 0, "epochs": 1},
        ],
        preset="smoke",
        counterpart_of=0.1,
    )
    cfg = get_preset("smoke")
    assert s.subset(spec_lt, cfg).indices.tolist() == lt.indices.tolist()
    assert s.subset(spec_bal, cfg).indices.tolist() == bal.indices.tolist()


def test_slice_refuses_tampering_and_runs_it_cannot_hold(tiny_slice, tmp_path):
    path, _, _ = tiny_slice
    with np.load(path) as f:
        parts = dict(f)
    m = json.loads(bytes(parts["manifest"]).decode())
    m["bank_index"] = m["bank_index"][1:]
    bad = tmp_path / "edited.npz"
    np.savez(bad, **dict(parts, manifest=np.frombuffer(json.dumps(m).encode(), np.uint8)))
    with pytest.raises(ValueError, match="does not match its hash"):
        campaign.load_slice(bad)
    flipped = parts["x_train_delta"].copy()
    flipped[0, 0, 0, 0] ^= 1
    np.savez(bad, **dict(parts, x_train_delta=flipped))
    with pytest.raises(ValueError, match="images do not match"):
        campaign.load_slice(bad)
    np.savez(bad, y_test=parts["y_test"])
    with pytest.raises(ValueError, match="not a campaign slice"):
        campaign.load_slice(bad)
    s = campaign.load_slice(path)
    cfg = get_preset("smoke")
    (step,) = campaign.grid_specs(
        [{"name": "s", "method": "simsiam", "profile": "step", "ratio": 0.1, "seed": 0, "epochs": 1}], preset="smoke"
    )
    with pytest.raises(ValueError, match="holds the profiles"):
        s.subset(step, cfg)
    (other,) = campaign.grid_specs(
        [{"name": "o", "method": "simsiam", "ratio": 0.5, "seed": 0, "epochs": 1}], preset="smoke"
    )
    with pytest.raises(ValueError, match="not inside this slice"):
        s.subset(other, cfg)


def test_grid_follows_the_issues_priorities_and_refuses_bad_entries():
    names = [e["name"] for e in campaign.CLAIM3_GRID]
    assert names[:6] == [
        "simsiam_lt_seed0",
        "rwsam_rank_seed0",
        "simsiam_balanced_seed0",
        "sam_seed0",
        "rwsam_kde_seed0",
        "asam_control_seed0",
    ]
    assert len(set(names)) == len(names) and "rwsam_rank_1600_seed0" in names
    specs = campaign.grid_specs(campaign.CLAIM3_GRID)
    assert len({s.run_id for s in specs}) == len(specs)
    assert all(s.preset == "paper" and s.method == "simsiam" for s in specs)
    with pytest.raises(ValueError, match="unknown key"):
        campaign.grid_specs([{"name": "x", "method": "simsiam", "ratio": 0.01, "seed": 0, "epochs": 1, "lr": 1}])
    with pytest.raises(ValueError, match="lacks"):
        campaign.grid_specs([{"name": "x", "method": "simsiam", "ratio": 0.01}])


def _record(spec, n, epochs, train_seconds, wall, slice_sha="s"):
    return {
        "run_id": spec.run_id,
        "spec": spec.to_dict(),
        "status": "done",
        "n": n,
        "history": {"loss": [0.0] * epochs},
        "timings": {"train_seconds": train_seconds},
        "wall_seconds": wall,
        "slice_sha256": slice_sha,
    }


def test_estimates_come_from_the_records_and_the_plan_fits_the_budget():
    grid = [
        {"name": "a", "method": "simsiam", "ratio": 0.01, "sharpness": "none", "seed": 0, "epochs": 10},
        {"name": "b", "method": "simsiam", "ratio": 0.01, "sharpness": "rwsam_rank", "seed": 0, "epochs": 10},
        {"name": "c", "method": "simsiam", "ratio": 0.01, "sharpness": "none", "seed": 1, "epochs": 10},
        {"name": "d", "method": "simsiam", "ratio": 0.01, "sharpness": "asam", "seed": 1, "epochs": 10},
    ]
    a, b, c, d = campaign.grid_specs(grid)
    sizes = {s.run_id: 1000 for s in (a, b, c, d)}
    # no records: the priors
    est, source = campaign.estimate_seconds(a, 1000, [])
    assert source == "prior"
    assert est == pytest.approx(1000 * 10 / campaign.PRIOR_IMAGES_PER_SECOND["plain"] + campaign.PRIOR_OVERHEAD_SECONDS)
    # one plain record: 1000 images x 10 epochs in 100 s (100 images/s), 20 s of overhead
    recs = [_record(a, 1000, 10, 100.0, 120.0)]
    assert campaign.estimate_seconds(c, 1000, recs) == (pytest.approx(120.0), "records")
    # a two-pass run without records of its kind: the plain rate scaled by the priors' ratio (1.96x)
    est_b, source = campaign.estimate_seconds(b, 1000, recs)
    assert source == "records" and est_b == pytest.approx(100.0 * 1.96 + 20.0)
    # the plan skips what is done (on this slice) and what does not fit, in grid order
    chosen = campaign.plan([a, b, c, d], recs, budget_seconds=340.0, sizes=sizes, slice_sha256="s")
    assert [s.run_id for s, _, _ in chosen] == [b.run_id, c.run_id]  # 216 + 120 <= 340; d no longer fits
    # a record measured on another slice is not done here
    chosen = campaign.plan([a], recs, budget_seconds=1e9, sizes=sizes, slice_sha256="other")
    assert [s.run_id for s, _, _ in chosen] == [a.run_id]


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") != "torch",
    reason="a whole chunk trains: once, on the fastest backend here (protocol.run is tested on every backend)",
)
def test_a_chunk_runs_writes_records_with_the_slice_hash_and_resumes(tiny_slice, tmp_path):
    from keras_ssl_lt.experiments.records import read_records

    path, manifest, _ = tiny_slice
    s = campaign.load_slice(path)
    grid = [
        {"name": "lt", "method": "simsiam", "ratio": 0.1, "sharpness": "none", "seed": 0, "epochs": 1},
        {"name": "rw", "method": "simsiam", "ratio": 0.1, "sharpness": "rwsam_rank", "seed": 0, "epochs": 1},
    ]
    specs = campaign.grid_specs(grid, preset="smoke", counterpart_of=0.1)
    cfg = get_preset("smoke")
    cfg["batch_size"] = 16
    out, committed = tmp_path / "out", tmp_path / "committed"
    logs = []
    new = campaign.run_chunk(s, specs[:1], cfg, committed, out, budget_seconds=1e4, verbose=0, log=logs.append)
    assert len(new) == 1 and new[0]["slice_sha256"] == manifest["sha256"]
    (rec,) = read_records(out)
    assert rec["conventions"]["precision"] == "float32" and 0.0 <= rec["metrics"]["knn_acc"] <= 1.0
    assert "floor_knn_acc" in rec["metrics"] and rec["estimated_seconds"] > 0
    # the next chunk skips the done run and, with no time left, starts nothing
    assert campaign.run_chunk(s, specs, cfg, committed, out, budget_seconds=0.0, verbose=0, log=logs.append) == []
    assert any("0 run(s) fit" in line for line in logs)


def test_report_pools_seeds_and_gives_verdicts_only_with_two_seeds_each():
    specs = {dict(s.extra)["campaign"]: s for s in campaign.grid_specs(campaign.CLAIM3_GRID)}

    def rec(name, few):
        return dict(
            _record(specs[name], 12406, 800, 300.0, 360.0),
            metrics={
                "knn_acc": 0.5,
                "floor_knn_acc": 0.3,
                "knn_acc_few": few,
                "probe_acc": 0.6,
                "floor_probe_acc": 0.35,
            },
        )

    records = [rec("simsiam_lt_seed0", 0.40), rec("simsiam_lt_seed1", 0.42), rec("rwsam_rank_seed0", 0.50)]
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in campaign.report(records).splitlines()[2:]}
    assert rows["simsiam_lt"][1:3] == ["2 of 3", "(baseline)"] and rows["simsiam_lt"][5] == "41.00 ± 1.41"
    assert rows["rwsam_rank"][1:3] == ["1 of 3", "not yet measured"]  # one seed: no verdict
    assert rows["sam"][1:3] == ["0 of 3", "not yet measured"] and rows["sam"][3] == ""
    records.append(rec("rwsam_rank_seed1", 0.52))
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in campaign.report(records).splitlines()[2:]}
    assert rows["rwsam_rank"][2] == "reproduced"  # +10 points, spread 1.4
    records[-1] = rec("rwsam_rank_seed1", 0.30)
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in campaign.report(records).splitlines()[2:]}
    assert rows["rwsam_rank"][2] == "not reproduced"


def test_the_authors_code_arm_is_unweighted_asam_with_both_batchnorm_updates():
    (spec,) = [
        s for s in campaign.grid_specs(campaign.CLAIM3_GRID) if dict(s.extra)["campaign"] == "authors_code_seed0"
    ]
    extra = dict(spec.extra)
    assert extra["sharpness"] == "asam" and extra["cfg.sharpness.bn_update"] == "both"
