"""The community CIFAR-LT protocol (SDCLR / BCL / TS): counts, validation split, seeds, manifests (pure numpy)."""

import json
import math

import numpy as np
import pytest

from keras_ssl_lt.data import CommunitySplit, Subset, community_split


def _shuffled(C, per_class, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(C), per_class))


def _reference(C, M, r=0.01):
    """Independent reference: Python's int() (a floor for positive numbers) of M * r ** (k / (C - 1))."""
    return [int(M * r ** (k / (C - 1)) + 1e-9) for k in range(C)]


@pytest.mark.parametrize(
    "dataset, C, per_class, n, head, tail",
    [
        ("cifar10", 10, 5000, 11165, [4500, 2697, 1617, 969, 581, 348, 208, 125, 75, 45], []),
        ("cifar100", 100, 500, 9754, [450, 429, 410], [4, 4, 4]),
    ],
)
def test_exact_counts_of_the_published_splits(dataset, C, per_class, n, head, tail):
    # Totals of SDCLR's split{k}_D_i.npy / cifar100_split{k}_D_i.npy (read from the files): 11,165 and 9,754.
    s = community_split(_shuffled(C, per_class), dataset, split=1)
    assert s.n == n == sum(_reference(C, per_class - s.manifest["val_per_class"]))
    assert s.train.counts.tolist() == _reference(C, per_class - s.manifest["val_per_class"])
    assert s.train.counts[: len(head)].tolist() == head
    assert not tail or s.train.counts[-len(tail) :].tolist() == tail
    # Rounding to nearest would not give the published totals (11,167 and 9,806).
    assert sum(round((per_class - s.manifest["val_per_class"]) * 0.01 ** (k / (C - 1))) for k in range(C)) != n
    # The balanced counterpart has the same n, spread as evenly as possible.
    assert s.balanced.n == n and s.balanced.counts.max() - s.balanced.counts.min() <= 1
    # SDCLR's thirds by frequency rank for CIFAR: 4 / 3 / 3 and 34 / 33 / 33 classes.
    sizes = [len(s.train.groups[g]) for g in ("many", "medium", "few")]
    assert sizes == ([4, 3, 3] if C == 10 else [34, 33, 33])


@pytest.mark.parametrize("dataset, C, per_class", [("cifar10", 10, 5000), ("cifar100", 100, 500)])
def test_validation_is_balanced_and_disjoint_from_every_training_part(dataset, C, per_class):
    y = _shuffled(C, per_class, seed=1)
    s = community_split(y, dataset, split=2)
    v = s.manifest["val_per_class"]
    assert np.bincount(y[s.val], minlength=C).tolist() == [v] * C
    assert s.pool.counts.tolist() == [per_class - v] * C
    assert np.intersect1d(s.val, s.pool.indices).size == 0
    assert s.val.size + s.pool.n == y.size
    for part in (s.train, s.balanced):
        assert np.intersect1d(part.indices, s.val).size == 0
        assert np.all(np.isin(part.indices, s.pool.indices))


def test_splits_differ_across_seeds_and_are_reproducible():
    y = _shuffled(10, 500)
    kw = {"val_per_class": 50, "ratio": 0.1}
    a, b = community_split(y, "cifar10", 1, **kw), community_split(y, "cifar10", "split1", **kw)
    assert a.manifest == b.manifest
    c = community_split(y, "cifar10", 2, **kw)
    assert c.train.counts.tolist() == a.train.counts.tolist()
    assert not np.array_equal(c.train.indices, a.train.indices) and not np.array_equal(c.val, a.val)
    assert community_split(y, "cifar10", 2, **kw).manifest == c.manifest


def test_real_cifar10_labels_when_available():
    from conftest import CIFAR10_PATH

    if not CIFAR10_PATH.exists():
        pytest.skip(f"{CIFAR10_PATH} not found")
    y = np.load(CIFAR10_PATH)["y_train"]
    s = community_split(y, "cifar10", split=5)
    assert s.n == 11165 and s.val.size == 5000 and s.pool.n == 45000
    assert np.bincount(y[s.train.indices], minlength=10).tolist() == s.train.counts.tolist()


def test_manifests_round_trip(tmp_path):
    y = _shuffled(10, 60)
    s = community_split(y, "cifar10", 3, val_per_class=10, ratio=0.1, class_order="random")
    path = tmp_path / "split3.json"
    s.save(path)
    back = CommunitySplit.load(path, y)
    assert back.manifest == json.loads(path.read_text()) == s.manifest
    assert np.array_equal(back.val, s.val) and np.array_equal(back.train.indices, s.train.indices)
    # Each part is an ordinary subset manifest, loadable on its own.
    for part in ("pool", "train", "balanced"):
        sub = Subset.from_manifest(s.manifest[part], y)
        assert np.array_equal(sub.indices, getattr(s, part).indices)


def test_edited_manifests_and_other_labels_are_refused(tmp_path):
    y = _shuffled(10, 60)
    s = community_split(y, "cifar10", 1, val_per_class=10, ratio=0.1)
    path = tmp_path / "s.json"
    m = dict(s.manifest, val_indices=[*s.manifest["val_indices"][:-1], int(s.train.indices[0])])
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"fields \['val_indices'\] are not what its recipe"):
        CommunitySplit.load(path, y)
    path.write_text(json.dumps(dict(s.manifest, split=2)))
    with pytest.raises(ValueError, match="are not what its recipe"):
        CommunitySplit.load(path, y)
    s.save(path)
    with pytest.raises(ValueError, match="do not match"):
        CommunitySplit.load(path, y[::-1])
    path.write_text(json.dumps(dict(s.manifest, extra=1)))
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['extra'\]"):
        CommunitySplit.load(path, y)


def test_bad_arguments_name_the_argument():
    y = _shuffled(10, 60)
    with pytest.raises(ValueError, match="`dataset` must be one of 'cifar10', 'cifar100'"):
        community_split(y, "cifar1000")
    with pytest.raises(ValueError, match="`split` must be"):
        community_split(y, "cifar10", split="first", val_per_class=10, ratio=0.1)
    with pytest.raises(ValueError, match="`split` must be an int >= 1"):
        community_split(y, "cifar10", split=0, val_per_class=10, ratio=0.1)
    with pytest.raises(ValueError, match="`val_per_class`=60 leaves nothing to train on"):
        community_split(y, "cifar10", val_per_class=60)
    with pytest.raises(ValueError, match="`labels`"):
        community_split(_shuffled(12, 60), "cifar10", val_per_class=10, ratio=0.1)
    assert math.isclose(community_split(y, "cifar10", val_per_class=10, ratio=0.1).manifest["ratio"], 0.1)
