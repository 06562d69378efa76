"""One configuration of the robustness-gap study on a GPU machine (no TensorFlow there), with a time budget.

    KERAS_BACKEND=jax python3 scripts/device_gap_run.py .gpu/cifar10_gap.npz --out "$OUT/gap" --epochs 60

Reads the sparse pack of `scripts/make_sparse_cifar10.py`, rebuilds the full-size source (images outside the
pack are never read: the subsets, the bank and the test slice only touch packed positions), and runs SimSiam
and supervised pre-training on the long-tailed subset and its balanced counterpart with the `gpu` preset
(ResNet-18, 32x32), ID kNN and linear probe beside the untrained floor. No OOD set travels. Runs start only
while `--budget` seconds remain; records and the report go to --out.
"""

import argparse
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--budget", type=float, default=240.0, help="seconds; no new run starts after this")
    p.add_argument("--methods", default="simsiam,supervised")
    p.add_argument("--preset", default="gpu", help="gpu; smoke to rehearse the script on a CPU")
    a = p.parse_args(argv)
    t0 = time.time()
    import keras

    from keras_ssl_lt.data import from_arrays
    from keras_ssl_lt.experiments import RunSpec, evaldata, protocol, read_records, write_record
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.experiments.records import environment
    from keras_ssl_lt.experiments.robustness import report
    from keras_ssl_lt.training.runtime import configure_runtime

    configure_runtime()
    with np.load(a.pack) as f:
        y_full, idx = f["y_train_full"], f["train_index"]
        x_full = np.zeros((y_full.size,) + f["x_train"].shape[1:], "uint8")
        x_full[idx] = f["x_train"]
        data = evaldata.EvalData(
            from_arrays(x_full, y_full),
            (f["x_test"], f["y_test"]),
            bank_index=f["bank_index"],
            name="cifar10 (sparse pack)",
        )
    cfg = get_preset(a.preset, epochs=a.epochs)
    sampling = 0.5
    specs = []
    for method in a.methods.split(","):
        specs.append(
            RunSpec(
                method,
                dataset="cifar10",
                ratio=0.01,
                sampling=sampling,
                preset=a.preset,
                extra={"cfg.epochs": a.epochs},
            )
        )
        specs.append(
            RunSpec(
                method,
                dataset="cifar10",
                ratio=1.0,
                sampling=sampling,
                preset=a.preset,
                extra={"counterpart_of": 0.01, "cfg.epochs": a.epochs},
            )
        )
    print(f"backend {keras.backend.backend()}, {environment().get('accelerators')}, data {data.describe()}", flush=True)
    for spec in specs:
        if time.time() - t0 > a.budget:
            print(f"budget spent: {spec.run_id} not started", flush=True)
            continue
        start = time.time()
        res = protocol.run(spec, cfg, data, verbose=2)
        subset = evaldata.draw_subset(y_full, spec, cfg)
        assert np.isin(subset.indices, idx).all(), "a subset left the pack"
        rec = dict(
            res,
            spec=spec.to_dict(),
            status="done",
            run_id=spec.run_id,
            environment=environment(),
            wall_seconds=time.time() - start,
        )
        write_record(a.out, rec)
        m = res["metrics"]
        print(
            f"{spec.run_id}: knn {m['knn_acc']:.4f} (floor {m['floor_knn_acc']:.4f}) probe {m['probe_acc']:.4f} "
            f"(floor {m['floor_probe_acc']:.4f}); train {res['timings']['train_seconds']:.1f} s, "
            f"{rec['wall_seconds']:.1f} s in all",
            flush=True,
        )
    recs = read_records(a.out)
    if recs:
        text, _, _ = report(recs, a.out, title="Robustness gap, gpu preset, one configuration")
        print(text)
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
