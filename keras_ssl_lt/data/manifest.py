"""Subset manifests: a small JSON file (profile, ratio, n, seed, counts, indices, labels hash).

The hash is the SHA-256 of the labels as little-endian int64, so it is the same on every
machine and backend and changes whenever any label (or their number or order) changes.

`build_manifest` writes the fields of a subset, `check_manifest` refuses a manifest whose fields are
missing, of the wrong type, out of range or inconsistent among themselves (before any of it is used),
naming the file and the field; `keras_ssl_lt.data.imbalance.Subset.from_manifest` then checks it
against the labels and rebuilds it from its recipe.
"""

import hashlib
import json
import os
import re

import numpy as np

from keras_ssl_lt._checks import is_int, is_number

__all__ = [
    "KINDS",
    "MANIFEST_FORMAT",
    "build_manifest",
    "check_manifest",
    "labels_hash",
    "load_manifest",
    "save_manifest",
]

MANIFEST_FORMAT = "keras_ssl_lt.subset/1"
KINDS = ("long_tail", "balanced_counterpart", "split_file")
GROUPS = ("many", "medium", "few")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def labels_hash(labels):
    """SHA-256 hex digest of an integer array as little-endian int64 bytes.

    Example:

    >>> labels_hash([0, 1, 1])[:12]
    'ccb1ac866b7d'
    """
    arr = np.ascontiguousarray(np.asarray(labels), dtype="<i8")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def save_manifest(manifest, path):
    """Write a manifest dict as JSON: one top-level key per line, each value compact on its line.

    Example:

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> save_manifest({"n": 1}, p); load_manifest(p)
    {'n': 1}
    """
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(
            ",\n".join(f" {json.dumps(str(k))}: {json.dumps(v, separators=(',', ':'))}" for k, v in manifest.items())
        )
        f.write("\n}\n")


def _no_duplicate_keys(path):
    def hook(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"`path` {os.fspath(path)!r}: the JSON object has the key {k!r} twice")
            seen.add(k)
        return dict(pairs)

    return hook


def load_manifest(path):
    """Read a manifest JSON file written by `save_manifest` (a dict).

    Raises ValueError when the file is not a JSON object or repeats a key (JSON would keep the last
    one silently).

    Example:

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> _ = open(p, "w").write('{"n": 1, "n": 2}')
    >>> load_manifest(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: `path` '...m.json': the JSON object has the key 'n' twice
    """
    with open(os.fspath(path), encoding="utf-8") as f:
        try:
            out = json.load(f, object_pairs_hook=_no_duplicate_keys(path))
        except json.JSONDecodeError as e:
            raise ValueError(f"`path` {path!r} is not a JSON manifest: {e}") from None
    if not isinstance(out, dict):
        raise ValueError(f"`path` {path!r} must hold a JSON object; got {type(out).__name__}")
    return out


def build_manifest(
    labels,
    *,
    kind,
    profile,
    ratio,
    alpha,
    max_per_class,
    sampling,
    n_requested,
    seed,
    class_order,
    counts,
    groups,
    group_rule,
    many_threshold,
    few_threshold,
    indices,
    **extra,
):
    """The JSON-ready manifest of a subset of `labels` (an int64 array); `extra` keys go last.

    Example:

    >>> m = build_manifest(np.array([0, 1, 1]), kind="long_tail", profile="exp", ratio=0.5, alpha=None,
    ...                    max_per_class=2, sampling=1.0, n_requested=None, seed=0, class_order=[1, 0],
    ...                    counts=[1, 2], groups={"many": [1], "medium": [], "few": [0]}, group_rule="rank",
    ...                    many_threshold=100, few_threshold=20, indices=[0, 1, 2])
    >>> m["n"], m["num_classes"], m["labels_sha256"][:12]
    (3, 2, 'ccb1ac866b7d')
    """
    indices = [int(i) for i in indices]
    out = {
        "format": MANIFEST_FORMAT,
        "kind": kind,
        "profile": profile,
        "ratio": float(ratio),
        "alpha": alpha,
        "max_per_class": int(max_per_class),
        "sampling": float(sampling),
        "n_requested": n_requested,
        "n": len(indices),
        "seed": int(seed),
        "num_classes": len(counts),
        "num_examples": int(labels.size),
        "labels_sha256": labels_hash(labels),
        "class_order": [int(c) for c in class_order],
        "counts": [int(c) for c in counts],
        "group_rule": group_rule,
        "many_threshold": int(many_threshold),
        "few_threshold": int(few_threshold),
        "groups": {k: [int(c) for c in groups[k]] for k in GROUPS},
        "indices": indices,
    }
    out.update(extra)
    return out


