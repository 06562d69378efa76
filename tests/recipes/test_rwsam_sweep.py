"""The radius / convention sweep of recipes/rwsam.py (issue 21) and the nested config overrides it relies on."""

import importlib.util
from pathlib import Path

import pytest

from keras_ssl_lt.experiments import protocol

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "rwsam.py"


def _recipe():
    spec = importlib.util.spec_from_file_location("recipe_rwsam_sweep", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sweep_specs_cover_every_radius_and_convention_once():
    mod = _recipe()
    grid = dict(mod.GRIDS["cpu"], variants=["none", "sam", "asam", "rwsam_rank"])
    plain = mod.grid_specs(grid, [0], "cpu", "cifar10")
    assert len(plain) == 5 and all(mod.RHO not in dict(s.extra) for s in plain)  # no sweep: ids as before
    specs = mod.grid_specs(
        grid, [0], "cpu", "cifar10", rhos=[0.5, 7.0], sam_rhos=[0.05], conventions=["keras", "coupled"]
    )
    # per convention: balanced + none + 1 SAM radius + 2 ASAM radii + 2 rwSAM radii = 7
    assert len(specs) == 14 and len({s.run_id for s in specs}) == 14
    extras = [dict(s.extra) for s in specs]
    assert sorted(e[mod.RHO] for e in extras if e["sharpness"] == "rwsam_rank") == [0.5, 0.5, 7.0, 7.0]
    assert {e[mod.CONVENTION] for e in extras} == {"keras", "coupled"}
    assert all(mod.SAM_RHO in e for e in extras if e["sharpness"] == "sam")


def test_nested_overrides_reach_the_config_and_refuse_a_non_dict():
    cfg = {"sharpness": {"rho": 7.0}, "epochs": 3}
    protocol._override(cfg, "sharpness.rho", 0.5)
    protocol._override(cfg, "optimizer.weight_decay_convention", "coupled")
    assert cfg == {"sharpness": {"rho": 0.5}, "epochs": 3, "optimizer": {"weight_decay_convention": "coupled"}}
    with pytest.raises(ValueError, match=r"'cfg.epochs' is not a dict"):
        protocol._override(cfg, "epochs.max", 1)


def test_sweep_flags_are_checked():
    mod = _recipe()
    with pytest.raises(SystemExit):
        mod.main(["--preset", "smoke", "--rhos", "0,1", "--dry-run", "--out", "/tmp/never"])
    with pytest.raises(SystemExit):
        mod.main(["--preset", "smoke", "--conventions", "torch", "--dry-run", "--out", "/tmp/never"])


def _row(sharpness, rho, knn, std, seeds):
    from_recipe = _recipe()
    row = {"profile": "exp", "ratio": 0.01, "sharpness": sharpness, from_recipe.RHO: rho, "n_seeds": seeds}
    row.update(knn_acc_mean=knn, knn_acc_std=std)
    return row


def test_the_control_pairs_rwsam_with_unweighted_asam_at_the_same_radius():
    mod = _recipe()
    rows = [
        _row("asam", 0.5, 0.40, 0.01, 3),
        _row("asam", 7.0, 0.30, 0.01, 3),
        _row("rwsam_rank", 0.5, 0.45, 0.01, 3),  # +5 points, spread 2: the weights help
        _row("rwsam_rank", 7.0, 0.305, 0.01, 3),  # +0.5 points: within the spread
        _row("rwsam_kde", 2.0, 0.50, 0.0, 3),  # no ASAM at radius 2: no line
    ]
    lines = mod.control_lines(rows, ["knn_acc"])
    assert lines == [
        "- exp, rho 0.5: rwsam_rank vs unweighted ASAM, knn_acc: +5.00 points → the weights help",
        "- exp, rho 7: rwsam_rank vs unweighted ASAM, knn_acc: +0.50 points → the weights help (within the seeds' "
        "spread)",
    ]
    one = mod.control_lines([_row("asam", 0.5, 0.40, 0.0, 1), _row("rwsam_rank", 0.5, 0.30, 0.0, 3)], ["knn_acc"])
    assert one == [
        "- exp, rho 0.5: rwsam_rank vs unweighted ASAM, knn_acc: -10.00 points → the weights do not help? "
        "(one seed: no verdict)"
    ]


def test_no_counterpart_drops_only_the_balanced_reference(capsys, tmp_path):
    mod = _recipe()
    grid = dict(mod.GRIDS["cpu"], variants=["asam", "rwsam_rank"])
    sweep = dict(rhos=[2.0], conventions=["keras", "coupled"])
    full = mod.grid_specs(grid, [3, 4], "cpu", "cifar10", **sweep)
    lean = mod.grid_specs(grid, [3, 4], "cpu", "cifar10", counterpart=False, **sweep)
    assert len(full) == 12 and len(lean) == 8
    # the same runs (same ids, so an existing results folder resumes), less the r = 1 ones
    assert [s.run_id for s in lean] == [s.run_id for s in full if s.ratio < 1]
    flags = ["--preset", "smoke", "--variants", "asam,rwsam_rank", "--seeds", "1", "--dry-run", "--out", str(tmp_path)]
    mod.main([*flags, "--no-counterpart"])
    assert "2 runs" in capsys.readouterr().out
    mod.main(flags)
    assert "3 runs" in capsys.readouterr().out
