"""SAM-type step cost from the step times inside `fit` (a callback times each step), one process per backend.

`sharpness.py` times whole `fit` calls of 10 steps. On TensorFlow those block times came out at whole multiples of
about 5.14 s in many rounds (0.514 or 1.027 s per step, for plain and SAM-type models alike, with one or several
models per process), so its TensorFlow ratios swung between 1.0x and 3.8x (the cause, found later: Keras' array
input leaves tf.data's autotuner on and the `fit` calls ended late; `train_step.fit_input` now avoids it). This
script measures the steps themselves: every model (plain, SAM, ASAM, rwSAM) lives in this process, blocks of `--steps` steps of `fit`
alternate between the models in rotated rounds, and a callback records the time from each step's
`on_train_batch_begin` to its `on_train_batch_end` (the step's compiled function and the transfer of its logs).
A block's figure is the median of its step times; the ratio is per round, regularised / plain, median over
rounds, with the gates of the other scripts (spread above the median, or a SAM-type step under its measured floor
1 + 0.9 fb / (aug + fb), see `_common.py`: NOT TRUSTWORTHY). With `--augment` a plain model on pre-made views is
timed in the same rounds for that floor (its step is the forward-backward alone); without, the floor is 1.9x.

    KERAS_BACKEND=tensorflow python benchmarks/step_times.py --repeats 5
    KERAS_BACKEND=jax python benchmarks/step_times.py --repeats 5 --augment
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
from train_step import HEADS, MODES, build_model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="small_resnet", choices=sorted(HEADS))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="steps per block")
    p.add_argument("--repeats", type=int, default=C.DEFAULT_REPEATS)
    p.add_argument("--augment", action="store_true", help="on-device augmentation (default: pre-made views)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", default=None, help="CIFAR-10 .npz (default ../shared/data/cifar10.npz)")
    a = p.parse_args(argv)
    C.pin_threads(a.threads)
    import keras

    info = C.apply_thread_settings(torch_mkldnn=False)
    backend = keras.backend.backend()
    n = a.batch_size * a.steps
    x, _, data_name = C.cifar_batches(n, a.data)
    views = ((x.astype("float32") / 255.0) - 0.45) / 0.25
    index = np.arange(n, dtype="int32")
    data = {"images": x if a.augment else views, "index": index}
    print(
        f"step times inside fit: {backend}, {a.backbone}, batch {a.batch_size}, {a.steps} steps per block, "
        f"{'on-device augmentation' if a.augment else 'pre-made views'}, {a.repeats} rounds; {C.hardware()}; "
        f"load average {C.load_average()[0]:.1f}; {C.describe_threads(info)}; {data_name}"
    )

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    def block(model, inputs):
        def run():
            timer = StepTimes()
            model.fit(inputs, batch_size=a.batch_size, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            return float(np.median(timer.times))

        return run

    # (name, mode, augment, inputs); "views": the plain step on pre-made views, the forward-backward alone, timed
    # only to gate the SAM-type ratios against the measured floor (augmentation + 2 passes) / (augmentation + 1)
    models = [(mode, mode, a.augment, data) for mode in MODES]
    if a.augment:
        models.append(("views", "none", False, {"images": views, "index": index}))
    contenders = {}
    for name, mode, augment, inputs in models:
        model = build_model(a.backbone, mode, augment, n)
        t = time.perf_counter()
        model.fit({k: v[: 2 * a.batch_size] for k, v in inputs.items()}, batch_size=a.batch_size, verbose=0)
        print(f"  {name}: first fit (compile + 2 steps) {time.perf_counter() - t:.1f} s", flush=True)
        contenders[name] = block(model, inputs)
    times = C.interleave(contenders, a.repeats)
    share = C.fb_share(times["views"], times["none"]) if a.augment else 1.0
    floor = C.sam_floor(share)
    print(f"\nseconds per step (median of each block's steps), median [IQR | range] of {a.repeats} rounds")
    if a.augment:
        print(
            f"  views  {C.verdict(C.summarize(times['views']), ' s', 4)}   forward-backward share of the plain "
            f"step {share:.2f}: SAM-type gate {floor:.2f}x"
        )
    for mode in MODES:
        stat = C.summarize(times[mode])
        line = f"  {mode:6s} {C.verdict(stat, ' s', 4)}"
        if mode != "none":
            r = C.summarize(C.ratios(times[mode], times["none"]))
            line += f"   / plain: {C.verdict(r, 'x', 2, sam_ratio=r['median'], floor=floor)}"
        print(line)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
