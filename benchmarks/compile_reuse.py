"""Does a grid of runs compile its train step once? JAX compile time of a recipe's run, with and without reuse.

A run of a recipe builds a fresh pre-trainer (`build.build_pretrainer`) and trains it (`protocol.pretrain`),
so under JAX every run jits a new train step. `keras_ssl_lt.training.configure_runtime()` (called by every
recipe and the main job) turns on JAX's persistent compilation cache, keyed by the compiled program, so a
later run of the same shapes, in the same process or a later one, should load the step instead of compiling
it. This script measures that with the recipes' own code and the `cpu` preset's model (SimCLR or supervised,
`small_resnet`, batch 256, 16-px views):

- each timed run is the grid's own run (`draw_subset`, `build_pretrainer`, `pretrain` with its optimizer
  schedule) stopped after 3 steps by a callback; "first" is the time from its start to the end of its first
  step (building the dataset, compiling or loading the step, one step), "step" one compiled step;
- `cold`: a new process with an empty cache: run A (exp r = 0.01, n = 12,406, seed 0), run B (seed 1: a new
  model, the grid's next seed), run C (the balanced counterpart, same n), run D (sampling 0.5: n = 6,200, so
  a different number of steps in the learning-rate schedule);
- `warm`: another new process on the cache that `cold` filled: run A again (a later invocation);
- `off`: a new process without the cache: runs A and B (what reuse saves).

Scenarios are interleaved over `--repeats` rounds, each in a fresh process with a fresh cache directory.

    KERAS_BACKEND=jax python benchmarks/compile_reuse.py --repeats 3
    KERAS_BACKEND=jax python benchmarks/compile_reuse.py --method supervised --repeats 3
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C

SCENARIOS = ("cold", "warm", "off")


def worker(a):
    """One process: the runs of one scenario; prints one JSON line."""
    C.apply_thread_settings()
    import keras
    import numpy as np

    from keras_ssl_lt.data import ArraySource
    from keras_ssl_lt.experiments import RunSpec, build, evaldata, protocol
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.training.runtime import configure_runtime

    if keras.backend.backend() != "jax":
        raise SystemExit("compile_reuse.py measures JAX's compilation cache: run it with KERAS_BACKEND=jax")
    import jax

    if a.cache != "none":
        configure_runtime(cache_dir=a.cache)
    cfg = get_preset("cpu")
    data = np.load(a.data or C.DEFAULT_DATA)
    source = ArraySource(data["x_train"], data["y_train"])
    out = {"scenario": a.scenario, "runs": {}}

    class StopAfter(keras.callbacks.Callback):
        """Ends `fit` after `steps` steps: the run's time is then its compile (or cache load) plus those steps."""

        def __init__(self, steps):
            super().__init__()
            self.steps, self.times = steps, []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            if len(self.times) >= self.steps:
                self.model.stop_training = True

    def run(name, seed, ratio, sampling):
        # the grid's own run: its subset, model, optimizer schedule and regulariser, stopped after 3 steps
        subset = evaldata.draw_subset(source.labels, RunSpec(a.method, ratio=ratio, sampling=sampling), cfg)
        model = build.build_pretrainer(a.method, cfg, 10, num_examples=len(source), seed=seed)
        stop = StopAfter(3)
        t0 = time.perf_counter()
        protocol.pretrain(model, a.method, source, subset, cfg, seed=seed, verbose=0, callbacks=[stop])
        t = stop.times
        # first: start of the run to the end of step 1 (compile or cache load, the dataset, one step);
        # step: one compiled step (the time between the ends of steps 2 and 3)
        out["runs"][name] = {"first": t[0] - t0, "step": t[2] - t[1], "n": int(subset.n)}

    plan = {
        "cold": [("A", 0, 0.01, 1.0), ("B", 1, 0.01, 1.0), ("C", 0, 1.0, 1.0), ("D", 0, 0.01, 0.5)],
        "warm": [("A", 0, 0.01, 1.0)],
        "off": [("A", 0, 0.01, 1.0), ("B", 1, 0.01, 1.0)],
    }
    for name, seed, ratio, sampling in plan[a.scenario]:
        run(name, seed, ratio, sampling)
    out["jax"] = jax.__version__
    print("RESULT " + json.dumps(out), flush=True)


def spawn(a, scenario, cache):
    cmd = [sys.executable, __file__, "--worker", "--scenario", scenario, "--cache", cache, "--method", a.method]
    if a.data:
        cmd += ["--data", a.data]
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {scenario} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    p.add_argument("--cache", default="none", help=argparse.SUPPRESS)
    p.add_argument("--method", default="simclr", choices=["simclr", "supervised", "simsiam", "moco_v2", "byol"])
    p.add_argument("--repeats", type=int, default=3, help="rounds, each with fresh processes and cache (>= 3)")
    p.add_argument("--data", default=None, help="CIFAR-10 .npz (default ../shared/data/cifar10.npz)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    C.pin_threads()
    print(
        f"JAX compile reuse across a grid's runs: `cpu` preset, {a.method}, each run stopped after 3 steps; "
        f"{a.repeats} rounds; {C.hardware()}; load average {C.load_average()[0]:.1f}"
    )
    rounds = []
    for r in range(a.repeats):
        with tempfile.TemporaryDirectory(prefix="ksl_jax_cache_") as cache:
            res = {"cold": spawn(a, "cold", cache)}
            order = ["warm", "off"] if r % 2 == 0 else ["off", "warm"]
            for scenario in order:
                res[scenario] = spawn(a, scenario, cache if scenario == "warm" else "none")
        rounds.append(res)
        print(f"  round {r + 1}/{a.repeats} done (load average {C.load_average()[0]:.1f})", flush=True)
    rows = [
        ("no cache: first run (exp r=0.01, n=12,406, seed 0)", "off", "A", "first"),
        ("no cache: next run, same process (seed 1: a new model)", "off", "B", "first"),
        ("cache on, empty: first run", "cold", "A", "first"),
        ("cache on: next run, same process (seed 1)", "cold", "B", "first"),
        ("cache on: balanced counterpart (same n), same process", "cold", "C", "first"),
        ("cache on: half the data (n=6,200), same process", "cold", "D", "first"),
        ("cache on, warm: first run of a later process", "warm", "A", "first"),
        ("one compiled step (for scale)", "cold", "A", "step"),
    ]
    print(f"\nseconds, median [IQR | range] of {a.repeats} rounds")
    table = {}
    for label, scenario, run, key in rows:
        stat = C.summarize([res[scenario]["runs"][run][key] for res in rounds])
        table[label] = stat
        print(f"  {label:68s} {C.verdict(stat, ' s', digits=2)}")
    if a.json:
        C.write_json(a.json, {"rounds": rounds, "table": table, "method": a.method})


if __name__ == "__main__":
    main()
