"""The semi-synthetic builder against hand-built examples on real CIFAR-10 slices (numpy only, any backend)."""

import os

import numpy as np
import pytest

import keras_ssl_lt as ksl
from keras_ssl_lt.data import SemiSyntheticSource, semi_synthetic, semi_synthetic_eval


@pytest.fixture(scope="module")
def cifar(cifar10):
    train = ksl.data.from_arrays(cifar10["x_train"], cifar10["y_train"].reshape(-1))
    test = ksl.data.from_arrays(cifar10["x_test"], cifar10["y_test"].reshape(-1))
    return train, test


def test_paper_defaults_counts_and_exact_halves(cifar):
    train, _ = cifar
    s = semi_synthetic(train, seed=3)
    assert len(s) == 5 * 5000 + 5 * 10
    assert np.bincount(s.labels).tolist() == [5000] * 5 + [10] * 5
    assert s.manifest["per_rare"] / s.manifest["per_frequent"] == 0.002
    x, y = train.images(np.arange(len(train))), train.labels
    rng = np.random.default_rng(0)
    for i in np.concatenate([rng.choice(25000, 40, replace=False), np.arange(25000, 25050)]):
        left, right = int(s.left[i]), int(s.right[i])
        expected = x[right].copy()
        if left < 0:  # rare: blank left half, right half of an image of that class
            expected[:, :16] = 0
            assert y[right] == s.labels[i] and s.labels[i] >= 5
        else:  # frequent: left half of an image of that class, right half of any image
            expected[:, :16] = x[left][:, :16]
            assert y[left] == s.labels[i] < 5
        np.testing.assert_array_equal(s.images(np.array([i]))[0], expected)
    # distinct images within each class; right halves of the frequent examples come from every class
    for c in range(5):
        assert np.unique(s.left[s.labels == c]).size == 5000
    assert set(y[s.right[:25000]].tolist()) == set(range(10))
    assert s.class_names == train.class_names


def test_manifest_round_trip_and_determinism(cifar, tmp_path):
    train, _ = cifar
    kw = {
        "frequent_classes": [2, 7],
        "rare_classes": [0, 9, 4],
        "per_frequent": 30,
        "per_rare": 3,
        "seed": 5,
        "blank_value": 128,
    }
    s = semi_synthetic(train, **kw)
    assert s.labels.tolist() == [0] * 30 + [1] * 30 + [2] * 3 + [3] * 3 + [4] * 3
    assert s.class_names == ["2", "7", "0", "9", "4"]
    assert (s.images(np.arange(60, 69))[:, :, :16] == 128).all()
    s.save(tmp_path / "m.json")
    again = SemiSyntheticSource.load(tmp_path / "m.json", train)
    np.testing.assert_array_equal(again.images(np.arange(len(s))), s.images(np.arange(len(s))))
    np.testing.assert_array_equal(again.labels, s.labels)
    assert again.manifest == s.manifest
    same = semi_synthetic(train, **kw)
    np.testing.assert_array_equal(same.right, s.right)
    other = semi_synthetic(train, **{**kw, "seed": 6})
    assert not np.array_equal(other.right, s.right)
    wrong = ksl.data.from_arrays(train.images(np.arange(100)), train.labels[:100])
    with pytest.raises(ValueError, match="does not match the manifest"):
        SemiSyntheticSource.from_manifest(s.manifest, wrong)


def test_eval_sets_hold_out_rare_pretraining_images(cifar):
    train, test = cifar
    s = semi_synthetic(train, frequent_classes=[0, 1], rare_classes=[8, 3], per_frequent=20, per_rare=4)
    probe, tst = semi_synthetic_eval(s, train, test)
    assert np.bincount(probe.labels).tolist() == [4996, 4996]
    assert np.bincount(tst.labels).tolist() == [1000, 1000]
    assert not set(probe.right.tolist()) & set(s.right[s.left < 0].tolist())
    assert (probe.left == -1).all() and probe.class_names == ["8", "3"]
    for src, ds, i in ((train, probe, 17), (test, tst, 1500)):
        expected = src.images(np.array([ds.right[i]]))[0].copy()
        expected[:, :16] = 0
        np.testing.assert_array_equal(ds.images(np.array([i]))[0], expected)
        assert [8, 3][ds.labels[i]] == src.labels[ds.right[i]]
    small, small_test = semi_synthetic_eval(s, train, test, probe_per_class=7, test_per_class=5, seed=1)
    assert np.bincount(small.labels).tolist() == [7, 7] and len(small_test) == 10
    again, _ = semi_synthetic_eval(s.manifest, train, None, probe_per_class=7, seed=1)
    np.testing.assert_array_equal(again.right, small.right)


