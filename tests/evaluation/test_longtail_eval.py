"""Long-tail evaluation: k-shot sampling, k-shot and TS-style probes against scikit-learn, balancedness, and the
optional `cfg["eval"]` keys of `evaluate_encoder` (every backend)."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.evaluation import group_balancedness, k_shot_indices, k_shot_probe, lt_probe, probe_features

sklearn_lm = pytest.importorskip("sklearn.linear_model")

GROUPS = {"many": [0], "medium": [1], "few": [2]}
L2 = 1e-2


def _features(counts, seed=0, d=4, noise=1.0):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    x = rng.normal(scale=noise, size=(len(y), d)) + 2.0 * np.eye(len(counts), d)[y]
    return x.astype("float32"), y


def _sklearn_predictions(xtr, ytr, xte):
    """Independent reference: scikit-learn's L2 logistic regression on the training-standardised features."""
    mean, std = xtr.astype("float64").mean(0), xtr.astype("float64").std(0)
    clf = sklearn_lm.LogisticRegression(C=1.0 / (L2 * len(ytr)), tol=1e-10, max_iter=10000)
    clf.fit((xtr - mean) / std, ytr)
    return clf.predict((xte - mean) / std)


def _reference_metrics(pred, yte):
    """Accuracy, per-group accuracy and the population std of the three group accuracies, in numpy."""
    groups = {g: float(np.mean(pred[np.isin(yte, ids)] == yte[np.isin(yte, ids)])) for g, ids in GROUPS.items()}
    g = np.array(list(groups.values()))
    return float(np.mean(pred == yte)), groups, float(np.sqrt(np.mean((g - g.mean()) ** 2)))


def test_k_shot_indices_take_exactly_k_per_class_seeded():
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(4), [9, 7, 5, 6]))
    a = k_shot_indices(y, 5, seed=3, draw=0)
    assert np.bincount(y[a]).tolist() == [5, 5, 5, 5] and np.all(np.diff(a) > 0)
    assert np.array_equal(a, k_shot_indices(y, 5, seed=3, draw=0))
    assert not np.array_equal(a, k_shot_indices(y, 5, seed=3, draw=1))
    assert not np.array_equal(a, k_shot_indices(y, 5, seed=4, draw=0))
    with pytest.raises(ValueError, match="`shots`=6 exceeds the 5 examples of class 2"):
        k_shot_indices(y, 6)
    with pytest.raises(ValueError, match="`shots`=1 exceeds the 0 examples of class 4"):
        k_shot_indices(y, 1, num_classes=5)
    with pytest.raises(ValueError, match="`shots` must be"):
        k_shot_indices(y, 0)


def test_group_balancedness_is_the_population_std():
    assert group_balancedness([0.9, 0.6, 0.3]) == pytest.approx(np.sqrt(0.06), abs=1e-12)
    assert group_balancedness({"many": 0.5, "medium": 0.5, "few": 0.5}) == 0.0
    with pytest.raises(ValueError, match="`group_accuracies` must be two or more accuracies in"):
        group_balancedness({"many": 0.5, "few": float("nan")})
    with pytest.raises(ValueError, match="`group_accuracies`"):
        group_balancedness([90.0, 60.0, 30.0])  # percents, not fractions


def test_k_shot_probe_matches_scikit_learn_per_draw():
    xtr, ytr = _features([30, 30, 30], seed=1)
    xte, yte = _features([20, 20, 20], seed=2)
    r = k_shot_probe(xtr, ytr, xte, yte, shots=6, num_draws=2, seed=5, class_groups=GROUPS, l2=L2, tol=1e-7)
    refs = []
    for d in range(2):
        idx = k_shot_indices(ytr, 6, seed=5, draw=d)
        refs.append(_reference_metrics(_sklearn_predictions(xtr[idx], ytr[idx], xte), yte))
    accs = [a for a, _, _ in refs]
    assert r["accs"] == pytest.approx(accs, abs=1e-12)
    assert r["acc"] == pytest.approx(np.mean(accs)) and r["acc_std"] == pytest.approx(np.std(accs))
    for g in GROUPS:
        assert r[f"acc_{g}"] == pytest.approx(np.mean([grp[g] for _, grp, _ in refs]))
    assert r["balancedness"] == pytest.approx(np.mean([b for _, _, b in refs]))
    assert r["shots"] == 6


def test_lt_probe_on_the_long_tailed_split_and_its_few_shot_sample():
    xtr, ytr = _features([40, 12, 4], seed=3)
    xte, yte = _features([20, 20, 20], seed=4)
    full = lt_probe(xtr, ytr, xte, yte, class_groups=GROUPS, l2=L2, tol=1e-7)
    acc, groups, bal = _reference_metrics(_sklearn_predictions(xtr, ytr, xte), yte)
    assert full["acc"] == pytest.approx(acc) and full["balancedness"] == pytest.approx(bal)
    assert {g: full[f"acc_{g}"] for g in GROUPS} == pytest.approx(groups)
    # The same fit as the package's full-shot probe on these features.
    assert full["acc"] == probe_features(xtr, ytr, xte, yte, l2=L2, tol=1e-7)["acc"]
    fs = lt_probe(xtr, ytr, xte, yte, few_shot=True, num_draws=2, seed=1, class_groups=GROUPS, l2=L2, tol=1e-7)
    assert fs["shots"] == 4 and len(fs["accs"]) == 2  # the rarest class's count, per class
    idx = k_shot_indices(ytr, 4, seed=1, draw=0)
    assert fs["accs"][0] == pytest.approx(_reference_metrics(_sklearn_predictions(xtr[idx], ytr[idx], xte), yte)[0])
    with pytest.raises(ValueError, match="hold no example of class 3"):
        lt_probe(xtr, ytr, xte, yte, few_shot=True, num_classes=4)
    with pytest.raises(ValueError, match="`few_shot` must be True or False"):
        lt_probe(xtr, ytr, xte, yte, few_shot="yes")
    with pytest.raises(ValueError, match=r"no example of class group\(s\) \['few'\]"):
        lt_probe(xtr, ytr, xte[yte < 2], yte[yte < 2], class_groups=GROUPS, num_classes=3)


