"""Run specifications and their JSON records: one run = one `RunSpec` = one file in a results folder.

A `RunSpec` names a run by what determines it: (method, dataset, profile, ratio, sampling, seed, preset)
plus optional `extra` settings such as `sharpness="rwsam"`. Its `run_id` is a readable, filesystem-safe
name followed by a short SHA-1 of the spec's canonical JSON, so the same spec gets the same file name in
every process and on every machine. Records are written atomically (temporary file in the same folder,
fsync, `os.replace`), so a killed run never leaves a half-written record behind.

Example:

>>> import tempfile
>>> spec = RunSpec("simsiam", ratio=0.01, seed=1)
>>> spec.run_id.startswith("simsiam-cifar10-exp-r0.01-s1-seed1-cpu-")
True
>>> folder = tempfile.mkdtemp()
>>> path = write_record(folder, {"spec": spec.to_dict(), "status": "done", "metrics": {"knn_top1": 0.41}})
>>> read_record(folder, spec)["metrics"]
{'knn_top1': 0.41}
>>> [r["run_id"] for r in read_records(folder)] == [spec.run_id]
True
"""

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from keras_ssl_lt._checks import check_fraction
from keras_ssl_lt.experiments.machine import environment

__all__ = [
    "RunSpec",
    "SetupError",
    "check_record",
    "environment",
    "fingerprint",
    "read_record",
    "read_records",
    "record_path",
    "remove_stale_temp_files",
    "to_jsonable",
    "write_record",
]

_SCALARS = (str, int, float, bool, type(None))
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".part"
STATUSES = ("done", "failed")
# Metrics named like these are accuracies, stored as fractions in [0, 1] (NaN allowed: an empty class group).
_ACCURACY = re.compile(r"(^|_)(acc|accuracy|top\d+)(_|$)")


class SetupError(ValueError):
    """A grid that cannot start as set up (its output folder, its records or its data); raised before any run.

    The recipes print it as one line (`keras_ssl_lt.experiments.cli.run_cli`) instead of a traceback.

    >>> issubclass(SetupError, ValueError)
    True
    """


def _freeze_value(key, value):
    """An `extra` value as a hashable, JSON-able scalar or tuple of scalars."""
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"`extra[{key!r}]` must be finite; got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(key, v) for v in value)
    raise ValueError(
        f"`extra[{key!r}]` must be a str, int, float, bool, None or a list/tuple of those; got {type(value).__name__}"
    )


def _freeze_extra(extra):
    if extra is None:
        return ()
    if isinstance(extra, dict):
        items = list(extra.items())
    elif isinstance(extra, (list, tuple)):
        items = []
        for item in extra:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ValueError(f"`extra` must be a mapping or a sequence of (key, value) pairs; got item {item!r}")
            items.append(tuple(item))
    else:
        raise ValueError(f"`extra` must be a mapping or a sequence of (key, value) pairs; got {extra!r}")
    keys = [k for k, _ in items]
    for k in keys:
        if not isinstance(k, str) or not k:
            raise ValueError(f"`extra` keys must be non-empty strings; got {k!r}")
        if k in _FIELD_NAMES:
            raise ValueError(f"`extra` key {k!r} clashes with the RunSpec field of that name")
    if len(set(keys)) != len(keys):
        raise ValueError(f"`extra` has repeated keys: {sorted(keys)}")
    return tuple(sorted((k, _freeze_value(k, v)) for k, v in items))


