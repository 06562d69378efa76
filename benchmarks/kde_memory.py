"""Peak memory and time of one KDE re-weighting refresh (`kde_weights`) on N x D unit features.

Each (backend, chunk size) runs in a fresh subprocess so that the process-lifetime peak RSS
(`resource.getrusage`) belongs to that configuration alone. Memory is read over the first, untimed refresh
(which also warms up: JAX compiles per shape); then the refresh and its floor are timed in `--repeats`
interleaved rounds (order alternating), and the median, the spread and the median per-round ratio are printed,
with the trust gates of `_common.py`. Printed per run:

- the time of `kde_weights` (median bandwidth, leave-one-out, clip (0.1, 10)), and a baseline
  measured in the same process: the bare chunked Gram matrix pass (`x_chunk @ x.T` plus a row
  max, same chunks, no kernel and no log-sum-exp), i.e. the unavoidable O(N^2 D) matmul work;
- peak RSS of the process and its increase during the refresh (host memory, covers every
  backend on CPU), the tracemalloc peak of Python/numpy allocations during the refresh, and the
  backend's own device accounting where it has one (JAX `memory_stats()["peak_bytes_in_use"]`,
  `torch.cuda.max_memory_allocated`, TensorFlow `get_memory_info("GPU:0")["peak"]`: GPU only);
- beside them, the size of the features and of the N x N float32 matrix that is never built.

Usage:

    python benchmarks/kde_memory.py                              # current KERAS_BACKEND, 50,000 x 512
                                                                 # (one refresh took 586 s on 2 CPU cores)
    python benchmarks/kde_memory.py --backends jax torch tensorflow --chunks 512 2048
    python benchmarks/kde_memory.py --n 5000 --d 128             # quick run
    python benchmarks/kde_memory.py --bandwidth-demo             # bandwidth rules compared
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

MB = 1024.0**2


def _rss_now_mb():
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


def _peak_rss_mb():
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (MB if sys.platform == "darwin" else 1024.0)  # bytes on macOS, KiB on Linux


def _device_peak_mb(backend):
    """The backend's own peak device-memory figure, or None where it keeps none (CPU)."""
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            stats = dev.memory_stats() if dev.platform != "cpu" else None
            return None if not stats else stats.get("peak_bytes_in_use", 0) / MB
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / MB if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / MB
    except Exception as e:
        return f"unavailable ({type(e).__name__})"
    return None


def _device_name(backend):
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0])
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return gpus[0].name if gpus else "cpu"
    except Exception:
        return "unknown"
    return "unknown"


def _worker(args):
    import time
    import tracemalloc

    import keras
    import numpy as np
    from keras import ops

    from keras_ssl_lt.rwsam import kde_weights

    backend = keras.backend.backend()
    threads = C.apply_thread_settings(torch_mkldnn=False if backend == "torch" else None)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)

    def gram_pass(chunk, n_rows):
        xt = ops.transpose(ops.convert_to_tensor(x))
        out = np.empty(n_rows, np.float32)
        for s in range(0, n_rows, chunk):
            block = x[s : s + chunk]
            if len(block) < chunk:
                block = np.concatenate([block, np.zeros((chunk - len(block), x.shape[1]), "f4")])
            g = ops.matmul(ops.convert_to_tensor(block), xt)
            out[s : s + chunk] = ops.convert_to_numpy(ops.max(g, axis=1))[: min(chunk, n_rows - s)]
        return out

    kw = {"bandwidth": "median", "power": 1.0, "clip": (0.1, 10.0), "chunk_size": args.chunk}
    chunk = min(args.chunk, len(x))
    gram_pass(chunk, chunk)  # warm-up of the floor's shapes
    # The first refresh is untimed: it warms up (compilation, thread pools) and its memory is measured.
    rss_before = _rss_now_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    w = kde_weights(x, **kw)
    t_first = time.perf_counter() - t0
    _, tm_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _peak_rss_mb()
    device_peak = _device_peak_mb(backend)

    t_kde, t_gram = [], []
    for r in range(args.repeats):
        for name in ("kde", "gram") if r % 2 == 0 else ("gram", "kde"):
            t0 = time.perf_counter()
            if name == "kde":
                kde_weights(x, **kw)
                t_kde.append(time.perf_counter() - t0)
            else:
                gram_pass(chunk, len(x))
                t_gram.append(time.perf_counter() - t0)

    print(
        json.dumps(
            {
                "backend": backend,
                "device": _device_name(backend),
                "threads": threads,
                "n": args.n,
                "d": args.d,
                "chunk": args.chunk,
                "first_refresh_s": t_first,
                "kde_s": t_kde,
                "gram_s": t_gram,
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss,
                "tracemalloc_peak_mb": tm_peak / MB,
                "device_peak_mb": device_peak,
                "w_min": float(w.min()),
                "w_max": float(w.max()),
                "w_mean": float(w.mean(dtype=np.float64)),
            }
        )
    )


