"""One prepared GPU check of keras-ssl-lt's speed targets (issue 11); needs no TensorFlow.

Runs on the Keras backend named by KERAS_BACKEND (jax or torch; jax when unset), on real CIFAR-10 images from
an .npz (x_train, y_train and optionally x_test, y_test; see `make_cifar_slice.py`), and measures, with every
contender interleaved in rotated rounds (median and spread of `--repeats` rounds, see `_common.py`):

1. `fit` images/s of SimSiam with a CIFAR ResNet-18 (`keras_ssl_lt.backbones.resnet18_cifar`), batch 512,
   on-device augmentation (`keras_ssl_lt.augment.simsiam_cifar`), in `--precision` (mixed_bfloat16), against a
   plain-PyTorch reference of the same network and step in bf16 autocast and channels-last memory format
   (`torch_reference.py`, in its own process): once with its own per-example augmentation on the GPU, once on
   two fixed pre-made views (the no-augmentation ceiling). Target: fit >= 1.15x the reference with augmentation.
2. The linear probe (`fit_logistic_regression`) and the kNN monitor (`knn_predict`, k = 200, cosine, exp
   weights) on encoder features, against scikit-learn on the machine's CPU (`LogisticRegression` lbfgs with the
   same objective on the probe's own standardisation, brute-force cosine `KNeighborsClassifier` with the same
   weights), with the agreement rate of the predictions and, for the probe, both final objectives (mean
   cross-entropy + l2/2 ||W||^2 in float64 on the host): a probe objective more than 1e-3 (relative) above
   scikit-learn's makes the probe figure NOT TRUSTWORTHY (a fast wrong answer). Both stop at max |gradient| <
   1e-4. The probe runs on the first --n-probe-train training features (4,000: three rounds of scikit-learn,
   about 25 s each on 16 CPU threads for 512-d features, fit --eval-budget-s; at 14,000 one round took 79 s of a
   60 s budget and the figure could not be trusted). Targets: probe >= 10x and kNN >= 20x faster.
3. The rwSAM step time over the plain step time (`fit` of the same model with `RWSAM(rho=2, adaptive=True)`).
   Target: <= 2.05x. A plain model on pre-made views (the forward-backward alone, fb; the rest of the plain step
   is the augmentation, aug) is timed in the same rounds: the expected ratio is (aug + 2 fb) / (aug + fb), and a
   ratio below 1 + 0.9 fb / (aug + fb) is NOT TRUSTWORTHY (see `_common.py`).

Every figure is recorded with the card's name. Results go to `--out` as `gpu_check_<backend>.json` and
`gpu_check_<backend>.md`, rewritten after each section so a run cut short still leaves what it measured.
`--tiny` runs the same code paths on a CPU in about two minutes (narrow network, small batches).

    KERAS_BACKEND=jax   python benchmarks/gpu_check.py gpu_data/cifar10_slice.npz --out $OUT
    KERAS_BACKEND=torch python benchmarks/gpu_check.py gpu_data/cifar10_slice.npz --out $OUT
    KERAS_BACKEND=jax   python benchmarks/gpu_check.py ../shared/data/cifar10.npz --out /tmp/gc --tiny
"""

import argparse
import os
import sys
import time
from pathlib import Path

# JAX must not take 75% of the GPU up front: the PyTorch reference runs beside it. Set before any import of JAX.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C

# eval_budget_s: the probe/kNN section runs the rounds (up to --repeats) that fit in this many seconds.
FULL = {
    "batch_size": 512,
    "steps": 20,
    "warmup": 3,
    "repeats": 5,
    "width": 1.0,
    "proj": 2048,
    "pred": 512,
    "n_eval_train": None,
    "n_eval_test": None,
    "n_probe_train": 4000,
    "k": 200,
    "eval_batch": 1024,
    "eval_budget_s": 90,
    "precision": "mixed_bfloat16",
}
# --tiny defaults to float32 and one step per block: PyTorch's CPU convolutions without oneDNN (off, see
# docs/performance.md) take seconds per step even for this narrow network, in bf16 far more. The mixed_bfloat16
# path runs on a CPU too (pass --precision mixed_bfloat16), only slowly.
TINY = {
    "batch_size": 16,
    "steps": 1,
    "warmup": 1,
    "repeats": 3,
    "width": 0.125,
    "proj": 64,
    "pred": 16,
    "n_eval_train": 500,
    "n_eval_test": 100,
    "n_probe_train": 300,
    "k": 20,
    "eval_batch": 250,
    "eval_budget_s": 30,
    "precision": "float32",
}
OBJECTIVE_GATE = 1e-3  # the probe's objective may exceed scikit-learn's by this much (relative) to be trusted
TARGETS = {
    "fit": ("fit / plain-PyTorch reference (with augmentation), images/s", ">=", 1.15),
    "rwsam": ("rwSAM step / plain step", "<=", 2.05),
    "probe": ("scikit-learn time / ours, linear probe", ">=", 10.0),
    "knn": ("scikit-learn time / ours, kNN monitor", ">=", 20.0),
}


