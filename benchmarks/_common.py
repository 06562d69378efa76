"""Shared pieces of the benchmark scripts: real CIFAR-10 batches and per-backend worker processes.

Keras picks its backend at import time, so each backend runs in its own process; the parent prints the
table with ratios against a baseline measured in the same run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10.npz"


def cifar_batches(n, path=None, seed=0):
    """`n` real CIFAR-10 training images (uint8) and labels, shuffled; random pixels if no file."""
    path = Path(path or os.environ.get("KSL_CIFAR10_NPZ", DEFAULT_DATA))
    rng = np.random.default_rng(seed)
    if path.exists():
        with np.load(path) as f:
            y = f["y_train"]
            idx = np.sort(rng.choice(len(y), n, replace=False))
            return f["x_train"][idx], y[idx].astype("int32"), "CIFAR-10"
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype("int32"), "random"


def run_worker(script, backend, args, timeout=1800):
    """Runs `script --worker ...` under KERAS_BACKEND=backend; returns the JSON on its last line."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(script), "--worker"] + [str(a) for a in args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout)[-1500:]}
    return json.loads(lines[-1])


def hardware():
    import platform

    desc = f"{platform.machine()} CPU, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            desc = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return desc
