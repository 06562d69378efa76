"""Evaluation callbacks inside a real `fit`; input validation (every backend)."""

import csv
import importlib
import math

import keras
import numpy as np
import pytest

import keras_ssl_lt
from keras_ssl_lt import callbacks, evaluation
from keras_ssl_lt.callbacks import KNNMonitor, LinearProbe, TransferProbe
from keras_ssl_lt.evaluation import extract_features

GROUPS = {"many": [0, 1], "medium": [2], "few": [3]}


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 4).astype("int32")
    x = rng.integers(0, 256, (n, 8, 8, 3)).astype("uint8")
    x[..., 0] = np.clip(x[..., 0].astype(int) // 2 + 40 * y[:, None, None], 0, 255)
    return x, y


def _pretrainer_like():
    """A tiny supervised model exposing `encoder` (with BatchNorm) and `augmenter`."""
    augmenter = keras.Sequential([keras.layers.Rescaling(1 / 255.0)], name="augmenter")
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(6, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="encoder",
    )
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(4)(encoder(augmenter(inp)))
    model = keras.Model(inp, out)
    model.encoder = encoder
    model.augmenter = augmenter
    return model


class _Snapshot(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snaps = []

    def on_epoch_end(self, epoch, logs=None):
        self.snaps.append([np.array(v) for v in self.model.get_weights()])


def test_callbacks_in_fit_keep_weights_and_log(tmp_path):
    x, y = _data()
    model = _pretrainer_like()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before, after = _Snapshot(), _Snapshot()
    probe = LinearProbe((x, y), (x, y), every_n_epochs=2, class_groups=GROUPS)
    knn = KNNMonitor((x, y), (x, y), k=10, every_n_epochs=2)
    transfer = TransferProbe((x, y), (x, y), every_n_epochs=3, few_shot=2, num_draws=2)
    csv_path = tmp_path / "log.csv"
    hist = model.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[before, probe, knn, transfer, after, keras.callbacks.CSVLogger(str(csv_path))],
    )
    # Weights and BN statistics identical before and after the evaluation callbacks, each epoch;
    # and training did move them (so the check is not vacuous).
    assert len(before.snaps) == len(after.snaps) == 3
    for a, b in zip(before.snaps, after.snaps, strict=True):
        for va, vb in zip(a, b, strict=True):
            np.testing.assert_array_equal(va, vb)
    moving_mean = next(i for i, w in enumerate(model.weights) if "moving_mean" in w.path)
    assert not np.allclose(before.snaps[0][moving_mean], before.snaps[2][moving_mean])

    h = hist.history
    for key in (
        "probe_acc",
        "probe_top5",
        "probe_acc_many",
        "probe_acc_medium",
        "probe_acc_few",
        "knn_acc",
        "transfer_acc",
        "transfer_2shot_acc",
        "transfer_2shot_acc_std",
    ):
        assert len(h[key]) == 3, key
    # every_n_epochs=2: epoch 1 skipped (NaN), epoch 2 evaluated, epoch 3 is the last (evaluated).
    assert math.isnan(h["probe_acc"][0]) and math.isnan(h["knn_acc"][0])
    assert all(0.0 <= v <= 1.0 for v in h["probe_acc"][1:] + h["knn_acc"][1:])
    assert [math.isnan(v) for v in h["transfer_acc"]] == [True, True, False]  # every_n_epochs=3
    assert [e for e, _ in probe.results] == [1, 2]

    # The logged values are exactly what the functions give on the final model's features.
    ftr = extract_features(model, x)
    ref = evaluation.probe_features(ftr, y, ftr, y, class_groups=GROUPS)
    assert h["probe_acc"][-1] == pytest.approx(ref["acc"])
    assert h["probe_acc_few"][-1] == pytest.approx(ref["acc_few"])
    assert h["knn_acc"][-1] == pytest.approx(evaluation.knn_features(ftr, y, ftr, y, k=10)["acc"])

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and float(rows[-1]["probe_acc"]) == pytest.approx(h["probe_acc"][-1])


def test_probe_on_dict_batches_and_paper_protocol():
    x, y = _data(48)
    batches = [{"images": x[i : i + 16], "labels": y[i : i + 16]} for i in range(0, 48, 16)]
    enc = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    probe = LinearProbe(
        batches,
        (x, y),
        protocol="paper",
        epochs=2,
        milestones=(1,),
        learning_rate=0.1,
        batch_size=16,
        feature_batch_size=7,
    )
    probe.set_model(enc)
    res = probe.evaluate_now()
    assert set(res) == {"probe_acc", "probe_top5"}
    assert probe.classifier.n_iter == 2 * 3  # 2 epochs of 3 batches of 16


def test_bad_inputs_raise_value_error():
    x, y = _data(16)
    with pytest.raises(ValueError, match="train_data"):
        LinearProbe((x, y[:10]), (x, y))
    with pytest.raises(ValueError, match="every_n_epochs"):
        LinearProbe((x, y), (x, y), every_n_epochs=0)
    with pytest.raises(ValueError, match="protocol"):
        LinearProbe((x, y), (x, y), protocol="lbfgs")
    with pytest.raises(ValueError, match="class_groups"):
        LinearProbe((x, y), (x, y), class_groups={"few": [9]}, num_classes=4)
    with pytest.raises(ValueError, match="empty"):
        KNNMonitor((x[:0], y[:0]), (x, y), k=1)
    with pytest.raises(ValueError, match="`k`"):
        KNNMonitor((x, y), (x, y), k=17)
    with pytest.raises(ValueError, match="compute"):
        KNNMonitor((x, y), (x, y), k=3, compute="gpu")
    # labels out of range for the declared number of classes: refused when the callback is made
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        LinearProbe((x, y), (x, y), num_classes=3)
    # labels that are not class ids, and test labels absent from training without num_classes
    with pytest.raises(ValueError, match="integer class ids"):
        KNNMonitor((x, y + 0.5), (x, y), k=3)
    with pytest.raises(ValueError, match="never occur in the training labels"):
        TransferProbe((x, y % 2), (x, y))
    TransferProbe((x, y % 2), (x, y), num_classes=4)  # declared: accepted
    # an encoder without a flat output
    probe = LinearProbe((x, y), (x, y))
    probe.set_model(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)]))
    with pytest.raises(ValueError, match="flat"):
        probe.evaluate_now()


