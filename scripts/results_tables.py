"""Regenerate the tables of docs/results.md from the committed records (never typed by hand).

Each generated table sits between two markers in the page:

    <!-- table: NAME (generated from docs/records by scripts/results_tables.py; do not edit) -->
    | ... |
    <!-- end table: NAME -->

and NAME is one of `BLOCKS` below (each reads one records folder). Run from the repository root:

    python scripts/results_tables.py            # rewrite the tables in docs/results.md
    python scripts/results_tables.py --check    # exit 1, naming them, if any table differs from its records
    python scripts/results_tables.py --print rwsam_sweep_cpu   # print one table

The test suite runs the check (tests/test_results_tables.py), so a record added without regenerating the page,
or a number edited by hand, fails CI.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
RECORDS = ROOT / "docs" / "records"

RHO, SAM_RHO, CONVENTION = "cfg.sharpness.rho", "cfg.sharpness.sam_rho", "cfg.optimizer.weight_decay_convention"
REGULARISERS = {
    "none": "plain",
    "sam": "SAM",
    "asam": "ASAM, no weights",
    "rwsam_rank": "rwSAM, rank weights",
    "rwsam_kde": "rwSAM, KDE weights",
}
ARMS = {
    "simclr": "SimCLR",
    "ts": "TS",
    "sdclr": "SDCLR",
    "bcl": "BCL",
    "bcl_d": "BCL-D",
    "simsiam": "SimSiam",
    "simsiam_rwsam": "SimSiam + rwSAM",
}


def _records(*folders):
    """The finished records of `folders`, pooled; a run recorded in two of them (same run id and epochs, e.g. a
    balanced reference that a control grid re-ran) counts once, from the first folder; the same run id trained
    for another number of epochs (`--epochs`, which is not in the run id) is another run."""
    from keras_ssl_lt.experiments.records import read_records

    seen, out = set(), []
    for folder in folders:
        for r in read_records(RECORDS / folder):
            key = (r["run_id"], r.get("config", {}).get("epochs"))
            if r.get("status") == "done" and key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _extra(record):
    extra = record["spec"].get("extra", {})
    return dict(extra)  # a dict, or the (key, value) pairs of a frozen spec


def _pct(mean, std=None, n_seeds=2):
    """ "45.23 ± 0.41" (or "45.23" for one seed) from fractions; "" for a missing mean."""
    if mean is None:
        return ""
    text = f"{100 * mean:.2f}"
    return text if std is None or n_seeds < 2 else f"{text} ± {100 * std:.2f}"


def _plain(mean, std=None, n_seeds=2, digits=3):
    if mean is None:
        return ""
    text = f"{mean:.{digits}f}"
    return text if std is None or n_seeds < 2 else f"{text} ± {std:.{digits}f}"


def _table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ claim 3 on the CPU


def _annotate(records):
    """Add reg / radius / decay / epochs to each record's spec extras (on these in-memory copies only); the radius
    is the one the run used (its spec's sweep value, else the registry's default for that regulariser)."""
    from keras_ssl_lt.rwsam.registry import DEFAULTS

    for r in records:
        extra = _extra(r)
        reg = extra.get("sharpness", "none")
        if reg == "sam":
            radius = float(extra.get(SAM_RHO, DEFAULTS["sam_rho"]))
        elif reg == "none":
            radius = None
        else:
            radius = float(extra.get(RHO, DEFAULTS["rho"]))
        decay = extra.get(CONVENTION) or r.get("config", {}).get("optimizer", {}).get("weight_decay_convention")
        # grouped as spec extras (seed_summary's fields), on this in-memory copy only
        epochs = int(r.get("config", {}).get("epochs", 0))
        r["spec"] = dict(r["spec"], extra=dict(extra, reg=reg, radius=radius, decay=decay or "keras", epochs=epochs))
    return records


def _rwsam_rows(records):
    """Seed summaries of rwSAM-recipe records, keyed by (ratio, regulariser, radius, decay convention, epochs)."""
    from keras_ssl_lt.experiments.aggregate import seed_summary

    metrics = ("knn_acc", "knn_acc_many", "knn_acc_few", "probe_acc", "probe_acc_few", "gen_gap_few")
    rows = seed_summary(_annotate(records), metrics, by=("ratio", "reg", "radius", "decay", "epochs"))
    order = list(REGULARISERS)
    rows.sort(
        key=lambda w: (
            w["epochs"],
            w["decay"],
            w["ratio"] < 1,
            order.index(w["reg"]) > 0,
            w["radius"] or 0,
            order.index(w["reg"]),
        )
    )
    return rows


def _arm_cells(w):
    """The first cells of a row of `_rwsam_rows`: the regulariser (and "balanced counterpart" at r = 1), its
    radius (empty for plain) and r."""
    name = REGULARISERS[w["reg"]] + (", balanced counterpart" if w["ratio"] >= 1 else "")
    return [name, "" if w["radius"] is None else f"{w['radius']:g}", f"{w['ratio']:g}"]


def _rwsam_table(*folders):
    rows = _rwsam_rows(_records(*folders))
    if not rows:
        return "(no records yet)"
    decays = sorted({w["decay"] for w in rows})
    heads = ["regulariser", "rho", "r"] + (["weight decay"] if len(decays) > 1 else [])
    heads += [
        "epochs",
        "seeds",
        "kNN (%)",
        "kNN, many (%)",
        "kNN, few (%)",
        "probe (%)",
        "probe, few (%)",
        "gen. gap, few",
    ]
    plain = [w for w in rows if w["ratio"] < 1 and w["reg"] == "none"]
    floor_src = plain[0] if plain else rows[0]
    floor = ["untrained encoder (the floor)", "", ""] + ([""] if len(decays) > 1 else [])
    floor += ["", str(floor_src["n_seeds"])]
    for m in ("knn_acc", "knn_acc_many", "knn_acc_few", "probe_acc", "probe_acc_few"):
        floor.append(_pct(floor_src.get(f"floor_{m}_mean"), floor_src.get(f"floor_{m}_std"), floor_src["n_seeds"]))
    floor.append("")
    body = [floor]
    for w in rows:
        cells = _arm_cells(w)
        cells += [w["decay"]] if len(decays) > 1 else []
        cells += [str(w["epochs"]), str(w["n_seeds"])]
        for m in ("knn_acc", "knn_acc_many", "knn_acc_few", "probe_acc", "probe_acc_few"):
            cells.append(_pct(w[f"{m}_mean"], w[f"{m}_std"], w["n_seeds"]))
        cells.append(_plain(w["gen_gap_few_mean"], w["gen_gap_few_std"], w["n_seeds"]))
        body.append(cells)
    return _table(heads, body)


def _beyond(w, c, m):
    """(difference of means w - c, the larger of the two seed standard deviations, fewest seeds) of metric `m`:
    the campaign's rule (`keras_ssl_lt.experiments.campaign.report`), used for every verdict on this page."""
    return w[f"{m}_mean"] - c[f"{m}_mean"], max(w[f"{m}_std"], c[f"{m}_std"]), min(w["n_seeds"], c["n_seeds"])


