"""The method claim: rwSAM (re-weighted sharpness-aware minimisation) on long-tailed CIFAR-10.

An SSL method (SimSiam by default; the CPU preset uses SimCLR, the method it pre-trains) is pre-trained on
CIFAR-10-LT (exponential and step, r = 0.01) plainly, with SAM, with ASAM at the rwSAM radius and no weights,
and with rwSAM (ASAM radius 7 as the authors' code; class-rank weights 1.2^rank as their code, and inverse-KDE
weights refreshed by `KDEReweighting` as the paper describes); the same method on the balanced counterpart of
the same n is the reference. Reports ID accuracy per class group (many / medium / few) beside the floor, and the
rare-class generalisation gap (held-out minus training pre-training loss), over seeds; a table and a figure.

    python recipes/rwsam.py --preset cpu --data ../shared/data/cifar10.npz --no-ood --seeds 3
    python recipes/rwsam.py --preset paper                                    # SimSiam, ResNet-18, GPU

Resumable (finished runs in --out are skipped); `--variants` and `--profiles` override the grid, and
`--no-counterpart` leaves out the balanced reference (more seeds of a control need only its two arms). The radius
study (issue 21): `--rhos 0.05,0.5,2,7 --sam-rhos 0.02,0.05,0.1 --conventions keras,coupled` sweeps the ASAM /
rwSAM radius, the SAM radius and the weight-decay convention (each value a key of the run's spec and a table
column).
"""

import argparse
import time

from keras_ssl_lt.experiments import grids, study

VARIANTS = grids.RWSAM_VARIANTS
GRIDS = grids.RWSAM  # keras_ssl_lt.experiments.grids
METRICS = (
    "knn_acc",
    "knn_acc_many",
    "knn_acc_medium",
    "knn_acc_few",
    "probe_acc",
    "probe_acc_few",
    "gen_gap",
    "gen_gap_many",
    "gen_gap_few",
)


# The spec keys of a sweep (protocol.run applies "cfg.a.b" keys as config overrides).
RHO, SAM_RHO, CONVENTION = "cfg.sharpness.rho", "cfg.sharpness.sam_rho", "cfg.optimizer.weight_decay_convention"


def grid_specs(grid, seeds, preset, dataset, rhos=None, sam_rhos=None, conventions=None, counterpart=True):
    """The runs: per profile and seed the balanced reference (unless `counterpart` is False) and each variant; with
    `rhos` (ASAM / rwSAM radii), `sam_rhos` (SAM radii) or `conventions` (weight-decay conventions) a sweep over
    them (keys in each spec)."""
    from keras_ssl_lt.experiments import RunSpec

    specs = []
    for profile in grid["profiles"]:
        for seed in seeds:
            common_fields = dict(method=grid["method"], dataset=dataset, profile=profile, seed=seed, preset=preset)
            for conv in conventions or [None]:
                base = {} if conv is None else {CONVENTION: conv}
                if counterpart:
                    specs.append(
                        RunSpec(
                            ratio=1.0,
                            extra=dict(base, counterpart_of=grid["ratio"], sharpness="none"),
                            **common_fields,
                        )
                    )
                for v in grid["variants"]:
                    if v == "none":
                        radii = [{}]
                    elif v == "sam":
                        radii = [{}] if sam_rhos is None else [{SAM_RHO: r} for r in sam_rhos]
                    else:
                        radii = [{}] if rhos is None else [{RHO: r} for r in rhos]
                    for radius in radii:
                        extra = dict(base, sharpness=v, **radius)
                        specs.append(RunSpec(ratio=grid["ratio"], extra=extra, **common_fields))
    return specs


def _where(row):
    """The row's profile and sweep settings, e.g. "exp, rho 0.5" (SAM's radius, the decay convention)."""
    names = ((RHO, "rho"), (SAM_RHO, "SAM rho"), (CONVENTION, "decay"))
    return ", ".join(
        [
            row["profile"],
            *(
                f"{name} {row[k]:g}" if not isinstance(row[k], str) else f"{name} {row[k]}"
                for k, name in names
                if row.get(k) is not None
            ),
        ]
    )