# ---------------------------------------------------------------------------------------------- data
def load_split(path, seed=0):
    """Shuffled (x_train, y_train, x_test, y_test) from an .npz; the test part is split off when absent."""
    with np.load(path) as f:
        x, y = f["x_train"], f["y_train"].reshape(-1).astype("int32")
        xt = f["x_test"] if "x_test" in f.files else None
        yt = f["y_test"].reshape(-1).astype("int32") if "y_test" in f.files else None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"x_train must be uint8 (N, H, W, 3); got {x.shape} {x.dtype}")
    rng = np.random.default_rng(seed)
    p = rng.permutation(len(y))  # CIFAR .npz files are often sorted by class
    x, y = x[p], y[p]
    if xt is None:
        cut = int(len(y) * 0.8)
        x, xt, y, yt = x[:cut], x[cut:], y[:cut], y[cut:]
    return x, y, xt, yt


def fit_images(x, n):
    """The first `n` images, repeating the array if it is shorter."""
    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n] if reps > 1 else x[:n]


# ---------------------------------------------------------------------------------------------- reference worker
def ref_setup(a):
    """Worker side: the plain-PyTorch reference, with and without its own augmentation."""
    import torch
    from torch_reference import make_step

    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = C.apply_thread_settings(torch_mkldnn=False if device == "cpu" else None)
    x, _, _, _ = load_split(a.data, a.seed)
    images = fit_images(x, a.batch_size * a.steps)
    # bf16 autocast on the GPU; on a CPU (--tiny smoke test only) PyTorch's bf16 kernels without oneDNN are so
    # slow that the smoke test would not fit in its two minutes, so float32 is used there and reported.
    bf16 = device == "cuda"
    common = {
        "proj": a.proj,
        "pred_hidden": a.pred,
        "bf16": bf16,
        "channels_last": True,
        "device": device,
        "width": a.width,
    }
    steps = {
        "aug": make_step("resnet18_cifar", a.batch_size, images=images, augment=True, **common),
        "views": make_step("resnet18_cifar", a.batch_size, augment=False, **common),
    }
    for step, sync in steps.values():  # warm-up: cuDNN algorithm choice, allocator
        for _ in range(a.warmup):
            step()
        sync()

    def block(step, sync):
        def run():
            sync()
            t = time.perf_counter()
            for _ in range(a.steps):
                step()
            sync()
            return time.perf_counter() - t

        return run

    info = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({C.cpu_name()})",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if device == "cuda" else None,
        "threads": threads,
        "precision": "bf16 autocast" if bf16 else "float32",
        "channels_last": True,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    return {name: block(*s) for name, s in steps.items()}, info


