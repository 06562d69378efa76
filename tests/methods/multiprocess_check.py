"""Multi-process data-parallel training on localhost, one process per "host" (docs/scaling.md, "Several machines").

Usage, with `KERAS_BACKEND` set to `jax` or `tensorflow` and OUT an existing directory:

    python tests/methods/multiprocess_check.py single OUT CASE [CASE ...]
    python tests/methods/multiprocess_check.py worker OUT PROCESS_ID PORT,PORT CASE [CASE ...]

CASE is `Method:regulariser[:option ...]` as in distributed_check.py, whose model, data and training
builders this script reuses, plus the option `images`: feed the images tensor alone, not the batch dict. `single` trains each case for two steps of `fit` on one process and one device
(jitted on JAX, eager on TensorFlow) on the global batches. `worker` is one of `len(PORTS)` processes, each
with one CPU device, that together train the same model for two steps on the same global batches:

- JAX: `keras.distribution.initialize(job_addresses="localhost:PORT0", ...)` (cross-process CPU collectives:
  gloo, JAX's default), then `keras.distribution.DataParallel` over the global devices. Keras cannot shard
  numpy data across processes (`auto_shard_dataset=False`), so process `i` feeds rows
  `[i * B/n, (i + 1) * B/n)` of each global batch of `B` rows; JAX assembles the global batch from the
  processes' slices in process order.
- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` with `TF_CONFIG` naming `localhost:PORT` for each
  worker; every worker passes all rows and the strategy shards each global batch over the workers. With
  Keras 3.15.1 the workers fail inside Keras' `fit` (docs/scaling.md, "Several machines (TensorFlow)").

Each process writes `OUT/<mode>-<process>-<case>.npz` with every weight after the steps (`after_<i>`), before
them (`before_<i>`) and the logged loss; tests/methods/test_multiprocess.py compares them.
"""

import json
import os
import sys

import distributed_check as dc


def _file(out, mode, process, case):
    return os.path.join(out, f"{mode}-{process}-{case.replace(':', '_')}.npz")


def _save(path, after, loss, before=()):
    import numpy as np

    arrays = {f"after_{i}": w for i, w in enumerate(after)}
    arrays.update({f"before_{i}": w for i, w in enumerate(before)})
    np.savez(path, loss=np.float64(loss), **arrays)


def _inputs(inputs, options):
    """The batches (default: all of `dc.data()`), as the images tensor alone with the `images` option."""
    inputs = dc.data() if inputs is None else inputs
    return inputs["images"] if "images" in options else inputs


def run_single(out, cases):
    backend = os.environ.get("KERAS_BACKEND")
    if backend == "jax":
        dc.jax_compilation_cache()
    for case in cases:
        method, reg, *options = case.split(":")
        model = dc.build(method, options)
        before, after, loss = dc.train(model, reg, eager=backend == "tensorflow", inputs=_inputs(None, options))
        _save(_file(out, "single", 0, case), after, loss, before)


def _jax_worker(process_id, ports):
    """Joins the JAX job; returns the distribution, this process's slice of each global batch and its size."""
    dc.jax_compilation_cache()
    import keras
    import numpy as np

    keras.distribution.initialize(
        job_addresses=f"localhost:{ports[0]}", num_processes=len(ports), process_id=process_id
    )
    share = dc.GLOBAL_BATCH // len(ports)
    rows = np.arange(dc.NUM_EXAMPLES).reshape(dc.STEPS, len(ports), share)[:, process_id].reshape(-1)
    inputs = {k: v[rows] for k, v in dc.data().items()}
    return keras.distribution.DataParallel(auto_shard_dataset=False), inputs, share  # every process's devices


def _set_tf_config(process_id, ports):
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": process_id}}
    )


def _tf_worker(process_id, ports):
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow op
    return strategy, None, dc.GLOBAL_BATCH


def run_worker(out, process_id, ports, cases):
    backend = os.environ.get("KERAS_BACKEND")
    make = {"jax": _jax_worker, "tensorflow": _tf_worker}[backend]
    engine, inputs, batch_size = make(process_id, ports)
    from keras_ssl_lt.training import distributed

    for case in cases:
        method, reg, *options = case.split(":")
        with engine.scope():
            model = dc.build(method, options)
            replicas = distributed.num_replicas(model)
            before, after, loss = dc.train(model, reg, inputs=_inputs(inputs, options), batch_size=batch_size)
        _save(_file(out, "worker", process_id, case), after, loss, before)
        print("RESULT " + json.dumps({"case": case, "process": process_id, "replicas": replicas}), flush=True)


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if mode == "worker" and os.environ.get("KERAS_BACKEND") == "tensorflow":
        _set_tf_config(int(rest[0]), [int(p) for p in rest[1].split(",")])  # before TensorFlow starts
    import keras

    keras.config.disable_traceback_filtering()  # a failing worker's stderr shows where (Keras or this package)
    if mode == "single":
        run_single(out, rest)
    elif mode == "worker":
        run_worker(out, int(rest[0]), [int(p) for p in rest[1].split(",")], rest[2:])
    else:
        raise SystemExit(f"mode must be single or worker; got {mode!r}")
