"""The recipes' command-line convention."""

import argparse

import pytest

from keras_ssl_lt.experiments import add_common_args, parse_seeds, print_outputs


@pytest.mark.parametrize(
    "text, seeds",
    [
        ("3", [0, 1, 2]),
        ("1", [0]),
        ("0,1,2", [0, 1, 2]),
        ("4,2,7", [4, 2, 7]),
        ("7,", [7]),
        (" 5 , 6 ", [5, 6]),
        (2, [0, 1]),
    ],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text, match",
    [
        ("0", "write '0,'"),
        ("-2", "count"),
        ("a,b", "list"),
        ("", "count"),
        (",", "no seed"),
        ("1,1", "repeats"),
        ("0,-1", "non-negative"),
        (None, "count"),
    ],
)
def test_parse_seeds_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_seeds(text)


def test_common_args_defaults_and_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c10.npz").write_bytes(b"")
    parser = add_common_args(
        argparse.ArgumentParser(), {"smoke": {}, "cpu": {}, "gpu": {}}, "results/gap", default_seeds="3"
    )
    args = parser.parse_args([])
    assert (args.preset, args.data, args.out, args.seeds, args.dry_run) == (
        "cpu",
        None,
        "results/gap",
        [0, 1, 2],
        False,
    )
    args = parser.parse_args(["--preset", "smoke", "--data", "c10.npz", "--out", "o", "--seeds", "5,6", "--dry-run"])
    assert (args.preset, args.data, args.out, args.seeds, args.dry_run) == ("smoke", "c10.npz", "o", [5, 6], True)
    first = add_common_args(argparse.ArgumentParser(), ["smoke", "paper"], "out")
    assert first.parse_args([]).preset == "smoke" and first.parse_args([]).seeds == [0]


def test_common_args_reject_bad_values(capsys):
    parser = add_common_args(argparse.ArgumentParser(), ["smoke", "cpu"], "out")
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "tpu"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--seeds", "1,1"])
    assert "repeats a seed" in capsys.readouterr().err
    with pytest.raises(ValueError, match="default_preset"):
        add_common_args(argparse.ArgumentParser(), ["smoke"], "out", default_preset="cpu")
    with pytest.raises(ValueError, match="presets"):
        add_common_args(argparse.ArgumentParser(), [], "out")
    with pytest.raises(ValueError, match="parser"):
        add_common_args(None, ["cpu"], "out")


def test_print_outputs(tmp_path, capsys):
    table = tmp_path / "table.md"
    table.write_text("| a |")
    printed = print_outputs({"table": table, "figure": tmp_path / "gap.png"})
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["outputs:", f"  table   {table}", f"  figure  {tmp_path / 'gap.png'}  (missing)"]
    assert printed == [table, tmp_path / "gap.png"]
    print_outputs([table])
    assert capsys.readouterr().out.splitlines() == ["outputs:", f"  {table}"]
