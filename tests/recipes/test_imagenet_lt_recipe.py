"""recipes/imagenet_lt.py at smoke scale, on every backend: generated images in ImageNet-LT's layout with split
files, streamed MoCo v2 pre-training, kNN / linear probe on a balanced subset, fine-tuning transfer, records,
table and figure; the balanced counterpart and rwSAM once (PyTorch, the fastest here)."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "imagenet_lt.py"


def _load():
    spec = importlib.util.spec_from_file_location("recipe_imagenet_lt", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_presets_follow_the_paper():
    mod = _load()
    paper = mod.get_config("paper")
    moco = paper["methods"]["moco_v2"]
    assert paper["backbone"]["name"] == "resnet50" and paper["input_size"] == 224 and paper["batch_size"] == 128
    assert (moco["queue_size"], moco["momentum"], moco["temperature"], moco["lr"]) == (65536, 0.999, 0.2, 0.015)
    assert paper["optimizer"]["weight_decay"] == 1e-4 and paper["augment_preset"] == "moco_v2_imagenet"
    assert paper["sharpness"] == {"rho": 2.0, "rank_base": 1.005} and paper["eval"]["probe"] == "paper"
    assert mod.get_config("gpu", epochs=3)["epochs"] == 3
    with pytest.raises(ValueError, match="preset"):
        mod.get_config("cpu")


def test_dry_run_lists_the_grid(tmp_path, capsys):
    _load().main(["--preset", "smoke", "--dry-run", "--rwsam", "--seeds", "2", "--out", str(tmp_path / "d")])
    assert "6 runs" in capsys.readouterr().out  # (balanced + LT + LT rwSAM) x 2 seeds
    assert not (tmp_path / "d" / "smoke_data").exists()  # a dry run generates nothing


def test_smoke_end_to_end(tmp_path, capsys):
    out = tmp_path / "ilt"
    mod = _load()
    records = mod.main(["--preset", "smoke", "--out", str(out), "--no-balanced", "--verbose", "0"])
    assert len(records) == 1 and records[0]["status"] == "done"
    r = records[0]
    m = r["metrics"]
    for k in ("knn_acc", "probe_acc", "probe_acc_few", "transfer_acc", "floor_probe_acc", "floor_transfer_acc"):
        assert 0.0 <= m[k] <= 1.0, k
    assert r["spec"]["method"] == "moco_v2" and r["spec"]["profile"] == "pareto"
    assert r["config"]["stream"]["image_size"] == 20 and r["timings"]["seconds_per_epoch"] > 0
    assert r["data"]["transfer_train"] > 0 and r["n"] == r["data"]["lt_n"]
    data = out / "smoke_data"
    line = (data / "ImageNet_LT_train.txt").read_text().splitlines()[0]
    assert line.startswith("train/n00000000/n00000000_0.JPEG ") and line.endswith(" 0")
    assert (out / "imagenet_lt.md").read_text().count("| moco_v2 |") == 1
    assert (out / "imagenet_lt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "imagenet_lt.md" in capsys.readouterr().out
    assert (
        mod.main(["--preset", "smoke", "--out", str(out), "--no-balanced", "--verbose", "0"])[0]["run_id"]
        == (r["run_id"])
    )  # resumed: nothing re-runs


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "torch", reason="once, on the fastest backend here")
def test_smoke_balanced_and_rwsam_with_the_published_split(tmp_path):
    """The LT subset given as a split file within the pool (as ImageNet_LT_train.txt in full ImageNet), SimSiam."""
    mod = _load()
    data = mod.make_smoke_data(tmp_path / "data")
    lines = (data / "ImageNet_LT_train.txt").read_text().splitlines()
    per = mod.SMOKE_DATA["pool_per_class"]
    keep = [ln for c in range(mod.SMOKE_DATA["classes"]) for ln in lines[c * per : c * per + max(2, 16 - 3 * c)]]
    (data / "lt.txt").write_text("\n".join(keep) + "\n")
    out = tmp_path / "ilt"
    args = ["--preset", "smoke", "--data", str(data), "--lt-split", "lt.txt", "--out", str(out), "--verbose", "0"]
    records = mod.main(args + ["--no-transfer", "--rwsam", "--method", "simsiam"])  # transfer: tested above
    assert len(records) == 3
    by = {json.dumps(r["spec"]["extra"], sort_keys=True): r for r in records}
    assert {r["spec"]["profile"] for r in records} == {"split"} and {r["n"] for r in records} == {len(keep)}
    sharp = sorted(dict(r["spec"]["extra"])["sharpness"] for r in records)
    assert sharp == ["none", "none", "rwsam_rank"] and len(by) == 3
    assert records[0]["config"]["sharpness"] == {"rho": 2.0, "rank_base": 1.005}
