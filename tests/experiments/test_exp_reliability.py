"""What a hostile user tried against the runner and the records (issue 20, findings 1, 3, 8 and 9).

A run's identity (settings and data besides its spec) is stored and checked; records are validated when
read; `--out` naming a file and a folder locked by a live grid are refused before anything runs; records
and tables get the mode of ordinary files; temporary files of killed writes are removed.
"""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from keras_ssl_lt.experiments import RunSpec, read_record, read_records, record_path, run_grid, to_csv, write_record
from keras_ssl_lt.experiments.lock import LOCK_NAME, FolderLock
from keras_ssl_lt.experiments.records import SetupError, check_record, fingerprint
from keras_ssl_lt.experiments.runner import check_grid


def specs():
    return [RunSpec("simclr", ratio=r, seed=0, preset="smoke") for r in (1.0, 0.1)]


class Calls:
    def __init__(self):
        self.calls = []

    def __call__(self, spec):
        self.calls.append(spec.run_id)
        return {"metrics": {"knn_acc": 0.4}, "n": 10}


def ident(epochs=1, sha="a" * 64):
    return {"config": {"epochs": epochs, "lr": 0.1}, "data": {"file": "D.npz", "sha256": sha}, "keras_ssl_lt": "x"}


# ---------------------------------------------------------------------------------------------- identity


def test_other_settings_are_refused_not_reused(tmp_path):
    run_grid(specs(), Calls(), tmp_path, verbose=0, identity=ident(epochs=1))
    assert read_record(tmp_path, specs()[0])["identity"] == ident(epochs=1)
    fn = Calls()
    with pytest.raises(SetupError, match=r"config\.epochs: recorded 1, now 3") as e:
        run_grid(specs(), fn, tmp_path, verbose=0, identity=ident(epochs=3))
    assert "2 of the 2 runs" in str(e.value) and "--out" in str(e.value)
    assert fn.calls == []  # nothing ran
    with pytest.raises(SetupError, match=r"data.sha256"):  # another file of the same name
        run_grid(specs(), fn, tmp_path, verbose=0, identity=ident(sha="b" * 64))
    with pytest.raises(SetupError, match="epochs"):
        check_grid(specs(), tmp_path, identity=ident(epochs=3))
    assert check_grid(specs(), tmp_path, identity=ident()) == ["done", "done"]
    # the same identity resumes: nothing runs, the old records come back
    again = run_grid(specs(), fn, tmp_path, verbose=0, identity=ident())
    assert fn.calls == [] and [r["metrics"]["knn_acc"] for r in again] == [0.4, 0.4]


def test_dry_run_shows_mismatched_runs(tmp_path, capsys):
    run_grid(specs()[:1], Calls(), tmp_path, verbose=0, identity=ident(epochs=1))
    plan = run_grid(specs(), Calls(), tmp_path, dry_run=True, identity=ident(epochs=3))
    assert [p["status"] for p in plan] == ["mismatch", "todo"]
    assert "config.epochs: recorded 1, now 3" in plan[0]["mismatch"]
    out = capsys.readouterr().out
    assert "0 done, 1 to run" in out and "1 mismatch" in out and "config.epochs" in out


def test_records_without_identity_are_refused_when_the_grid_has_one(tmp_path):
    run_grid(specs(), Calls(), tmp_path, verbose=0)  # an older record: no identity
    with pytest.raises(SetupError, match="without an identity"):
        run_grid(specs(), Calls(), tmp_path, verbose=0, identity=ident())


def test_a_failed_run_of_other_settings_is_retried(tmp_path):
    def boom(spec):
        raise RuntimeError("crash")

    run_grid(specs(), boom, tmp_path, verbose=0, keep_going=True, identity=ident(epochs=1))
    fn = Calls()
    recs = run_grid(specs(), fn, tmp_path, verbose=0, identity=ident(epochs=3))
    assert len(fn.calls) == 2 and all(r["identity"]["config"]["epochs"] == 3 for r in recs)


