"""Subset manifests: a small JSON file (profile, ratio, n, seed, counts, indices, labels hash).

The hash is the SHA-256 of the labels as little-endian int64, so it is the same on every
machine and backend and changes whenever any label (or their number or order) changes.
"""

import hashlib
import json
import os

import numpy as np

__all__ = ["labels_hash", "save_manifest", "load_manifest"]


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


def load_manifest(path):
    """Read a manifest JSON file written by `save_manifest` (a dict).

    Raises ValueError when the file is not a JSON object.
    """
    with open(os.fspath(path), encoding="utf-8") as f:
        try:
            out = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"`path` {path!r} is not a JSON manifest: {e}") from None
    if not isinstance(out, dict):
        raise ValueError(f"`path` {path!r} must hold a JSON object; got {type(out).__name__}")
    return out