# ----------------------------------------------------------------------------------- checking


class _Fields:
    """Reads the fields of one manifest; every error names where it came from and the field."""

    def __init__(self, manifest, where):
        self.m, self.where = manifest, where

    def fail(self, key, what, value):
        text = repr(value)
        if len(text) > 80:
            text = text[:77] + "..."
        raise ValueError(f"{self.where}: field `{key}` must be {what}; got {text}")

    def get(self, key, optional=False):
        if key not in self.m:
            if optional:
                return None
            raise ValueError(f"{self.where}: field `{key}` is missing (a subset manifest has {_fields_text()})")
        return self.m[key]

    def int(self, key, low, high=None, optional=False):
        v = self.get(key)
        if v is None and optional:
            return None
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        if not is_int(v) or v < low or (high is not None and v > high):
            self.fail(key, ("null or " if optional else "") + f"an integer {bound}", v)
        return int(v)

    def number(self, key, what, ok):
        v = self.get(key)
        if not is_number(v) or not np.isfinite(v) or not ok(float(v)):
            self.fail(key, what, v)
        return float(v)

    def text(self, key, choices=None, source=None, label=None):
        v = (self.m if source is None else source).get(key)
        if not isinstance(v, str) or (choices is not None and v not in choices):
            self.fail(label or key, f"one of {choices}" if choices else "a string", v)
        return v

    def sha256(self, key, source=None, label=None):
        v = (self.m if source is None else source).get(key)
        if not isinstance(v, str) or not _SHA256.fullmatch(v):
            self.fail(label or key, "a SHA-256 hex digest (64 lowercase hex digits)", v)
        return v

    def int_list(self, key, value, low, high):
        """A list of integers in low..high (JSON integers: no float, no bool)."""
        if not isinstance(value, list):
            self.fail(key, f"a list of integers in {low}..{high}", value)
        for k, v in enumerate(value):
            if not is_int(v) or not low <= v <= high:
                self.fail(f"{key}[{k}]", f"an integer in {low}..{high}", v)
        return np.asarray(value, dtype=np.int64)


_REQUIRED = (
    "format",
    "kind",
    "profile",
    "ratio",
    "alpha",
    "max_per_class",
    "sampling",
    "n_requested",
    "n",
    "seed",
    "num_classes",
    "num_examples",
    "labels_sha256",
    "class_order",
    "counts",
    "group_rule",
    "many_threshold",
    "few_threshold",
    "groups",
    "indices",
)
_EXTRA = {"balanced_counterpart": "counterpart_of", "split_file": "split_file"}


def _fields_text():
    return ", ".join(_REQUIRED)


