"""Peak memory against dataset size, and images/s, of the streaming pipeline beside the in-memory one.

Writes synthetic image folders in ImageNet-LT's layout (JPEG and PNG, random sizes in `--source-px`,
a split file; cached under `--workdir`) at each of `--sizes` images, then runs every contender in a
fresh Python process (so its peak RSS is its own) on the same files, decoding to `--px` x `--px` uint8:

- `stream tf`    : `stream_dataset(backend="tf")`, tf.io decode + resize in a parallel tf.data map;
- `stream numpy` : `stream_dataset(backend="numpy")`, PIL in `--threads` threads inside a PyDataset;
- `in-memory tf` / `in-memory numpy`: `ssl_dataset`, which decodes the whole subset once (`gather`), then
  shuffles and batches it from memory.

Each process reports its peak RSS (`ru_maxrss`), the RSS after imports (the baseline it cannot go below),
the time to build the dataset (the in-memory gather decodes every image here), and images/s over
`--epochs` epochs after one untimed warm-up epoch of batches converted to numpy (as `fit` does on JAX / PyTorch). Streaming memory should
stay flat as the dataset grows; the in-memory path grows by about `n * px * px * 3` bytes.

Contenders run one after another (not interleaved) and once per size: on a loaded machine, treat the
images/s as indicative and re-run on a quiet one.

    python benchmarks/streaming.py --sizes 500 2000 8000 --px 128 --epochs 2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONTENDERS = ("stream tf", "stream numpy", "in-memory tf", "in-memory numpy")


def _rss_mb():
    """Current resident set size in MiB (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def child(args):
    import numpy as np

    from keras_ssl_lt.data import SplitFileSource, ssl_dataset, stream_dataset

    base = _rss_mb()
    root = Path(args.workdir) / f"n{args.n}"
    src = SplitFileSource(str(root), str(root / "ImageNet_LT_train.txt"), image_size=(args.px, args.px))
    kind, path = args.contender.split()
    t0 = time.perf_counter()
    if kind == "stream":
        ds = stream_dataset(src, batch_size=args.batch_size, backend=path, parallel_decodes=args.threads)
    else:
        ds = ssl_dataset(src, batch_size=args.batch_size, backend=path)
    build = time.perf_counter() - t0
    for b in ds:  # one untimed warm-up epoch (tf.data traces its functions here)
        b = {k: np.asarray(v) for k, v in b.items()}
    delivered, t1 = 0, time.perf_counter()
    for _ in range(args.epochs):
        for b in ds:
            b = {k: np.asarray(v) for k, v in b.items()}
            delivered += len(b["index"])
    seconds = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        "@@"
        + json.dumps(
            {
                "contender": args.contender,
                "n": args.n,
                "baseline_rss_mb": base,
                "peak_rss_mb": peak,
                "build_seconds": build,
                "images_per_s": delivered / seconds,
                "epochs": args.epochs,
            }
        )
    )


def ensure_folder(workdir, n, source_px, seed=0):
    from keras_ssl_lt.data import write_image_folder

    root = Path(workdir) / f"n{n}"
    if not (root / "ImageNet_LT_train.txt").exists():
        classes = 10
        per = [n // classes + (1 if c < n % classes else 0) for c in range(classes)]
        t = time.perf_counter()
        write_image_folder(root, counts=per, size_range=tuple(source_px), seed=seed)
        print(f"wrote {n} images to {root} in {time.perf_counter() - t:.1f} s", flush=True)
    return root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000], help="dataset sizes (images)")
    p.add_argument("--px", type=int, default=128, help="decoded size (px x px)")
    p.add_argument("--source-px", type=int, nargs=2, default=[144, 192], help="range of the files' sides")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="parallel decodes (streaming)")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--workdir", default="/tmp/ksl_streaming_bench")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--contender", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    results = []
    for n in args.sizes:
        ensure_folder(args.workdir, n, args.source_px)
        for c in args.contenders:
            cmd = [sys.executable, __file__, "--child", "--n", str(n), "--contender", c, "--workdir", args.workdir]
            cmd += ["--px", str(args.px), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]
            cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("@@")]
            if out.returncode or not line:
                print(f"{c} n={n} failed:\n{out.stderr[-2000:]}")
                continue
            r = json.loads(line[-1][2:])
            results.append(r)
            print(
                f"n={n:6d} ({n * args.px * args.px * 3 / 2**20:7.1f} MiB decoded)  {c:16s} "
                f"peak RSS {r['peak_rss_mb']:7.1f} MiB (after imports {r['baseline_rss_mb']:6.1f})  "
                f"build {r['build_seconds']:6.2f} s  {r['images_per_s']:8.0f} images/s",
                flush=True,
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cpu count {os.cpu_count()}, load average {load:.1f}, px {args.px}, batch {args.batch_size}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "load": load, "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