def test_monitors_raise_on_non_finite_test_features():
    # An encoder output with NaN / inf rows must raise, not be scored as class 0.
    x, y = _data(16)
    bad = x.astype("float32")
    bad[3, 0, 0, 0] = np.nan
    bad[5, 0, 0, 0] = np.inf
    enc = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    for cb in (KNNMonitor((x, y), (bad, y), k=3), LinearProbe((x, y), (bad, y))):
        cb.set_model(enc)
        with pytest.raises(ValueError, match=r"`test` features contain NaN or infinite values \(row 3\)"):
            cb.evaluate_now()


def test_callbacks_have_one_import_path():
    # `keras_ssl_lt.callbacks.X` is the one public path of the evaluation callbacks; the evaluation
    # package no longer re-exports them and rwSAM's KDEReweighting lives only in `keras_ssl_lt.rwsam`.
    assert sorted(callbacks.__all__) == ["EvaluationCallback", "KNNMonitor", "LinearProbe", "TransferProbe"]
    for name in callbacks.__all__:
        cls = getattr(callbacks, name)
        assert cls.__module__.startswith("keras_ssl_lt.callbacks."), (name, cls.__module__)
        assert issubclass(cls, callbacks.EvaluationCallback)
        assert not hasattr(evaluation, name), name
    assert keras_ssl_lt.callbacks is callbacks
    assert not hasattr(callbacks, "KDEReweighting")
    assert keras_ssl_lt.rwsam.KDEReweighting.__module__ == "keras_ssl_lt.rwsam.callback"
    assert not hasattr(evaluation, "callbacks")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("keras_ssl_lt.evaluation.callbacks")


def test_knn_monitor_device_and_host_paths_log_the_same_accuracy():
    x, y = _data()
    encoder = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten()])
    logs = []
    for compute in ("device", "host"):
        mon = KNNMonitor((x, y), (x, y), k=5, compute=compute)
        mon.set_model(encoder)
        logs.append(mon.evaluate_now())
    assert logs[0] == logs[1]
