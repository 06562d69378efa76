"""Peak memory and time of one KDE re-weighting refresh (`kde_weights`) on N x D unit features.

Each (backend, chunk size) runs in a fresh subprocess so that the process-lifetime peak RSS
(`resource.getrusage`) belongs to that configuration alone. Printed per run:

- the time of `kde_weights` (median bandwidth, leave-one-out, clip (0.1, 10)), and a baseline
  measured in the same process: the bare chunked Gram matrix pass (`x_chunk @ x.T` plus a row
  max, same chunks, no kernel and no log-sum-exp), i.e. the unavoidable O(N^2 D) matmul work;
- peak RSS of the process and its increase during the refresh (host memory, covers every
  backend on CPU), the tracemalloc peak of Python/numpy allocations during the refresh, and the
  backend's own device accounting where it has one (JAX `memory_stats()["peak_bytes_in_use"]`,
  `torch.cuda.max_memory_allocated`, TensorFlow `get_memory_info("GPU:0")["peak"]`: GPU only);
- beside them, the size of the features and of the N x N float32 matrix that is never built.

Usage:

    python benchmarks/kde_memory.py                              # current KERAS_BACKEND
    python benchmarks/kde_memory.py --backends jax torch tensorflow --chunks 512 2048
    python benchmarks/kde_memory.py --n 5000 --d 128             # quick run
    python benchmarks/kde_memory.py --bandwidth-demo             # bandwidth rules compared
"""

import argparse
import json
import os
import subprocess
import sys

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
    except Exception as e:  # pragma: no cover - report, don't fail the benchmark
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
    except Exception:  # pragma: no cover
        pass
    return "unknown"


def _worker(args):
    import time
    import tracemalloc

    import numpy as np
    import keras
    from keras import ops

    from keras_ssl_lt.rwsam.weights import kde_density, kde_weights

    backend = keras.backend.backend()
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

    kw = dict(bandwidth="median", power=1.0, clip=(0.1, 10.0), chunk_size=args.chunk)
    # Warm-up: one chunk of each computation with the real (chunk, N) shapes, so that per-shape
    # compilation (JAX) and thread-pool start-up are not timed.
    chunk = min(args.chunk, len(x))
    kde_density(x[:chunk], bandwidth=1.0, reference=x, normalize=False, return_log=True, chunk_size=chunk)
    gram_pass(chunk, chunk)

    rss_before = _rss_now_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    w = kde_weights(x, **kw)
    t_kde = time.perf_counter() - t0
    _, tm_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _peak_rss_mb()
    device_peak = _device_peak_mb(backend)

    t0 = time.perf_counter()
    gram_pass(chunk, len(x))
    t_gram = time.perf_counter() - t0

    print(
        json.dumps(
            dict(
                backend=backend,
                device=_device_name(backend),
                n=args.n,
                d=args.d,
                chunk=args.chunk,
                kde_s=t_kde,
                gram_s=t_gram,
                rss_before_mb=rss_before,
                peak_rss_mb=peak_rss,
                tracemalloc_peak_mb=tm_peak / MB,
                device_peak_mb=device_peak,
                w_min=float(w.min()),
                w_max=float(w.max()),
                w_mean=float(w.mean(dtype=np.float64)),
            )
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
        [c + 0.7 * rng.standard_normal((n, d)) / np.sqrt(d) for c, n in zip(centres, counts)]
    ).astype(np.float32)
    lab = np.repeat(np.arange(len(counts)), counts)
    print(f"bandwidth demo: clusters of sizes {counts} in {d}-d, clip (0.1, 10), power 1")
    for rule in ("scott", "silverman", "median", 0.3, 0.5, 0.8):
        h = kde_bandwidth(x, rule)
        w = kde_weights(x, bandwidth=rule, clip=(0.1, 10.0), chunk_size=512)
        per = " ".join(f"{w[lab == c].mean():.3f}" for c in range(len(counts)))
        clipped = np.mean((w <= np.float32(0.1)) | (w >= np.float32(10.0)))
        print(f"  {rule!s:<10} h={h:.4f}  mean weight per cluster (largest first): {per}  "
              f"clipped: {100 * clipped:.1f}%")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--chunks", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--backends", nargs="+", default=[os.environ.get("KERAS_BACKEND", "jax")])
    p.add_argument("--bandwidth-demo", action="store_true",
                   help="only print how the bandwidth rules weight a clustered 512-d set")
    p.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return _worker(args)
    if args.bandwidth_demo:
        return _bandwidth_demo()

    feat_mb = args.n * args.d * 4 / MB
    full_mb = args.n * args.n * 4 / MB
    print(f"N={args.n} D={args.d}: features (float32) {feat_mb:.1f} MiB; the N x N float32 "
          f"matrix it avoids would be {full_mb:.0f} MiB")
    hdr = (f"{'backend':<11}{'device':<14}{'chunk':>6}{'chunk x N MiB':>14}{'kde s':>8}"
           f"{'gram s':>8}{'kde/gram':>9}{'RSS before':>11}{'peak RSS':>9}{'+RSS':>7}"
           f"{'tracemalloc':>12}{'device peak':>12}")
    print(hdr + "\n" + "-" * len(hdr))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for backend in args.backends:
        for chunk in args.chunks:
            env = dict(os.environ, KERAS_BACKEND=backend)
            env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--n", str(args.n),
                   "--d", str(args.d), "--chunk", str(chunk)]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [l for l in res.stdout.splitlines() if l.startswith("{")]
            if res.returncode != 0 or not line:
                print(f"{backend:<11} chunk {chunk}: failed (rc {res.returncode})\n"
                      + res.stderr[-2000:])
                continue
            r = json.loads(line[-1])
            dev = r["device_peak_mb"]
            dev = "n/a (cpu)" if dev is None else (f"{dev:.0f}" if isinstance(dev, float) else dev)
            print(f"{backend:<11}{r['device'][:13]:<14}{chunk:>6}{chunk * args.n * 4 / MB:>14.0f}"
                  f"{r['kde_s']:>8.2f}{r['gram_s']:>8.2f}{r['kde_s'] / r['gram_s']:>9.2f}"
                  f"{r['rss_before_mb']:>11.0f}{r['peak_rss_mb']:>9.0f}"
                  f"{r['peak_rss_mb'] - r['rss_before_mb']:>7.0f}"
                  f"{r['tracemalloc_peak_mb']:>12.1f}{dev:>12}")
            print(f"{'':<11}weights min {r['w_min']:.3f} max {r['w_max']:.3f} "
                  f"mean {r['w_mean']:.6f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
