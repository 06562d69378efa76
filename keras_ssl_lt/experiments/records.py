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
import platform
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "RunSpec",
    "environment",
    "read_record",
    "read_records",
    "record_path",
    "to_jsonable",
    "write_record",
]

_SCALARS = (str, int, float, bool, type(None))
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".part"


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
        raise ValueError(  # noqa: TRY004 (bad arguments are ValueErrors in this package)
            f"`extra` must be a mapping or a sequence of (key, value) pairs; got {extra!r}"
        )
    keys = [k for k, _ in items]
    for k in keys:
        if not isinstance(k, str) or not k:
            raise ValueError(f"`extra` keys must be non-empty strings; got {k!r}")
        if k in _FIELD_NAMES:
            raise ValueError(f"`extra` key {k!r} clashes with the RunSpec field of that name")
    if len(set(keys)) != len(keys):
        raise ValueError(f"`extra` has repeated keys: {sorted(keys)}")
    return tuple(sorted((k, _freeze_value(k, v)) for k, v in items))


def _check_fraction(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(  # noqa: TRY004 (bad arguments are ValueErrors in this package)
            f"`{name}` must be a number in (0, 1]; got {value!r}"
        )
    value = float(value)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"`{name}` must be in (0, 1] (1.0 = balanced); got {value!r}")
    return value


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
        object.__setattr__(self, "ratio", _check_fraction(self.ratio, "ratio"))
        object.__setattr__(self, "sampling", _check_fraction(self.sampling, "sampling"))
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
            raise ValueError(  # noqa: TRY004 (bad arguments are ValueErrors in this package)
                f"`data` must be a dict from RunSpec.to_dict(); got {type(data).__name__}"
            )
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


def _library_version(name):
    module = sys.modules.get(name)
    if module is None:
        try:
            module = __import__(name)
        except Exception:  # noqa: BLE001 - any import failure means "not available"
            return None
    return getattr(module, "__version__", None)


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _accelerators(backend):
    """Names of the accelerator devices the backend library sees (never imports another backend)."""
    names = []
    try:
        if backend == "jax":
            import jax

            names = [f"{d.platform}:{getattr(d, 'device_kind', str(d))}" for d in jax.devices() if d.platform != "cpu"]
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                names = [f"cuda:{torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                names = ["mps"]
        elif backend == "tensorflow":
            import tensorflow as tf

            for d in tf.config.list_physical_devices():
                if d.device_type in ("GPU", "TPU"):
                    details = tf.config.experimental.get_device_details(d)
                    names.append(f"{d.device_type.lower()}:{details.get('device_name', d.name)}")
    except Exception as e:  # noqa: BLE001 - device discovery must never break a run record
        names = [f"unknown ({type(e).__name__}: {e})"]
    return names


def environment():
    """Versions and hardware of this process: package, Keras, backend library, Python, CPU, accelerators.

    Only the active backend's library is imported (TensorFlow is not imported under JAX or PyTorch).

    >>> env = environment()
    >>> {"keras_ssl_lt", "keras", "backend", "backend_version", "cpu_model", "accelerators"} <= set(env)
    True
    """
    import keras

    from keras_ssl_lt import __version__

    backend = keras.backend.backend()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "keras_ssl_lt": __version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _library_version(backend),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "accelerators": _accelerators(backend),
    }


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


def _atomic_write_text(path, text):
    """Write `text` to `path` atomically: temporary file in the same folder, fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX + path.name + ".", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
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


def write_record(folder, record):
    """Write `record` (a dict with a "spec") atomically to `record_path(folder, spec)`; returns the path.

    The record is converted with `to_jsonable`; its "run_id" is set from the spec. Non-finite floats are
    written as JSON `NaN`/`Infinity` (which Python's json reads back).
    """
    if not isinstance(record, dict) or "spec" not in record:
        raise ValueError("`record` must be a dict with a 'spec' entry (a RunSpec or its dict)")
    spec = RunSpec.from_dict(record["spec"])
    data = to_jsonable(record)
    data["spec"] = spec.to_dict()
    data["run_id"] = spec.run_id
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    return _atomic_write_text(record_path(folder, spec), text)


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt run record {path}: {e}; delete it to rerun that run") from e


def read_record(folder, spec):
    """The record of `spec` in `folder` as a dict, or None when there is none (a corrupt file raises)."""
    path = record_path(folder, spec)
    if not path.exists():
        return None
    data = _load(path)
    if not isinstance(data, dict) or "spec" not in data:
        raise ValueError(f"corrupt run record {path}: not a JSON object with a 'spec'")
    return data


def read_records(folder):
    """All run records in `folder` (sorted by file name); [] for a missing folder.

    Temporary files of interrupted writes (".tmp-*.part") are ignored, as are JSON files that are not run
    records (no "spec" and "run_id", e.g. a manifest or a summary); an unreadable `.json` raises ValueError
    naming its path.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(_TEMP_PREFIX) or not path.is_file():
            continue
        data = _load(path)
        if isinstance(data, dict) and "spec" in data and "run_id" in data:
            out.append(data)
    return out