def _verdict(diff, spread, seeds, better="the weights help", worse="the weights hurt"):
    """The verdict on one metric (by default the weights'): none under 2 seeds of either arm; else `better` /
    `worse` when the difference exceeds the larger seed standard deviation of the two arms, "within the seeds'
    spread" if not."""
    if seeds < 2:
        return "one seed: no verdict"
    if abs(diff) <= spread:
        return "within the seeds' spread"
    return better if diff > 0 else worse


def _diff_cell(diff, spread, seeds):
    return f"{100 * diff:+.2f}" + (f" (spread {100 * spread:.2f})" if seeds > 1 else "")


def _claim_table(*groups):
    """Claim 3 per CPU setting: each regulariser against plain SimCLR of the same records folder (same seeds,
    decay): kNN overall and on the few-shot classes, and the verdict on the few-shot kNN (the campaign's)."""
    body = []
    for folders in groups:
        rows = [w for w in _rwsam_rows(_records(*folders)) if w["ratio"] < 1]
        plain = {(w["decay"], w["epochs"]): w for w in rows if w["reg"] == "none"}
        for w in rows:
            c = plain.get((w["decay"], w["epochs"]))
            if w["reg"] == "none" or c is None:
                continue
            d_all, s_all, n = _beyond(w, c, "knn_acc")
            d_few, s_few, _ = _beyond(w, c, "knn_acc_few")
            if n < 2:
                verdict = "not yet measured (1 seed)"
            elif d_few > s_few:
                verdict = "reproduced" if w["reg"].startswith("rwsam") else "better than plain"
            else:
                verdict = "not reproduced" if w["reg"].startswith("rwsam") else "not better than plain"
            body.append(
                [
                    ", ".join(f"[{f}](records/{f}/)" for f in folders),
                    REGULARISERS[w["reg"]],
                    f"{w['radius']:g}",
                    w["decay"],
                    str(w["epochs"]),
                    f"{w['n_seeds']} / {c['n_seeds']}",
                    _diff_cell(d_all, s_all, n),
                    _diff_cell(d_few, s_few, n),
                    verdict,
                ]
            )
    heads = ["records", "regulariser", "rho", "weight decay", "epochs", "seeds (arm / plain)"]
    heads += ["kNN vs plain (points)"]
    heads += ["kNN few vs plain (points)", "verdict (few-shot kNN)"]
    return _table(heads, body)


