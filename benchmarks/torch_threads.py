"""PyTorch backend on a CPU: step time by intra-op thread count and oneDNN setting, on a quiet or a busy machine.

    KERAS_BACKEND=torch python benchmarks/torch_threads.py                 # the machine as it is
    KERAS_BACKEND=torch python benchmarks/torch_threads.py --busy 2        # plus 2 busy processes beside it

Each contender is a persistent worker (`_common.Worker`) holding the `cpu` preset's SimCLR (the long-tail
recipe's config: `small_resnet`, 16-px views, batch 256) compiled once, timing blocks of `--steps` `fit` steps in
rotated rounds. Contenders: 1 thread and all cores, each with oneDNN (mkldnn) off and on. The baseline is
1 thread with oneDNN off; ratios are taken per round against it (median and range). `--busy K` starts K
processes that spin on the CPU for the whole measurement (the situation of a second experiment beside this
one); the load average is printed per round. See docs/performance.md, *Known issues*.
"""

import argparse
import os
import subprocess
import sys
import time

import _common as C

BUSY = "import time\nwhile True:\n    sum(i * i for i in range(10000))\n"


def worker_setup(a):
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = a.mkldnn == "on"
    from keras_ssl_lt.experiments import grids
    from keras_ssl_lt.experiments.protocol import build_pretrainer
    from keras_ssl_lt.optimizers import get_sgd

    cfg = grids.longtail_config("cpu")
    model = build_pretrainer("simclr", cfg, 10, num_examples=50000, seed=0)
    model.compile(optimizer=get_sgd(0.1, momentum=0.9, weight_decay=5e-4))
    batch = int(cfg["batch_size"])
    x = np.random.default_rng(0).integers(0, 256, (batch * a.steps, 32, 32, 3), dtype=np.uint8)
    model.fit(x=x[:batch], epochs=1, batch_size=batch, verbose=0)  # warm-up (first call builds everything)

    def block():
        t = time.perf_counter()
        model.fit(x=x, epochs=1, batch_size=batch, verbose=0)
        return {"seconds": (time.perf_counter() - t) / a.steps}

    info = {"torch_threads": torch.get_num_threads(), "torch_mkldnn": bool(torch.backends.mkldnn.enabled)}
    return {"step": block}, info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    p.add_argument("--steps", type=int, default=3, help="fit steps per timed block (default 3)")
    p.add_argument("--busy", type=int, default=0, help="busy processes to run beside the measurement")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--mkldnn", choices=("on", "off"), default="off", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return C.serve(lambda: worker_setup(a))
    if a.repeats < 1 or a.steps < 1 or a.busy < 0:
        sys.exit("--repeats and --steps must be >= 1, --busy >= 0")
    cores = os.cpu_count()
    print(f"machine: {C.hardware()}; load average at start {C.load_average()[0]:.1f}; busy processes: {a.busy}")
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(a.busy)]
    workers = []
    try:
        slots = []
        for threads in sorted({1, cores}):
            for mkldnn in ("off", "on"):
                label = f"{threads} thread{'s' if threads > 1 else ''}, oneDNN {mkldnn}"
                w = C.Worker(
                    __file__,
                    ["--threads", threads, "--mkldnn", mkldnn, "--steps", a.steps],
                    backend="torch",
                    env={"OMP_NUM_THREADS": str(threads)},
                    timeout=900,
                )
                workers.append(w)
                if "error" in w.ready:
                    print(f"  {label}: setup failed: {w.ready['error'][-300:]}")
                    continue
                slots.append((label, w, "step"))
        res = C.interleave_workers(slots, a.repeats)
    finally:
        for w in workers:
            w.close()
        for b in busy:
            b.kill()
    base = "1 thread, oneDNN off"
    print(f"\nSimCLR `fit` step, cpu preset, seconds per step over {a.repeats} rounds (median [min..max]):")
    for label, runs in res.items():
        secs = [r["seconds"] for r in runs if "error" not in r]
        if not secs:
            print(f"  {label:24s} failed")
            continue
        line = f"  {label:24s} {C.verdict(C.summarize(secs), ' s', 3)}"
        if label != base and base in res:
            pairs = [r["seconds"] for r in res[base] if "error" not in r]
            if pairs:
                line += f"   ratio to {base}: {C.fmt(C.summarize(C.ratios(secs, pairs)), 'x', 2)}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