def test_pipelines_and_subsets_accept_it(cifar):
    train, _ = cifar
    s = semi_synthetic(train, frequent_classes=[0, 1], rare_classes=[2], per_frequent=12, per_rare=2)
    sub = ksl.data.make_subset(s.labels, profile="balanced", max_per_class=2, seed=0)
    assert sub.counts.tolist() == [2, 2, 2]
    batch = next(iter(ksl.data.ssl_dataset(s, sub, batch_size=6, backend="numpy")))
    assert np.asarray(batch["images"]).shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(np.asarray(batch["images"]), s.images(np.asarray(batch["index"])))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frequent_classes": [0, 1], "rare_classes": [1, 2]}, "disjoint"),
        ({"frequent_classes": [0], "rare_classes": [2], "per_frequent": 5001}, "per_frequent.*only 5000"),
        ({"frequent_classes": [0], "rare_classes": [2], "per_rare": 6000}, "per_rare.*only 5000"),
        ({"frequent_classes": [0, 10], "rare_classes": [2]}, "frequent_classes.*0..9"),
        ({"frequent_classes": [], "rare_classes": [2]}, "frequent_classes"),
        ({"frequent_classes": [0], "rare_classes": [2], "blank_value": 256}, "blank_value"),
        ({"frequent_classes": [0], "rare_classes": [2], "per_rare": 0}, "per_rare"),
        ({"frequent_classes": [0], "rare_classes": [2], "seed": -1}, "seed"),
    ],
)
def test_bad_input(cifar, kwargs, match):
    train, _ = cifar
    with pytest.raises(ValueError, match=match):
        semi_synthetic(train, **kwargs)


def test_odd_width_and_bad_eval_args(cifar):
    train, test = cifar
    idx = np.arange(0, len(train), 250)  # CIFAR-10 is stored sorted by class: take every class
    odd = ksl.data.from_arrays(train.images(idx)[:, :, :31], train.labels[idx])
    with pytest.raises(ValueError, match="even width"):
        semi_synthetic(odd, frequent_classes=[0], rare_classes=[1], per_frequent=2, per_rare=1)
    s = semi_synthetic(train, frequent_classes=[0], rare_classes=[1], per_frequent=2, per_rare=1)
    with pytest.raises(ValueError, match="probe_per_class"):
        semi_synthetic_eval(s, train, probe_per_class=5000)
    with pytest.raises(ValueError, match="not the source"):
        semi_synthetic_eval(s, test)
    with pytest.raises(ValueError, match="returned by `semi_synthetic`"):
        semi_synthetic_eval({"format": "x"}, train)


def test_recipe_smoke(cifar10, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    data = os.environ.get("KSL_CIFAR10_NPZ", root.parent / "shared" / "data" / "cifar10.npz")  # as conftest
    path = root / "recipes" / "semi_synthetic.py"
    spec = importlib.util.spec_from_file_location("semi_synthetic_recipe", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    argv = [
        "--preset",
        "smoke",
        "--seeds",
        "1",
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--methods",
        "simclr,supervised_rare,untrained",
    ]
    records = recipe.main(argv)
    assert [r["spec"]["method"] for r in records] == ["simclr", "supervised_rare", "untrained"]
    for r in records:
        acc = r["metrics"]["rare_probe_acc"]
        assert 0.0 <= acc <= 1.0 and r["metrics"]["floor_rare_probe_acc"] == records[-1]["metrics"]["rare_probe_acc"]
    assert records[1]["n"] == 5 * 4  # supervised on the rare examples alone
    assert (tmp_path / "table.md").exists() and (tmp_path / "manifest_pretrain.json").exists()
    again = SemiSyntheticSource.load(
        tmp_path / "manifest_pretrain.json", (cifar10["x_train"], cifar10["y_train"].reshape(-1))
    )
    assert len(again) == 5 * 40 + 5 * 4
    capsys.readouterr()
    with pytest.raises(SystemExit):  # an unknown method is refused while parsing, naming the flag
        recipe.parse_args(["--methods", "byol"])
    assert "--methods" in capsys.readouterr().err
