"""The recipes' smoke presets end to end (one backend is enough: the parts are tested on every backend).

Each runs the whole code path of its recipe on a tiny synthetic CIFAR-shaped .npz: subsets, pre-training,
evaluation beside the floor, records, resume, tables and figures.
"""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_cifar10

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") != "torch",
    reason="recipe smoke runs once, on the torch backend (the pieces are tested on every backend)",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    d = synthetic_cifar10(n_train_per_class=20, n_test_per_class=4, seed=0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, **d)
    return str(path)


def test_main_job_smoke_runs_resumes_and_reports(tiny_npz, tmp_path, capsys, monkeypatch):
    out = tmp_path / "main"
    args = ["--preset", "smoke", "--data", tiny_npz, "--ood-data", tiny_npz, "--out", str(out), "--verbose", "0"]
    records, verdicts = _load("quickstart").main(args)
    assert len(records) == 4 and all(r["status"] == "done" for r in records)
    assert {r["spec"]["method"] for r in records} == {"simclr", "supervised"}
    for r in records:
        assert "floor_knn_acc" in r["metrics"] and "ood_probe_acc" in r["metrics"]
        assert r["environment"]["backend"] == "torch" and r["wall_seconds"] > 0
    assert {v["metric"] for v in verdicts} == {"knn_acc", "probe_acc", "ood_probe_acc"}
    text = (out / "results.md").read_text()
    assert "floor" in text and "relative gap" in text and "Produced by: preset smoke" in text
    assert (out / "results_relative_gap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "results.md" in printed and "Verdict" in printed
    # resume: a second call runs nothing (a run would fail here) and reports the same records
    from keras_ssl_lt.experiments import protocol

    monkeypatch.setattr(protocol, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-ran")))
    again, _ = _load("quickstart").main(args)
    assert [r["run_id"] for r in again] == [r["run_id"] for r in records]


def test_robustness_gap_dry_run_lists_the_grid(tmp_path, capsys):
    _load("robustness_gap").main(["--preset", "cpu", "--dry-run", "--out", str(tmp_path / "rg")])
    printed = capsys.readouterr().out
    assert "24 runs" in printed  # 2 methods x (LT + balanced) x 2 sizes x 3 seeds
    assert not list((tmp_path / "rg").glob("*.json"))  # nothing ran


def test_robustness_gap_smoke_with_a_second_ratio(tiny_npz, tmp_path):
    out = tmp_path / "rg"
    records, verdicts = _load("robustness_gap").main(
        [
            "--preset",
            "smoke",
            "--data",
            tiny_npz,
            "--no-ood",
            "--out",
            str(out),
            "--seeds",
            "1",
            "--verbose",
            "0",
            "--methods",
            "simclr,supervised",
            "--ratios",
            "0.5,0.2",
        ]
    )
    assert len(records) == 8
    assert sorted({(v["metric"], v["ratio"]) for v in verdicts}) == [
        ("knn_acc", 0.2),
        ("knn_acc", 0.5),
        ("probe_acc", 0.2),
        ("probe_acc", 0.5),
    ]
    rows = (out / "results_gap_knn_acc.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header + 2 methods x 2 ratios


def test_rwsam_smoke(tiny_npz, tmp_path):
    out = tmp_path / "rw"
    records = _load("rwsam").main(
        ["--preset", "smoke", "--data", tiny_npz, "--no-ood", "--out", str(out), "--seeds", "1", "--verbose", "0"]
    )
    assert len(records) == 4
    sharp = sorted(
        json.loads(json.dumps(r["spec"]["extra"]))["sharpness"]
        if isinstance(r["spec"]["extra"], dict)
        else dict(r["spec"]["extra"])["sharpness"]
        for r in records
    )
    assert sharp == ["none", "none", "rwsam_kde", "rwsam_rank"]
    assert all("gen_gap" in r["metrics"] for r in records)
    assert "regulariser" in (out / "rwsam.md").read_text()


def test_longtail_methods_smoke_runs_resumes_and_reports(tmp_path, monkeypatch):
    # 40 images per class: the smoke preset's community split holds 4 per class out and draws r = 0.1.
    d = synthetic_cifar10(n_train_per_class=40, n_test_per_class=6, seed=0)
    data = tmp_path / "tiny40.npz"
    np.savez(data, **d)
    out = tmp_path / "lt"
    args = ["--preset", "smoke", "--data", str(data), "--seeds", "1", "--arms", "ts,bcl", "--out", str(out)]
    mod = _load("longtail_methods")
    records = mod.main(args)
    assert [r["spec"]["extra"]["arm"] for r in records] == ["ts", "bcl"]
    assert {r["spec"]["method"] for r in records} == {"simclr_ts", "bcl"}
    for r in records:
        m = r["metrics"]
        for key in ("probe_acc_few", "probe_balancedness", "probe_kshot2_acc", "lt_probe_acc", "lt_fewshot_acc"):
            assert key in m and f"floor_{key}" in m
        assert r["n"] == sum(r["counts"]) and r["counts"][0] == 36  # 40 - 4 held out, most frequent class first
        assert "rankme" in r["history"]
    assert "temperature" in records[0]["history"] and "strength" in records[1]["history"]
    text = (out / "longtail.md").read_text()
    assert "ID probe on a balanced set" in text and "TS / SDCLR-style probe" in text and "probe_kshot2_acc" in text
    from keras_ssl_lt.experiments import protocol

    monkeypatch.setattr(protocol, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-ran")))
    assert [r["run_id"] for r in mod.main(args)] == [r["run_id"] for r in records]


def test_longtail_methods_refuses_ood_data(tmp_path):
    with pytest.raises(SystemExit):
        _load("longtail_methods").main(
            ["--preset", "smoke", "--ood-data", str(RECIPES / "rwsam.py"), "--out", str(tmp_path)]
        )