def test_fingerprint_tells_files_of_the_same_name_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "D.npz").write_bytes(b"one")
    (tmp_path / "b" / "D.npz").write_bytes(b"two")
    fa, fb = fingerprint(tmp_path / "a" / "D.npz"), fingerprint(tmp_path / "b" / "D.npz")
    assert fa["file"] == fb["file"] == "D.npz" and fa["sha256"] != fb["sha256"]
    with pytest.raises(ValueError, match="existing file"):
        fingerprint(tmp_path / "a")


# ---------------------------------------------------------------------------------------------- records


def _written(tmp_path, **changes):
    spec = RunSpec("simsiam", ratio=0.1, seed=1)
    path = write_record(tmp_path, {"spec": spec, "status": "done", "metrics": {"knn_acc": 0.3}, "n": 5})
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return spec, path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"metrics": {"knn_acc": 26.15}}, r"metrics\['knn_acc'\] is an accuracy, a fraction in \[0, 1\]; got 26.15"),
        ({"metrics": {"probe_acc_few": -0.1}}, "probe_acc_few"),
        ({"metrics": {"knn_acc": "0.3"}}, r"metrics\['knn_acc'\] must be a number"),
        ({"metrics": {"knn_acc": True}}, "must be a number"),
        ({"metrics": None}, "missing key 'metrics'"),
        ({"metrics": []}, "'metrics' must be a non-empty object"),
        ({"status": "finished"}, "'status' must be one of"),
        ({"status": None}, "missing key 'status'"),
        ({"spec": None}, "missing key 'spec'"),
        ({"spec": "simsiam"}, "'spec' must be an object"),
        ({"run_id": "other"}, "'run_id' 'other' is not its spec's id"),
        ({"n": "5"}, "'n' must be an integer"),
        ({"wall_seconds": -1}, "'wall_seconds'"),
        ({"identity": [1]}, "'identity' must be an object"),
    ],
)
def test_invalid_records_are_refused_naming_the_file_and_the_key(tmp_path, changes, match):
    spec, path = _written(tmp_path, **changes)
    with pytest.raises(ValueError, match=match) as e:
        read_record(tmp_path, spec)
    assert str(path) in str(e.value)
    with pytest.raises(ValueError, match=match):
        read_records(tmp_path)
    with pytest.raises(ValueError, match=match):  # and the grid does not start on it
        run_grid([spec], Calls(), tmp_path, verbose=0)


def test_an_edited_spec_is_not_used_under_another_runs_file_name(tmp_path):
    spec, path = _written(tmp_path)
    data = json.loads(path.read_text())
    data["spec"]["ratio"] = 0.01
    data["run_id"] = RunSpec.from_dict(data["spec"]).run_id  # consistent inside, but not with the file's name
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not the file's name") as e:
        read_record(tmp_path, spec)
    assert path.name in str(e.value)
    with pytest.raises(ValueError, match="not the file's name"):
        read_records(tmp_path)


def test_valid_records_pass_and_nan_accuracies_are_allowed(tmp_path):
    spec = RunSpec("simsiam")
    rec = {"spec": spec, "status": "done", "metrics": {"knn_acc": 1.0, "knn_acc_medium": float("nan"), "gen_gap": 7}}
    write_record(tmp_path, rec)
    back = read_record(tmp_path, spec)
    assert back["metrics"]["knn_acc"] == 1.0 and back["metrics"]["gen_gap"] == 7
    failed = {"spec": spec.to_dict(), "run_id": spec.run_id, "status": "failed", "error": "x"}
    assert check_record(failed) is failed  # a failed run has no metrics


def test_a_run_returning_a_percentage_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="fraction"):
        run_grid(specs()[:1], lambda s: {"metrics": {"knn_acc": 26.15}}, tmp_path, verbose=0)
    assert not record_path(tmp_path, specs()[0]).exists()


# ---------------------------------------------------------------------------------------------- --out, lock


def test_out_naming_a_file_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "results"
    out.write_text("not a folder")
    fn = Calls()
    for kwargs in ({}, {"dry_run": True}):
        with pytest.raises(SetupError, match="is a file, not a folder"):
            run_grid(specs(), fn, out, verbose=0, **kwargs)
    with pytest.raises(SetupError, match="is a file"):
        check_grid(specs(), out)
    assert fn.calls == [] and out.read_text() == "not a folder"


