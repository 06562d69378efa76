"""The three study reports (robustness gap, rwSAM, ImageNet-LT) on fixed records: the Markdown and CSV tables are
exactly the ones the reports wrote before they shared one skeleton (`experiments.report.write_report`).

The snapshots in `report_snapshots/` were written by the reports as they were before that change (commit
8c203b8); `KSL_WRITE_REPORT_SNAPSHOTS=1` rewrites them (only after checking a change of the tables by eye).
"""

import importlib.util
import os
from pathlib import Path

import pytest

from keras_ssl_lt.experiments import robustness

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SNAPSHOTS = Path(__file__).resolve().parent / "report_snapshots"
ENV = {
    "backend": "jax",
    "backend_version": "0.4.30",
    "cpu_model": "Test CPU",
    "cpu_count": 2,
    "accelerators": [],
}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"recipe_snap_{name}", RECIPES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(spec, metrics, n=1000, **more):
    return {
        "spec": spec.to_dict(),
        "status": "done",
        "run_id": spec.run_id,
        "environment": ENV,
        "wall_seconds": 61.5,
        "metrics": metrics,
        "n": n,
        **more,
    }


def _acc(base, seed, floor=0.1):
    return base + 0.013 * seed, floor + 0.002 * seed


def gap_records():
    out = []
    for spec in robustness.gap_grid(["simclr", "supervised"], ["exp"], [0.1, 0.01], [1.0, 0.5], [0, 1], "cpu"):
        drop = 0.0 if spec.ratio == 1.0 else (0.05 if spec.ratio == 0.1 else 0.12)
        drop *= 1.5 if spec.method == "supervised" else 1.0
        m = {}
        for i, name in enumerate(("knn_acc", "probe_acc", "ood_probe_acc")):
            acc, floor = _acc(0.6 - 0.1 * i - drop + 0.03 * spec.sampling, spec.seed)
            m[name], m[f"floor_{name}"] = acc, floor
        m["knn_acc"] = m["floor_knn_acc"] + 0.01 if spec.method == "simclr" and spec.seed == 0 else m["knn_acc"]
        out.append(_record(spec, m, n=int(12406 * spec.sampling)))
    return out


def rwsam_records():
    mod = _load("rwsam")
    grid = {"method": "simclr", "profiles": ["exp"], "ratio": 0.01, "variants": ["none", "sam", "rwsam_rank"]}
    out = []
    for k, spec in enumerate(mod.grid_specs(grid, [0, 1], "cpu", "cifar10")):
        m = {}
        for name in mod.METRICS:
            if name.startswith("gen_gap"):
                m[name] = 0.4 - 0.03 * k + 0.01 * spec.seed
            else:
                m[name], m[f"floor_{name}"] = _acc(0.4 + 0.02 * k, spec.seed)
        out.append(_record(spec, m, n=12406))
    return out


def imagenet_records():
    mod = _load("imagenet_lt")
    out = []
    for k, spec in enumerate(mod.grid_specs("moco_v2", "pareto", 0.004, [0, 1], "smoke", "imagenet_lt:x", True)):
        m = {}
        for name in mod.METRICS:
            m[name], m[f"floor_{name}"] = _acc(0.3 + 0.02 * k, spec.seed, floor=0.05)
        out.append(_record(spec, m, n=115846, timings={"seconds_per_epoch": 10.0 + k}))
    return out


def _tables(out):
    return {p.name: p.read_text() for p in sorted(Path(out).iterdir()) if p.suffix in (".md", ".csv")}


def _reports(tmp_path):
    (tmp_path / "gap").mkdir()
    (tmp_path / "rw").mkdir()
    (tmp_path / "in").mkdir()
    text, paths, _verdicts = robustness.report(gap_records(), tmp_path / "gap", title="Gap", floor_margin=0.05)
    yield "gap", text, paths, _tables(tmp_path / "gap")
    text, paths = _load("rwsam").report(rwsam_records(), tmp_path / "rw")
    yield "rwsam", text, paths, _tables(tmp_path / "rw")
    text, paths = _load("imagenet_lt").report(imagenet_records(), tmp_path / "in", title="MoCo v2 on ImageNet-LT")
    yield "imagenet_lt", text, paths, _tables(tmp_path / "in")


def test_reports_write_the_same_tables(tmp_path):
    pytest.importorskip("matplotlib")
    for name, text, paths, tables in _reports(tmp_path):
        folder = SNAPSHOTS / name
        if os.environ.get("KSL_WRITE_REPORT_SNAPSHOTS") == "1":
            folder.mkdir(parents=True, exist_ok=True)
            for f, content in tables.items():
                (folder / f).write_text(content)
            (folder / "paths.txt").write_text("\n".join(f"{k} {Path(v).name}" for k, v in paths.items()) + "\n")
        expected = {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".md", ".csv")}
        assert sorted(tables) == sorted(expected), name
        for f in expected:
            assert tables[f] == expected[f], f"{name}/{f} differs"
        assert text == tables[Path(paths["table"]).name]  # the returned text is the Markdown file
        listed = "\n".join(f"{k} {Path(v).name}" for k, v in paths.items()) + "\n"
        assert listed == (folder / "paths.txt").read_text(), name  # the same outputs, in the same order
        assert Path(paths["figure"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
