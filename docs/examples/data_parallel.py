"""Data-parallel pre-training with the engines the Keras backends bring (docs/scaling.md).

One host, every local accelerator:

    KERAS_BACKEND=jax        python docs/examples/data_parallel.py --method simclr --sharpness rwasam
    KERAS_BACKEND=tensorflow python docs/examples/data_parallel.py --method simclr --sharpness rwasam --sync-bn

Several hosts (JAX), one process per host, the same command on each with its own --process-id:

    KERAS_BACKEND=jax python docs/examples/data_parallel.py --coordinator 10.0.0.1:1234 \
        --num-processes 2 --process-id 0        # on 10.0.0.1; --process-id 1 on the other host

On a CPU-only machine `--cpu-devices 2` makes two virtual devices, to try the commands. Two processes on one
CPU-only host (gloo collectives over localhost), one device each:

    for i in 0 1; do KERAS_BACKEND=jax python docs/examples/data_parallel.py --cpu-devices 1 --batch-size 32 \
        --sharpness rwasam --coordinator localhost:12355 --num-processes 2 --process-id $i & done; wait

Data: `--data cifar10.npz` (x_train, y_train) or, without it, random images.
"""

import argparse
import os


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="simclr", choices=["simsiam", "simclr", "mocov2", "byol", "supervised"])
    p.add_argument("--sharpness", default="none", choices=["none", "sam", "asam", "rwsam", "rwasam"])
    p.add_argument("--data", default=None, help=".npz with x_train (uint8 N,32,32,3) and y_train")
    p.add_argument("--batch-size", type=int, default=256, help="global batch (all replicas together)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--sync-bn", action="store_true", help="TensorFlow: synchronise BatchNorm over replicas")
    p.add_argument("--cpu-devices", type=int, default=0, help="make this many virtual CPU devices (to try it)")
    p.add_argument("--coordinator", default=None, help="JAX multi-host: host:port of process 0")
    p.add_argument("--num-processes", type=int, default=1)
    p.add_argument("--process-id", type=int, default=0)
    return p.parse_args(argv)


def setup(args):
    """Devices and the distribution engine; must run before any Keras object is made."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if args.cpu_devices and backend == "jax":
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.cpu_devices}"
        os.environ["JAX_PLATFORMS"] = "cpu"
    import keras

    if backend == "jax":
        if args.num_processes > 1:
            if args.cpu_devices:
                import jax

                jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU-only clusters
            keras.distribution.initialize(args.coordinator, args.num_processes, args.process_id)
        # Each process feeds its own share of the examples (see main), so Keras must not shard them again.
        keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=args.num_processes == 1))
        return None
    if backend == "tensorflow":
        import tensorflow as tf

        if args.cpu_devices:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)
            return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
        return tf.distribute.MirroredStrategy()  # every local GPU
    raise SystemExit("Keras 3 has no data-parallel fit on the torch backend: use KERAS_BACKEND=jax or tensorflow")


def check(args):
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if args.num_processes > 1 and backend != "jax":
        raise SystemExit(
            "--num-processes > 1 is for JAX: Keras 3.15.1's fit fails under TensorFlow's MultiWorkerMirroredStrategy "
            "with more than one worker (docs/scaling.md, 'Several machines (TensorFlow)')"
        )
    if args.batch_size % max(args.num_processes, 1):
        raise SystemExit(f"--batch-size ({args.batch_size}) must be a multiple of --num-processes")


def main(argv=None):
    import contextlib

    args = parse(argv)
    check(args)
    strategy = setup(args)
    import keras
    import numpy as np

    import keras_ssl_lt as ksl
    from keras_ssl_lt.training import distributed

    if args.data:
        with np.load(args.data) as f:
            x, y = f["x_train"], f["y_train"].reshape(-1)
    else:
        rng = np.random.default_rng(0)
        x, y = (
            rng.integers(0, 256, (4 * args.batch_size, 32, 32, 3), dtype="uint8"),
            np.arange(4 * args.batch_size) % 10,
        )
    source = ksl.data.from_arrays(x, y)
    # tf.data on TensorFlow, numpy batches on JAX. With several JAX processes every process feeds its own
    # slice of each global batch: a disjoint share of the examples, batch_size // num_processes at a time.
    positions = np.arange(len(y))[args.process_id :: args.num_processes]
    ds = ksl.data.ssl_dataset(source, subset=positions, batch_size=args.batch_size // args.num_processes, seed=0)

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:  # TensorFlow: model and optimizer variables are mirrored on the replicas
        keras.utils.set_random_seed(0)
        encoder = ksl.backbones.small_resnet()
        if args.method == "supervised":
            model = ksl.Supervised(encoder, num_classes=10, augmenter=ksl.augment.supervised_cifar())
        else:
            cls = {"simsiam": ksl.SimSiam, "simclr": ksl.SimCLR, "mocov2": ksl.MoCoV2, "byol": ksl.BYOL}[args.method]
            model = cls(encoder, augmenter=ksl.augment.simclr_cifar())
        if args.sync_bn:
            distributed.synchronize_batchnorm(model)
        sharpness = None
        if args.sharpness.startswith("rw"):
            weights = ksl.rwsam.class_rank_weights(y, base=1.2)
            sharpness = ksl.RWSAM(
                rho=7.0 if args.sharpness == "rwasam" else 0.05, adaptive="asam" in args.sharpness, weights=weights
            )
        elif args.sharpness != "none":
            sharpness = ksl.SAM(rho=7.0 if args.sharpness == "asam" else 0.05, adaptive=args.sharpness == "asam")
        model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9), sharpness=sharpness)
        print(f"replicas: {distributed.num_replicas(model)}, global batch: {args.batch_size}")
        history = model.fit(ds, epochs=args.epochs, verbose=2 if args.process_id == 0 else 0)
    print({k: round(float(v[-1]), 4) for k, v in history.history.items()})


if __name__ == "__main__":
    main()
