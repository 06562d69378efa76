"""The robustness-gap study (the paper's claim 1): grids of runs, their report (tables, verdicts, Figure 1).

`gap_grid` lists the runs (each method on each long-tailed subset and on its balanced counterpart of the
same n, for every seed); `protocol.run` executes one; `report` turns the records into the paper's tables:
accuracy beside the untrained floor, the gap A(n,1) - A(n,r) and relative gap per method, ID and OOD, a
plain verdict (is the SSL relative gap smaller than the supervised one?) and the Figure 1 plot.
`recipes/robustness_gap.py` and the main job (`recipes/quickstart.py`) are thin CLIs over these.

Example:

>>> specs = gap_grid(["simclr", "supervised"], profiles=["exp"], ratios=[0.01], samplings=[1.0], seeds=[0],
...                  preset="cpu")
>>> [(s.method, s.ratio) for s in specs]
[('simclr', 1.0), ('simclr', 0.01), ('supervised', 1.0), ('supervised', 0.01)]
"""

import math
import os
from pathlib import Path

import numpy as np

from keras_ssl_lt.experiments.aggregate import fmt_mean_std, gap_rows, seed_summary, to_csv, to_markdown
from keras_ssl_lt.experiments.records import RunSpec
from keras_ssl_lt.experiments.report import write_report

__all__ = ["SSL_METHODS", "cost_estimate", "gap_grid", "load_image_data", "report"]

SSL_METHODS = ("simsiam", "simclr", "moco_v2", "byol")
# (metric, panel label) of the gap tables and figure panels.
GAP_METRICS = (
    ("knn_acc", "ID kNN"),
    ("probe_acc", "ID linear probe"),
    ("ood_probe_acc", "OOD linear probe"),
)


def gap_grid(methods, profiles=("exp",), ratios=(0.01,), samplings=(1.0,), seeds=(0,), preset="cpu", dataset="cifar10"):
    """The runs of a gap study: for each method, profile, r < 1, sampling and seed, the long-tailed run and
    its balanced counterpart (ratio 1.0, `extra={"counterpart_of": r}`), so each pair shares n.

    Example:

    >>> len(gap_grid(["simsiam"], ratios=[0.1, 0.01], seeds=[0, 1]))
    8
    """
    ratios = [float(r) for r in ratios]
    if not ratios or any(not 0 < r < 1 for r in ratios):
        raise ValueError(f"`ratios` must be imbalance ratios in (0, 1) (the balanced runs are added); got {ratios}")
    specs = []
    # Seed-major order: a grid cut short holds whole seeds of every setting; each balanced run comes first.
    for seed in seeds:
        for sampling in samplings:
            for profile in profiles:
                for r in ratios:
                    for method in methods:
                        common = dict(
                            method=method,
                            dataset=dataset,
                            profile=profile,
                            sampling=float(sampling),
                            seed=int(seed),
                            preset=preset,
                        )
                        specs.append(RunSpec(ratio=1.0, extra={"counterpart_of": r}, **common))
                        specs.append(RunSpec(ratio=r, **common))
    return list(dict.fromkeys(specs))