def _check_name(value, name, allow_empty=False):
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ValueError(f"`{name}` must be a non-empty string; got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What determines one run: method, data, imbalance, sample size, seed, preset and extra settings.

    Args:
        method: pre-training method name, e.g. "simsiam", "moco_v2", "supervised".
        dataset: dataset name, e.g. "cifar10".
        profile: long-tail profile ("exp", "step", "pareto", ...).
        ratio: imbalance ratio r in (0, 1]; 1.0 means the balanced counterpart of the same n.
        sampling: fraction of the full subset size kept, in (0, 1] (varies n).
        seed: non-negative integer seed.
        preset: name of the recipe preset ("smoke", "cpu", "gpu", "paper", ...).
        extra: further settings, a mapping or (key, value) pairs, e.g. `{"sharpness": "rwsam"}`; stored as a
            tuple of sorted pairs whose values are scalars or tuples of scalars (lists become tuples).

    `run_id` is readable and filesystem-safe and ends with the first 10 hex digits of the SHA-1 of the
    canonical JSON of `to_dict()`, so it is the same in every process and on every machine.

    Example:

    >>> spec = RunSpec("simsiam", profile="step", ratio=0.1, extra={"sharpness": "rwsam"})
    >>> spec.extra
    (('sharpness', 'rwsam'),)
    >>> RunSpec.from_dict(spec.to_dict()) == spec
    True
    >>> spec.run_id.split("-")[:-1]
    ['simsiam', 'cifar10', 'step', 'r0.1', 's1', 'seed0', 'cpu', 'sharpness=rwsam']
    >>> dict(spec.group_key())["ratio"]
    0.1
    """

    method: str
    dataset: str = "cifar10"
    profile: str = "exp"
    ratio: float = 0.01
    sampling: float = 1.0
    seed: int = 0
    preset: str = "cpu"
    extra: tuple = ()

    def __post_init__(self):
        _check_name(self.method, "method")
        _check_name(self.dataset, "dataset")
        _check_name(self.profile, "profile")
        _check_name(self.preset, "preset")
        object.__setattr__(self, "ratio", check_fraction(self.ratio, "ratio"))
        object.__setattr__(self, "sampling", check_fraction(self.sampling, "sampling"))
        seed = self.seed
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0; got {seed!r}")
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "extra", _freeze_extra(self.extra))

    def to_dict(self):
        """A JSON-ready dict; `extra` becomes a dict (tuples become lists)."""
        out = {f: getattr(self, f) for f in _FIELD_NAMES if f != "extra"}
        out["extra"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.extra}
        return out

    @classmethod
    def from_dict(cls, data):
        """The spec back from `to_dict()` output (unknown keys raise ValueError)."""
        if isinstance(data, RunSpec):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"`data` must be a dict from RunSpec.to_dict(); got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown RunSpec fields {unknown}; allowed: {list(_FIELD_NAMES)}")
        return cls(**data)

    def canonical_json(self):
        """The canonical JSON string (sorted keys, no spaces) the `run_id` hash is taken of."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def run_id(self):
        """Readable, filesystem-safe id plus a short SHA-1 of `canonical_json()`."""
        digest = hashlib.sha1(self.canonical_json().encode("ascii")).hexdigest()[:10]
        parts = [
            self.method,
            self.dataset,
            self.profile,
            f"r{self.ratio:g}",
            f"s{self.sampling:g}",
            f"seed{self.seed}",
            self.preset,
        ]
        parts += [f"{k}={_short(v)}" for k, v in self.extra]
        # "-" separates fields; anything outside [A-Za-z0-9._=+] inside a field becomes "_".
        readable = "-".join(re.sub(r"[^A-Za-z0-9._=+]+", "_", p) for p in parts)
        return f"{readable[:150]}-{digest}"

    def group_key(self, exclude=("seed",)):
        """A hashable tuple of (field, value) pairs without the fields in `exclude`.

        Extra settings appear as their own ("extra", pairs) entry unless "extra" is excluded.

        >>> RunSpec("byol", seed=2).group_key() == RunSpec("byol", seed=5).group_key()
        True
        """
        if isinstance(exclude, str):
            exclude = (exclude,)
        exclude = tuple(exclude)
        bad = [e for e in exclude if e not in _FIELD_NAMES]
        if bad:
            raise ValueError(f"`exclude` names unknown fields {bad}; allowed: {list(_FIELD_NAMES)}")
        return tuple((f, getattr(self, f)) for f in _FIELD_NAMES if f not in exclude)

    def replace(self, **changes):
        """A copy with some fields changed (validated again).

        >>> RunSpec("simclr").replace(ratio=1.0).ratio
        1.0
        """
        return dataclasses.replace(self, **changes)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RunSpec))