# ---------------------------------------------------------------------------------------------- report
class Report:
    def __init__(self, out, backend, meta):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self.meta = meta
        self.rows = []

    def add(
        self,
        section,
        figure,
        device,
        stat,
        unit,
        baseline=None,
        ratio=None,
        target=None,
        sam_ratio=None,
        sam_floor=C.SAM_FLOOR,
        extra=None,
        problems=(),
    ):
        problems = C.trust_problems(stat, sam_ratio, sam_floor) + list(problems)
        row = {
            "section": section,
            "figure": figure,
            "device": device,
            "unit": unit,
            "stat": stat,
            "baseline": baseline,
            "trust_problems": problems,
            "trustworthy": not problems,
        }
        if ratio is not None:
            rstat = C.summarize(ratio)
            row["ratio"] = rstat
            row["trust_problems"] += [f"ratio: {p}" for p in C.trust_problems(rstat) if "repeat" not in p]
            row["trustworthy"] = not row["trust_problems"]
        if target is not None:
            desc, op, value = TARGETS[target]
            r = row["ratio"]["median"]
            met = bool(r >= value if op == ">=" else r <= value)
            # An untrustworthy figure neither meets nor misses a target.
            row["target"] = {"what": desc, "op": op, "value": value, "met": met if row["trustworthy"] else None}
        row.update(extra or {})
        self.rows.append(row)
        text = C.verdict(stat, f" {unit}", 3 if unit == "s" else 1, sam_ratio, sam_floor)
        rtxt = f"; ratio {C.fmt(row['ratio'], 'x', 2)}" if ratio is not None else ""
        if row["trust_problems"] and not text.startswith(C.NOT_TRUSTWORTHY):
            rtxt += f" ({C.NOT_TRUSTWORTHY}: {'; '.join(row['trust_problems'])})"
        print(f"[{section}] {figure} on {device}: {text}{rtxt}", flush=True)
        self.write()

    def write(self):
        payload = dict(self.meta, rows=self.rows, tensorflow_imported="tensorflow" in sys.modules)
        C.write_json(self.out / f"gpu_check_{self.backend}.json", payload)
        lines = [
            f"# gpu_check, Keras backend `{self.backend}`",
            "",
            f"- machine: {self.meta['hardware']}",
            f"- command: `{self.meta['command']}`",
            f"- settings: {self.meta['settings']}",
            f"- threads: {C.describe_threads(self.meta['threads'])}",
            f"- reference worker: {self.meta.get('reference', {})}",
            (
                f"- first `fit` of each model (XLA/cuDNN set-up and warm-up steps included), s: "
                f"{self.meta.get('first_fit_s', {})}"
            ),
            (
                f"- feature extraction for the probe and kNN (train + test), s: "
                f"{self.meta.get('feature_extraction_s', 'not reached')}"
            ),
            f"- whole run, s: {self.meta.get('total_s', 'not finished')}",
            "",
        ]
        if self.meta.get("tiny"):
            lines += ["**--tiny: a smoke test of the code paths on a small network; these are not results.**", ""]
        lines += [
            "Median [IQR | range] of the rounds; ratio = median of the per-round ratios to the in-run baseline.",
            "",
            "| figure | device | value | baseline | ratio | target | trust |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            digits = 3 if r["unit"] == "s" else 1
            value = C.fmt(r["stat"], f" {r['unit']}", digits)
            ratio = C.fmt(r["ratio"], "x", 2) if "ratio" in r else ""
            tgt = ""
            if "target" in r:
                t = r["target"]
                met = {True: "met", False: "NOT met", None: "no verdict (not trustworthy)"}[t["met"]]
                tgt = f"{t['op']} {t['value']}x: {met}"
            trust = "ok" if r["trustworthy"] else f"{C.NOT_TRUSTWORTHY}: {'; '.join(r['trust_problems'])}"
            cells = [r["figure"], r["device"], value, r["baseline"] or "", ratio, tgt, trust]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        for r in self.rows:
            if "sam_gate" in r and "target" in r:
                lines.append(
                    f"\n{r['figure']}: the forward-backward is {r['fb_share'] * 100:.1f}% of the plain step (plain "
                    f"step on pre-made views / plain step), so a ratio below {r['sam_gate']:.2f}x is not trusted "
                    f"(expected about {1 + r['fb_share']:.2f}x: the second pass reuses the views)."
                )
            if "agreement" in r:
                lines.append(
                    f"\n{r['figure']}: predictions agree with scikit-learn on {r['agreement'] * 100:.2f}% "
                    f"of {r['n_test']} test examples; accuracy ours {r['acc_ours'] * 100:.2f}%, "
                    f"scikit-learn {r['acc_sklearn'] * 100:.2f}%."
                )
            if "objective_ours" in r:
                lines.append(
                    f"{r['figure']}: objective ours {r['objective_ours']:.7f} ({r['iterations_ours']} iterations, "
                    f"converged {r['converged_ours']}, split TF32 products {r['split_products']}), scikit-learn "
                    f"{r['objective_sklearn']:.7f} ({r['iterations_sklearn']} iterations): ours - scikit-learn = "
                    f"{r['objective_rel_diff']:+.2e} relative (gate {OBJECTIVE_GATE:g})."
                )
        (self.out / f"gpu_check_{self.backend}.md").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- package API
def api():
    """The package objects used here, under their public names."""
    import keras_ssl_lt as ksl
    from keras_ssl_lt.evaluation import (
        extract_features,
        fit_logistic_regression,
        knn_predict,
    )

    return {
        "ksl": ksl,
        "RWSAM": ksl.RWSAM,
        "extract_features": extract_features,
        "knn_predict": knn_predict,
        "fit_logistic_regression": fit_logistic_regression,
    }


def backend_device(backend):
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return getattr(d, "device_kind", str(d)) if d.platform != "cpu" else f"cpu ({C.cpu_name()})"
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({C.cpu_name()})"
    return backend


# ---------------------------------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", help="CIFAR-10 .npz (x_train, y_train[, x_test, y_test], uint8 images)")
    p.add_argument("--out", help="folder for gpu_check_<backend>.json and .md")
    p.add_argument("--tiny", action="store_true", help="same code paths, CPU-sized (about 2 minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=1e-4, help="linear-probe penalty on the mean loss")
    p.add_argument("--temperature", type=float, default=0.1)
    types = {"width": float, "eval_budget_s": float, "precision": str}
    for k, full in FULL.items():
        p.add_argument(
            f"--{k.replace('_', '-')}",
            type=types.get(k, int),
            default=None,
            choices=["mixed_bfloat16", "float32"] if k == "precision" else None,
            help=f"default {full} (tiny: {TINY[k]})",
        )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    base = TINY if a.tiny else FULL
    for k, v in base.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if not a.worker and (not a.data or not a.out):
        p.error("the .npz path and --out are required")
    if a.repeats < 3:
        p.error("--repeats must be >= 3 (a median and a spread need several rounds)")
    return a


def worker_args(a):
    return [
        a.data,
        "--seed",
        a.seed,
        "--batch-size",
        a.batch_size,
        "--steps",
        a.steps,
        "--warmup",
        a.warmup,
        "--width",
        a.width,
        "--proj",
        a.proj,
        "--pred",
        a.pred,
    ] + (["--tiny"] if a.tiny else [])


def main(argv=None):
    a = parse(argv)
    if a.worker:
        return C.serve(lambda: ref_setup(a))
    t_start = time.perf_counter()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    backend = os.environ["KERAS_BACKEND"]
    C.pin_threads()
    print(f"gpu_check: backend {backend}; {C.hardware()}", flush=True)
    ref = C.Worker(Path(__file__), worker_args(a), timeout=900)
    if "error" in ref.ready:
        print(f"plain-PyTorch reference failed to start:\n{ref.ready['error']}", flush=True)

    import keras

    x_train, y_train, x_test, y_test = load_split(a.data, a.seed)
    on_cpu_torch = backend == "torch" and not __import__("torch").cuda.is_available()
    threads = C.apply_thread_settings(torch_mkldnn=False if on_cpu_torch else None)
    device = backend_device(backend)
    fns = api()
    ksl = fns["ksl"]
    settings = (
        f"SimSiam resnet18_cifar width {a.width}, batch {a.batch_size}, {a.steps} steps per block, "
        f"{a.warmup} warm-up steps, {a.repeats} rounds, precision {a.precision}, on-device augmentation "
        f"simsiam_cifar; reference: plain PyTorch, bf16 autocast (float32 on a CPU), channels-last"
    )
    meta = {
        "backend": backend,
        "device": device,
        "hardware": C.hardware(),
        "gpus": C.gpu_names(),
        "keras": keras.__version__,
        "command": " ".join([f"KERAS_BACKEND={backend}", "python"] + sys.argv),
        "settings": settings,
        "threads": threads,
        "reference": ref.ready,
        "data": str(a.data),
        "n_train": len(y_train),
        "n_test": len(y_test),
        "tiny": a.tiny,
    }
    report = Report(a.out, backend, meta)
    print(f"keras {keras.__version__} on {device}; threads: {C.describe_threads(threads)}", flush=True)

    # ------------------------------------------------------------------ 1. fit vs plain PyTorch
    if a.precision != "float32":
        keras.config.set_dtype_policy(a.precision)
    n_fit = a.batch_size * a.steps
    x_fit = fit_images(x_train, n_fit)
    data = {"images": x_fit, "index": np.arange(n_fit, dtype="int32")}
    warm = {"images": x_fit[: a.batch_size * a.warmup], "index": np.arange(a.batch_size * a.warmup, dtype="int32")}

    def build(sharpness, augment=True):
        # Not keras.utils.set_random_seed: it imports TensorFlow whenever TF is installed. Weights start
        # unseeded; the augmenter is seeded (timings do not depend on either). augment=False: the model reads
        # pre-made views (`views_data`), its step is the forward-backward alone.
        np.random.seed(a.seed)
        model = ksl.SimSiam(
            ksl.backbones.resnet18_cifar(width=a.width),
            augmenter=ksl.augment.simsiam_cifar(seed=a.seed) if augment else None,
            projection_dim=a.proj,
            projection_hidden_dim=a.proj,
            prediction_hidden_dim=a.pred,
            num_examples=n_fit,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9, weight_decay=5e-4), sharpness=sharpness)
        w = warm if augment else {k: v[: len(warm["index"])] for k, v in views_data().items()}
        t = time.perf_counter()
        model.fit(w, batch_size=a.batch_size, epochs=1, verbose=0, shuffle=False)
        return model, time.perf_counter() - t

    def views_data():
        images = ((x_fit.astype("float32") / 255.0) - 0.45) / 0.25  # normalised images, fed as both views
        return {"images": images, "index": data["index"]}

    def fit_block(model, inputs=None):
        inputs = data if inputs is None else inputs

        def run():
            t = time.perf_counter()
            hist = model.fit(inputs, batch_size=a.batch_size, epochs=1, verbose=0, shuffle=False)
            float(hist.history["loss"][-1])  # the step's results are on the host: the work is done
            return time.perf_counter() - t

        return run

    plain, compile_plain = build(None)
    print(f"plain model: first fit ({a.warmup} steps, compile included) {compile_plain:.1f} s", flush=True)
    meta["first_fit_s"] = {"plain": compile_plain}
    ref_dev = ref.ready.get("device", "?")
    ref_prec = ref.ready.get("precision", "?")
    contenders = {"keras": fit_block(plain)}
    if "error" not in ref.ready:
        contenders["ref_aug"] = lambda: ref.run("aug")["seconds"]
        contenders["ref_views"] = lambda: ref.run("views")["seconds"]
    times = C.interleave(contenders, a.repeats)
    ips = {k: [n_fit / s for s in v] for k, v in times.items()}
    if "ref_aug" in ips:
        report.add(
            "fit",
            f"keras_ssl_lt fit ({backend}, {a.precision}, aug on device)",
            device,
            C.summarize(ips["keras"]),
            "img/s",
            f"plain PyTorch {ref_prec} channels-last, its own on-device aug",
            C.ratios(ips["keras"], ips["ref_aug"]),
            target="fit",
        )
        report.add(
            "fit",
            f"plain PyTorch reference ({ref_prec}, channels-last, aug on device)",
            ref_dev,
            C.summarize(ips["ref_aug"]),
            "img/s",
        )
        report.add(
            "fit",
            f"plain PyTorch reference ({ref_prec}, channels-last, pre-made views)",
            ref_dev,
            C.summarize(ips["ref_views"]),
            "img/s",
            "keras_ssl_lt fit",
            C.ratios(ips["ref_views"], ips["keras"]),
        )
    else:
        report.add(
            "fit",
            f"keras_ssl_lt fit ({backend}, {a.precision}, aug on device)",
            device,
            C.summarize(ips["keras"]),
            "img/s",
        )
    ref.close()

    # ------------------------------------------------------------------ 2. probe and kNN vs scikit-learn
    n_tr = min(a.n_eval_train or len(x_train), len(x_train))
    n_te = min(a.n_eval_test or len(x_test), len(x_test))
    extract = fns["extract_features"]
    extract(plain, x_train[: a.eval_batch], batch_size=a.eval_batch)  # compile the inference step
    t = time.perf_counter()
    ftr = extract(plain, x_train[:n_tr], batch_size=a.eval_batch)
    fte = extract(plain, x_test[:n_te], batch_size=a.eval_batch)
    meta["feature_extraction_s"] = time.perf_counter() - t
    ytr, yte = y_train[:n_tr], y_test[:n_te]
    num_classes = int(max(ytr.max(), yte.max()) + 1)
    print(f"features: train {ftr.shape}, test {fte.shape} in {meta['feature_extraction_s']:.2f} s", flush=True)
    eval_sklearn(a, report, fns, device, ftr, ytr, fte, yte, num_classes, a.eval_budget_s)

    # ------------------------------------------------------------------ 3. rwSAM step / plain step (last: its
    # compilation is the longest, and a run cut short by the hard limit keeps everything before it)
    weights = np.linspace(0.5, 2.0, n_fit).astype("float32")
    rw, compile_rw = build(fns["RWSAM"](rho=2.0, adaptive=True, weights=weights))
    meta["first_fit_s"]["rwsam"] = compile_rw
    print(f"rwSAM model: first fit (compile included) {compile_rw:.1f} s", flush=True)
    # The plain step on pre-made views: the forward-backward alone, for the measured floor of the rwSAM ratio.
    views_model, compile_views = build(None, augment=False)
    meta["first_fit_s"]["plain_views"] = compile_views
    print(f"plain model on pre-made views: first fit (compile included) {compile_views:.1f} s", flush=True)
    contenders = {"plain": fit_block(plain), "rwsam": fit_block(rw), "views": fit_block(views_model, views_data())}
    times = C.interleave(contenders, a.repeats)
    step = {k: [s / a.steps for s in v] for k, v in times.items()}
    rw_ratio = C.ratios(step["rwsam"], step["plain"])
    share = C.fb_share(step["views"], step["plain"])
    report.add("rwsam", f"plain step ({backend})", device, C.summarize(step["plain"]), "s")
    report.add(
        "rwsam",
        f"plain step on pre-made views ({backend}): the forward-backward alone",
        device,
        C.summarize(step["views"]),
        "s",
        "plain step",
        C.ratios(step["views"], step["plain"]),
        extra={"fb_share": share, "sam_gate": C.sam_floor(share)},
    )
    report.add(
        "rwsam",
        f"rwSAM step ({backend}, adaptive, rho 2)",
        device,
        C.summarize(step["rwsam"]),
        "s",
        "plain step",
        rw_ratio,
        target="rwsam",
        sam_ratio=float(np.median(rw_ratio)),
        sam_floor=C.sam_floor(share),
        extra={"fb_share": share, "sam_gate": C.sam_floor(share)},
    )
    del rw, views_model

    report.meta["total_s"] = time.perf_counter() - t_start
    report.write()
    print(f"done in {report.meta['total_s']:.0f} s; results in {report.out}", flush=True)
    assert "tensorflow" not in sys.modules, "TensorFlow was imported: the GPU check must run without it"
    print("tensorflow imported: no", flush=True)


def eval_sklearn(a, report, fns, device, ftr, ytr, fte, yte, num_classes, budget_s):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    knn, fit_lr = fns["knn_predict"], fns["fit_logistic_regression"]
    cpu = f"cpu ({C.cpu_name()}, {len(os.sched_getaffinity(0))} threads)"
    k, temp = min(a.k, len(ytr)), a.temperature
    preds = {}

    def timed(name, fn):
        def run():
            t = time.perf_counter()
            preds[name] = fn()
            return time.perf_counter() - t

        return run

    sk_knn = KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1.0 - d) / temp)
    )
    knn_c = {
        "ours": timed("knn_ours", lambda: knn(ftr, ytr, fte, num_classes, k=k, temperature=temp)),
        "sklearn": timed("knn_sk", lambda: sk_knn.fit(ftr, ytr).predict(fte)),
    }
    # The probe on the first n_probe_train features (sized so that three rounds of scikit-learn fit the budget).
    n_probe = min(a.n_probe_train, len(ftr))
    ptr, pytr = ftr[:n_probe], ytr[:n_probe]
    clfs = {}

    def ours_probe():
        clfs["ours"] = fit_lr(ptr, pytr, num_classes, l2=a.l2)
        return clfs["ours"].predict(fte)

    sk_lr = LogisticRegression(C=1.0 / (a.l2 * n_probe), max_iter=1000)
    lr_c = {"ours": timed("lr_ours", ours_probe)}
    # Warm-up with the timed shapes (JAX compiles once per shape); scikit-learn needs none.
    knn_c["ours"]()
    lr_c["ours"]()
    # scikit-learn solves the same problem: the probe's own standardisation (mean, std, constant-column rule).
    mu, sd = clfs["ours"].mean.astype("float64"), clfs["ours"].scale.astype("float64")
    ptr_s, fte_s = ((ptr - mu) / sd).astype("float32"), ((fte - mu) / sd).astype("float32")
    lr_c["sklearn"] = timed("lr_sk", lambda: sk_lr.fit(ptr_s, pytr).predict(fte_s))
    # One round of each first to size the rounds to the time left (at least 3 rounds, at most --repeats).
    t0 = time.perf_counter()
    first = {name: {k2: [fn()] for k2, fn in c.items()} for name, c in (("knn", knn_c), ("probe", lr_c))}
    per_round = time.perf_counter() - t0
    # Fewer than 3 rounds in all is reported, and flagged NOT TRUSTWORTHY, rather than overrunning the budget.
    rounds = int(max(0, min(a.repeats - 1, (budget_s - per_round) // max(per_round, 1e-9))))
    print(f"probe/kNN: one round took {per_round:.1f} s; {rounds} more round(s) fit in the time left", flush=True)
    for name, c in (("knn", knn_c), ("probe", lr_c)):
        more = C.interleave(c, rounds)
        times = {k2: first[name][k2] + more[k2] for k2 in c}
        speedup = C.ratios(times["sklearn"], times["ours"])
        p_ours = np.asarray(preds[f"{'knn' if name == 'knn' else 'lr'}_ours"])
        p_sk = np.asarray(preds[f"{'knn' if name == 'knn' else 'lr'}_sk"])
        extra = {
            "agreement": float(np.mean(p_ours == p_sk)),
            "n_test": len(yte),
            "acc_ours": float(np.mean(p_ours == yte)),
            "acc_sklearn": float(np.mean(p_sk == yte)),
        }
        problems = []
        if name == "probe" and len(sk_lr.classes_) != num_classes:
            problems.append(f"the {n_probe} probe examples hold {len(sk_lr.classes_)} of {num_classes} classes")
        elif name == "probe":
            ours = clfs["ours"]
            f_ours = probe_objective(ptr_s, pytr, ours.kernel, ours.bias, a.l2)
            f_sk = probe_objective(ptr_s, pytr, sk_lr.coef_.T, sk_lr.intercept_, a.l2)
            rel = (f_ours - f_sk) / f_sk
            extra.update(
                objective_ours=f_ours,
                objective_sklearn=f_sk,
                objective_rel_diff=rel,
                iterations_ours=ours.n_iter,
                converged_ours=ours.converged,
                split_products=bool(getattr(ours, "split_products", False)),
                iterations_sklearn=int(np.max(sk_lr.n_iter_)),
            )
            print(f"probe objective: ours {f_ours:.7f}, scikit-learn {f_sk:.7f} ({rel:+.2e} relative)", flush=True)
            if rel > OBJECTIVE_GATE:
                problems.append(
                    f"probe objective {f_ours:.6g} is {rel:.2e} (relative) above scikit-learn's {f_sk:.6g} "
                    f"(gate {OBJECTIVE_GATE:g}): not the same solution"
                )
        what = (
            f"kNN monitor (k={k}, {len(ftr)} x {ftr.shape[1]} bank, {len(fte)} queries)"
            if name == "knn"
            else f"linear probe (l2={a.l2}, {n_probe} x {ftr.shape[1]}, {num_classes} classes)"
        )
        report.add(
            name,
            f"{what}, keras_ssl_lt",
            device,
            C.summarize(times["ours"]),
            "s",
            "scikit-learn on the CPU",
            speedup,
            target=name,
            extra=extra,
            problems=problems,
        )
        report.add(name, f"{what}, scikit-learn", cpu, C.summarize(times["sklearn"]), "s")


def probe_objective(x, y, kernel, bias, l2):
    """Mean cross-entropy + l2/2 ||W||^2 in float64: the probe's objective (scikit-learn's divided by C N)."""
    z = np.asarray(x, "float64") @ np.asarray(kernel, "float64") + np.asarray(bias, "float64")
    z = z - z.max(axis=1, keepdims=True)
    ce = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]
    return float(ce.mean() + 0.5 * l2 * np.sum(np.asarray(kernel, "float64") ** 2))


if __name__ == "__main__":
    main()
