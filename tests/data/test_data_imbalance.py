"""Long-tailed profiles, subsets, balanced counterparts and manifests (pure numpy)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_ssl_lt.data import (
    Subset,
    balanced_counterpart,
    class_groups,
    labels_hash,
    long_tail_counts,
    make_subset,
)


def _reference_counts(C, M, r, profile, alpha=6.0):
    """Independent per-element Python reference (math module, no numpy)."""
    out = []
    for c in range(C):
        if profile == "exp":
            v = M * r ** (c / (C - 1))
        elif profile == "step":
            v = M if c < math.ceil(C / 2) else M * r
        elif profile == "pareto":
            x = lambda k: ((k + 1) / C) ** (-1 / alpha) - 1  # noqa: E731
            v = M * r + M * (1 - r) * x(c) / x(0)
        else:
            v = M
        out.append(math.floor(v + 1e-6))
    return out


@pytest.mark.parametrize("profile", ["exp", "step", "pareto"])
@pytest.mark.parametrize("C,M,r", [(10, 5000, 0.01), (10, 5000, 0.1), (7, 300, 0.05), (100, 500, 0.02)])
def test_counts_match_reference(profile, C, M, r):
    got = long_tail_counts(C, M, r, profile)
    assert got.dtype == np.int64
    assert got.tolist() == _reference_counts(C, M, r, profile)
    assert got[0] == M and got[-1] == math.floor(M * r + 1e-6)
    assert np.all(np.diff(got) <= 0)


def test_paper_cifar10_numbers():
    exp001 = long_tail_counts(10, 5000, 0.01, "exp")
    assert exp001.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert exp001.sum() == 12406
    assert long_tail_counts(10, 5000, 0.1, "exp").sum() == 20431
    assert long_tail_counts(10, 5000, 0.01, "step").sum() == 25250
    for p in ("exp", "step", "pareto"):
        assert long_tail_counts(10, 5000, 1.0, p).tolist() == [5000] * 10


def test_pareto_imagenet_lt_scale():
    c = long_tail_counts(1000, 1280, 5 / 1280, "pareto")
    assert c[0] == 1280 and c[-1] == 5
    # documented in docs/data.md: within 5% of ImageNet-LT's 115,846 images
    assert abs(c.sum() - 115846) / 115846 < 0.05
    g = class_groups(c, rule="counts")
    assert sum(len(v) for v in g.values()) == 1000
    assert np.all(c[g["many"]] > 100) and np.all(c[g["few"]] < 20)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(ratio=0.0), "ratio"),
        (dict(ratio=1.5), "ratio"),
        (dict(ratio=-0.1), "ratio"),
        (dict(profile="zipf"), "profile"),
        (dict(ratio=0.5, profile="balanced"), "ratio"),
        (dict(ratio=1e-5), "ratio"),  # rarest class would get 0
        (dict(num_classes=0), "num_classes"),
        (dict(max_per_class=2.5), "max_per_class"),
        (dict(profile="pareto", alpha=0), "alpha"),
    ],
)
def test_counts_bad_input(kwargs, word):
    args = dict(num_classes=10, max_per_class=5000, ratio=0.01, profile="exp")
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        long_tail_counts(**args)


def test_make_subset_on_cifar10(cifar10):
    y = cifar10["y_train"]
    s = make_subset(y, "exp", ratio=0.01, seed=3)
    assert s.indices.dtype == np.int64 and np.all(np.diff(s.indices) > 0)
    assert s.n == 12406 == len(s)
    assert np.bincount(y[s.indices], minlength=10).tolist() == s.counts.tolist()
    assert s.counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert {k: v.tolist() for k, v in s.groups.items()} == {"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 9]}
    step = make_subset(y, "step", ratio=0.01)
    assert step.n == 25250
    assert make_subset(y, "exp", ratio=0.1).n == 20431


def test_sampling_and_nesting():
    y = np.repeat(np.arange(10), 5000)
    full = make_subset(y, "exp", ratio=0.01, seed=1)
    for s in (0.75, 0.5, 0.25, 0.125):
        sub = make_subset(y, "exp", ratio=0.01, sampling=s, seed=1)
        assert sub.counts.tolist() == [math.floor(c * s + 1e-9) for c in full.counts]
        assert np.isin(sub.indices, full.indices).all()  # same seed -> nested subsets
        assert sub.manifest["sampling"] == s


@pytest.mark.parametrize("n", [300, 999, 5000, 12405, 12406])
def test_n_gives_exact_total(n):
    y = np.repeat(np.arange(10), 5000)
    base = long_tail_counts(10, 5000, 0.01, "exp")
    s = make_subset(y, "exp", ratio=0.01, n=n)
    assert s.n == n and s.counts.sum() == n
    exact = base * n / base.sum()
    assert np.all(np.abs(s.counts - exact) < 1)  # largest-remainder rounding
    assert np.all(s.counts >= np.floor(exact - 1e-9))


def test_n_too_small_for_every_class_raises():
    y = np.repeat(np.arange(10), 5000)
    with pytest.raises(ValueError, match="0 examples"):
        make_subset(y, "exp", ratio=0.01, n=10)


def test_class_order():
    y = np.repeat(np.arange(10), 100)
    default = make_subset(y, "exp", ratio=0.1)
    assert np.argmax(default.counts) == 0
    r1 = make_subset(y, "exp", ratio=0.1, class_order="random", seed=5)
    r2 = make_subset(y, "exp", ratio=0.1, class_order="random", seed=5)
    r3 = make_subset(y, "exp", ratio=0.1, class_order="random", seed=6)
    order = np.asarray(r1.manifest["class_order"])
    assert sorted(order.tolist()) == list(range(10))
    assert np.array_equal(r1.indices, r2.indices)
    assert r1.counts[order].tolist() == default.counts.tolist()
    assert not np.array_equal(r1.manifest["class_order"], r3.manifest["class_order"])
    # rank groups follow the permuted order
    assert sorted(r1.groups["many"].tolist()) == sorted(order[:4].tolist())
    explicit = make_subset(y, "exp", ratio=0.1, class_order=order[::-1].copy())
    assert explicit.counts[order[::-1]].tolist() == default.counts.tolist()


def test_groups_rules():
    c = np.array([500, 101, 100, 20, 19, 3])
    g = class_groups(c, rule="counts")
    assert g["many"].tolist() == [0, 1] and g["medium"].tolist() == [2, 3] and g["few"].tolist() == [4, 5]
    g = class_groups(c, rule="counts", many_threshold=400, few_threshold=50)
    assert g["many"].tolist() == [0] and g["few"].tolist() == [3, 4, 5]
    g = class_groups(c, rule="rank")
    assert [g[k].tolist() for k in ("many", "medium", "few")] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="group_rule"):
        class_groups(c, rule="quantile")
    y = np.repeat(np.arange(4), 300)
    s = make_subset(y, "exp", ratio=0.01, group_rule="counts", many_threshold=100, few_threshold=20)
    assert s.counts.tolist() == [300, 64, 13, 3]
    assert s.groups["many"].tolist() == [0] and s.groups["few"].tolist() == [2, 3]


def test_determinism_and_seed():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    a = make_subset(y, "pareto", ratio=0.05, seed=7)
    b = make_subset(y.copy(), "pareto", ratio=0.05, seed=7)
    c = make_subset(y, "pareto", ratio=0.05, seed=8)
    assert np.array_equal(a.indices, b.indices) and a.manifest == b.manifest
    assert not np.array_equal(a.indices, c.indices)
    assert np.array_equal(a.counts, c.counts)


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "jax",
    reason="backend-independent subprocess check (it runs JAX itself); done once, in the jax run",
)
def test_fresh_process_same_indices_and_no_tensorflow(tmp_path):
    """A fresh interpreter (another hash seed, JAX backend) reproduces the indices, and importing
    keras_ssl_lt.data (sources, subsets, pipeline module) does not import TensorFlow."""
    code = (
        "import sys, numpy as np;import keras_ssl_lt.data as d;"
        "y=np.arange(3000)%7;"
        "print(d.make_subset(y,'exp',ratio=0.05,class_order='random',seed=11).indices.sum());"
        "print('tensorflow' in sys.modules)"
    )
    y = np.arange(3000) % 7
    here = make_subset(y, "exp", ratio=0.05, class_order="random", seed=11).indices.sum()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(sys.path),
        PYTHONHASHSEED="123",
        KERAS_BACKEND="jax",
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    total, tf_imported = out.stdout.split()[-2:]
    assert int(total) == int(here)
    assert tf_imported == "False"


def test_balanced_counterpart():
    y = np.repeat(np.arange(10), 5000)
    s = make_subset(y, "exp", ratio=0.01, seed=2)
    b = balanced_counterpart(y, s)
    assert b.n == s.n == 12406
    assert b.counts.tolist() == [1241] * 6 + [1240] * 4
    assert np.bincount(y[b.indices], minlength=10).tolist() == b.counts.tolist()
    assert {k: v.tolist() for k, v in b.groups.items()} == {k: v.tolist() for k, v in s.groups.items()}
    assert b.manifest["kind"] == "balanced_counterpart"
    # per class, the smaller of the two selections is contained in the larger (shared prefixes)
    for c in range(10):
        small, big = sorted([s.indices[y[s.indices] == c], b.indices[y[b.indices] == c]], key=len)
        assert np.isin(small, big).all()
    assert np.array_equal(s.balanced(y).indices, b.indices)
    with pytest.raises(ValueError, match=r"more than|only"):
        balanced_counterpart(
            np.repeat(np.arange(10), [5000] * 9 + [100]),
            make_subset(np.repeat(np.arange(10), [5000] * 9 + [100]), "exp", ratio=0.01, max_per_class=5000),
        )


def test_manifest_roundtrip(tmp_path):
    y = np.repeat(np.arange(5), 40)
    s = make_subset(y, "step", ratio=0.1, sampling=0.5, seed=4)
    p = tmp_path / "sub" / "m.json"
    s.save(p)
    m = json.loads(p.read_text())
    for key in ("profile", "ratio", "n", "seed", "counts", "indices", "labels_sha256"):
        assert key in m
    assert m["labels_sha256"] == labels_hash(y)
    t = Subset.load(p, y)
    assert np.array_equal(t.indices, s.indices) and np.array_equal(t.counts, s.counts)
    assert {k: v.tolist() for k, v in t.groups.items()} == {k: v.tolist() for k, v in s.groups.items()}
    other = y.copy()
    other[[0, 199]] = other[[199, 0]]
    with pytest.raises(ValueError, match="labels"):
        Subset.load(p, other)
    with pytest.raises(ValueError, match="labels"):
        Subset.load(p, y[:-1])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="path"):
        Subset.load(tmp_path / "bad.json", y)


@pytest.mark.parametrize(
    "labels,kwargs,word",
    [
        (np.zeros((4, 2), int), {}, "labels"),
        (np.array([0.0, 1.0]), {}, "labels"),
        (np.array([0, -1, 1]), {}, "labels"),
        (np.array([0, 1, 5]), dict(num_classes=3), "labels"),
        (np.repeat(np.arange(3), 10), dict(sampling=0.0), "sampling"),
        (np.repeat(np.arange(3), 10), dict(sampling=1.2), "sampling"),
        (np.repeat(np.arange(3), 10), dict(ratio=2.0), "ratio"),
        (np.repeat(np.arange(3), 10), dict(profile="linear"), "profile"),
        (np.repeat(np.arange(3), 10), dict(max_per_class=11, ratio=0.5), "class 0"),
        (np.repeat(np.arange(3), 10), dict(n=1000, ratio=0.5), "`n`"),
        (np.repeat(np.arange(3), 10), dict(n=20, sampling=0.5, ratio=0.5), "sampling"),
        (np.repeat(np.arange(3), 10), dict(class_order="sorted"), "class_order"),
        (np.repeat(np.arange(3), 10), dict(class_order=[0, 0, 1]), "class_order"),
        (np.repeat(np.arange(3), 10), dict(seed=-1), "seed"),
        (np.repeat(np.arange(3), 10), dict(ratio=0.05), "0 examples"),
        (np.repeat(np.arange(3), [10, 10, 0]), dict(num_classes=3), "max_per_class"),
        # degenerate label arrays: one class, empty, negative, non-integer, absurd num_classes
        (np.zeros(30, int), {}, "at least 2 classes"),
        (np.zeros(30, int), dict(profile="balanced"), "at least 2 classes"),
        (np.zeros(30, int), dict(num_classes=1), "at least 2 classes"),
        (np.array([], int), {}, "empty"),
        (np.array([0, -1, 1] * 5), {}, "non-negative"),
        (np.array([0.0, 1.0] * 5), {}, "dtype float64"),
        (np.array(["0", "1"] * 5), {}, "labels"),
        (np.array([True, False] * 5), {}, "dtype bool"),
        (np.array([0, 1, None] * 5, dtype=object), {}, "dtype object"),
        (np.array([0, 2**64 - 1], dtype=np.uint64), {}, "labels"),
        (np.repeat(np.arange(3), 10), dict(num_classes=10**9), "exceeds the number of labels"),
        (np.repeat(np.arange(3), 10), dict(num_classes=2.5), "num_classes"),
    ],
)
def test_make_subset_bad_input(labels, kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_subset(labels, **kwargs)


def test_two_classes_is_the_smallest_long_tail():
    s = make_subset(np.repeat(np.arange(2), 10), "exp", ratio=0.1)
    assert s.counts.tolist() == [10, 1]


@pytest.mark.parametrize(
    "args,kwargs,word",
    [
        (([],), {}, "non-empty"),
        (([5, -1],), {}, "non-negative"),
        (([5.5, 2.0],), {}, "integer"),
        (([[5, 2]],), {}, "1-D"),
        (([5, 2, 1],), dict(class_order=[0, 0, 1]), "class_order"),
        (([5, 2, 1],), dict(class_order=[0, 1]), "class_order"),
        (([5, 2, 1],), dict(rule="median"), "group_rule"),
        (([5, 2, 1],), dict(many_threshold=-1), "many_threshold"),
        (([5, 2, 1],), dict(rule="counts", few_threshold=1.5), "few_threshold"),
        (([5, 2, 1],), dict(rule="counts", many_threshold=5, few_threshold=10), "few_threshold"),
    ],
)
def test_class_groups_bad_input(args, kwargs, word):
    with pytest.raises(ValueError, match=word):
        class_groups(*args, **kwargs)