def _short(value):
    if isinstance(value, tuple):
        return "+".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_jsonable(obj):
    """`obj` with numpy scalars/arrays, paths, tuples and `RunSpec`s turned into plain JSON types.

    >>> to_jsonable({"a": np.float32(0.5), "b": (1, np.int64(2)), "c": np.arange(2)})
    {'a': 0.5, 'b': [1, 2], 'c': [0, 1]}
    """
    if isinstance(obj, RunSpec):
        return obj.to_dict()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, (np.integer, np.floating, np.bool_)):
                k = k.item()
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise ValueError(f"record keys must be strings or numbers; got {k!r}")
            out[str(k) if not isinstance(k, str) else k] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, _SCALARS):
        return obj
    raise ValueError(f"cannot store a {type(obj).__name__} in a JSON record: {obj!r}")


def record_path(folder, spec):
    """`Path(folder) / f"{spec.run_id}.json"` (`spec` a RunSpec or its dict)."""
    return Path(folder) / f"{RunSpec.from_dict(spec).run_id}.json"


def _umask():
    """This process's umask, read without changing it where Linux allows (os.umask is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write_text(path, text):
    """Write `text` to `path` atomically: temporary file in the same folder, fsync, os.replace.

    The file gets the mode a plain `open(path, "w")` would give (0o666 less the umask, 0o644 usually), not
    the private 0o600 of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX + path.name + ".", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def remove_stale_temp_files(folder, older_than=60.0):
    """Delete the temporary files (".tmp-*.part") that killed writes left in `folder`; returns their paths.

    Only files untouched for `older_than` seconds go (a write in progress takes milliseconds). `run_grid`
    calls it while it holds the folder's lock.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".tmp-a.json.x1.part").write_text("{")
    >>> [p.name for p in remove_stale_temp_files(folder, older_than=0)], sorted(folder.iterdir())
    (['.tmp-a.json.x1.part'], [])
    """
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for path in sorted(folder.glob(_TEMP_PREFIX + "*" + _TEMP_SUFFIX)):
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # removed meanwhile by its writer
            continue
    return removed


