"""The paper's theory toy model, simulated: supervised features lose e2, SSL features keep it.

Data (PAPER.md, "Theory toy model"): e1, e2 orthogonal in R^d, q ~ Bernoulli(1/2); frequent classes
x = +-e1 - q*tau*e2 + rho*xi, a rare class x = e2 + rho*xi with a vanishing share. Two learners, both trained
with `model.fit` (`keras_ssl_lt.theory`): a two-layer linear network f = W2 W1 x by full-batch gradient descent
on cross-entropy from a small initialisation (feature W1), and a linear map W trained on the SSL objective
-E[(W(x+xi))^T (W(x+xi'))] + 1/2 ||W^T W||_F^2 with fresh positive-pair noise. For each setting it measures the
alignment of the learned features with e1, e2 (and, as a control, with the noise directions e3..ed), and the
accuracy of linear probes (bias-free, the theorem's linear head, and affine) trained on fresh balanced
samples, on the rare class and on the frequent classes; the SSL map is checked against its closed form.

Sweeps, one knob at a time around the defaults (d=16, tau=1, rho=0.3, rare share 0, n=2000, 2 features):
the noise rho, the rare share (0 = the theorem's limit) and the dimension d.

    python recipes/toy_theory.py                      # cpu preset: the full sweep, 3 seeds, a few minutes
    python recipes/toy_theory.py --preset smoke       # seconds (the test suite runs it)

Writes `<out>/records/*.json` (one per seed and setting, resumable), `table.md`, `table.csv` and
`toy_theory.png`.
"""

import argparse
import sys
import time
from pathlib import Path

from keras_ssl_lt.experiments import grids

PRESETS = grids.TOY_THEORY  # keras_ssl_lt.experiments.grids

MODELS = (("sup", "supervised"), ("ssl", "SSL"), ("random", "untrained"))
TABLE_METRICS = [
    "sup_align_e1",
    "sup_align_e2",
    "sup_align_noise",
    "ssl_align_e1",
    "ssl_align_e2",
    "ssl_align_noise",
    "random_align_e2",
    "ssl_cf_align_e2",
    "ssl_cf_rel_error",
    "sup_probe_rare",
    "ssl_probe_rare",
    "random_probe_rare",
    "sup_probe_frequent",
    "ssl_probe_frequent",
    "sup_probe_affine_rare",
    "ssl_probe_affine_rare",
    "random_probe_affine_rare",
]


def parse_args(argv=None):
    from keras_ssl_lt.experiments.cli import add_common_args

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, presets=PRESETS, default_out="results/toy_theory", default_seeds="3")
    p.add_argument("--sweeps", default=None, help="comma list of knobs to sweep (default: the preset's)")
    return p.parse_args(argv)


def make_specs(preset, seeds, sweeps=None):
    """One `RunSpec` per (knob, value, seed); the knob's value and the base settings go in `extra`."""
    from keras_ssl_lt.experiments import RunSpec

    cfg = PRESETS[preset]
    names = list(cfg["sweeps"]) if sweeps is None else sweeps
    unknown = [s for s in names if s not in cfg["sweeps"]]
    if unknown:
        raise ValueError(f"`--sweeps` must name knobs of preset {preset!r}: {list(cfg['sweeps'])}; got {unknown}")
    specs = []
    for knob in names:
        for value in cfg["sweeps"][knob]:
            for seed in seeds:
                extra = {**cfg["base"], "sweep": knob, knob: value}
                specs.append(
                    RunSpec(
                        "toy", dataset="toy_theory", profile="toy", ratio=1.0, seed=seed, preset=preset, extra=extra
                    )
                )
    return specs


def identity():
    """What determines a run's result besides its spec (which holds the swept and base settings): the toy
    model's defaults and the package version (`run_grid(identity=...)`)."""
    from keras_ssl_lt import __version__
    from keras_ssl_lt.theory.simulation import DEFAULTS

    return {"defaults": dict(DEFAULTS), "keras_ssl_lt": __version__}


def run_fn(spec):
    from keras_ssl_lt.theory import run_toy
    from keras_ssl_lt.theory.simulation import DEFAULTS

    settings = {k: v for k, v in spec.extra if k in DEFAULTS}
    t0 = time.perf_counter()
    metrics = run_toy(seed=spec.seed, **settings)
    return {"metrics": metrics, "config": {**DEFAULTS, **settings}, "timings": {"seconds": time.perf_counter() - t0}}


