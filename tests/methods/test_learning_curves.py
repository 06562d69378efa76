"""The learning-curve study's own pieces (benchmarks/parity/learning_curves.py): its kNN and its report."""

import json

import numpy as np

from benchmarks.parity import learning_curves as LC
from keras_ssl_lt.evaluation import knn_features


def test_study_knn_equals_the_package_knn():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 16)), rng.normal(size=(50, 16))
    y_train, y_test = rng.integers(0, 10, 300), rng.integers(0, 10, 50)
    ours = LC.knn_accuracy(train, y_train, test, y_test, k=20)
    theirs = knn_features(train, y_train, test, y_test, num_classes=10, k=20, temperature=0.1)["acc"]
    assert ours == theirs


def test_report_gives_gain_over_each_floor(tmp_path, capsys):
    for seed, (floor, final) in enumerate([(0.25, 0.40), (0.30, 0.41)]):
        record = {"method": "simclr", "arm": "package", "seed": seed, "epochs": 2, "n_train": 100}
        record["curve"] = {"0": floor, "2": final}
        (tmp_path / f"r{seed}.json").write_text(json.dumps(record))
    LC.report(tmp_path)
    row = next(line for line in capsys.readouterr().out.splitlines() if "package" in line)
    assert "| 2 | 27.50 | 40.50 | +13.00 +- 2.83 | +15.00, +11.00 |" in row