def _control_table(*folders):
    """rwSAM (rank weights) against unweighted ASAM at the same radius and decay: the weights' own effect."""
    rows = [w for w in _rwsam_rows(_records(*folders)) if w["ratio"] < 1]
    asam = {(w["radius"], w["decay"], w["epochs"]): w for w in rows if w["reg"] == "asam"}
    body = []
    for w in rows:
        c = asam.get((w["radius"], w["decay"], w["epochs"]))
        if not w["reg"].startswith("rwsam") or c is None:
            continue
        cells = [REGULARISERS[w["reg"]], f"{w['radius']:g}", w["decay"], str(w["epochs"])]
        cells.append(f"{w['n_seeds']} / {c['n_seeds']}")
        for m in ("knn_acc", "knn_acc_few", "probe_acc_few"):
            d, spread, n = _beyond(w, c, m)
            cells += [_diff_cell(d, spread, n), _verdict(d, spread, n)]
        body.append(cells)
    if not body:
        return "(no rwSAM run has its unweighted ASAM control yet)"
    heads = ["weights", "rho", "weight decay", "epochs", "seeds (rwSAM / ASAM)"]
    heads += ["kNN diff (points)", "verdict", "kNN few diff", "verdict", "probe few diff", "verdict"]
    return _table(heads, body)


def _convention_table(keras_folders, coupled_folders):
    """The weight-decay convention's effect: each run of `coupled_folders` (PyTorch's coupled decay, the paper's)
    against the same regulariser, radius, imbalance and length under Keras' decoupled decay in `keras_folders`."""
    keras_rows = {
        (w["ratio"], w["reg"], w["radius"], w["epochs"]): w
        for w in _rwsam_rows(_records(*keras_folders))
        if w["decay"] == "keras"
    }
    body = []
    for w in _rwsam_rows(_records(*coupled_folders)):
        c = keras_rows.get((w["ratio"], w["reg"], w["radius"], w["epochs"]))
        if w["decay"] != "coupled" or c is None:
            continue
        cells = _arm_cells(w) + [str(w["epochs"])]
        cells.append(f"{w['n_seeds']} / {c['n_seeds']}")
        cells += [_pct(w["knn_acc_mean"], w["knn_acc_std"], w["n_seeds"])]
        for m in ("knn_acc", "knn_acc_few", "probe_acc_few"):
            d, spread, n = _beyond(w, c, m)
            cells += [_diff_cell(d, spread, n), _verdict(d, spread, n, "coupled better", "coupled worse")]
        body.append(cells)
    if not body:
        return "(no coupled-decay run has its Keras-decay counterpart yet)"
    heads = ["regulariser", "rho", "r", "epochs", "seeds (coupled / keras)", "kNN, coupled (%)"]
    heads += ["kNN diff (points)", "verdict", "kNN few diff", "verdict", "probe few diff", "verdict"]
    return _table(heads, body)


def _weight_pairs(folders):
    """Paired differences rwSAM (rank weights) - unweighted ASAM of `folders`' records: one pair per (r, radius,
    decay, epochs, seed) that ran both, so the two runs share the split, the initialisation and the data order and
    differ only in the weights. A list of dicts: radius, decay, epochs, seed and the difference of each metric."""
    runs = {}
    for r in _annotate(_records(*folders)):
        e = r["spec"]["extra"]
        if r["spec"]["ratio"] < 1 and e["reg"] in ("asam", "rwsam_rank"):
            runs[(e["reg"], r["spec"]["ratio"], e["radius"], e["decay"], e["epochs"], r["spec"]["seed"])] = r
    pairs = []
    for (reg, ratio, radius, decay, epochs, seed), w in sorted(runs.items(), key=lambda kv: str(kv[0])):
        c = runs.get(("asam", ratio, radius, decay, epochs, seed))
        if reg != "rwsam_rank" or c is None:
            continue
        diffs = {m: w["metrics"][m] - c["metrics"][m] for m in _POOLED}
        pairs.append(dict(diffs, radius=radius, decay=decay, epochs=epochs, seed=seed))
    return pairs


