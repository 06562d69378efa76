"""docs/results.md's tables are generated from the committed records (scripts/results_tables.py), never typed."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_matches_its_records(tables):
    text = tables.PAGE.read_text()
    _, changed = tables.regenerate(text)
    assert not changed, (
        f"docs/results.md is out of date with docs/records: run python scripts/results_tables.py ({changed})"
    )
    # every table the script knows is on the page, so none can silently drop out of it
    for name in tables.BLOCKS:
        assert f"<!-- table: {name} " in text and f"<!-- end table: {name} -->" in text, name


def test_a_typed_number_is_caught(tables):
    text = tables.PAGE.read_text()
    start = text.index("<!-- table: rwsam_cpu ")
    row = text.index("| plain |", start)
    edited = text[:row] + text[row:].replace("41.89", "43.89", 1)
    assert edited != text
    new, changed = tables.regenerate(edited)
    assert changed == ["rwsam_cpu"] and new == text


def test_unknown_table_name_is_refused(tables):
    page = "<!-- table: nope (generated from docs/records by scripts/results_tables.py; do not edit) -->\nx\n<!-- end table: nope -->\n"
    with pytest.raises(ValueError, match="nope"):
        tables.regenerate(page)


def test_control_verdicts(tables):
    assert tables._verdict(0.02, 0.01, 1) == "one seed: no verdict"
    assert tables._verdict(0.005, 0.01, 3) == "within the seeds' spread"
    assert tables._verdict(0.02, 0.01, 3) == "the weights help"
    assert tables._verdict(-0.02, 0.01, 3) == "the weights hurt"
    w = {"m_mean": 0.50, "m_std": 0.01, "n_seeds": 3}
    c = {"m_mean": 0.47, "m_std": 0.02, "n_seeds": 2}
    d, spread, n = tables._beyond(w, c, "m")
    assert abs(d - 0.03) < 1e-12 and spread == 0.02 and n == 2  # the larger std, the fewer seeds


def test_convention_table_pairs_coupled_runs_with_their_keras_runs(tables, tmp_path, monkeypatch):
    """Each coupled-decay row is held against the Keras-decay row of the same regulariser, radius, r and length,
    with the campaign's spread rule; a coupled run without a Keras counterpart is left out."""
    import json

    from keras_ssl_lt.experiments import RunSpec

    def save(rec, folder):  # the record's id follows its edited spec; the file is named by it, as the runner does
        rec["run_id"] = RunSpec.from_dict(rec["spec"]).run_id
        (folder / f"{rec['run_id']}.json").write_text(json.dumps(rec))

    src = sorted((tables.RECORDS / "rwsam_sweep_cpu").glob("*-exp-r0.01-*-sharpness=none-*.json"))[:2]
    assert len(src) == 2
    keras_dir, coupled_dir = tmp_path / "k", tmp_path / "c"
    keras_dir.mkdir()
    coupled_dir.mkdir()
    keras_acc, coupled_acc = [], []
    for i, path in enumerate(src):
        rec = json.loads(path.read_text())
        (keras_dir / path.name).write_text(json.dumps(rec))
        keras_acc.append(rec["metrics"]["knn_acc"])
        rec["spec"]["extra"][tables.CONVENTION] = "coupled"
        rec["config"]["optimizer"]["weight_decay_convention"] = "coupled"
        rec["metrics"]["knn_acc"] += 0.10 + 0.01 * i  # coupled 10 and 11 points better
        coupled_acc.append(rec["metrics"]["knn_acc"])
        save(rec, coupled_dir)
    # a coupled SAM run with no Keras counterpart in k/
    sam = json.loads(src[0].read_text())
    sam["spec"]["extra"].update({"sharpness": "sam", tables.CONVENTION: "coupled"})
    save(sam, coupled_dir)
    monkeypatch.setattr(tables, "RECORDS", tmp_path)
    table = tables._convention_table(("k",), ("c",))
    rows = [line for line in table.splitlines() if line.startswith("| plain")]
    assert len(rows) == 1 and "SAM" not in table
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    diff = 100 * (sum(coupled_acc) - sum(keras_acc)) / 2
    assert cells[4] == "2 / 2"
    assert cells[6].startswith(f"{diff:+.2f} (spread ")
    assert cells[7] == "coupled better"
    assert tables._convention_table(("k",), ("k",)).startswith("(no coupled-decay run")


def _paired_by_file_name(folder):
    """rwSAM (rank) - ASAM few-shot kNN differences of `folder`, paired from the file names alone (the run name
    up to its hash, with the regulariser swapped): an independent check of the table's pairing."""
    import json

    diffs = []
    for path in sorted(folder.glob("*-exp-r0.01-*-sharpness=rwsam_rank-*.json")):
        stem = path.name.rsplit("-", 1)[0].replace("sharpness=rwsam_rank", "sharpness=asam")
        match = list(folder.glob(f"{stem}-*.json"))
        if len(match) == 1:
            w, c = (json.loads(p.read_text()) for p in (path, match[0]))
            if w["status"] == c["status"] == "done":
                diffs.append(w["metrics"]["knn_acc_few"] - c["metrics"]["knn_acc_few"])
    return diffs


