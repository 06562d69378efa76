"""Shared pieces of the benchmark scripts: statistics, trust gates, thread pinning, interleaving, workers.

Method (the same in every script, see docs/performance.md):

- **Interleave.** Contenders are timed in rounds; each round times one block of every contender, and the
  order is rotated from round to round, so a change in machine load hits all of them alike.
- **Repeat.** `--repeats` rounds (at least 5 by default); the median is the figure, the spread is printed
  beside it as the interquartile range and the full range (min..max).
- **Pin threads.** Every contender runs with the same thread settings (`pin_threads`, `apply_thread_settings`):
  the same CPU affinity, the same `OMP/MKL/OPENBLAS_NUM_THREADS`, the same intra-op thread count in PyTorch and
  TensorFlow, and the same PyTorch oneDNN (mkldnn) setting; the settings are printed with the results.
- **Gate.** A figure whose full range (max - min) exceeds its median is printed as NOT TRUSTWORTHY instead of as
  a result; so is a SAM-type step cheaper than its measured floor (`sam_floor`). A SAM-type step draws its views
  once and runs two forward-backward passes, so against a plain step it costs about (aug + 2 fb) / (aug + fb),
  with aug the augmentation and fb the forward-backward time of the plain step, both measured in the same rounds
  (fb as the plain step on pre-made views, aug as the rest); the gate is 1 + 0.9 fb / (aug + fb): 1.9x without
  augmentation, lower where augmentation is a large share of the step.
- **Ratios in-run.** Ratios are taken against a baseline timed in the same rounds: the median of the per-round
  ratios, with their range.

Keras picks its backend at import time, so contenders on different backends live in different processes:
`Worker` keeps one process per backend alive (models built and compiled once) and asks it for one timed block at
a time, which is what makes interleaving across backends possible. Nothing here imports Keras or TensorFlow.
"""

import json
import os
import platform
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the package is importable without installation (GPU machine)
    sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10.npz"
DEFAULT_REPEATS = 5
# A SAM-type step must cost at least 1 + SAM_SLACK * (forward-backward share of the plain step) plain steps: its
# second pass repeats the forward-backward, not the augmentation. Without augmentation the share is 1: 1.9x.
SAM_SLACK = 0.9
SAM_FLOOR = 1.0 + SAM_SLACK  # the gate without augmentation (two full passes)
NOT_TRUSTWORTHY = "NOT TRUSTWORTHY"
MARK = "@@ksl "  # prefix of the JSON lines a worker writes to its parent


# ---------------------------------------------------------------------------------------------- data
def cifar_batches(n, path=None, seed=0):
    """`n` real CIFAR-10 training images (uint8) and labels, sampled without replacement.

    Reads `path`, `$KSL_CIFAR10_NPZ` or ../shared/data/cifar10.npz; raises if none exists (a benchmark on
    random pixels would not be the benchmark the docs describe).
    """
    path = Path(path or os.environ.get("KSL_CIFAR10_NPZ", DEFAULT_DATA))
    if not path.exists():
        raise FileNotFoundError(f"CIFAR-10 .npz not found at {path}: pass --data or set KSL_CIFAR10_NPZ")
    rng = np.random.default_rng(seed)
    with np.load(path) as f:
        y = f["y_train"].reshape(-1)
        if n > len(y):
            raise ValueError(f"asked for {n} images but {path} holds {len(y)}")
        idx = np.sort(rng.choice(len(y), n, replace=False))
        return f["x_train"][idx], y[idx].astype("int32"), f"CIFAR-10 ({path.name})"


# ---------------------------------------------------------------------------------------------- statistics
def summarize(values):
    """Median, quartiles, interquartile range and full range of a list of positive figures."""
    v = np.asarray(values, dtype="float64")
    if v.size == 0:
        raise ValueError("`values` is empty: nothing was measured")
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "min": float(v.min()),
        "max": float(v.max()),
        "range": float(v.max() - v.min()),
        "n": int(v.size),
        "values": [float(x) for x in v],
    }


def fb_share(views_times, aug_times):
    """Forward-backward share of the plain step: median of per-round (plain step on pre-made views) / (plain step
    with augmentation), clipped to [0, 1] (the views step is the forward-backward alone; the rest is augmentation)."""
    r = ratios(views_times, aug_times)
    if not r:
        raise ValueError("`views_times` and `aug_times` are empty: nothing was measured")
    return float(min(1.0, max(0.0, np.median(r))))