_POOLED = ("knn_acc", "knn_acc_few", "probe_acc_few", "gen_gap_few")


def _ci(values, scale=100.0):
    """(mean, low, high) of `values` * `scale`: the two-sided 95 % Student-t interval, treating the values as
    independent draws (low = high = mean for one value)."""
    import numpy as np
    from scipy.stats import t

    v = scale * np.asarray(values, dtype=float)
    if v.size < 2:
        return v.mean(), v.mean(), v.mean()
    half = t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return v.mean(), v.mean() - half, v.mean() + half


def _mean_ci(values, scale=100.0, digits=2):
    """ "mean [low, high]" of `values` * `scale` (`_ci`); the mean alone for one value."""
    mean, low, high = _ci(values, scale)
    if len(values) < 2:
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _pooled_table(groups):
    """The weights' effect pooled over settings: for each (label, folders) of `groups`, and for all of them
    together (then per radius), the mean paired difference rwSAM - ASAM with its 95 % interval, per metric, and
    how many pairs favour the weights on the few-shot kNN. Groups are paired within their own folders (the same
    run id may mean another backend's run in another folder)."""
    body, everything = [], []
    for label, folders in groups:
        pairs = _weight_pairs(folders)
        everything += pairs
        body.append(_pooled_row(label, pairs))
    body.append(_pooled_row("**all of the above**", everything))
    for radius in sorted({p["radius"] for p in everything}):
        body.append(
            _pooled_row(f"all of the above at radius {radius:g}", [p for p in everything if p["radius"] == radius])
        )
    heads = ["records", "radii", "pairs (settings x seeds)", "kNN diff (points)", "kNN few diff", "probe few diff"]
    heads += ["gen. gap few diff (loss)", "pairs with few-shot kNN up"]
    return _table(heads, body)


def _pooled_row(label, pairs):
    radii = ", ".join(f"{x:g}" for x in sorted({p["radius"] for p in pairs}))
    return [label, radii, str(len(pairs)), *_pair_cells(pairs)]


def _pair_cells(pairs):
    """The metric cells of a row of paired differences: kNN, few-shot kNN and few-shot probe (points) and the
    few-shot generalisation gap (loss), each "mean [95 % interval]", then how many pairs raise the few-shot kNN;
    empty cells for no pairs."""
    if not pairs:
        return [""] * 5
    cells = [_mean_ci([p[m] for p in pairs]) for m in ("knn_acc", "knn_acc_few", "probe_acc_few")]
    cells.append(_mean_ci([p["gen_gap_few"] for p in pairs], scale=1.0, digits=3))
    cells.append(f"{sum(p['knn_acc_few'] > 0 for p in pairs)} / {len(pairs)}")
    return cells


def _seeds(pairs):
    """The pairs' seeds, "3-6" when consecutive (three or more), else listed."""
    seeds = sorted({p["seed"] for p in pairs})
    if len(seeds) >= 3 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _replication_table(lead_folders, fresh_folder, radius, metric="probe_acc_few", metric_name="few-shot probe"):
    """The test, on fresh seeds, of the pooled table's one lead: paired differences rwSAM - unweighted ASAM at
    `radius` on the seeds that showed it (`lead_folders`, each paired within itself) and on fresh seeds
    (`fresh_folder`), per decay convention and together. The lead replicates when the fresh pairs' 95 % interval
    on `metric` lies above zero: the criterion committed before the fresh runs started."""
    lead = [p for f in lead_folders for p in _weight_pairs((f,)) if p["radius"] == radius]
    fresh = [p for p in _weight_pairs((fresh_folder,)) if p["radius"] == radius]
    fresh_link = f"[{fresh_folder}](records/{fresh_folder}/)"
    rows = [("the lead: " + ", ".join(f"[{f}](records/{f}/)" for f in lead_folders), lead, "")]
    for decay in sorted({p["decay"] for p in fresh}):
        rows.append((f"fresh seeds, {decay} decay: {fresh_link}", [p for p in fresh if p["decay"] == decay], ""))
    if len(fresh) < 2:
        verdict = "not yet measured"
    else:
        _, low, high = _ci([p[metric] for p in fresh])
        verdict = "replicates" if low > 0 else "does not replicate" + (" (interval below zero)" if high < 0 else "")
    rows.append(("**fresh seeds, both decays (the test)**", fresh, verdict))
    rows.append((f"every pair at radius {radius:g}", lead + fresh, ""))
    heads = ["pairs", "decay", "seeds", "n", "kNN diff (points)", "kNN few diff", "probe few diff"]
    heads += [
        "gen. gap few diff (loss)",
        "pairs with few-shot kNN up",
        f"verdict ({metric_name}: 95 % interval above 0?)",
    ]
    body = []
    for label, pairs, verdict in rows:
        decays = ", ".join(sorted({p["decay"] for p in pairs}))
        body.append([label, decays, _seeds(pairs), str(len(pairs)), *_pair_cells(pairs), verdict])
    return _table(heads, body)