def _eval_setup():
    from keras_ssl_lt.data import make_subset
    from keras_ssl_lt.experiments.evaldata import EvalData

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 16)
    x = np.clip(rng.normal(100, 40, size=(48, 8, 8, 3)) + 30 * y[:, None, None, None], 0, 255).astype("uint8")
    data = EvalData.from_arrays((x, y), (x[::2], y[::2]), bank_per_class=12)
    subset = make_subset(y, "exp", ratio=0.25, max_per_class=12, seed=0)
    encoder = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.GlobalAveragePooling2D()]
    )
    cfg = {"eval": {"knn_k": 5, "feature_batch_size": 64}}
    return encoder, data, subset, cfg


def test_evaluate_encoder_long_tail_keys_are_off_by_default_and_plain_when_on(monkeypatch):
    from keras_ssl_lt.data import make_subset
    from keras_ssl_lt.experiments.evaluate import evaluate_encoder, floor_metrics
    from keras_ssl_lt.experiments.presets import smoke_config

    encoder, data, subset, cfg = _eval_setup()
    before = evaluate_encoder(encoder, data, cfg, subset.groups, subset=subset)  # no long-tail key: as before
    assert not any("balancedness" in k or "kshot" in k or k.startswith("lt_") for k in before)
    on = {"balancedness": True, "k_shot": [4, 2], "k_shot_draws": 1, "lt_probe": True}
    after = evaluate_encoder(encoder, data, {"eval": {**cfg["eval"], **on}}, subset.groups, subset=subset)
    assert {k: after[k] for k in before} == before
    groups = ("many", "medium", "few")
    expected = {"probe_balancedness", "knn_balancedness", "lt_fewshot_shots"}
    for prefix in ("probe_kshot4", "probe_kshot2", "lt_probe", "lt_fewshot"):
        expected |= {f"{prefix}_acc", f"{prefix}_balancedness", *(f"{prefix}_acc_{g}" for g in groups)}
        expected |= {f"{prefix}_acc_std"} if prefix != "lt_probe" else set()
    assert set(after) - set(before) == expected
    assert after["probe_balancedness"] == pytest.approx(group_balancedness([before[f"probe_acc_{g}"] for g in groups]))
    assert after["lt_fewshot_shots"] == float(subset.counts.min())
    # The k-shot metric is k_shot_probe on the bank's features (the encoder averages the rescaled pixels).
    flat = lambda x: (x.astype("float32") / 255).mean(axis=(1, 2))  # noqa: E731
    ref = k_shot_probe(flat(data.bank[0]), data.bank[1], flat(data.test[0]), data.test[1], shots=4,
                       num_draws=1, num_classes=3, class_groups=subset.groups)  # fmt: skip
    assert after["probe_kshot4_acc"] == pytest.approx(ref["acc"]) and after["probe_kshot4_acc_std"] == pytest.approx(
        ref["acc_std"]
    )
    with pytest.raises(ValueError, match="pass `subset=`"):
        evaluate_encoder(encoder, data, {"eval": {"lt_probe": "lt"}}, subset.groups)
    with pytest.raises(ValueError, match=r"`eval\.k_shot` must be a positive int or a list"):
        evaluate_encoder(encoder, data, {"eval": {"k_shot": [100, 0]}}, subset.groups)
    with pytest.raises(ValueError, match=r"`eval\.lt_probe` must be"):
        evaluate_encoder(encoder, data, {"eval": {"lt_probe": "ts"}}, subset.groups, subset=subset)
    with pytest.raises(ValueError, match="`shots`=13 exceeds the 12 examples"):
        evaluate_encoder(encoder, data, {"eval": {**cfg["eval"], "k_shot": 13}}, subset.groups)
    with pytest.raises(ValueError, match=r"`eval\.balancedness` needs class groups"):
        evaluate_encoder(encoder, data, {"eval": {"balancedness": True}})
    # The untrained floor passes the subset on and keys its cache on it (the pre-trainer build is stubbed).
    monkeypatch.setattr("keras_ssl_lt.experiments.build.build_pretrainer", lambda *a, **k: encoder)
    floor_cfg = {**smoke_config(), "eval": {**cfg["eval"], "lt_probe": "lt"}}
    data.floor_cache.clear()
    floor = floor_metrics(floor_cfg, data, 0, subset.groups, subset=subset)
    assert floor["lt_probe_acc"] == after["lt_probe_acc"] and len(data.floor_cache) == 1
    other = make_subset(data.source.labels, "exp", ratio=0.25, max_per_class=12, seed=1)
    floor_metrics(floor_cfg, data, 0, subset.groups, subset=other)
    assert len(data.floor_cache) == 2