def sam_floor(share=1.0):
    """The lowest credible SAM-type step / plain step ratio for a plain step whose forward-backward share is `share`.

    Expected ratio (aug + 2 fb) / (aug + fb) = 1 + share; the gate allows 10 % of the second pass to hide
    (overlap, a cheaper second backward): 1 + SAM_SLACK * share. `share=1` (no augmentation) gives SAM_FLOOR.

    >>> round(sam_floor(1.0), 3), round(sam_floor(0.5), 3)
    (1.9, 1.45)
    """
    share = float(share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"`share` must be a fraction in [0, 1]; got {share!r}")
    return 1.0 + SAM_SLACK * share


def trust_problems(stat, sam_ratio=None, floor=SAM_FLOOR):
    """Reasons why a figure must not be printed as a result (empty list: it may be).

    `sam_ratio` (a SAM-type step over its plain step) is checked against `floor` (`sam_floor` of the measured
    forward-backward share; SAM_FLOOR without augmentation).
    """
    problems = []
    if stat["n"] < 3:
        problems.append(f"only {stat['n']} repeat(s)")
    if not np.isfinite(stat["median"]) or stat["median"] <= 0:
        problems.append("non-positive median")
    elif stat["range"] > stat["median"]:
        problems.append(f"spread {stat['range']:.3g} (max - min) exceeds the median {stat['median']:.3g}")
    if sam_ratio is not None and sam_ratio < floor:
        problems.append(
            f"SAM-type step at {sam_ratio:.2f}x the plain step, below the {floor:.2f}x gate "
            f"(1 + {SAM_SLACK} x the forward-backward share of the plain step: a second pass, same views)"
        )
    return problems


def ratios(numerators, denominators):
    """Per-round ratios of two interleaved series (round i of one against round i of the other)."""
    n = min(len(numerators), len(denominators))
    return [float(a) / float(b) for a, b in zip(numerators[:n], denominators[:n], strict=True)]


def fmt(stat, unit="", digits=1):
    """`median [q1..q3 | min..max]` of a `summarize` result."""
    f = f"{{:,.{digits}f}}"
    return (
        f"{f.format(stat['median'])}{unit} [IQR {f.format(stat['q1'])}..{f.format(stat['q3'])} | "
        f"range {f.format(stat['min'])}..{f.format(stat['max'])}]"
    )


def verdict(stat, unit="", digits=1, sam_ratio=None, floor=SAM_FLOOR):
    """The figure as text, or NOT TRUSTWORTHY with its reasons."""
    problems = trust_problems(stat, sam_ratio, floor)
    if problems:
        return f"{NOT_TRUSTWORTHY} ({'; '.join(problems)}; raw: {fmt(stat, unit, digits)})"
    return fmt(stat, unit, digits)


# ---------------------------------------------------------------------------------------------- threads
def pin_threads(threads=None, cpus=None):
    """Environment for worker processes and this one: same CPU set and thread counts for every contender.

    Call before importing numpy-heavy libraries in the process that should obey it (workers get `env`).
    Returns the environment additions as a dict.
    """
    avail = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    cpus = sorted(cpus) if cpus else avail
    threads = int(threads or len(cpus))
    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        # TensorFlow's inter-op pool: 1 by default here; KSL_BENCH_TF_INTEROP overrides it (a diagnosis knob)
        "TF_NUM_INTEROP_THREADS": os.environ.get("KSL_BENCH_TF_INTEROP", "1"),
        "KSL_BENCH_THREADS": str(threads),
        "KSL_BENCH_CPUS": ",".join(map(str, cpus)),
    }
    os.environ.update(env)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    return env


