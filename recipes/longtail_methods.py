"""The field's long-tailed SSL methods under one protocol: SimCLR, TS, SDCLR, BCL, SimSiam and SimSiam + rwSAM.

Each arm pre-trains on a split of the community CIFAR-LT protocol (`keras_ssl_lt.data.community_split`: 500
(CIFAR-10) or 50 (CIFAR-100) images per class held out, then exponential r = 0.01 from the rest: n = 11,165 or
9,754; seed k uses "split{k+1}"), then is evaluated beside the untrained encoder's floor with both probe
protocols, named plainly in the tables:

- the **ID probe on a balanced set** (the package's protocol): kNN and a linear probe on a class-balanced bank of
  the training set, full-shot and k-shot (100 and 50 per class, several draws), tested on the test set;
- the **TS / SDCLR-style probe**: a linear probe trained on the long-tailed split itself ("LT") and on its
  balanced few-shot sample (the rarest class's count per class, "FS"), tested on the test set;

each overall and per group of the long-tailed split (many / medium / few: thirds of the classes by count, as
SDCLR's analysis), with the balancedness (the std of the three group accuracies, SDCLR's "GroupBalanceness").
The last epoch's RankMe (effective rank of the embeddings) is in every row. Resumable records, tables, a figure.

    python recipes/longtail_methods.py --preset cpu --data ../shared/data/cifar10.npz --seeds 3
    python recipes/longtail_methods.py --preset cpu --dataset cifar100 --data cifar100.npz --seeds 3
    KERAS_BACKEND=jax python recipes/longtail_methods.py --preset gpu --dataset cifar100   # one GPU

`--arms` picks arms (simclr, ts, sdclr, bcl, simsiam, simsiam_rwsam by default; bcl_d, BCL on SDCLR, on
request), `--balanced` adds each arm on the balanced counterpart of the split (same n), `--epochs` overrides the
preset's. The backend comes from KERAS_BACKEND.
"""

import argparse
import time

from keras_ssl_lt.experiments import grids, study

GRIDS = grids.LONGTAIL  # keras_ssl_lt.experiments.grids
ARMS = grids.LONGTAIL_ARMS
DATASETS = ("cifar10", "cifar100")
# The columns of the tables, in order (accuracies as fractions; the report shows %).
ID_METRICS = (
    "knn_acc",
    "probe_acc",
    "probe_acc_many",
    "probe_acc_medium",
    "probe_acc_few",
    "probe_balancedness",
    "probe_kshot100_acc",
    "probe_kshot50_acc",
)
LT_METRICS = ("lt_probe_acc", "lt_probe_acc_few", "lt_probe_balancedness", "lt_fewshot_acc", "lt_fewshot_acc_few")


def longtail_config(preset, dataset="cifar10", epochs=None):
    """The protocol config of `preset` for `dataset`, with the long-tail methods and evaluation added
    (`keras_ssl_lt.experiments.grids.longtail_config`), and `epochs` when given (TS's period follows it)."""
    return grids.longtail_config(preset, dataset, epochs=epochs)


def grid_specs(arms, seeds, preset, dataset, balanced=False, ratio=0.01):
    """One run per arm and seed on the community split `seed + 1` (and on its balanced counterpart)."""
    from keras_ssl_lt.experiments import RunSpec

    specs = []
    for seed in seeds:
        for arm in arms:
            method, sharpness = ARMS[arm]
            extra = dict(arm=arm, sharpness=sharpness, split=int(seed) + 1)
            common = dict(method=method, dataset=dataset, profile="community", seed=seed, preset=preset)
            specs.append(RunSpec(ratio=ratio, extra=extra, **common))
            if balanced:
                specs.append(RunSpec(ratio=1.0, extra=dict(extra, counterpart_of=ratio), **common))
    return specs


def split_hooks(dataset, **split_kwargs):
    """`protocol.run`'s hooks: each run's subset is its community split (cached per split number)."""
    from keras_ssl_lt.data import community_split

    def hooks(data):
        cache = {}

        def subset(spec, cfg):
            k = int(dict(spec.extra)["split"])
            if k not in cache:
                cache[k] = community_split(data.source.labels, dataset, split=k, **split_kwargs)
            return cache[k].train if spec.ratio < 1 else cache[k].balanced

        return {"subset": subset}

    return hooks


def _is_kshot(key):
    return key.startswith("probe_kshot") and key.endswith("_acc") and key[len("probe_kshot") : -len("_acc")].isdigit()


