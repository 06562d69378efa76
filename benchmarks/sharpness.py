"""Cost of a SAM / ASAM / rwSAM step over a plain step, per Keras backend (2.0 is the floor: two passes).

Times `model.fit` of SimSiam with on-device augmentation on real CIFAR-10 (the workers of `train_step.py`):
per backend one process holds a plain model and one model per regulariser, all compiled once; every model of
every backend is interleaved in rotated rounds (`--repeats`), and each regulariser's step time is divided by
the plain step time of the same backend in the same round. With augmentation a plain model on pre-made views is
timed in the same rounds too: its step is the forward-backward alone (fb), the rest of the augmented plain step is
the augmentation (aug). Gates: a ratio below 1 + 0.9 fb / (aug + fb) (the expected ratio is (aug + 2 fb) / (aug +
fb): the second pass reuses the views; 1.9 without augmentation) or a spread above the median prints NOT
TRUSTWORTHY instead of a figure.

    python benchmarks/sharpness.py                                   # CPU: small_resnet, batch 128
    python benchmarks/sharpness.py --backends jax --repeats 7
    python benchmarks/sharpness.py --no-augment                      # the two passes alone, no augmentation
    python benchmarks/sharpness.py --backbone resnet18_cifar --batch-size 512 --steps 20   # GPU

The peak memory of a KDE weight refresh is measured by `benchmarks/kde_memory.py`.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C
import train_step

TARGET = 2.05  # issue 11: at most 2.05x the plain step on every backend


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    modes = "sam,asam,rwsam"
    if "--modes" in argv:
        i = argv.index("--modes")
        modes = argv[i + 1]
        del argv[i : i + 2]
    bad = [m for m in modes.split(",") if m not in train_step.MODES[1:]]
    if bad:
        raise ValueError(f"--modes must be a comma list of sam, asam, rwsam; got {bad}")
    a = train_step.parse(argv)
    if a.worker:  # pragma: no cover - workers are train_step.py processes
        raise SystemExit("sharpness.py has no worker mode")
    train_step.header(a, "SAM-type step cost")
    a.precisions = a.precisions.split(",")[0]
    # With augmentation (the default) a SAM-type step draws its views once and runs two forward-backward
    # passes, so it costs about (aug + 2 fb) / (aug + fb) plain steps: under 2 where augmentation is a large
    # share of the step (small networks). The plain step on pre-made views (`noaug-none`, fb alone) is timed in
    # the same rounds to gate each ratio against that measured floor. `--no-augment` isolates the two passes.
    prefix = "aug" if a.augment else "noaug"
    contenders = [f"{prefix}-none"] + [f"{prefix}-{m}" for m in modes.split(",")]
    if a.augment:
        contenders.append("noaug-none")
    slots, workers = train_step.start_workers(a, contenders, with_reference=False)
    try:
        res = C.interleave_workers(slots, a.repeats)
    finally:
        for w in workers:
            w.close()
    print(
        f"\nseconds per step, median [IQR | range] of {a.repeats} rounds; ratio = median of per-round "
        f"(regularised step / plain step) of the same backend; target <= {TARGET}x, gate 1 + {C.SAM_SLACK} x the "
        "forward-backward share of the plain step (views / augmented plain step; 1 without augmentation)"
    )
    for backend in a.backends.split(","):
        step = {}
        for label, rs in res.items():
            b, _, name = label.split()
            if b == backend and rs and all("seconds" in r for r in rs):
                step[name] = [r["seconds"] / a.steps for r in rs]
        plain = f"{prefix}-none"
        if plain not in step:
            print(f"{backend:11s} no plain-step figure (worker failed); see the messages above")
            continue
        print(f"{backend:11s} plain  {C.verdict(C.summarize(step[plain]), ' s', 4)}")
        if not a.augment:
            share = 1.0
        elif "noaug-none" in step:
            share = C.fb_share(step["noaug-none"], step[plain])
            print(
                f"{'':11s} views  {C.verdict(C.summarize(step['noaug-none']), ' s', 4)}  forward-backward share "
                f"of the plain step {share:.2f}: gate {C.sam_floor(share):.2f}x"
            )
        else:
            print(f"{backend:11s} no plain step on pre-made views (worker failed): gated at {C.SAM_FLOOR}x")
            share = 1.0
        floor = C.sam_floor(share)
        for name, v in step.items():
            if name in (plain, "noaug-none"):
                continue
            r = C.ratios(v, step[plain])
            med = float(np.median(r))
            rstat = C.summarize(r)
            flag = C.verdict(rstat, "x", 2, sam_ratio=med, floor=floor)
            target = (
                ""
                if flag.startswith(C.NOT_TRUSTWORTHY)
                else (" (target met)" if med <= TARGET else " (target NOT met)")
            )
            print(f"{'':11s} {name.split('-')[1]:6s} {C.verdict(C.summarize(v), ' s', 4)}  ratio {flag}{target}")


if __name__ == "__main__":
    main()
