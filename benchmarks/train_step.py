"""Images per second of the SimSiam `fit`, per Keras backend and precision, against plain PyTorch.

Contenders (each backend and precision in its own long-lived process, models built and compiled once):

- `keras_ssl_lt` `model.fit` on real CIFAR-10 uint8 images with on-device augmentation (`simsiam_cifar`), and
  without augmentation (normalised float images fed as both views);
- the plain-PyTorch reference of the same network and step (`torch_reference.py`): with its own per-example
  augmentation from the same uint8 images, and on two fixed pre-made views.

All contenders are interleaved in rotated rounds (`--repeats`, median and spread printed), run with the same
thread settings and PyTorch oneDNN setting (printed), and each Keras figure is divided by the reference of the
same kind (augmented / not) measured in the same rounds. Gates: see `_common.py`.

    python benchmarks/train_step.py                          # CPU: small_resnet, batch 128, float32
    python benchmarks/train_step.py --backends jax --repeats 7 --steps 8
    python benchmarks/train_step.py --backbone resnet18_cifar --batch-size 512 --steps 20 --precisions mixed_bfloat16
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C

HEADS = {"small_resnet": (512, 128), "resnet18_cifar": (2048, 512)}
MODES = ("none", "sam", "asam", "rwsam")


def _mkldnn(value):
    return {"on": True, "off": False, "default": None}[value]


def build_model(backbone, mode, augment, num_examples, width=1.0, jit="auto"):
    """The timed model: SimSiam on `backbone` with the regulariser `mode` (one of MODES), compiled.

    Built after `keras.utils.set_random_seed(0)`, so every mode starts from the same weights. rwSAM's example
    weights are a fixed ramp over `num_examples` (their values do not change the step's cost).
    """
    import keras

    import keras_ssl_lt as ksl

    keras.utils.set_random_seed(0)
    proj, pred = HEADS[backbone]
    model = ksl.SimSiam(
        getattr(ksl.backbones, backbone)(width=width),
        augmenter=ksl.augment.simsiam_cifar(seed=0) if augment else None,
        projection_dim=proj,
        projection_hidden_dim=proj,
        prediction_hidden_dim=pred,
        num_examples=num_examples,
    )
    sharpness = {
        "none": lambda: None,
        "sam": lambda: ksl.SAM(rho=0.05),
        "asam": lambda: ksl.SAM(rho=2.0, adaptive=True),
        "rwsam": lambda: ksl.RWSAM(rho=2.0, adaptive=True, weights=np.linspace(0.5, 2.0, num_examples)),
    }[mode]()
    model.compile(
        optimizer=keras.optimizers.SGD(0.06, momentum=0.9, weight_decay=5e-4), sharpness=sharpness, jit_compile=jit
    )
    return model


def keras_setup(a):
    """Worker: one model per contender `AUG-MODE` (AUG in aug/noaug, MODE in none/sam/asam/rwsam)."""
    import keras

    threads = C.apply_thread_settings(torch_mkldnn=_mkldnn(a.torch_mkldnn))
    if a.precision != "float32":
        keras.config.set_dtype_policy(a.precision)
    n = a.batch_size * a.steps
    x, _, data_name = C.cifar_batches(n, a.data)
    contenders, first_fit = {}, {}
    for name in a.contenders.split(","):
        aug, mode = name.split("-")
        model = build_model(a.backbone, mode, aug == "aug", n, width=a.width, jit=a.jit)
        images = x if aug == "aug" else ((x.astype("float32") / 255.0) - 0.45) / 0.25
        data = {"images": images, "index": np.arange(n, dtype="int32")}
        w = a.batch_size * a.warmup
        x_warm, bs_warm = fit_input({k: v[:w] for k, v in data.items()}, a.batch_size)  # the timed input path
        t = time.perf_counter()
        model.fit(x_warm, batch_size=bs_warm, epochs=1, verbose=0, shuffle=False)
        first_fit[name] = time.perf_counter() - t
        contenders[name] = _fit_block(model, data, a.batch_size)
    info = {
        "threads": threads,
        "first_fit_s": first_fit,
        "data": data_name,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    return contenders, info


def fit_input(data, batch_size):
    """(x, batch_size) for the timed `fit`: the arrays, or on TensorFlow a tf.data dataset with autotuning off.

    Keras turns numpy arrays into a tf.data dataset with tf.data's autotuner on; on the TensorFlow backend the
    `fit` calls of this harness then ended up to about 5 s late, after the last step, whole blocks rounded up to
    multiples of about 5.2 s (measured: 10-step blocks of 2.7 s steps took 5.2 s in 4 of 6 rounds; with
    autotuning off on the same dataset, 12 of 12 blocks took the steps' time + 0.1 s). The package's own tf.data
    paths run with autotuning off (`keras_ssl_lt.data.pipeline`), so this is also what a user's TF `fit` reads.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return data, batch_size
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    ds = tf.data.Dataset.from_tensor_slices(data).batch(batch_size).prefetch(2).with_options(options)
    return ds, None


def _fit_block(model, data, batch_size):
    x, batch_size = fit_input(data, batch_size)

    def run():
        t = time.perf_counter()
        hist = model.fit(x, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
        float(hist.history["loss"][-1])  # results on the host: the steps have run
        return time.perf_counter() - t

    return run


def torch_setup(a):
    """Worker: the plain-PyTorch reference, `ref-aug` (its own augmentation) and `ref-views` (fixed views)."""
    import torch
    from torch_reference import make_step

    threads = C.apply_thread_settings(torch_mkldnn=_mkldnn(a.torch_mkldnn))
    proj, pred = HEADS[a.backbone]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, _, data_name = C.cifar_batches(a.batch_size * a.steps, a.data)
    common = {
        "proj": proj,
        "pred_hidden": pred,
        "bf16": a.precision != "float32",
        "width": a.width,
        "channels_last": a.channels_last,
        "device": device,
    }
    steps = {
        "ref-aug": make_step(a.backbone, a.batch_size, images=x, augment=True, **common),
        "ref-views": make_step(a.backbone, a.batch_size, augment=False, **common),
    }
    contenders = {}
    for name, (step, sync) in steps.items():
        for _ in range(a.warmup):
            step()
        sync()
        contenders[name] = _torch_block(step, sync, a.steps)
    return contenders, {"threads": threads, "device": device, "torch": torch.__version__, "data": data_name}


def _torch_block(step, sync, steps):
    def run():
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return time.perf_counter() - t

    return run


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kind", default="keras", choices=["keras", "torch_ref"], help=argparse.SUPPRESS)
    p.add_argument("--contenders", default="aug-none,noaug-none", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="small_resnet", choices=sorted(HEADS))
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of the backbone")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="steps per timed block")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation) before the rounds")
    p.add_argument("--repeats", type=int, default=C.DEFAULT_REPEATS, help="interleaved rounds (>= 3)")
    p.add_argument("--precisions", default="float32", help="comma list of float32, mixed_bfloat16")
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="skip the augmented contenders")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format in the reference")
    p.add_argument(
        "--worker-per-model", action="store_true", help="one worker process per model instead of one per backend"
    )
    p.add_argument("--jit", default="auto", type=lambda s: {"true": True, "false": False}.get(s.lower(), s))
    p.add_argument("--threads", type=int, default=None, help="threads for every contender (default: all CPUs)")
    p.add_argument(
        "--torch-mkldnn",
        default="off",
        choices=["off", "on", "default"],
        help="PyTorch oneDNN for every PyTorch contender (off: avoids the CPU hang in docs/performance.md)",
    )
    p.add_argument("--data", default=None, help="CIFAR-10 .npz (default ../shared/data/cifar10.npz)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    if a.repeats < 3:
        p.error("--repeats must be >= 3")
    return a


def common_args(a, **over):
    d = {
        "backbone": a.backbone,
        "width": a.width,
        "batch_size": a.batch_size,
        "steps": a.steps,
        "warmup": a.warmup,
        "jit": a.jit,
        "data": a.data,
        "torch_mkldnn": a.torch_mkldnn,
    }
    d.update(over)
    out = []
    for k, v in d.items():
        if v is not None:
            out += [f"--{k.replace('_', '-')}", str(v).lower() if isinstance(v, bool) else v]
    return out + (["--channels-last"] if a.channels_last else [])


def start_workers(a, keras_contenders, with_reference, log=print):
    """Starts the workers (one after another, so compilations do not overlap); returns [(label, worker, name)]."""
    slots, workers = [], []
    for precision in a.precisions.split(","):
        if with_reference:
            w = C.Worker(HERE / "train_step.py", common_args(a, kind="torch_ref", precision=precision))
            workers.append(w)
            if "error" in w.ready:
                log(f"plain PyTorch reference ({precision}) failed: {w.ready['error'][-600:]}")
            else:
                log(f"plain PyTorch reference ({precision}) ready: {C.describe_threads(w.ready['threads'])}")
                slots += [(f"torch-ref {precision} {n[4:]}", w, n) for n in w.ready["contenders"]]
        for backend in a.backends.split(","):
            # --worker-per-model: each model in a process of its own (TensorFlow's step times alternated between
            # two speeds when one process held several compiled models; see docs/performance.md)
            groups = [[c] for c in keras_contenders] if a.worker_per_model else [list(keras_contenders)]
            for group in groups:
                w = C.Worker(
                    HERE / "train_step.py",
                    common_args(a, precision=precision, contenders=",".join(group)),
                    backend=backend,
                )
                workers.append(w)
                if "error" in w.ready:
                    log(f"{backend} {precision} failed: {w.ready['error'][-600:]}")
                    continue
                log(
                    f"{backend} {precision} ready: first fit (compile + {a.warmup} steps) "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in w.ready["first_fit_s"].items())
                    + f"; {C.describe_threads(w.ready['threads'])}"
                )
                slots += [(f"{backend} {precision} {n}", w, n) for n in w.ready["contenders"]]
    return slots, workers


def header(a, what):
    C.pin_threads(a.threads)
    print(
        f"{what}: {a.backbone} (width {a.width}), batch {a.batch_size}, {a.steps} steps per block, "
        f"{a.repeats} interleaved rounds; {C.hardware()}; load average {C.load_average()[0]:.1f}"
    )
    print(
        f"thread settings for every contender: {a.threads or len(os.sched_getaffinity(0))} threads, same CPU set; "
        f"PyTorch oneDNN (mkldnn): {a.torch_mkldnn}"
    )


def main(argv=None):
    a = parse(argv)
    if a.worker:
        return C.serve(lambda: torch_setup(a) if a.kind == "torch_ref" else keras_setup(a))
    header(a, "SimSiam fit")
    contenders = (["aug-none"] if a.augment else []) + ["noaug-none"]
    slots, workers = start_workers(a, contenders, with_reference=True)
    try:
        res = C.interleave_workers(slots, a.repeats)
    finally:
        for w in workers:
            w.close()
    n_img = a.batch_size * a.steps
    ips = {label: [n_img / r["seconds"] for r in rs if "seconds" in r] for label, rs in res.items()}
    print(
        f"\nimages/s, median [IQR | range] of {a.repeats} rounds; ratio = median of per-round ratios to the "
        "plain-PyTorch reference of the same kind in the same rounds"
    )
    rows = []
    for label, v in ips.items():
        if not v:
            continue
        stat = C.summarize(v)
        line = f"{label:34s} {C.verdict(stat, ' img/s')}"
        ref_label = None
        if not label.startswith("torch-ref"):
            precision = label.split()[1]
            ref_label = f"torch-ref {precision} {'aug' if label.split()[2].startswith('aug-') else 'views'}"
        row = {"label": label, "images_per_s": stat}
        if ips.get(ref_label):
            r = C.summarize(C.ratios(v, ips[ref_label]))
            row["ratio_to_reference"] = r
            line += f"  ratio to {ref_label}: {C.verdict(r, 'x', 2)}"
        rows.append(row)
        print(line)
    if a.json:
        C.write_json(
            a.json,
            {
                "command": " ".join(sys.argv),
                "hardware": C.hardware(),
                "rows": rows,
                "workers": [w.ready for w in workers],
            },
        )


if __name__ == "__main__":
    main()