def report(records, out):
    from keras_ssl_lt.experiments.aggregate import metric_cells, seed_summary, to_markdown
    from keras_ssl_lt.experiments.report import write_report

    recs = [r for r in records if r.get("status") == "done"]
    for r in recs:  # the last epoch's RankMe, from the history (a training log, not an evaluation)
        if r.get("history", {}).get("rankme"):
            r["metrics"]["rankme"] = float(r["history"]["rankme"][-1])
    by = ("dataset", "ratio", "arm")
    lines = [
        "Mean ± std over seeds (splits); accuracies in %, the untrained encoder's floor in brackets. Groups are "
        "those of the long-tailed split (thirds of the classes by count); balancedness = std of the three group "
        "accuracies (lower is more balanced). r = 1 rows are the balanced counterpart (same n).",
        "",
    ]
    tables = {}
    shots = sorted(
        {int(k[len("probe_kshot") : -len("_acc")]) for r in recs for k in r["metrics"] if _is_kshot(k)}, reverse=True
    )
    id_metrics = (*ID_METRICS, *[f"probe_kshot{k}_acc" for k in shots if f"probe_kshot{k}_acc" not in ID_METRICS])
    for title, metrics in (
        ("ID probe on a balanced set (kNN, full-shot and k-shot linear probes)", (*id_metrics, "rankme")),
        ("TS / SDCLR-style probe (trained on the long-tailed split: LT; on its few-shot sample: FS)", LT_METRICS),
    ):
        present = [m for m in metrics if recs and all(m in r["metrics"] for r in recs)]
        if not present:
            continue
        rows = seed_summary(recs, present, by=by)
        order = {a: i for i, a in enumerate(ARMS)}
        rows.sort(key=lambda row: (row["dataset"], -row["ratio"], order.get(row["arm"], 99)))
        pct = lambda m: not (m.endswith("balancedness") or m == "rankme")  # noqa: E731
        cols = ["dataset", "ratio", "arm", "n", "n_seeds", *metric_cells(rows, present, percent=pct)]
        heads = ["dataset", "r", "arm", "n", "seeds", *[m + ("" if not pct(m) else " (%)") for m in present]]
        lines += [f"### {title}", "", to_markdown(rows, cols, headers=heads, percent=False), ""]
        tables["csv_id" if title.startswith("ID") else "csv_lt"] = (
            rows,
            "longtail_id.csv" if title.startswith("ID") else "longtail_lt.csv",
        )

    def draw(path, caption):
        from keras_ssl_lt.experiments.figures import plot_bars

        rows = seed_summary(recs, ["probe_acc_few"], by=by)
        for row in rows:
            row["data"] = row["dataset"].removeprefix("npz:") + (" balanced" if row["ratio"] == 1 else "")
        fields = ["arm"] + (["data"] if len({row["data"] for row in rows}) > 1 else [])
        title = "ID linear probe on the few-shot classes"
        return plot_bars(rows, "probe_acc_few", path, label_fields=fields, title=title, caption=caption, floor=True)

    figure = ("longtail_few.png", "linear probe on the few-shot classes", draw) if recs else None
    return write_report(out, "longtail", "Long-tailed SSL methods", recs, lines, tables=tables, figure=figure)


def main(argv=None):
    import keras

    from keras_ssl_lt.experiments.cli import choice_list, print_outputs

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_args(p, presets=GRIDS, default_out="results/longtail_methods", default_seeds="3")
    p.add_argument("--dataset", choices=DATASETS, default="cifar10", help="the community split's dataset")
    p.add_argument("--arms", type=choice_list(tuple(ARMS)), help=f"comma list of {', '.join(ARMS)}")
    p.add_argument("--balanced", action="store_true", help="also pre-train each arm on the balanced counterpart")
    args = p.parse_args(argv)
    if args.ood_data is not None:
        p.error("argument --ood-data: this recipe evaluates in-domain only (the community protocol); drop it")
    args.no_ood = True
    t0 = time.time()
    grid = dict(GRIDS[args.preset])
    cfg = longtail_config(args.preset, args.dataset, args.epochs)
    specs = grid_specs(
        args.arms or grid["arms"],
        args.seeds,
        args.preset,
        study.dataset_name(args, default=args.dataset),
        balanced=args.balanced or grid["balanced"],
        ratio=grid["split"].get("ratio", 0.01),
    )
    print(f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {args.out}/")
    hooks = split_hooks(args.dataset, **grid["split"])
    # Each record's identity holds its own method's settings only: a change to one arm leaves the others valid.
    records = study.run_protocol_grid(
        args, specs, cfg, None, dataset=args.dataset, hooks=hooks, per_method_identity=True
    )
    if records is None:
        return []
    text, paths = report(records, args.out)
    print("\n" + text)
    print(f"total time of this invocation: {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in paths.items()})
    return records


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    run_cli(main)
