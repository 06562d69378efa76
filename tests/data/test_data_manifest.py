"""Subset manifests read back: every kind round-trips, and a tampered manifest is refused naming the file and field.

Pure numpy (the data layer below Keras), so the results are the same on every backend; the suite runs it
under each.
"""

import json

import numpy as np
import pytest

from keras_ssl_lt.data import (
    SplitFileSource,
    Subset,
    balanced_counterpart,
    class_groups,
    load_manifest,
    make_subset,
    split_subset,
    write_image_folder,
)
from keras_ssl_lt.data.manifest import check_manifest

Y = np.repeat(np.arange(10), 50)


def _subsets():
    lt = make_subset(Y, "exp", ratio=0.1, seed=3, class_order="random")
    by_n = make_subset(Y, "pareto", ratio=0.1, n=100, group_rule="counts", many_threshold=10, few_threshold=5)
    return {
        "long_tail": lt,
        "long_tail_n_pareto": by_n,
        "long_tail_sampling": make_subset(Y, "step", ratio=0.2, sampling=0.5, seed=1),
        "counterpart": balanced_counterpart(Y, lt),
        "counterpart_counts_rule": balanced_counterpart(Y, by_n, seed=5),
    }


def _write(tmp_path, manifest, name="m.json"):
    p = tmp_path / name
    p.write_text(json.dumps(manifest))
    return p


@pytest.mark.parametrize("kind", list(_subsets()))
def test_every_kind_round_trips(tmp_path, kind):
    s = _subsets()[kind]
    p = tmp_path / "s.json"
    s.save(p)
    t = Subset.load(p, Y)
    assert np.array_equal(t.indices, s.indices) and np.array_equal(t.counts, s.counts)
    assert {k: v.tolist() for k, v in t.groups.items()} == {k: v.tolist() for k, v in s.groups.items()}
    assert t.manifest == json.loads(json.dumps(s.manifest))


def test_split_file_subset_round_trips(tmp_path):
    split = write_image_folder(tmp_path, counts=[6, 3, 2], size_range=(4, 6))
    pool = SplitFileSource(tmp_path, split)
    lt = tmp_path / "lt.txt"
    lines = open(split).readlines()
    lt.write_text("".join(lines[:4] + lines[6:8] + lines[9:10]))
    s = split_subset(pool, lt)
    s.save(tmp_path / "s.json")
    assert Subset.load(tmp_path / "s.json", pool.labels).counts.tolist() == [4, 2, 1]
    b = balanced_counterpart(pool.labels, s)
    b.save(tmp_path / "b.json")
    assert Subset.load(tmp_path / "b.json", pool.labels).n == 7
    m = dict(s.manifest, ratio=0.5)  # the split's ratio is what its indices hold: 1 / 4
    with pytest.raises(ValueError, match=r"m\.json.*fields \['ratio'\]"):
        Subset.load(_write(tmp_path, m), pool.labels)


