"""RunSpec validation and ids, environment(), atomic record files."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_ssl_lt.experiments import (
    RunSpec,
    environment,
    read_record,
    read_records,
    record_path,
    to_jsonable,
    write_record,
)
from keras_ssl_lt.experiments import records as records_module


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": ""}, "method"),
        ({"method": 3}, "method"),
        ({"method": "simsiam", "ratio": 0.0}, "ratio"),
        ({"method": "simsiam", "ratio": 1.5}, "ratio"),
        ({"method": "simsiam", "ratio": True}, "ratio"),
        ({"method": "simsiam", "ratio": "0.1"}, "ratio"),
        ({"method": "simsiam", "sampling": 0}, "sampling"),
        ({"method": "simsiam", "sampling": 1.01}, "sampling"),
        ({"method": "simsiam", "seed": -1}, "seed"),
        ({"method": "simsiam", "seed": 1.0}, "seed"),
        ({"method": "simsiam", "seed": True}, "seed"),
        ({"method": "simsiam", "preset": ""}, "preset"),
        ({"method": "simsiam", "extra": {"ratio": 2}}, "clashes"),
        ({"method": "simsiam", "extra": {"x": object()}}, "extra"),
        ({"method": "simsiam", "extra": {"x": float("nan")}}, "finite"),
        ({"method": "simsiam", "extra": [("a", 1), ("a", 2)]}, "repeated"),
        ({"method": "simsiam", "extra": "sam"}, "extra"),
    ],
)
def test_runspec_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunSpec(**kwargs)


def test_runspec_normalises_and_round_trips():
    spec = RunSpec(
        "simsiam", ratio=1, sampling=np.float32(0.5), seed=np.int64(3), extra={"widths": [1, 2], "sharpness": "rwsam"}
    )
    assert spec.ratio == 1.0 and isinstance(spec.ratio, float)
    assert spec.sampling == 0.5 and isinstance(spec.seed, int)
    assert spec.extra == (("sharpness", "rwsam"), ("widths", (1, 2)))
    d = spec.to_dict()
    assert d["extra"] == {"sharpness": "rwsam", "widths": [1, 2]}
    back = RunSpec.from_dict(json.loads(json.dumps(d)))
    assert back == spec and back.run_id == spec.run_id and hash(back) == hash(spec)
    # extra given as pairs in any order freezes to the same spec
    assert RunSpec("simsiam", ratio=1, sampling=0.5, seed=3, extra=[("widths", (1, 2)), ("sharpness", "rwsam")]) == spec
    with pytest.raises(ValueError, match="unknown RunSpec fields"):
        RunSpec.from_dict({"method": "x", "lr": 0.1})


def test_run_id_is_readable_safe_and_pinned():
    spec = RunSpec("moco v2/x", profile="step", ratio=0.1, sampling=0.25, seed=2, extra={"sharpness": "sam"})
    rid = spec.run_id
    assert "/" not in rid and " " not in rid
    assert rid.startswith("moco_v2_x-cifar10-step-r0.1-s0.25-seed2-cpu-sharpness=sam-")
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    assert rid.endswith(hashlib.sha1(canonical.encode()).hexdigest()[:10])
    # Pinned: a change of the id scheme would orphan every existing results folder.
    assert (
        RunSpec("simsiam").run_id
        == "simsiam-cifar10-exp-r0.01-s1-seed0-cpu-"
        + hashlib.sha1(
            b'{"dataset":"cifar10","extra":{},"method":"simsiam","preset":"cpu","profile":"exp",'
            b'"ratio":0.01,"sampling":1.0,"seed":0}'
        ).hexdigest()[:10]
    )
    ids = {RunSpec("simsiam", seed=s, extra=e).run_id for s in (0, 1) for e in ({}, {"sharpness": "sam"})}
    assert len(ids) == 4


def test_group_key():
    a, b = RunSpec("byol", seed=0), RunSpec("byol", seed=1)
    assert a.group_key() == b.group_key() and a.group_key(exclude=()) != b.group_key(exclude=())
    assert dict(a.group_key(exclude=("seed", "extra"))) == {
        "method": "byol",
        "dataset": "cifar10",
        "profile": "exp",
        "ratio": 0.01,
        "sampling": 1.0,
        "preset": "cpu",
    }
    with pytest.raises(ValueError, match="exclude"):
        a.group_key(exclude=("lr",))


def test_environment_describes_this_process():
    env = environment()
    assert env["backend"] == keras.backend.backend()
    assert env["keras"] == keras.__version__
    assert env["backend_version"]  # jax / tensorflow / torch version string
    assert env["cpu_count"] >= 1 and isinstance(env["accelerators"], list)
    assert env["threads"]["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS")
    if keras.backend.backend() == "torch":
        import torch

        assert env["threads"]["torch_threads"] == torch.get_num_threads()
        assert env["threads"]["torch_mkldnn"] is bool(torch.backends.mkldnn.enabled)
    json.dumps(env)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="TensorFlow is the backend here")
def test_environment_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import keras_ssl_lt.experiments as ex\n"
        "before = 'tensorflow' in sys.modules\n"
        "ex.environment()\n"
        "print(before, 'tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = out.stdout.split()[-2:]
    assert after == before  # environment() itself imported nothing of TensorFlow


def test_to_jsonable():
    data = {
        "a": np.float32(0.5),
        "b": (1, np.int64(2)),
        "c": np.arange(2),
        "d": Path("x/y"),
        "e": RunSpec("simclr"),
        np.int64(3): np.bool_(True),
    }
    out = to_jsonable(data)
    assert out == {"a": 0.5, "b": [1, 2], "c": [0, 1], "d": "x/y", "e": RunSpec("simclr").to_dict(), "3": True}
    with pytest.raises(ValueError, match="JSON"):
        to_jsonable({"f": object()})


def test_write_and_read_records(tmp_path):
    spec = RunSpec("simsiam", seed=4)
    assert read_record(tmp_path, spec) is None
    path = write_record(tmp_path, {"spec": spec, "status": "done", "metrics": {"acc": np.float64(0.25)}})
    assert path == record_path(tmp_path, spec) == tmp_path / f"{spec.run_id}.json"
    rec = read_record(tmp_path, spec)
    assert rec["run_id"] == spec.run_id and rec["metrics"] == {"acc": 0.25}
    assert RunSpec.from_dict(rec["spec"]) == spec
    # overwrite in place
    write_record(tmp_path, {"spec": spec.to_dict(), "status": "done", "metrics": {"acc": 0.5}})
    assert read_record(tmp_path, spec)["metrics"]["acc"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    with pytest.raises(ValueError, match="spec"):
        write_record(tmp_path, {"metrics": {}})


def test_read_records_ignores_temp_and_non_records_and_reports_corrupt_files(tmp_path):
    assert read_records(tmp_path / "missing") == []
    for s in (2, 0, 1):
        write_record(tmp_path, {"spec": RunSpec("simclr", seed=s), "status": "done", "metrics": {"acc": s / 10}})
    # a leftover of a write killed before os.replace, and a JSON file that is not a record
    (tmp_path / f".tmp-{RunSpec('simclr', seed=9).run_id}.json.abc.part").write_text('{"spec": {"meth')
    (tmp_path / ".tmp-half.json").write_text("{")
    (tmp_path / "manifest.json").write_text(json.dumps({"indices": [1, 2]}))
    recs = read_records(tmp_path)
    assert sorted(r["spec"]["seed"] for r in recs) == [0, 1, 2]
    assert [r["run_id"] for r in recs] == sorted(r["run_id"] for r in recs)
    bad = tmp_path / "broken.json"
    bad.write_text('{"spec": {"method": "x"}, "status": "do')
    with pytest.raises(ValueError, match=r"broken.json"):
        read_records(tmp_path)


def test_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    spec = RunSpec("byol")
    write_record(tmp_path, {"spec": spec, "status": "done", "metrics": {"acc": 0.1}})

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(records_module.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_record(tmp_path, {"spec": spec, "status": "done", "metrics": {"acc": 0.9}})
    monkeypatch.undo()
    assert read_record(tmp_path, spec)["metrics"]["acc"] == 0.1  # the old record is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{spec.run_id}.json"]  # temp file removed
