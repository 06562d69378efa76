"""Cost of the `rankme` log: `RankMeMetric.update_state` per step (compiled) and `result()` once per epoch.

    KERAS_BACKEND=jax python benchmarks/rankme_metric.py --dim 2048 --batch 512 --steps 50

Prints the median time of one compiled update (a `D x D` product of the batch, SimSiam's paper heads: 2048-d,
batch 512) and of one `result()` (float64 eigenvalues on the host), each over `--repeats` rounds. A benchmark,
not a test: the figures depend on the machine (and its load), printed with it.
"""

import argparse
import os
import platform
import statistics
import time

import keras
import numpy as np
from keras import ops

from keras_ssl_lt.evaluation.collapse import RankMeMetric


def _compiled_update(metric):
    """One compiled update of the metric's state (as it runs inside a train step) on this backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        @jax.jit
        def step(state, z):
            return metric.stateless_update_state(state, z)

        holder = {"state": [v.value for v in metric.variables]}

        def run(z):
            holder["state"] = step(holder["state"], z)
            return holder["state"][0]

        run.state = lambda: holder["state"]
        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(z):
            metric.update_state(z)
            return metric.gram.value

        return step

    def run(z):
        metric.update_state(z)
        return metric.gram.value

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    metric = RankMeMetric(args.dim)
    z = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(args.batch, args.dim)).astype("float32"))
    update = _compiled_update(metric)
    ops.convert_to_numpy(update(z))  # compile
    updates, results = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.steps):
            out = update(z)
        ops.convert_to_numpy(out)  # wait for the device
        updates.append((time.perf_counter() - start) / args.steps)
        if keras.backend.backend() == "jax":  # the stateless state back into the variables that result() reads
            for variable, value in zip(metric.variables, update.state(), strict=True):
                variable.assign(value)
        start = time.perf_counter()
        float(ops.convert_to_numpy(metric.result()))
        results.append(time.perf_counter() - start)
    print(
        f"backend={keras.backend.backend()} host={platform.node()} cpus={os.cpu_count()} dim={args.dim} batch={args.batch}"
    )
    print(
        f"update_state (compiled, per step): median {statistics.median(updates) * 1e3:.3f} ms "
        f"(min {min(updates) * 1e3:.3f}, max {max(updates) * 1e3:.3f})"
    )
    print(
        f"result() (host float64 eigvalsh, per epoch): median {statistics.median(results) * 1e3:.1f} ms "
        f"(min {min(results) * 1e3:.1f}, max {max(results) * 1e3:.1f})"
    )


if __name__ == "__main__":
    main()