# Each edit of a long-tailed subset's manifest, and a word the error must contain (besides the file name).
LT = make_subset(Y, "exp", ratio=0.1, seed=3, class_order="random").manifest
IDX = LT["indices"]
TAMPERED = {
    "duplicate index": (dict(indices=IDX[:1] + IDX[:-1]), r"field `indices` .*repeated"),
    "unsorted indices": (dict(indices=IDX[::-1]), r"field `indices` .*unsorted"),
    "float indices": (dict(indices=[float(i) for i in IDX]), r"field `indices\[0\]` must be an integer"),
    "bool index": (dict(indices=[True] + IDX[1:]), r"field `indices\[0\]` must be an integer"),
    "index 10**9": (dict(indices=IDX[:-1] + [10**9]), r"field `indices\[198\]` must be an integer in 0\.\.499"),
    "negative index": (dict(indices=[-1] + IDX[1:]), r"field `indices\[0\]`"),
    "indices not a list": (dict(indices="0,1,2"), r"field `indices` must be a list"),
    "one index fewer": (dict(indices=IDX[:-1]), r"field `indices` must be `n` = 199 positions"),
    "edited ratio": (dict(ratio=0.2), r"fields \['n', 'counts', 'indices'\] are not what its recipe \(.*ratio=0\.2"),
    "edited profile": (dict(profile="step"), r"fields \['n', 'counts', 'indices'\].*profile='step'"),
    "unknown profile": (dict(profile="zipf"), r"recipe does not rebuild.*`profile` must be one of"),
    "edited seed": (dict(seed=4), r"fields \['indices'\]"),
    "edited sampling": (dict(sampling=0.5), r"fields \['n', 'counts', 'indices'\]"),
    "edited max_per_class": (dict(max_per_class=40), r"fields \['n', 'counts', 'indices'\]"),
    "edited class_order": (dict(class_order=list(range(10))), r"fields \['counts', 'groups', 'indices'\]"),
    "edited n_requested": (dict(n_requested=50), r"fields \['sampling', 'n', 'counts', 'indices'\]"),
    "alpha on exp": (dict(alpha=3.0), r"`alpha` must be a number for profile='pareto' and null otherwise"),
    "ratio as a string": (dict(ratio="0.1"), r"field `ratio` must be a number in \(0, 1\]"),
    "ratio NaN": (dict(ratio=float("nan")), r"field `ratio` must be a number"),
    "ratio 0": (dict(ratio=0.0), r"field `ratio`"),
    "seed float": (dict(seed=3.0), r"field `seed` must be an integer >= 0"),
    "group id that does not exist": (
        dict(groups={"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 11]}),
        r"field `groups\.few\[2\]` must be an integer in 0\.\.9",
    ),
    "class in two groups": (
        dict(groups={"many": [0, 1, 2, 3], "medium": [3, 4, 5, 6], "few": [7, 8, 9]}),
        r"field `groups` must be a partition",
    ),
    "class in no group": (dict(groups={"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8]}), "partition"),
    "group missing": (dict(groups={"many": list(range(7)), "few": [7, 8, 9]}), r"field `groups` must be an object"),
    "groups moved between ranks": (
        dict(groups={"many": [0, 1, 2], "medium": [3, 4, 5, 6], "few": [7, 8, 9]}),
        "groups",
    ),
    "counts edited": (dict(counts=[LT["counts"][0] + 1] + LT["counts"][1:]), r"field `counts`"),
    "counts too short": (dict(counts=LT["counts"][:-1]), r"field `counts` must be 10 counts"),
    "class_order not a permutation": (dict(class_order=[0] * 10), r"field `class_order` must be a permutation"),
    "labels hash edited": (dict(labels_sha256="0" * 64), r"`labels` do not match manifest file"),
    "labels hash not hex": (dict(labels_sha256="xyz"), r"field `labels_sha256` must be a SHA-256"),
    "unknown field": (dict(note="hand-made"), r"unknown field\(s\) \['note'\]"),
    "unknown kind": (dict(kind="random"), r"field `kind` must be one of"),
    "other format": (dict(format="keras_ssl_lt.subset/0"), r"field `format` must be 'keras_ssl_lt\.subset/1'"),
    "counterpart field on a long tail": (dict(counterpart_of={}), r"unknown field\(s\) \['counterpart_of'\]"),
    "n above num_examples": (dict(n=10**9), r"field `n` must be an integer in 1\.\.500"),
    "group rule unknown": (dict(group_rule="median"), r"recipe does not rebuild.*`group_rule` must be one of"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_long_tail_manifest_is_refused(tmp_path, case):
    edit, pattern = TAMPERED[case]
    p = _write(tmp_path, dict(LT, **edit), name="tampered.json")
    with pytest.raises(ValueError, match=pattern) as e:
        Subset.load(p, Y)
    assert "tampered.json" in str(e.value)


@pytest.mark.parametrize("key", ["indices", "ratio", "profile", "groups", "counts", "labels_sha256", "format"])
def test_missing_field_is_named(tmp_path, key):
    m = dict(LT)
    del m[key]
    with pytest.raises(ValueError, match=rf"m\.json.*`{key}`"):
        Subset.load(_write(tmp_path, m), Y)


def test_tampered_counterpart_is_refused(tmp_path):
    subsets = _subsets()
    rank, counts_rule = subsets["counterpart"].manifest, subsets["counterpart_counts_rule"].manifest
    edits = [
        (rank, dict(seed=4), r"fields \['indices'\]"),
        (rank, dict(n=150, n_requested=150, indices=rank["indices"][:150]), "counts"),
        (rank, dict(groups={"many": [0, 1, 2], "medium": [3, 4, 5, 6], "few": [7, 8, 9]}), r"fields \['groups'\]"),
        (rank, dict(counterpart_of=dict(rank["counterpart_of"], n=5)), r"field `counterpart_of\.n`"),
        (rank, dict(counterpart_of=None), r"field `counterpart_of` must be an object"),
        (rank, dict(profile="exp"), r"fields \['profile'\]"),
        (rank, dict(ratio=0.5), r"fields \['ratio'\]"),
        (counts_rule, dict(many_threshold=-1), r"field `many_threshold` must be an integer >= 0"),
    ]
    for m, edit, pattern in edits:
        with pytest.raises(ValueError, match=pattern):
            Subset.load(_write(tmp_path, dict(m, **edit)), Y)


def test_duplicate_json_key_is_refused(tmp_path):
    p = tmp_path / "dup.json"
    text = json.dumps(LT)
    p.write_text(text[:-1] + ', "ratio": 0.5}')
    with pytest.raises(ValueError, match=r"dup\.json.*key 'ratio' twice"):
        load_manifest(p)
    with pytest.raises(ValueError, match="twice"):
        Subset.load(p, Y)


def test_from_manifest_names_the_dict_and_checks_alone():
    with pytest.raises(ValueError, match=r"`manifest` must be a dict"):
        Subset.from_manifest([1, 2], Y)
    with pytest.raises(ValueError, match=r"^`manifest`: field `indices\[0\]` must be an integer"):
        Subset.from_manifest(dict(LT, indices=[0.5]), Y)
    assert check_manifest(LT) is LT
    with pytest.raises(ValueError, match="my subset: field `seed`"):
        check_manifest(dict(LT, seed=-1), where="my subset")


def test_untampered_manifest_gives_the_same_subset_after_a_json_round_trip():
    m = json.loads(json.dumps(LT))
    s = Subset.from_manifest(m, Y)
    assert s.indices.tolist() == LT["indices"] and s.counts.tolist() == LT["counts"]
    assert sorted(
        np.concatenate(list(class_groups(s.counts, class_order=LT["class_order"]).values())).tolist()
    ) == list(range(10))