def _verdict(statement, diff, spread, *seeds):
    """`statement`, qualified: no verdict from one seed, and "within the seeds' spread" when |diff| <= spread."""
    if min(seeds) < 2:
        return f"{statement}? (one seed: no verdict)"
    return statement if abs(diff) > spread else f"{statement} (within the seeds' spread)"


def control_lines(rows, metrics):
    """The weighted-vs-unweighted control: each rwSAM row against unweighted ASAM at the same radius (and
    profile, weight-decay convention), the difference beside the sum of the two rows' seed spreads."""
    lines = []
    same = ("profile", "ratio", CONVENTION, RHO)
    controls = {tuple(r.get(k) for k in same): r for r in rows if r["sharpness"] == "asam"}
    for r in rows:
        if not r["sharpness"].startswith("rwsam"):
            continue
        c = controls.get(tuple(r.get(k) for k in same))
        if c is None:
            continue
        for m in ("knn_acc", "knn_acc_few", "gen_gap_few"):
            if m not in metrics:
                continue
            d = r[f"{m}_mean"] - c[f"{m}_mean"]
            spread = r[f"{m}_std"] + c[f"{m}_std"]
            better = d < 0 if m.startswith("gen_gap") else d > 0
            unit, scale = ("", 1.0) if m.startswith("gen_gap") else (" points", 100.0)
            verdict = _verdict(
                "the weights help" if better else "the weights do not help", d, spread, r["n_seeds"], c["n_seeds"]
            )
            lines.append(f"- {_where(r)}: {r['sharpness']} vs unweighted ASAM, {m}: {scale * d:+.2f}{unit} → {verdict}")
    return lines


def report(records, out):
    from keras_ssl_lt.experiments.aggregate import metric_cells, seed_summary, to_markdown
    from keras_ssl_lt.experiments.report import write_report

    recs = [r for r in records if r.get("status") == "done"]
    metrics = [m for m in METRICS if all(m in r["metrics"] for r in recs)]
    sweep = [k for k in (CONVENTION, RHO, SAM_RHO) if any(k in r["spec"].get("extra", {}) for r in recs)]
    by = ("method", "profile", "ratio", "sharpness", *sweep)
    rows = seed_summary(recs, metrics, by=by)
    names = {CONVENTION: "weight decay", RHO: "rho", SAM_RHO: "SAM rho"}
    cols, heads = (
        ["method", "profile", "ratio", "sharpness", *sweep, "n", "n_seeds"],
        ["method", "profile", "r", "regulariser", *[names[k] for k in sweep], "n", "seeds"],
    )
    cols += metric_cells(rows, metrics, percent=lambda m: not m.startswith("gen_gap"))
    heads += [m + (" (loss)" if m.startswith("gen_gap") else " (%)") for m in metrics]
    lines = [
        "Mean ± std over seeds; accuracies in %, the untrained floor in brackets; gen_gap = held-out minus "
        "training pre-training loss (smaller is better). r = 1 is the balanced counterpart (same n).",
        "",
        to_markdown(rows, cols, headers=heads, percent=False),
        "",
    ]
    # Plain statements: does each regulariser beat the plain run, per profile, beyond the seeds' spread?
    for profile in sorted({r["profile"] for r in rows}):
        base = [r for r in rows if r["profile"] == profile and r["ratio"] < 1 and r["sharpness"] == "none"]
        if not base:
            continue
        base = base[0]
        for r in rows:
            if r["profile"] != profile or r["ratio"] == 1.0 or r["sharpness"] == "none":
                continue
            for m in ("knn_acc", "knn_acc_few", "gen_gap_few"):
                if m not in metrics:
                    continue
                d = r[f"{m}_mean"] - base[f"{m}_mean"]
                spread = r[f"{m}_std"] + base[f"{m}_std"]
                better = d < 0 if m.startswith("gen_gap") else d > 0
                unit, scale = ("", 1.0) if m.startswith("gen_gap") else (" points", 100.0)
                verdict = _verdict(
                    "improves" if better else "does not improve", d, spread, r["n_seeds"], base["n_seeds"]
                )
                lines.append(f"- {_where(r)}: {r['sharpness']} vs plain, {m}: {scale * d:+.2f}{unit} → {verdict}")
    lines += control_lines(rows, metrics)
    lines.append("")

    def draw(path, caption):
        from keras_ssl_lt.experiments.figures import plot_bars

        for row in rows:  # one tick line per setting that varies: the regulariser, then the sweep's values
            row["r"], row["reg"] = f"{row['ratio']:g}", row["sharpness"]
            for key, name in ((RHO, "rho"), (SAM_RHO, "sam_rho"), (CONVENTION, "decay")):
                row[name] = (
                    "" if row.get(key) is None else f"{row[key]:g}" if not isinstance(row[key], str) else row[key]
                )
        fields = [f for f in ("reg", "r", "rho", "sam_rho", "decay") if len({row[f] for row in rows}) > 1]
        metric = "knn_acc_few" if "knn_acc_few" in metrics else "knn_acc"
        title = "rwSAM: kNN accuracy on the few-shot classes"
        return plot_bars(rows, metric, path, label_fields=fields, title=title, caption=caption, floor=True)

    return write_report(
        out,
        "rwsam",
        "rwSAM on long-tailed CIFAR-10",
        recs,
        lines,
        tables={"csv": (rows, "rwsam.csv")},
        figure=("rwsam_few.png", "kNN accuracy on the few-shot classes", draw),
    )