# --------------------------------------------------------------------------------- issue 22: long-tail methods

_ID = ("knn_acc", "probe_acc", "probe_acc_few", "probe_kshot100_acc", "probe_kshot50_acc")
_LT = ("lt_probe_acc", "lt_probe_acc_few", "lt_fewshot_acc", "lt_fewshot_acc_few")


def _longtail_rows(folder, metrics):
    from keras_ssl_lt.experiments.aggregate import seed_summary

    recs = [r for r in _records(folder) if r["spec"]["ratio"] < 1]
    for r in recs:
        hist = r.get("history", {}).get("rankme") or [None]
        r["metrics"]["rankme_last"] = float("nan") if hist[-1] is None else float(hist[-1])
    rows = seed_summary(recs, (*metrics, "probe_balancedness", "rankme_last"), by=("arm",))
    order = list(ARMS)
    rows.sort(key=lambda w: order.index(w["arm"]) if w["arm"] in order else len(order))
    return rows


def _floor_row(rows, metrics, extra_cells):
    w = rows[0]
    cells = ["untrained encoder (the floor)", str(w["n_seeds"])]
    cells += [_pct(w.get(f"floor_{m}_mean"), w.get(f"floor_{m}_std"), w["n_seeds"]) for m in metrics]
    return cells + extra_cells


def _longtail_id(folder):
    rows = _longtail_rows(folder, _ID)
    if not rows:
        return "(no records yet)"
    heads = ["arm", "seeds", "kNN (%)", "probe (%)", "probe, few (%)", "100-shot probe (%)", "50-shot probe (%)"]
    heads += ["balancedness", "RankMe"]
    w0 = rows[0]
    floor_bal = _plain(w0.get("floor_probe_balancedness_mean"), w0.get("floor_probe_balancedness_std"), w0["n_seeds"])
    body = [_floor_row(rows, _ID, [floor_bal, ""])]
    for w in rows:
        cells = [ARMS.get(w["arm"], w["arm"]), str(w["n_seeds"])]
        cells += [_pct(w[f"{m}_mean"], w[f"{m}_std"], w["n_seeds"]) for m in _ID]
        cells.append(_plain(w["probe_balancedness_mean"], w["probe_balancedness_std"], w["n_seeds"]))
        cells.append(f"{w['rankme_last_mean']:.1f}")
        body.append(cells)
    return _table(heads, body)


def _longtail_lt(folder):
    rows = _longtail_rows(folder, _LT)
    if not rows:
        return "(no records yet)"
    heads = ["arm", "seeds", "LT probe (%)", "LT probe, few (%)", "FS probe (%)", "FS probe, few (%)"]
    body = [_floor_row(rows, _LT, [])]
    for w in rows:
        cells = [ARMS.get(w["arm"], w["arm"]), str(w["n_seeds"])]
        cells += [_pct(w[f"{m}_mean"], w[f"{m}_std"], w["n_seeds"]) for m in _LT]
        body.append(cells)
    return _table(heads, body)


def _campaign(folder):
    from keras_ssl_lt.experiments.campaign import report
    from keras_ssl_lt.experiments.records import read_records

    return report(read_records(RECORDS / folder)).strip()