def fingerprint(path):
    """What a data file is, for a run's identity: its name, size and the SHA-256 of its bytes.

    Two files of the same name but other content get other fingerprints, so records made from one are not
    taken for records of the other (see `run_grid(identity=...)`).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "d.npz"
    >>> _ = path.write_bytes(b"abc")
    >>> fingerprint(path)["sha256"][:12], fingerprint(path)["bytes"]
    ('ba7816bf8f01', 3)
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`path` must be an existing file; got {str(path)!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_record(folder, record):
    """Write `record` (a dict with a "spec") atomically to `record_path(folder, spec)`; returns the path.

    The record is converted with `to_jsonable`; its "run_id" is set from the spec; an invalid record
    (`check_record`) raises ValueError and writes nothing. Non-finite floats are written as JSON
    `NaN`/`Infinity` (which Python's json reads back).
    """
    if not isinstance(record, dict) or "spec" not in record:
        raise ValueError("`record` must be a dict with a 'spec' entry (a RunSpec or its dict)")
    spec = RunSpec.from_dict(record["spec"])
    data = to_jsonable(record)
    data["spec"] = spec.to_dict()
    data["run_id"] = spec.run_id
    check_record(data)
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    return _atomic_write_text(record_path(folder, spec), text)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_record(data, path=None):
    """`data` if it is a valid run record, else a ValueError naming the file (or the run) and the key.

    A record is a JSON object with a valid "spec", a "run_id" equal to the spec's (and to the file's name
    when `path` is given), a "status" in ("done", "failed") and, when done, "metrics": a non-empty mapping of
    name -> number, accuracies (names with an `acc`, `accuracy` or `topN` part) fractions in [0, 1] (or
    NaN). "n", "wall_seconds", "config", "environment" and "identity" have the types the runner writes.

    >>> spec = RunSpec("simsiam")
    >>> rec = {"spec": spec.to_dict(), "run_id": spec.run_id, "status": "done", "metrics": {"knn_acc": 26.15}}
    >>> try:
    ...     check_record(rec)
    ... except ValueError as e:
    ...     print(str(e).split(": ", 1)[1])
    metrics['knn_acc'] is an accuracy, a fraction in [0, 1]; got 26.15 (a percentage?)
    """
    where = str(path) if path is not None else None

    def fail(message):
        name = where or (data.get("run_id") if isinstance(data, dict) else None) or "?"
        raise ValueError(f"run record {name}: {message}")

    if not isinstance(data, dict):
        fail(f"must be a JSON object; got {type(data).__name__}")
    for key in ("spec", "run_id", "status"):
        if key not in data:
            fail(f"missing key {key!r}")
    if not isinstance(data["spec"], dict):
        fail(f"'spec' must be an object; got {type(data['spec']).__name__}")
    try:
        spec = RunSpec.from_dict(data["spec"])
    except (TypeError, ValueError) as e:
        fail(f"invalid 'spec': {e}")
    if data["run_id"] != spec.run_id:
        fail(f"'run_id' {data['run_id']!r} is not its spec's id {spec.run_id!r} (was the spec edited?)")
    if path is not None and Path(path).stem != spec.run_id:
        fail(f"its spec's id {spec.run_id!r} is not the file's name (was the file renamed or its spec edited?)")
    if data["status"] not in STATUSES:
        fail(f"'status' must be one of {STATUSES}; got {data['status']!r}")
    if data["status"] == "done" and "metrics" not in data:
        fail("missing key 'metrics' (a finished run's results)")
    if "metrics" in data:
        metrics = data["metrics"]
        if not isinstance(metrics, dict) or (data["status"] == "done" and not metrics):
            fail(f"'metrics' must be a non-empty object of name -> number; got {metrics!r:.100}")
        for name, value in metrics.items():
            if not _number(value):
                fail(f"metrics[{name!r}] must be a number; got {value!r:.100}")
            if _ACCURACY.search(name) and not (math.isnan(value) or 0.0 <= value <= 1.0):
                hint = " (a percentage?)" if 1.0 < value <= 100.0 else ""
                fail(f"metrics[{name!r}] is an accuracy, a fraction in [0, 1]; got {value!r}{hint}")
    for key, ok, what in (
        ("n", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
        ("wall_seconds", lambda v: _number(v) and v >= 0, "a number of seconds >= 0"),
        ("config", lambda v: isinstance(v, dict), "an object"),
        ("environment", lambda v: isinstance(v, dict), "an object"),
        ("identity", lambda v: isinstance(v, dict), "an object"),
    ):
        if data.get(key) is not None and not ok(data[key]):
            fail(f"{key!r} must be {what}; got {data[key]!r:.100}")
    return data


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt run record {path}: {e}; delete it to rerun that run") from e


def read_record(folder, spec):
    """The record of `spec` in `folder` as a dict, or None when there is none.

    A corrupt or invalid file raises ValueError naming it and the key (`check_record`).
    """
    path = record_path(folder, spec)
    if not path.exists():
        return None
    return check_record(_load(path), path)


def read_records(folder):
    """All run records in `folder` (sorted by file name); [] for a missing folder.

    Temporary files of interrupted writes (".tmp-*.part") are ignored, as are JSON files that are not run
    records (neither "spec" nor "run_id", e.g. a manifest or a summary); an unreadable or invalid record
    raises ValueError naming its path (`check_record`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(_TEMP_PREFIX) or not path.is_file():
            continue
        data = _load(path)
        if isinstance(data, dict) and ("spec" in data or "run_id" in data):
            out.append(check_record(data, path))
    return out
