"""The recipes against a hostile user (issue 20): a run's identity, bad flags and missing data, on every backend.

No test here trains: the protocol's run is replaced by a stub that returns plausible metrics (the recipes'
code paths around it, records, identity, flags and reports, are the real ones).
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_cifar10

from keras_ssl_lt.experiments import protocol, read_records
from keras_ssl_lt.experiments.cli import run_cli
from keras_ssl_lt.experiments.records import SetupError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"recipe_rel_{name}", RECIPES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _npz(path, n_per_class, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **synthetic_cifar10(n_train_per_class=n_per_class, n_test_per_class=2, seed=seed))
    return str(path)


@pytest.fixture
def stub_run(monkeypatch):
    """protocol.run replaced: no training; the calls are counted."""
    calls = []

    def run(spec, cfg, data, verbose=0, **kwargs):
        calls.append((spec.run_id, cfg["epochs"]))
        lt = spec.ratio < 1
        metrics = {"knn_acc": 0.5 - 0.1 * lt, "probe_acc": 0.6 - 0.1 * lt, "floor_knn_acc": 0.1, "floor_probe_acc": 0.1}
        return {"metrics": metrics, "n": 50, "config": cfg}

    monkeypatch.setattr(protocol, "run", run)
    return calls


def _gap_args(data, out, *more):
    return ["--preset", "smoke", "--data", data, "--no-ood", "--out", str(out), "--seeds", "1", "--verbose", "0", *more]


def test_other_epochs_or_other_data_of_the_same_name_are_refused(tmp_path, stub_run, capsys):
    gap = _load("robustness_gap")
    data = _npz(tmp_path / "a" / "D.npz", 6, seed=0)
    out = tmp_path / "R"
    records, _ = gap.main(_gap_args(data, out))
    assert len(records) == 4 and len(stub_run) == 4 and {e for _, e in stub_run} == {1}
    assert {r["identity"]["config"]["epochs"] for r in read_records(out)} == {1}
    # the same settings resume: nothing runs
    gap.main(_gap_args(data, out))
    assert len(stub_run) == 4
    # --epochs 3: refused before anything runs, with the setting named
    with pytest.raises(SetupError, match=r"config\.epochs: recorded 1, now 3"):
        gap.main(_gap_args(data, out, "--epochs", "3"))
    # a different file with the same name (other images, other n)
    other = _npz(tmp_path / "b" / "D.npz", 7, seed=1)
    with pytest.raises(SetupError, match=r"data\.sha256"):
        gap.main(_gap_args(other, out))
    assert len(stub_run) == 4
    # the dry run shows them as mismatched, not done
    capsys.readouterr()
    gap.main(_gap_args(data, out, "--epochs", "3", "--dry-run"))
    printed = capsys.readouterr().out
    assert "0 done, 0 to run" in printed and "4 mismatch" in printed and "config.epochs" in printed
    # on the command line: one line on stderr, exit status 2
    with pytest.raises(SystemExit) as e:
        run_cli(gap.main, _gap_args(other, out))
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: 4 of the 4 runs")


def test_the_ood_data_is_part_of_the_identity(tmp_path, stub_run):
    gap = _load("robustness_gap")
    data = _npz(tmp_path / "D.npz", 6, seed=0)
    ood_a, ood_b = _npz(tmp_path / "a" / "O.npz", 3, seed=2), _npz(tmp_path / "b" / "O.npz", 3, seed=3)
    base = ["--preset", "smoke", "--data", data, "--out", str(tmp_path / "R"), "--seeds", "1", "--verbose", "0"]
    gap.main([*base, "--ood-data", ood_a])
    with pytest.raises(SetupError, match=r"ood_data\.sha256"):
        gap.main([*base, "--ood-data", ood_b])
    with pytest.raises(SetupError, match="ood_data"):
        gap.main([*base, "--no-ood"])


def _argv_error(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "recipe, extra, flag, words",
    [
        ("robustness_gap", ["--epochs", "0"], "--epochs", "integer >= 1; got '0'"),
        ("robustness_gap", ["--epochs", "-1"], "--epochs", "integer >= 1"),
        ("robustness_gap", ["--ratios", "abc"], "--ratios", "'abc' is not a number"),
        ("robustness_gap", ["--ratios", "1.0"], "--ratios", "(0, 1)"),
        ("robustness_gap", ["--samplings", "0"], "--samplings", "(0, 1]"),
        ("robustness_gap", ["--methods", "bogus", "--dry-run"], "--methods", "unknown 'bogus'"),
        ("robustness_gap", ["--profiles", "zipf", "--dry-run"], "--profiles", "unknown 'zipf'"),
        ("robustness_gap", ["--data", "{folder}", "--dry-run"], "--data", "is a folder"),
        ("robustness_gap", ["--ood-data", "{folder}", "--dry-run"], "--ood-data", "is a folder"),
        ("robustness_gap", ["--data", "{missing}", "--dry-run"], "--data", "file not found"),
        ("robustness_gap", ["--out", "{file}", "--dry-run"], "--out", "is a file"),
        ("quickstart", ["--epochs", "0"], "--epochs", "integer >= 1"),
        ("rwsam", ["--epochs", "0"], "--epochs", "integer >= 1"),
        ("rwsam", ["--variants", "sam,bogus", "--dry-run"], "--variants", "unknown 'bogus'"),
        ("semi_synthetic", ["--epochs", "0"], "--epochs", "integer >= 1"),
        ("semi_synthetic", ["--methods", "bogus", "--dry-run"], "--methods", "unknown 'bogus'"),
        ("semi_synthetic", ["--data", "{folder}", "--dry-run"], "--data", "is a folder"),
        ("imagenet_lt", ["--epochs", "0", "--dry-run"], "--epochs", "integer >= 1"),
        ("imagenet_lt", ["--data", "{file}", "--dry-run"], "--data", "is a file, not a folder"),
    ],
)
def test_bad_flags_end_in_one_argparse_error_naming_the_flag(tmp_path, capsys, recipe, extra, flag, words):
    (tmp_path / "f.txt").write_text("x")
    subs = {"{folder}": str(tmp_path), "{file}": str(tmp_path / "f.txt"), "{missing}": str(tmp_path / "no.npz")}
    argv = [subs.get(a, a) for a in extra] + ["--out", str(tmp_path / "out")] * ("--out" not in extra)
    line = _argv_error(_load(recipe).main, argv, capsys)
    assert f"argument {flag}" in line and words in line, line
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_missing_tensorflow_datasets_dataset_is_one_line_naming_it_and_the_fix(tmp_path, stub_run, capsys):
    pytest.importorskip("tensorflow_datasets")
    data = _npz(tmp_path / "D.npz", 6, seed=0)
    empty_cache = tmp_path / "tfds"
    empty_cache.mkdir()
    quick = _load("quickstart")
    base = ["--preset", "smoke", "--out", str(tmp_path / "Q"), "--data-dir", str(empty_cache), "--verbose", "0"]
    with pytest.raises(SystemExit) as e:
        run_cli(quick.main, [*base, "--data", data])  # no --ood-data: cifar100 from tensorflow-datasets
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    line = err[-1]
    assert line.startswith("error: dataset cifar100 is not in the tensorflow-datasets cache"), err
    assert "--ood-data" in line and "--no-ood" in line and "download_and_prepare()" in line
    assert "Traceback" not in "\n".join(err)
    with pytest.raises(SetupError, match=r"dataset cifar10 is not in .*--data FILE.npz"):
        quick.main([*base, "--no-ood"])  # no --data: cifar10 from tensorflow-datasets
    assert stub_run == []  # nothing ran


def test_semi_synthetic_identity_holds_the_data(tmp_path, monkeypatch):
    semi = _load("semi_synthetic")
    data_a, data_b = _npz(tmp_path / "a" / "D.npz", 6, seed=0), _npz(tmp_path / "b" / "D.npz", 6, seed=1)
    out = tmp_path / "S"
    argv = ["--preset", "smoke", "--seeds", "1", "--methods", "untrained", "--out", str(out)]
    args = semi.parse_args([*argv, "--data", data_a])
    s = semi.settings(args)
    from keras_ssl_lt.experiments import run_grid

    def fake(spec):
        return {"metrics": {"rare_probe_acc": 0.3, "floor_rare_probe_acc": 0.3}}

    run_grid(semi.make_specs(args, s), fake, out / "records", verbose=0, identity=semi.identity(args, s))
    monkeypatch.setattr(semi, "Experiment", lambda *a: pytest.fail("the data were built before the check"))
    with pytest.raises(SetupError, match=r"data\.sha256"):
        semi.main([*argv, "--data", data_b])


def test_imagenet_lt_identity_holds_the_config_and_the_split_files(tmp_path):
    mod = _load("imagenet_lt")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ImageNet_LT_train.txt").write_text("a/1.jpg 0\n")
    (root / "ImageNet_LT_test.txt").write_text("a/2.jpg 0\n")
    base = ["--preset", "gpu", "--data", str(root), "--no-transfer", "--out", str(tmp_path / "o")]
    args = mod.parse_args(base)
    one = mod.identity(args, mod.get_config("gpu"))
    assert one == mod.identity(mod.parse_args(base), mod.get_config("gpu"))
    assert one != mod.identity(args, mod.get_config("gpu", epochs=3))
    (root / "ImageNet_LT_train.txt").write_text("a/1.jpg 0\nb/1.jpg 1\n")
    assert one["data"]["pool"]["sha256"] != mod.identity(args, mod.get_config("gpu"))["data"]["pool"]["sha256"]
    assert json.loads(json.dumps(one)) == one