_LENGTH = ("rwsam_length_tensorflow/epochs8", "rwsam_length_tensorflow/epochs16")

BLOCKS = {
    "rwsam_cpu": lambda: _rwsam_table("rwsam_cpu", "rwsam_cpu_control"),
    "rwsam_cpu_control": lambda: _control_table("rwsam_cpu", "rwsam_cpu_control"),
    "rwsam_sweep_cpu": lambda: _rwsam_table("rwsam_sweep_cpu"),
    "rwsam_sweep_control": lambda: _control_table("rwsam_sweep_cpu"),
    "rwsam_cpu_verdicts": lambda: _claim_table(
        ("rwsam_cpu", "rwsam_cpu_control"), ("rwsam_sweep_cpu",), ("rwsam_coupled_cpu",), _LENGTH
    ),
    "rwsam_coupled_cpu": lambda: _rwsam_table("rwsam_coupled_cpu"),
    "rwsam_coupled_control": lambda: _control_table("rwsam_coupled_cpu"),
    "rwsam_coupled_vs_keras": lambda: _convention_table(("rwsam_sweep_cpu",), ("rwsam_coupled_cpu",)),
    "rwsam_length_tensorflow": lambda: _rwsam_table(*_LENGTH),
    "rwsam_length_control": lambda: _control_table(*_LENGTH),
    "rwsam_weights_pooled": lambda: _pooled_table(
        [
            ("[rwsam_sweep_cpu](records/rwsam_sweep_cpu/): JAX, Keras' decay, 8 epochs", ("rwsam_sweep_cpu",)),
            ("[rwsam_coupled_cpu](records/rwsam_coupled_cpu/): JAX, coupled decay, 8 epochs", ("rwsam_coupled_cpu",)),
            (
                "[rwsam_length_tensorflow](records/rwsam_length_tensorflow/): TensorFlow, Keras' decay, 8 and 16 epochs",
                _LENGTH,
            ),
        ]
    ),
    "rwsam_radius2_cpu": lambda: _rwsam_table("rwsam_radius2_cpu"),
    "rwsam_radius2_replication": lambda: _replication_table(
        ("rwsam_sweep_cpu", "rwsam_coupled_cpu"), "rwsam_radius2_cpu", 2.0
    ),
    "gpu_campaign": lambda: _campaign("gpu_campaign"),
    "longtail_id_tensorflow": lambda: _longtail_id("longtail_cpu_tensorflow"),
    "longtail_lt_tensorflow": lambda: _longtail_lt("longtail_cpu_tensorflow"),
    "longtail_id_jax": lambda: _longtail_id("longtail_cpu"),
    "longtail_lt_jax": lambda: _longtail_lt("longtail_cpu"),
    "longtail_id_torch": lambda: _longtail_id("longtail_cpu_torch"),
    "longtail_lt_torch": lambda: _longtail_lt("longtail_cpu_torch"),
}

_BLOCK = re.compile(
    r"(<!-- table: (?P<name>[\w]+) \(generated from docs/records by scripts/results_tables\.py; do not edit\) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- end table: (?P=name) -->)",
    re.S,
)


def regenerate(text, blocks=None):
    """`text` with every generated table replaced by its records' table; returns (new text, names of the tables
    that changed). A marker naming an unknown table raises ValueError."""
    blocks = BLOCKS if blocks is None else blocks
    changed = []

    def fill(match):
        name = match.group("name")
        if name not in blocks:
            raise ValueError(f"docs/results.md names table {name!r}; known: {sorted(blocks)}")
        body = blocks[name]().rstrip("\n") + "\n"
        if body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return _BLOCK.sub(fill, text), changed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if a table differs from its records")
    p.add_argument("--print", dest="show", choices=sorted(BLOCKS), help="print one table and stop")
    p.add_argument("--page", default=str(PAGE), help="the page (default docs/results.md)")
    a = p.parse_args(argv)
    if a.show:
        print(BLOCKS[a.show]())
        return 0
    page = Path(a.page)
    text = page.read_text()
    new, changed = regenerate(text)
    if a.check:
        if changed:
            print(f"{page}: tables out of date with their records: {', '.join(changed)}")
            print("run: python scripts/results_tables.py")
            return 1
        print(f"{page}: every generated table matches its records")
        return 0
    if changed:
        page.write_text(new)
    print(f"{page}: regenerated {len(changed)} table(s): {', '.join(changed) or 'none changed'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
