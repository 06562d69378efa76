"""Data-parallel vs single-device training, run in a fresh process (virtual devices need a fresh runtime).

Usage: `python tests/methods/distributed_check.py CASE [CASE ...]` with `KERAS_BACKEND` set to `jax` or
`tensorflow`; each CASE is `Method:regulariser[:option ...]` with Method in SimSiam, SimCLR, MoCoV2, BYOL,
Supervised, regulariser in `plain`, `sam`, `asam`, `rwsam`, `rwasam`, and options:

- `local`: SimCLR with per-replica negatives, compared with one device computing NT-Xent per half-batch;
- `bn`: the encoder has a BatchNorm (on TensorFlow it stays per replica unless `sync` is also given);
- `sync`: TensorFlow: every BatchNorm synchronised over replicas;
- `refresh`: a callback writes new example weights after the first step (mid-epoch; `KDEReweighting`
  does it between epochs).

The process sets up two devices before the backend starts (JAX: `--xla_force_host_platform_device_count=2`;
TensorFlow: two logical CPU devices), then for each case trains one model for two steps of `fit` on one
device (eagerly on TensorFlow, jitted on JAX) and an identical copy for two steps of `fit` on the same
global batches under `keras.distribution.DataParallel` (JAX) or `tf.distribute.MirroredStrategy`
(TensorFlow). It prints one
JSON line per case: the largest absolute difference of any weight (trainable and non-trainable: BatchNorm
statistics, momentum encoders, MoCo's queue) between the two runs, the largest change of any weight over
the two steps (so a difference is judged against a step that did something) and the logged loss of both.
The pytest side is tests/methods/test_distributed.py.
"""

import json
import os
import sys

NUM_DEVICES = 2


