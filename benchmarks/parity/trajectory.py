"""Longer trajectory-parity runs: the package's `fit` against the plain-PyTorch reference (docs/fidelity.md, section 2).

Prints, for each checkpoint, the distance between the package and the reference (running loss; all weights as one
relative L2 distance; the worst tensor) beside the widest of the rounding twins (references started one float32
ulp away). Runs under the backend named by KERAS_BACKEND.

    KERAS_BACKEND=jax python benchmarks/parity/trajectory.py --method simsiam --regularizer rwsam --steps 200
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.parity.harness import METHODS, REGULARIZERS, run_parity


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", choices=METHODS, default="simsiam")
    p.add_argument("--regularizer", choices=REGULARIZERS, default="none")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=8, help="view height and width")
    p.add_argument("--width", type=float, default=0.25, help="small_resnet channel multiplier")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--rho", type=float, default=None, help="SAM radius (default: 0.05 SAM, 0.5 ASAM / rwSAM)")
    p.add_argument("--twins", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", default="1,10,25,50,100", help="comma-separated steps")
    a = p.parse_args(argv)
    try:
        checkpoints = tuple(int(c) for c in a.checkpoints.split(","))
    except ValueError:
        p.error(f"--checkpoints must be comma-separated integers; got {a.checkpoints!r}")
    out = run_parity(
        a.method,
        a.regularizer,
        steps=a.steps,
        batch=a.batch,
        size=a.size,
        width=a.width,
        lr=a.lr,
        weight_decay=a.weight_decay,
        nesterov=a.nesterov,
        rho=a.rho,
        seed=a.seed,
        checkpoints=checkpoints,
        twins=a.twins,
    )
    print(f"{a.method} + {a.regularizer}, {a.steps} steps at batch {a.batch}, {a.size}x{a.size} views")
    print(
        "| step | loss gap | twins' loss gap | weight gap (L2) | twins' weight gap | worst tensor (its gap) | moving var ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in out["checkpoints"]:
        print(
            f"| {r['step']} | {r['loss_gap']:.1e} | {r['rounding_loss_gap']:.1e} | {r['weight_gap']:.1e} | "
            f"{r['rounding_weight_gap']:.1e} | {r['worst']} ({r['worst_gap']:.1e}) | {r['moving_variance_ratio']:.1e} |"
        )
    print(f"moving-variance bound (biased vs unbiased, 1/(batch-1)): {out['moving_variance_bound']:.1e}")
    return out


if __name__ == "__main__":
    main()