def summarise(records):
    """Rows per (sweep, value): mean ± std over seeds of every table metric."""
    from keras_ssl_lt.experiments import seed_summary

    rows = []
    for knob in dict.fromkeys(dict(r["spec"]["extra"])["sweep"] for r in records):
        recs = [r for r in records if r["spec"]["extra"]["sweep"] == knob]
        for row in seed_summary(recs, TABLE_METRICS, by=("sweep", knob)):
            row["value"] = row[knob]
            rows.append(row)
    return rows


def write_table(rows, out):
    from keras_ssl_lt.experiments import to_csv, to_markdown

    cols = [
        "sweep",
        "value",
        "n_seeds",
        "sup_align_e1",
        "sup_align_e2",
        "sup_align_noise",
        "ssl_align_e1",
        "ssl_align_e2",
        "ssl_cf_align_e2",
        "ssl_cf_rel_error",
        "sup_probe_rare",
        "ssl_probe_rare",
        "random_probe_rare",
        "sup_probe_frequent",
        "ssl_probe_frequent",
        "sup_probe_affine_rare",
        "ssl_probe_affine_rare",
    ]
    headers = [
        "knob",
        "value",
        "seeds",
        "sup e1",
        "sup e2",
        "sup noise",
        "SSL e1",
        "SSL e2",
        "SSL e2 (closed form)",
        "SSL vs closed form (rel. err.)",
        "probe rare: sup (%)",
        "probe rare: SSL (%)",
        "probe rare: untrained (%)",
        "probe frequent: sup (%)",
        "probe frequent: SSL (%)",
        "affine probe rare: sup (%)",
        "affine probe rare: SSL (%)",
    ]
    percent = [c for c in cols if "probe" in c]
    text = to_markdown(rows, cols, headers=headers, percent=percent, digits=None)
    (out / "table.md").write_text(text + "\n")
    to_csv(rows, out / "table.csv")
    return text


def plot(rows, path, caption):
    """Alignment with e2 and rare-class probe accuracy against each swept knob (mean ± std over seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    knobs = list(dict.fromkeys(r["sweep"] for r in rows))
    fig = Figure(figsize=(3.6 * len(knobs), 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(knobs), squeeze=False)
    for j, knob in enumerate(knobs):
        rs = sorted((r for r in rows if r["sweep"] == knob), key=lambda r: r["value"])
        xs = list(range(len(rs)))
        for i, (metric, ylabel) in enumerate(
            (("align_e2", "alignment with e2"), ("probe_rare", "rare-class probe accuracy (%)"))
        ):
            ax = axes[i][j]
            scale = 100.0 if i else 1.0
            for key, label in MODELS:
                m = f"{key}_{metric}"
                ax.errorbar(
                    xs,
                    [scale * r[f"{m}_mean"] for r in rs],
                    yerr=[scale * r[f"{m}_std"] for r in rs],
                    marker="o",
                    capsize=3,
                    label=label,
                )
            if i == 0:
                ax.plot(xs, [r["ssl_cf_align_e2_mean"] for r in rs], "k--", lw=1, label="SSL closed form")
            ax.set_xticks(xs, [f"{r['value']:g}" for r in rs])
            ax.set_xlabel(knob)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Theory toy model: features and rare-class linear probe", fontsize=10)
    fig.text(0.01, 0.0, caption, fontsize=6, color="0.3")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_ssl_lt.experiments import provenance, run_grid
    from keras_ssl_lt.experiments.cli import print_outputs

    t0 = time.time()
    out = Path(args.out)
    sweeps = None if args.sweeps is None else [s.strip() for s in args.sweeps.split(",") if s.strip()]
    specs = make_specs(args.preset, args.seeds, sweeps)
    print(f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {out}/", flush=True)
    ident = identity()
    if args.dry_run:
        return run_grid(specs, run_fn, out / "records", dry_run=True, cost_fn=lambda s: 5.0, identity=ident)
    records = run_grid(specs, run_fn, out / "records", cost_fn=lambda s: 5.0, identity=ident)
    rows = summarise(records)
    text = write_table(rows, out)
    caption = provenance(records)["caption"]
    print("\n" + text + "\n\n" + caption)
    outputs = {"table": out / "table.md", "csv": out / "table.csv"}
    try:
        outputs["figure"] = plot(rows, out / "toy_theory.png", caption)
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)", file=sys.stderr)
    print(f"total time {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in outputs.items()})
    return rows


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    run_cli(main)