def _bandwidth_demo(seed=0):
    """How the bandwidth rules behave on clustered 512-d unit-ish features with long-tailed sizes.

    Six clusters (sizes 1000, 400, 160, 64, 26, 10) around random unit centres, isotropic noise
    of norm about 0.7; prints the per-cluster mean KDE weight and the fraction of clipped weights.
    """
    import numpy as np

    from keras_ssl_lt.rwsam.weights import kde_bandwidth, kde_weights

    rng = np.random.default_rng(seed)
    d, counts = 512, [1000, 400, 160, 64, 26, 10]
    centres = rng.standard_normal((len(counts), d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.concatenate(
        [c + 0.7 * rng.standard_normal((n, d)) / np.sqrt(d) for c, n in zip(centres, counts, strict=True)]
    ).astype(np.float32)
    lab = np.repeat(np.arange(len(counts)), counts)
    print(f"bandwidth demo: clusters of sizes {counts} in {d}-d, clip (0.1, 10), power 1")
    for rule in ("scott", "silverman", "median", 0.3, 0.5, 0.8):
        h = kde_bandwidth(x, rule)
        w = kde_weights(x, bandwidth=rule, clip=(0.1, 10.0), chunk_size=512)
        per = " ".join(f"{w[lab == c].mean():.3f}" for c in range(len(counts)))
        clipped = np.mean((w <= np.float32(0.1)) | (w >= np.float32(10.0)))
        print(
            f"  {rule!s:<10} h={h:.4f}  mean weight per cluster (largest first): {per}  clipped: {100 * clipped:.1f}%"
        )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--chunks", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--backends", nargs="+", default=[os.environ.get("KERAS_BACKEND", "jax")])
    p.add_argument("--repeats", type=int, default=C.DEFAULT_REPEATS, help="timed rounds after the first refresh")
    p.add_argument("--threads", type=int, default=None, help="threads for every configuration (default: all)")
    p.add_argument(
        "--bandwidth-demo", action="store_true", help="only print how the bandwidth rules weight a clustered 512-d set"
    )
    p.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return _worker(args)
    if args.bandwidth_demo:
        return _bandwidth_demo()
    if args.repeats < 3:
        p.error("--repeats must be >= 3")
    C.pin_threads(args.threads)
    feat_mb = args.n * args.d * 4 / MB
    full_mb = args.n * args.n * 4 / MB
    print(
        f"N={args.n} D={args.d}: features (float32) {feat_mb:.1f} MiB; the N x N float32 matrix it avoids would "
        f"be {full_mb:.0f} MiB; {C.hardware()}; load average {C.load_average()[0]:.1f}; {args.repeats} rounds"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for backend in args.backends:
        for chunk in args.chunks:
            env = dict(os.environ, KERAS_BACKEND=backend)
            env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                "--n",
                str(args.n),
                "--d",
                str(args.d),
                "--chunk",
                str(chunk),
                "--repeats",
                str(args.repeats),
            ]
            res = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
            line = [x for x in res.stdout.splitlines() if x.startswith("{")]
            if res.returncode != 0 or not line:
                print(f"{backend} chunk {chunk}: failed (rc {res.returncode})\n" + res.stderr[-2000:])
                continue
            r = json.loads(line[-1])
            dev = r["device_peak_mb"]
            dev = "n/a (cpu)" if dev is None else (f"{dev:.0f} MiB" if isinstance(dev, float) else dev)
            kde, gram = C.summarize(r["kde_s"]), C.summarize(r["gram_s"])
            ratio = C.summarize(C.ratios(r["kde_s"], r["gram_s"]))
            print(
                f"\n{backend} on {r['device']}, chunk {chunk} ({chunk * args.n * 4 / MB:.0f} MiB per chunk x N "
                f"block); threads: {C.describe_threads(r['threads'])}"
            )
            print(
                f"  refresh (kde_weights)        {C.verdict(kde, ' s', 2)}; first, untimed: "
                f"{r['first_refresh_s']:.2f} s"
            )
            print(f"  floor (chunked Gram + max)   {C.verdict(gram, ' s', 2)}")
            print(f"  refresh / floor              {C.verdict(ratio, 'x', 2)}; target <= 1.5x")
            print(
                f"  memory over the first refresh: RSS before {r['rss_before_mb']:.0f} MiB, peak "
                f"{r['peak_rss_mb']:.0f} MiB (+{r['peak_rss_mb'] - r['rss_before_mb']:.0f}); tracemalloc peak "
                f"{r['tracemalloc_peak_mb']:.1f} MiB; device peak {dev}"
            )
            print(f"  weights min {r['w_min']:.3f} max {r['w_max']:.3f} mean {r['w_mean']:.6f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
