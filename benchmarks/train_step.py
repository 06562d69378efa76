"""Images per second of the SimSiam training step, per Keras backend and precision, against plain PyTorch.

Each configuration runs in its own process. The Keras figures time `model.fit` on real CIFAR-10 uint8
images (on-device augmentation included unless `--no-augment`), after a warm-up `fit` that compiles the
step; the reference is a plain-PyTorch implementation of the same network and step
(`benchmarks/torch_reference.py`) on pre-made float views, measured in the same run.

    python benchmarks/train_step.py                                 # CPU: small_resnet, batch 128
    python benchmarks/train_step.py --backbone resnet18_cifar --batch-size 512 --steps 50   # GPU
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cifar_batches, hardware, run_worker  # noqa: E402

HEADS = {"small_resnet": (512, 128), "resnet18_cifar": (2048, 512)}


def keras_worker(a):
    import keras
    import numpy as np
    import keras_ssl_lt as ksl

    if a.precision != "float32":
        keras.config.set_dtype_policy(a.precision)
    keras.utils.set_random_seed(0)
    proj, pred = HEADS[a.backbone]
    n = a.batch_size * (a.steps + a.warmup)
    x, y, data_name = cifar_batches(n, a.data)
    model = ksl.SimSiam(
        getattr(ksl.backbones, a.backbone)(),
        augmenter=ksl.augment.simsiam_cifar() if a.augment else None,
        projection_dim=proj, projection_hidden_dim=proj, prediction_hidden_dim=pred,
        num_examples=n,
    )
    if not a.augment:  # feed normalised float views directly, as the PyTorch reference does
        x = ((x.astype("float32") / 255.0) - 0.45) / 0.25
    sharp = {"none": None, "sam": ksl.SAM(rho=0.05), "asam": ksl.SAM(rho=2.0, adaptive=True),
             "rwsam": ksl.RWSAM(rho=2.0, adaptive=True, weights=np.linspace(0.5, 2.0, n))}[a.sharpness]
    model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9, weight_decay=5e-4), sharpness=sharp,
                  jit_compile=a.jit)
    data = {"images": x, "index": np.arange(n, dtype="int32")}
    w = a.batch_size * a.warmup
    model.fit({k: v[:w] for k, v in data.items()}, batch_size=a.batch_size, epochs=1, verbose=0, shuffle=False)
    t = time.perf_counter()
    model.fit({k: v[w:] for k, v in data.items()}, batch_size=a.batch_size, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t
    return {"images_per_s": a.steps * a.batch_size / seconds, "seconds": seconds, "data": data_name}


def torch_worker(a):
    import torch
    from torch_reference import make_step

    proj, pred = HEADS[a.backbone]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    step, sync = make_step(a.backbone, a.batch_size, proj, pred, bf16=a.precision != "float32",
                           channels_last=a.channels_last, device=device)
    for _ in range(a.warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    seconds = time.perf_counter() - t
    return {"images_per_s": a.steps * a.batch_size / seconds, "seconds": seconds, "data": "random views"}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kind", default="keras", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="small_resnet", choices=sorted(HEADS))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--sharpness", default="none", choices=["none", "sam", "asam", "rwsam"])
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--jit", default="auto", type=lambda s: {"true": True, "false": False}.get(s.lower(), s))
    p.add_argument("--data", default=None)
    return p.parse_args(argv)


def worker_args(a, **over):
    d = dict(backbone=a.backbone, batch_size=a.batch_size, steps=a.steps, warmup=a.warmup, precision=a.precision,
             sharpness=a.sharpness, augment=a.augment, jit=a.jit, data=a.data, channels_last=a.channels_last)
    d.update(over)
    out = []
    for k, v in d.items():
        if k == "augment":
            out += [] if v else ["--no-augment"]
        elif k == "channels_last":
            out += ["--channels-last"] if v else []
        elif v is not None:
            out += [f"--{k.replace('_', '-')}", str(v).lower() if isinstance(v, bool) else v]
    return out


def main():
    a = parse()
    if a.worker:
        result = torch_worker(a) if a.kind == "torch_ref" else keras_worker(a)
        print(json.dumps(result))
        return
    print(f"SimSiam {a.backbone}, batch {a.batch_size}, {a.steps} timed steps after {a.warmup} warm-up; {hardware()}")
    print(f"{'configuration':48s} {'img/s':>9s} {'vs torch ref':>13s}")
    for precision in a.precisions.split(","):
        ref = run_worker(__file__, "torch", worker_args(a, precision=precision) + ["--kind", "torch_ref"])
        ref_ips = ref.get("images_per_s")
        print(f"{'plain PyTorch reference, ' + precision:48s} {ref_ips or float('nan'):9.1f} {1.0:13.2f}")
        for backend in a.backends.split(","):
            for augment in ([True, False] if a.augment else [False]):
                res = run_worker(__file__, backend, worker_args(a, precision=precision, augment=augment))
                label = f"keras_ssl_lt fit, {backend}, {precision}, {'aug on device' if augment else 'no aug'}"
                if "error" in res:
                    print(f"{label:48s} failed: {res['error'].strip().splitlines()[-1][:120]}")
                    continue
                ratio = res["images_per_s"] / ref_ips if ref_ips else float("nan")
                print(f"{label:48s} {res['images_per_s']:9.1f} {ratio:13.2f}")


if __name__ == "__main__":
    main()
