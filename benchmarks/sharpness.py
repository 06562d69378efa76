"""Cost of a SAM / ASAM / rwSAM step over a plain step, per Keras backend (2.0 is the floor: two passes).

Times `model.fit` of SimSiam with on-device augmentation on real CIFAR-10 (workers of
`benchmarks/train_step.py`), the plain step measured in the same run as the baseline.

    python benchmarks/sharpness.py                                           # CPU: small_resnet, batch 128
    python benchmarks/sharpness.py --backbone resnet18_cifar --batch-size 512 --steps 50   # GPU

The peak memory of a KDE weight refresh is measured by `benchmarks/kde_memory.py`.
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import hardware, run_worker  # noqa: E402
import train_step  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="small_resnet", choices=sorted(train_step.HEADS))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--modes", default="sam,asam,rwsam")
    p.add_argument("--repeats", type=int, default=2, help="alternate plain/SAM runs this many times, keep the best")
    p.add_argument("--data", default=None)
    a = p.parse_args()
    print(f"SimSiam {a.backbone}, batch {a.batch_size}, {a.steps} timed steps; {hardware()}")
    print(f"{'backend':12s} {'mode':8s} {'img/s':>9s} {'time / plain step':>18s}")
    base = train_step.parse([])
    for backend in a.backends.split(","):
        best = {}
        for _ in range(a.repeats):
            for mode in ["none"] + a.modes.split(","):
                args = train_step.worker_args(base, backbone=a.backbone, batch_size=a.batch_size, steps=a.steps,
                                              warmup=a.warmup, sharpness=mode, data=a.data)
                res = run_worker(HERE / "train_step.py", backend, args)
                if "error" in res:
                    print(f"{backend:12s} {mode:8s} failed: {res['error'].strip().splitlines()[-1][:120]}")
                    continue
                best[mode] = max(best.get(mode, 0.0), res["images_per_s"])
        plain = best.get("none")
        for mode, ips in best.items():
            ratio = plain / ips if plain else float("nan")
            print(f"{backend:12s} {('plain' if mode == 'none' else mode):8s} {ips:9.1f} {ratio:18.2f}")


if __name__ == "__main__":
    main()