def apply_thread_settings(torch_mkldnn=None):
    """Applies the pinned settings inside a process after its backend is imported; returns what holds.

    `torch_mkldnn`: True / False sets `torch.backends.mkldnn.enabled`; None leaves PyTorch's default. The
    value in force is reported either way (it is part of every PyTorch figure on a CPU).
    """
    threads = int(os.environ.get("KSL_BENCH_THREADS", os.cpu_count()))
    cpus = os.environ.get("KSL_BENCH_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, [int(c) for c in cpus.split(",")])
    info = {"threads": threads, "cpus": cpus or "all"}
    try:  # numpy's BLAS and scikit-learn's OpenMP, also when they were loaded before the variables were set
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
        info["blas_openmp_threads"] = threads
    except ImportError:
        pass
    if "torch" in sys.modules or os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(threads)
        if torch_mkldnn is not None:
            torch.backends.mkldnn.enabled = bool(torch_mkldnn)
        info["torch_threads"] = torch.get_num_threads()
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.enabled)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("TF_NUM_INTEROP_THREADS", "1")))
        except RuntimeError:  # already initialised: report what holds
            pass
        info["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    return info


def describe_threads(info):
    keys = ("threads", "cpus", "torch_threads", "torch_mkldnn", "tf_intra_op", "tf_inter_op")
    return ", ".join(f"{k}={info[k]}" for k in keys if k in info)


# ---------------------------------------------------------------------------------------------- hardware
def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names():
    """Names of the visible NVIDIA GPUs from nvidia-smi ([] when there is none)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def hardware():
    """One line naming the machine: the GPU(s) if any, else the CPU model and its cores."""
    gpus = gpu_names()
    cpu = f"{cpu_name()}, {os.cpu_count()} logical cores"
    return f"GPU: {'; '.join(gpus)} | CPU: {cpu}" if gpus else f"CPU: {cpu}, no GPU"


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


# ---------------------------------------------------------------------------------------------- interleaving
def interleave(contenders, repeats=DEFAULT_REPEATS, on_round=None):
    """Times in-process contenders in rotated rounds.

    `contenders`: {name: fn}, where `fn()` runs one block and returns its seconds (or a dict with "seconds").
    Returns {name: [result, ...]} with one entry per round.
    """
    names = list(contenders)
    out = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            res = contenders[name]()
            out[name].append(res)
        if on_round is not None:
            on_round(r, out)
    return out


class Worker:
    """A persistent benchmark process: `script --worker ARGS` under a given KERAS_BACKEND.

    The worker prints `MARK {"ready": ...}` once set up (models built, steps compiled), then answers each
    line `run NAME` on its stdin with `MARK {...}` (one timed block of contender NAME), and exits on `quit`.
    """

    def __init__(self, script, args, backend=None, env=None, timeout=1800):
        self.timeout = timeout
        full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        if backend:
            full_env["KERAS_BACKEND"] = backend
        full_env.update(env or {})
        self.log = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, str(script), "--worker"] + [str(a) for a in args]
        self.proc = subprocess.Popen(
            cmd, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1
        )
        self.ready = self._receive()

    def _receive(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    self.close(kill=True)
                    return {"error": f"worker timed out after {self.timeout} s\n{self.stderr_tail()}"}
                line = self.proc.stdout.readline()
                if not line:
                    self.proc.wait()
                    return {"error": f"worker exited with {self.proc.returncode}\n{self.stderr_tail()}"}
                if line.startswith(MARK):
                    return json.loads(line[len(MARK) :])
        finally:
            sel.close()

    def stderr_tail(self, chars=2000):
        self.log.seek(0)
        return self.log.read()[-chars:]

    def run(self, name):
        if self.proc.poll() is not None:
            return {"error": f"worker is not running (exit {self.proc.returncode})"}
        self.proc.stdin.write(f"run {name}\n")
        self.proc.stdin.flush()
        return self._receive()

    def close(self, kill=False):
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.write("quit\n")
                    self.proc.stdin.flush()
                    self.proc.wait(timeout=60)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
        self.proc.wait()


def serve(setup):
    """Worker side of `Worker`: `setup()` returns ({name: fn}, info); each `run NAME` calls fn once."""
    try:
        contenders, info = setup()
    except Exception as e:
        import traceback

        traceback.print_exc()
        print(MARK + json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        return
    print(MARK + json.dumps(dict(info, ready=True, contenders=list(contenders))), flush=True)
    for line in sys.stdin:
        cmd, _, name = line.strip().partition(" ")
        if cmd == "quit":
            break
        try:
            res = contenders[name]()
            res = res if isinstance(res, dict) else {"seconds": float(res)}
        except Exception as e:
            import traceback

            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {e}"}
        print(MARK + json.dumps(res), flush=True)


def interleave_workers(slots, repeats=DEFAULT_REPEATS, log=print):
    """Rounds over contenders that live in workers: `slots` is a list of (label, worker, name).

    Returns {label: [result dict, ...]}; a contender that fails is dropped from later rounds.
    """
    out = {label: [] for label, _, _ in slots}
    alive = list(slots)
    for r in range(repeats):
        if not alive:
            log("  no contender left to time")
            break
        k = r % len(alive)
        for label, worker, name in alive[k:] + alive[:k]:
            res = worker.run(name)
            out[label].append(res)
            if "error" in res:
                log(f"  {label}: failed: {res['error'].strip().splitlines()[-1][:200]}")
        alive = [s for s in alive if "error" not in out[s[0]][-1]]
        log(f"  round {r + 1}/{repeats} done (load average {load_average()[0]:.1f})")
    return out


def write_json(path, payload):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=str)