def cost_estimate(cfg, n_full=50000):
    """A `cost_fn(spec) -> seconds` for `run_grid`'s dry run and ETA, from the preset's measured `cost` entry
    (None when the config has none, or a method is missing from it).

    `cfg["cost"]` holds seconds per image-epoch per method and seconds per evaluation, as measured on the
    hardware the preset is meant for; runs are estimated as n x epochs x that + evaluation. The n of a spec is
    computed from its subset without touching images (CIFAR-10-sized labels: `n_full` examples, 10 classes).

    Example:

    >>> est = cost_estimate({"epochs": 2, "cost": {"simclr": 0.001, "eval": 10}})
    >>> round(est(RunSpec("simclr", ratio=0.01)))
    35
    """
    from keras_ssl_lt.experiments.evaldata import draw_subset

    labels = np.repeat(np.arange(10), n_full // 10)
    table = dict(cfg.get("cost") or {})
    if not table or any(m not in table for m in cfg.get("methods", {})):
        return None
    cache = {}

    def estimate(spec):
        key = (spec.profile, spec.ratio, spec.sampling, tuple(sorted(dict(spec.extra).items())))
        if key not in cache:
            cache[key] = draw_subset(labels, spec, cfg).n
        epochs = cfg["methods"][spec.method].get("epochs", cfg["epochs"]) if "methods" in cfg else cfg["epochs"]
        return cache[key] * epochs * float(table[spec.method]) + float(table.get("eval", 0.0))

    return estimate


def load_image_data(name="cifar10", data=None, data_dir=None, instead=None):
    """`(train_source, (test_images, test_labels))` of an image dataset: a `.npz` path, else tensorflow-datasets.

    A `.npz` needs `x_train`, `y_train`, `x_test`, `y_test`; without `data`, `name` is read from the
    tensorflow-datasets cache (`data_dir`, default ~/tensorflow_datasets), which must hold it already: nothing
    is downloaded. A dataset missing there raises `SetupError` in one line that names it, the alternative
    `instead` (e.g. the recipe's flag, default "a .npz with x_train/y_train/x_test/y_test") and the command
    that downloads it.
    """
    from keras_ssl_lt import data as ksl_data

    if data is not None:
        if not os.path.isfile(data):
            what = "is a folder" if os.path.isdir(data) else "not found"
            raise ValueError(f"`data` must be a .npz file with x_train/y_train/x_test/y_test; {str(data)!r} {what}")
        train = ksl_data.from_npz(data, split="train")
        test = ksl_data.from_npz(data, split="test")
    else:
        _check_tfds_prepared(name, data_dir, instead or "a .npz with x_train/y_train/x_test/y_test")
        train = ksl_data.from_tfds(name, split="train", data_dir=data_dir)
        test = ksl_data.from_tfds(name, split="test", data_dir=data_dir)
    return train, (test.images(np.arange(len(test))), np.asarray(test.labels))


def _check_tfds_prepared(name, data_dir, instead):
    from keras_ssl_lt.experiments.records import SetupError

    where = data_dir or "~/tensorflow_datasets"
    get = f"tfds.builder({name!r}" + (f", data_dir={str(data_dir)!r}" if data_dir else "") + ").download_and_prepare()"
    fix = f'pass {instead}, or download it once with network access: python -c "import tensorflow_datasets as tfds; {get}"'
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise SetupError(f"dataset {name} needs tensorflow-datasets, which is not installed: {fix}") from None
    try:
        prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception as e:
        first = (str(e).splitlines() or [""])[0]
        raise SetupError(
            f"dataset {name} cannot be read from tensorflow-datasets ({type(e).__name__}: {first}): {fix}"
        ) from None
    if not prepared:
        raise SetupError(f"dataset {name} is not in the tensorflow-datasets cache ({where}): {fix}")


def _extra(spec):
    extra = spec.get("extra") or {}
    return extra.items() if isinstance(extra, dict) else [tuple(kv) for kv in extra]


def _margins(floor_margin):
    if isinstance(floor_margin, dict):
        return ", ".join(f"{k} {100 * float(v):g}" for k, v in floor_margin.items()) + ", others 0"
    return f"{100 * float(floor_margin):g}"


def _pct(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def report(records, out, title="Robustness gap", floor_margin=0.0, stem="results"):
    """Write the study's tables (Markdown + CSV), verdicts and Figure 1 (PNG when matplotlib is installed).

    Returns `(markdown_text, paths, verdicts)`; `verdicts` is a list of dicts, one per (profile, ratio,
    sampling, metric) with SSL and supervised relative gaps in the same n: `"ssl_more_robust"` is True when
    every SSL method's relative gap is below the supervised one's. Every accuracy is printed beside its
    untrained floor; a trained accuracy that does not clear its floor by more than `floor_margin` (a fraction,
    or a dict metric -> fraction, e.g. `{"knn_acc": 0.10}` for 10 points) and by more than twice its seeds'
    spread is flagged.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recs = [r for r in records if r.get("status") == "done"]
    if not recs:
        raise ValueError("no finished records to report")
    metrics = [m for m, _ in GAP_METRICS if all(m in r["metrics"] for r in recs)]
    lines = []
    # 1. accuracy beside the floor, every run group
    has_counterpart = any("counterpart_of" in dict(_extra(r["spec"])) for r in recs)
    by = ("method", "profile", "ratio") + (("counterpart_of",) if has_counterpart else ()) + ("sampling", "preset")
    rows = seed_summary(recs, metrics, by=by)
    cols, heads = ["method", "profile", "ratio", "n", "n_seeds"], ["method", "profile", "r", "n", "seeds"]
    if has_counterpart:
        cols.insert(3, "counterpart_of")
        heads.insert(3, "balanced counterpart of r")
    flags = []
    for m in metrics:
        cols += [f"{m}_cell", f"floor_{m}_cell"]
        heads += [f"{m} (%)", "floor (%)"]
        for row in rows:
            row[f"{m}_cell"] = fmt_mean_std(row[f"{m}_mean"], row[f"{m}_std"])
            row[f"floor_{m}_cell"] = fmt_mean_std(row.get(f"floor_{m}_mean"), row.get(f"floor_{m}_std"))
            diff = row.get(f"{m}_minus_floor_mean")
            margin = float(floor_margin.get(m, 0.0)) if isinstance(floor_margin, dict) else float(floor_margin)
            if diff is not None and (not row[f"{m}_clears_floor"] or diff <= margin):
                row[f"{m}_cell"] += " ⚠"
                flags.append(
                    f"{row['method']} r={row['ratio']:g} (n={row.get('n', 0):.0f}): {m} "
                    f"{_pct(row[f'{m}_mean'])}% does not clear its floor {_pct(row[f'floor_{m}_mean'])}% "
                    f"by more than {100 * margin:g} points and twice the seeds' spread"
                )
    lines += [
        "## Accuracy beside the untrained floor",
        "",
        "Mean ± std over seeds (%). The floor is the same architecture's untrained encoder, same seed, "
        "evaluated the same way. ⚠ marks a result that does not clear its floor.",
        "",
        to_markdown(rows, cols, headers=heads, percent=False),
        "",
    ]
    if flags:
        lines += ["**Not findings** (below or too close to the floor):", ""] + [f"- {f}" for f in flags] + [""]
    else:
        lines += [
            "Every pre-trained encoder clears its floor by more than twice the seeds' spread and by more than "
            f"the required margin (points: {_margins(floor_margin)}).",
            "",
        ]
    # 2. gaps per metric, per ratio (each r pairs with its own balanced counterpart)
    all_gaps, verdicts = {}, []
    for m, label in [(m, lab) for m, lab in GAP_METRICS if m in metrics]:
        gaps = gap_rows(recs, m, by=("method", "profile", "sampling", "preset"))
        if not gaps:
            continue
        all_gaps[label] = gaps
        for g in gaps:
            g["balanced_cell"] = fmt_mean_std(g["balanced_mean"], g["balanced_std"])
            g["imbalanced_cell"] = fmt_mean_std(g["imbalanced_mean"], g["imbalanced_std"])
            g["gap_cell"] = fmt_mean_std(g["gap_mean"], g["gap_std"])
            g["rel_gap_cell"] = fmt_mean_std(g["rel_gap_mean"], g["rel_gap_std"])
            g["floor_cell"] = _pct(g.get("balanced_floor_mean"))
        lines += [
            f"## Gap, {label} ({m})",
            "",
            "A(n,1): balanced counterpart; A(n,r): long-tailed; gap and relative gap paired by seed.",
            "",
            to_markdown(
                gaps,
                [
                    "method",
                    "profile",
                    "ratio",
                    "sampling",
                    "n",
                    "n_seeds",
                    "balanced_cell",
                    "imbalanced_cell",
                    "gap_cell",
                    "rel_gap_cell",
                    "floor_cell",
                ],
                headers=[
                    "method",
                    "profile",
                    "r",
                    "sampling",
                    "n",
                    "seeds",
                    "A(n,1) (%)",
                    "A(n,r) (%)",
                    "gap (points)",
                    "relative gap (%)",
                    "floor (%)",
                ],
                percent=False,
            ),
            "",
        ]
        to_csv(gaps, out / f"{stem}_gap_{m}.csv")
        for key in sorted({(g["profile"], g["ratio"], g["sampling"]) for g in gaps}):
            same = [g for g in gaps if (g["profile"], g["ratio"], g["sampling"]) == key]
            ssl = {g["method"]: g for g in same if g["method"] in SSL_METHODS}
            sup = [g for g in same if g["method"] == "supervised"]
            if not ssl or not sup:
                continue
            sup = sup[0]
            v = {
                "metric": m,
                "label": label,
                "profile": key[0],
                "ratio": key[1],
                "sampling": key[2],
                "n": sup["n"],
                "supervised": sup["rel_gap_mean"],
                "supervised_std": sup["rel_gap_std"],
                "ssl": {k: g["rel_gap_mean"] for k, g in ssl.items()},
                "ssl_std": {k: g["rel_gap_std"] for k, g in ssl.items()},
            }
            v["n_seeds"] = min(g["n_seeds"] for g in same)
            v["ssl_more_robust"] = all(x < v["supervised"] for x in v["ssl"].values())
            # "clear": the difference exceeds the summed spreads over seeds (a conservative separation).
            v["clear"] = all(v["supervised"] - x > v["supervised_std"] + v["ssl_std"][k] for k, x in v["ssl"].items())
            verdicts.append(v)
    if verdicts:
        lines += ["## Verdict: is SSL more robust to imbalance than supervised pre-training?", ""]
        for v in verdicts:
            ssl_txt = ", ".join(f"{k} {100 * x:.2f} ± {100 * v['ssl_std'][k]:.2f}%" for k, x in v["ssl"].items())
            word = "yes" if v["ssl_more_robust"] else "NO"
            if v["n_seeds"] < 2:
                word += " (one seed: the spread is unknown)"
            elif v["ssl_more_robust"] and not v["clear"]:
                word += " (within the seeds' spread)"
            lines.append(
                f"- {v['label']}, {v['profile']} r={v['ratio']:g}, n={v['n']:.0f}: relative gap SSL "
                f"{ssl_txt} vs supervised {100 * v['supervised']:.2f} ± {100 * v['supervised_std']:.2f}% "
                f"→ {word}"
            )
        lines.append("")

    def draw(path, caption):
        from keras_ssl_lt.experiments.figures import plot_relative_gap

        return plot_relative_gap(all_gaps, path, title=title, caption=caption)

    figure = (f"{stem}_relative_gap.png", "relative gap against n", draw) if all_gaps else None
    tables = {"accuracy_csv": (rows, f"{stem}_accuracy.csv")}
    text, paths = write_report(out, stem, title, recs, lines, tables=tables, figure=figure)
    return text, paths, verdicts