def _hold_lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": socket.gethostname(), "started": time.time(), "proc_start": None, "token": "t"}
    (folder / LOCK_NAME).write_text(json.dumps(owner))


def test_a_folder_locked_by_a_live_grid_is_refused(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold_lock(tmp_path, other.pid)
        fn = Calls()
        with pytest.raises(SetupError, match=f"another grid runs into .*pid {other.pid}"):
            run_grid(specs(), fn, tmp_path, verbose=0)
        with pytest.raises(SetupError, match="another grid runs"):
            check_grid(specs(), tmp_path)
        assert fn.calls == [] and (tmp_path / LOCK_NAME).exists()  # the other grid's lock is left alone
        run_grid(specs(), fn, tmp_path, dry_run=True, verbose=0)  # a dry run reads only
    finally:
        other.kill()
        other.wait()
    # its process is gone: the stale lock is taken over, and removed when the grid ends
    recs = run_grid(specs(), Calls(), tmp_path, verbose=0)
    assert len(recs) == 2 and not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_held_during_the_grid_and_removed_after_it_even_on_error(tmp_path):
    seen = []

    def fn(spec):
        owner = json.loads((tmp_path / LOCK_NAME).read_text())
        seen.append(owner["pid"])
        with pytest.raises(SetupError, match="another grid runs"):  # a second grid into the same folder
            run_grid(specs(), Calls(), tmp_path, verbose=0)
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        run_grid(specs(), fn, tmp_path, verbose=0)
    assert seen == [os.getpid()] and not (tmp_path / LOCK_NAME).exists()


def test_a_lock_of_this_pid_left_by_an_earlier_process_is_stale(tmp_path):
    _hold_lock(tmp_path, os.getpid())  # e.g. a container restarted with the same pid
    assert len(run_grid(specs(), Calls(), tmp_path, verbose=0)) == 2
    with FolderLock(tmp_path):
        assert FolderLock(tmp_path).holder() is not None


# ---------------------------------------------------------------------------------------------- files


def test_records_and_tables_get_the_mode_of_ordinary_files(tmp_path):
    old = os.umask(0o022)
    try:
        run_grid(specs()[:1], Calls(), tmp_path, verbose=0)
        to_csv([{"a": 1}], tmp_path / "table.csv")
        (tmp_path / "table.md").write_text("| a |")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_stale_temporary_files_are_removed_by_the_next_grid(tmp_path):
    stale = tmp_path / f".tmp-{specs()[0].run_id}.json.abc123.part"
    fresh = tmp_path / ".tmp-table.csv.def456.part"
    stale.write_text('{"spec": ')
    fresh.write_text("a,b")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    run_grid(specs(), Calls(), tmp_path, verbose=0)
    assert not stale.exists()
    assert fresh.exists()  # may be a write in progress
    run_grid(specs(), Calls(), tmp_path, dry_run=True, verbose=0)  # a dry run deletes nothing
    assert fresh.exists()


def test_a_per_run_identity_refuses_only_the_runs_whose_own_settings_changed(tmp_path):
    from keras_ssl_lt.experiments.study import method_identity

    two = [RunSpec("simclr", seed=0), RunSpec("bcl", seed=0)]

    def ident(bcl_beta):
        return method_identity({"config": {"epochs": 1, "methods": {"simclr": {"lr": 0.5}, "bcl": {"beta": bcl_beta}}}})

    run_grid(two, Calls(), tmp_path, verbose=0, identity=ident(0.97))
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    methods = {r["spec"]["method"]: r["identity"]["config"]["methods"] for r in records}
    assert methods == {"simclr": {"simclr": {"lr": 0.5}}, "bcl": {"bcl": {"beta": 0.97}}}
    # Another BCL momentum: SimCLR's record is still valid, BCL's is a mismatch.
    plan = run_grid(two, Calls(), tmp_path, dry_run=True, identity=ident(0.9))
    assert [p["status"] for p in plan] == ["done", "mismatch"]
    with pytest.raises(ValueError, match="identity"):
        run_grid(two, Calls(), tmp_path, verbose=0, identity=lambda spec: "not a dict")