def check_manifest(manifest, where="`manifest`"):
    """Check a subset manifest on its own: fields, types, ranges and their agreement; returns it.

    Every field of `build_manifest` must be there with its JSON type (integers are JSON integers:
    `3.0` is refused) and range; no unknown field may be there; `indices` must be strictly
    increasing positions in `0..num_examples-1`, `n` their number, `counts` one non-negative
    integer per class summing to `n`, `class_order` a permutation of the class ids and `groups`
    (many / medium / few) a partition of them. `where` names the manifest in the errors (the file).
    What the labels and the subset's recipe say is checked by `Subset.from_manifest`.

    Example:

    >>> check_manifest({"format": MANIFEST_FORMAT}, where="manifest 'm.json'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: manifest 'm.json': field `kind` is missing (a subset manifest has format, kind, ...)
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"{where} must be a dict (a JSON object); got {type(manifest).__name__}")
    f = _Fields(manifest, where)
    for key in _REQUIRED:
        f.get(key)
    if manifest["format"] != MANIFEST_FORMAT:
        f.fail("format", repr(MANIFEST_FORMAT), manifest["format"])
    kind = f.text("kind", KINDS)
    allowed = set(_REQUIRED) | ({_EXTRA[kind]} if kind in _EXTRA else set())
    unknown = sorted(set(manifest) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown} for a {kind!r} manifest (allowed: {sorted(allowed)})")
    f.text("profile")
    f.number("ratio", "a number in (0, 1]", lambda v: 0.0 < v <= 1.0)
    if manifest["alpha"] is not None:
        f.number("alpha", "null or a number > 0", lambda v: v > 0.0)
    f.int("max_per_class", 1)
    f.number("sampling", "a number in (0, 1]", lambda v: 0.0 < v <= 1.0)
    f.int("n_requested", 1, optional=True)
    f.int("seed", 0)
    num_examples = f.int("num_examples", 1)
    num_classes = f.int("num_classes", 1)
    n = f.int("n", 1, num_examples)
    f.sha256("labels_sha256")
    f.text("group_rule")
    f.int("many_threshold", 0)
    f.int("few_threshold", 0)
    C = num_classes
    order = f.int_list("class_order", manifest["class_order"], 0, C - 1)
    if order.size != C or np.unique(order).size != C:
        f.fail("class_order", f"a permutation of the {C} class ids 0..{C - 1}", manifest["class_order"])
    counts = f.int_list("counts", manifest["counts"], 0, num_examples)
    if counts.size != C or int(counts.sum()) != n:
        f.fail("counts", f"{C} counts (one per class, `num_classes`) summing to `n` = {n}", manifest["counts"])
    groups = manifest["groups"]
    if not isinstance(groups, dict) or sorted(groups) != sorted(GROUPS):
        f.fail("groups", f"an object with exactly the keys {GROUPS}", groups)
    parts = [f.int_list(f"groups.{g}", groups[g], 0, C - 1) for g in GROUPS]
    for g, p in zip(GROUPS, parts, strict=True):
        if np.any(np.diff(p) <= 0):
            f.fail(f"groups.{g}", "strictly increasing class ids", groups[g])
    every = np.concatenate(parts)
    if every.size != C or np.unique(every).size != C:
        f.fail("groups", f"a partition of the class ids 0..{C - 1} (each class in exactly one group)", groups)
    indices = f.int_list("indices", manifest["indices"], 0, num_examples - 1)
    if indices.size != n:
        f.fail("indices", f"`n` = {n} positions", f"{indices.size} positions")
    steps = np.diff(indices)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        what = "a repeated" if steps[k] == 0 else "an unsorted"
        f.fail("indices", f"strictly increasing positions ({what} position at [{k + 1}])", int(indices[k + 1]))
    if kind == "balanced_counterpart":
        c = manifest.get("counterpart_of")
        keys = ("profile", "ratio", "n", "seed", "indices_sha256")
        if not isinstance(c, dict) or sorted(c) != sorted(keys):
            f.fail("counterpart_of", f"an object with exactly the keys {keys}", c)
        f.text("profile", source=c, label="counterpart_of.profile")
        f.sha256("indices_sha256", source=c, label="counterpart_of.indices_sha256")
        if not (is_number(c["ratio"]) and 0.0 < c["ratio"] <= 1.0):
            f.fail("counterpart_of.ratio", "a number in (0, 1]", c["ratio"])
        if c["n"] != n:
            f.fail("counterpart_of.n", f"`n` = {n} (a balanced counterpart has its subset's n)", c["n"])
        if not is_int(c["seed"]) or c["seed"] < 0:
            f.fail("counterpart_of.seed", "an integer >= 0", c["seed"])
    if kind == "split_file":
        s = manifest.get("split_file")
        if not isinstance(s, dict) or sorted(s) != ["name", "sha256"]:
            f.fail("split_file", "an object with exactly the keys ('name', 'sha256')", s)
        f.text("name", source=s, label="split_file.name")
        f.sha256("sha256", source=s, label="split_file.sha256")
    return manifest