def test_pooled_weights_pairs_each_rwsam_run_with_the_asam_run_of_its_seed(tables):
    import numpy as np
    from scipy.stats import t

    folder = tables.RECORDS / "rwsam_coupled_cpu"
    expect = np.asarray(_paired_by_file_name(folder))
    pairs = tables._weight_pairs(("rwsam_coupled_cpu",))
    assert len(pairs) == expect.size >= 6
    got = np.asarray([p["knn_acc_few"] for p in pairs])
    np.testing.assert_allclose(np.sort(got), np.sort(expect), atol=1e-12)
    half = t.ppf(0.975, expect.size - 1) * 100 * expect.std(ddof=1) / np.sqrt(expect.size)
    mean = 100 * expect.mean()
    assert tables._mean_ci(expect) == f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
    assert tables._mean_ci([0.012]) == "+1.20"


def test_pooled_weights_leave_out_an_unpaired_run(tables, tmp_path, monkeypatch):
    """A rwSAM run whose seed has no ASAM run of the same radius is not paired with another seed's."""
    import shutil

    src = tables.RECORDS / "rwsam_coupled_cpu"
    keep = [
        *src.glob("*-seed0-*-cfg.sharpness.rho=0.5-sharpness=rwsam_rank-*.json"),
        *src.glob("*-seed0-*-cfg.sharpness.rho=0.5-sharpness=asam-*.json"),
        *src.glob("*-seed1-*-cfg.sharpness.rho=0.5-sharpness=rwsam_rank-*.json"),  # its ASAM is left behind
    ]
    assert len(keep) == 3
    (tmp_path / "f").mkdir()
    for p in keep:
        shutil.copy(p, tmp_path / "f" / p.name)
    monkeypatch.setattr(tables, "RECORDS", tmp_path)
    pairs = tables._weight_pairs(("f",))
    assert [(p["seed"], p["radius"]) for p in pairs] == [(0, 0.5)]
    rows = tables._pooled_table([("only f", ("f",))]).splitlines()
    assert rows[2].split("|")[3].strip() == "1" and rows[3].split("|")[3].strip() == "1"  # the group, and all


def test_pooled_weights_rows_per_radius_add_up_to_all(tables):
    """The per-radius rows split the pooled pairs: their counts add up to the "all" row's."""
    rows = [r.split("|") for r in tables.BLOCKS["rwsam_weights_pooled"]().splitlines()[2:]]
    total = next(int(r[3]) for r in rows if "all of the above**" in r[1])
    per_radius = [int(r[3]) for r in rows if "at radius" in r[1]]
    assert len(per_radius) >= 2 and sum(per_radius) == total


def _fresh_copy(tables, tmp_path, shift):
    """A fake 'fresh' folder: seeds 0-2 of rwsam_sweep_cpu at radius 2, the rwSAM runs' few-shot probe set to
    their ASAM run's + `shift` (+ a small seed-dependent jitter), so the paired differences are known."""
    import json

    src = tables.RECORDS / "rwsam_sweep_cpu"
    out = tmp_path / "fresh"
    out.mkdir()
    asam = {}
    for path in sorted(src.glob("*-cfg.sharpness.rho=2-sharpness=asam-*.json")):
        rec = json.loads(path.read_text())
        asam[rec["spec"]["seed"]] = rec["metrics"]["probe_acc_few"]
        (out / path.name).write_text(json.dumps(rec))
    for path in sorted(src.glob("*-cfg.sharpness.rho=2-sharpness=rwsam_rank-*.json")):
        rec = json.loads(path.read_text())
        seed = rec["spec"]["seed"]
        rec["metrics"]["probe_acc_few"] = asam[seed] + shift + 0.001 * seed
        (out / path.name).write_text(json.dumps(rec))
    (tmp_path / "rwsam_sweep_cpu").symlink_to(src)  # the lead
    return sorted(asam)


@pytest.mark.parametrize(
    "shift, verdict",
    [(0.02, "replicates"), (-0.02, "does not replicate (interval below zero)"), (0.0, "does not replicate")],
)
def test_replication_verdict_follows_the_fresh_pairs_interval(tables, tmp_path, monkeypatch, shift, verdict):
    seeds = _fresh_copy(tables, tmp_path, shift)
    assert seeds == [0, 1, 2]
    monkeypatch.setattr(tables, "RECORDS", tmp_path)
    rows = [r.split(" | ") for r in tables._replication_table(("rwsam_sweep_cpu",), "fresh", 2.0).splitlines()[2:]]
    test = next(r for r in rows if "(the test)" in r[0])
    assert test[-1].rstrip(" |") == verdict
    assert test[3] == "3" and test[2] == "0-2"
    if shift == 0.02:  # +2.00, +2.10, +2.20 points
        assert test[6].startswith("+2.10 [")


def test_replication_lead_row_is_the_pooled_tables_radius_row(tables):
    """The replication table's lead row and the pooled table's radius-2 row pool the same pairs."""
    lead = tables.BLOCKS["rwsam_radius2_replication"]().splitlines()[2].split(" | ")
    pooled = next(r.split(" | ") for r in tables.BLOCKS["rwsam_weights_pooled"]().splitlines() if "at radius 2 |" in r)
    assert lead[3] == pooled[2] and lead[4:8] == pooled[3:7] and lead[8] == pooled[7].rstrip(" |")