def jax_compilation_cache():
    """JAX on CPU with the same persistent compilation cache as tests/conftest.py (later runs reuse the steps)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    default = os.path.join(os.path.expanduser("~"), ".cache", "keras_ssl_lt_jax")
    jax.config.update("jax_compilation_cache_dir", os.environ.get("KSL_JAX_CACHE", default))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def setup_devices(backend):
    """Two virtual CPU devices for `backend`: must run before the backend starts (so not at import)."""
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={NUM_DEVICES}"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
        jax_compilation_cache()
    elif backend == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * NUM_DEVICES)
    else:
        raise SystemExit(f"distributed_check.py runs under KERAS_BACKEND=jax or tensorflow; got {backend!r}")


GLOBAL_BATCH = 8
STEPS = 2
NUM_EXAMPLES = GLOBAL_BATCH * STEPS
REFRESHED = [3.0 - 2.9 * i / (NUM_EXAMPLES - 1) for i in range(NUM_EXAMPLES)]  # the `refresh` option's weights

SIZES = {
    "SimSiam": {"projection_dim": 8, "projection_hidden_dim": 16, "prediction_hidden_dim": 8},
    "SimCLR": {"projection_dim": 8, "projection_hidden_dim": 16},
    "MoCoV2": {"projection_dim": 8, "queue_size": 16, "momentum": 0.9},
    "BYOL": {"projection_dim": 8, "projection_hidden_dim": 16, "prediction_hidden_dim": 16, "momentum": 0.9},
    "Supervised": {"num_classes": 4},
}


def encoder(batch_norm):
    """A small dense encoder (optionally with one BatchNorm) on 6x6x3 inputs: quick to compile."""
    import keras

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, use_bias=not batch_norm, name="dense0")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.9, name="bn0")(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Dense(12, name="features")(x), name="encoder")


def data():
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "images": rng.uniform(0, 1, (NUM_EXAMPLES, 6, 6, 3)).astype("float32"),
        "labels": rng.integers(0, 4, NUM_EXAMPLES).astype("int32"),
        "index": np.arange(NUM_EXAMPLES, dtype="int32"),
    }


def regulariser(name):
    import numpy as np

    import keras_ssl_lt as ksl

    weights = np.linspace(0.5, 2.0, NUM_EXAMPLES).astype("float32")  # distinct per example: a wrong lookup shows
    return {
        "plain": None,
        "sam": ksl.SAM(rho=0.05),
        "asam": ksl.SAM(rho=0.5, adaptive=True),
        "rwsam": ksl.RWSAM(rho=0.05, weights=weights),
        "rwasam": ksl.RWSAM(rho=0.5, adaptive=True, weights=weights),
    }[name]


def _block_simclr():
    import keras_ssl_lt as ksl
    from keras_ssl_lt import losses

    class BlockSimCLR(ksl.SimCLR):
        """SimCLR whose negatives come from each half of the batch: what two replicas see with local negatives."""

        def compute_loss_terms(self, views, labels, training=True):
            x1, x2 = views
            z1 = self.projector(self.encoder(x1, training=training), training=training)
            z2 = self.projector(self.encoder(x2, training=training), training=training)
            loss = losses.nt_xent(z1, z2, self.temperature, num_groups=NUM_DEVICES)
            return {"loss": loss, "embedding": z1}

    return BlockSimCLR


def _BlockSimCLR(*args, **kwargs):
    return _block_simclr()(*args, **kwargs)


def build(method, options, initial=None):
    import keras

    import keras_ssl_lt as ksl
    from keras_ssl_lt.training import distributed

    keras.utils.set_random_seed(7)
    kwargs = dict(SIZES[method])
    cls = getattr(ksl, method)
    if method == "SimCLR" and "local" in options:
        kwargs["global_negatives"] = False
        if initial is None:  # the single-device reference of per-replica negatives: NT-Xent per half-batch
            cls = _BlockSimCLR
    model = cls(encoder("bn" in options), augmenter=None, num_examples=NUM_EXAMPLES, **kwargs)
    if "sync" in options:
        distributed.synchronize_batchnorm(model)
    if initial is not None:
        model.set_weights(initial)
    return model


def _refresh_callback(model):
    """New example weights after the first step, written by a callback as `KDEReweighting` writes them."""
    import keras

    class Refresh(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                model.set_example_weights(REFRESHED)

    return Refresh()


def train(model, reg, eager=False, refresh=False, inputs=None, batch_size=GLOBAL_BATCH, coupled=False):
    """Two steps of `fit` on `inputs` (default: `data()`, the global batches) in batches of `batch_size`.

    `coupled`: `keras_ssl_lt.optimizers.SGD` with a large coupled weight decay instead of Keras' SGD.
    """
    import keras
    import numpy as np

    import keras_ssl_lt as ksl

    if coupled:
        optimizer = ksl.optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05)
    else:
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    model.compile(optimizer=optimizer, sharpness=regulariser(reg), run_eagerly=eager)
    before = [np.array(w) for w in model.get_weights()]  # compile may reorder `weights`: read them after it
    callbacks = [_refresh_callback(model)] if refresh else []
    inputs = data() if inputs is None else inputs
    history = model.fit(inputs, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    return before, [np.array(w) for w in model.get_weights()], float(history.history["loss"][-1])


_STRATEGY = []


def strategy_scope():
    import keras

    if keras.backend.backend() == "jax":
        return keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu")[:NUM_DEVICES]).scope()
    import tensorflow as tf

    if not _STRATEGY:  # one strategy per process: a second one may reuse the first's collective instance keys
        devices = [d.name for d in tf.config.list_logical_devices("CPU")[:NUM_DEVICES]]
        _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
    return _STRATEGY[0].scope()


def run_augment_case():
    """TensorFlow: the replicas draw different views of identical images, and end with equal generator states."""
    import numpy as np
    import tensorflow as tf

    import keras_ssl_lt as ksl

    with strategy_scope() as strategy:
        model = ksl.SimSiam(encoder(False), augmenter=None, **SIZES["SimSiam"])  # a host for the mechanics
        augmenter = ksl.augment.simsiam_cifar()
        augmenter.build((None, 32, 32, 3))
    states = [v for v in augmenter.non_trainable_variables if v.name == "seed_generator_state"]
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)), dtype="uint8")

    @tf.function
    def step():
        def views():
            with model._ksl_replica_random(states):
                return augmenter(images, training=True)

        return strategy.run(views)

    before = [np.asarray(v.value) for v in states]
    parts = [np.asarray(x) for x in strategy.experimental_local_results(step())]
    copies = [[np.asarray(c) for c in strategy.experimental_local_results(v.value)] for v in states]
    return {
        "case": "augment",
        "replicas": len(parts),
        "views_differ": bool(not np.allclose(parts[0], parts[1])),
        "states_equal": all(np.array_equal(c[0], c[-1]) for c in copies),
        "states_advanced": bool(states)
        and all(not np.array_equal(b, c[0]) for b, c in zip(before, copies, strict=True)),
    }


def run_case(case):
    if case == "augment":
        return run_augment_case()
    import numpy as np

    from keras_ssl_lt.training import distributed

    method, reg, *options = case.split(":")
    single = build(method, options)
    start = [np.array(w) for w in single.get_weights()]
    # The reference runs eagerly on TensorFlow (a tf.function trace per model costs more than two eager
    # steps); on JAX it is jitted (the persistent compilation cache makes repeated runs cheap).
    eager = os.environ.get("KERAS_BACKEND") == "tensorflow"
    coupled = "coupled" in options
    initial, w_single, loss_single = train(single, reg, eager=eager, refresh="refresh" in options, coupled=coupled)
    with strategy_scope():
        parallel = build(method, options, start)
        replicas = distributed.num_replicas(parallel)
        _, w_parallel, loss_parallel = train(parallel, reg, refresh="refresh" in options, coupled=coupled)
        table = parallel.get_example_weights()
    diff = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(w_single, w_parallel, strict=True))
    # How far the two steps moved the model (the example-weight table, which a callback may rewrite, aside).
    model_weights = [v is not single.example_weights for v in single.weights]
    moved = max(
        float(np.max(np.abs(a - b))) if a.size and keep else 0.0
        for a, b, keep in zip(w_single, initial, model_weights, strict=True)
    )
    return {
        "case": case,
        "replicas": replicas,
        "max_weight_diff": diff,
        "max_weight_change": moved,
        "loss_single": loss_single,
        "loss_parallel": loss_parallel,
        # with `refresh`: the table after `fit` holds the callback's weights (not overwritten by `fit`)
        "table_refreshed": bool(np.allclose(table, REFRESHED)) if "refresh" in options else None,
    }


if __name__ == "__main__":
    setup_devices(os.environ.get("KERAS_BACKEND", "jax"))
    for arg in sys.argv[1:]:
        print("RESULT " + json.dumps(run_case(arg)), flush=True)