def main(argv=None):
    import keras

    from keras_ssl_lt.experiments.cli import choice_list, positive_float_list, print_outputs
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.experiments.robustness import cost_estimate
    from keras_ssl_lt.optimizers import CONVENTIONS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_args(p, presets=GRIDS, default_out="results/rwsam", default_seeds="3")
    p.add_argument("--variants", type=choice_list(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--profiles", type=choice_list(("exp", "step", "pareto")), help="comma list of exp, step, pareto")
    p.add_argument("--rhos", type=positive_float_list, help="sweep: ASAM / rwSAM radii, e.g. 0.05,0.5,2,7")
    p.add_argument("--sam-rhos", type=positive_float_list, help="sweep: SAM radii, e.g. 0.02,0.05,0.1")
    p.add_argument(
        "--conventions", type=choice_list(CONVENTIONS), help="sweep: weight-decay conventions, e.g. keras,coupled"
    )
    p.add_argument(
        "--no-counterpart",
        action="store_true",
        help="skip the balanced-counterpart runs (e.g. more seeds of a weighted-vs-unweighted control)",
    )
    args = p.parse_args(argv)
    t0 = time.time()
    grid = dict(GRIDS[args.preset])
    if args.variants:
        grid["variants"] = args.variants
    if args.profiles:
        grid["profiles"] = args.profiles
    cfg = get_preset(args.preset)
    cfg["eval"]["generalization_gap"] = True
    if args.epochs is not None:
        cfg["epochs"] = int(args.epochs)
    specs = grid_specs(
        grid,
        args.seeds,
        args.preset,
        study.dataset_name(args),
        rhos=args.rhos,
        sam_rhos=args.sam_rhos,
        conventions=args.conventions,
        counterpart=not args.no_counterpart,
    )
    base_cost = cost_estimate(cfg)

    def sam_cost(spec):  # a SAM step is two passes
        return base_cost(spec) * (2.0 if dict(spec.extra).get("sharpness", "none") != "none" else 1.0)

    cost = None if base_cost is None else sam_cost

    print(f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {args.out}/")
    records = study.run_protocol_grid(args, specs, cfg, cost)
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
