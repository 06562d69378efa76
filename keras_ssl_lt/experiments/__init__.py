"""Experiments: run specs and records, a resumable grid runner, aggregation over seeds, tables and figures.

A run is a `RunSpec` (method, dataset, profile, ratio, sampling, seed, preset, extra); `run_grid` calls a
recipe's `run_fn(spec)` for each spec not yet done and writes one JSON record per run (atomically, with the
environment and timings); `seed_summary` and `gap_rows` turn records into mean ± std rows and the paper's
gaps; `to_markdown` / `to_csv` write tables; `figures` draws the paper's Figure 1 (matplotlib, optional and
imported only when a figure is drawn); `cli` holds the command-line convention of every recipe.
See docs/experiments.md.

Example:

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> specs = [RunSpec("simsiam", ratio=r, seed=s) for r in (1.0, 0.01) for s in (0, 1)]
>>> def run_fn(spec):  # a recipe would pre-train and evaluate here
...     return {"metrics": {"acc": 0.6 - 0.1 * (spec.ratio < 1) + 0.01 * spec.seed}, "n": 1000}
>>> records = run_grid(specs, run_fn, out, verbose=0)
>>> row, = gap_rows(records, "acc")
>>> round(row["gap_mean"], 4), row["n_seeds"]
(0.1, 2)
"""

from keras_ssl_lt.experiments import cli, figures
from keras_ssl_lt.experiments.aggregate import (
    DEFAULT_BY,
    GAP_BY,
    floor_flags,
    fmt_mean_std,
    gap_rows,
    provenance,
    seed_summary,
    select,
    to_csv,
    to_markdown,
)
from keras_ssl_lt.experiments.cli import add_common_args, parse_seeds, print_outputs
from keras_ssl_lt.experiments.figures import plot_bars, plot_relative_gap
from keras_ssl_lt.experiments.records import (
    RunSpec,
    environment,
    read_record,
    read_records,
    record_path,
    to_jsonable,
    write_record,
)
from keras_ssl_lt.experiments.runner import format_duration, run_grid

__all__ = [
    "DEFAULT_BY",
    "GAP_BY",
    "RunSpec",
    "add_common_args",
    "cli",
    "environment",
    "figures",
    "floor_flags",
    "fmt_mean_std",
    "format_duration",
    "gap_rows",
    "parse_seeds",
    "plot_bars",
    "plot_relative_gap",
    "print_outputs",
    "provenance",
    "read_record",
    "read_records",
    "record_path",
    "run_grid",
    "seed_summary",
    "select",
    "to_csv",
    "to_jsonable",
    "to_markdown",
    "write_record",
]
