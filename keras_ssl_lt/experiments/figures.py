"""Figures of the experiments as PNG files: the paper's Figure 1 (relative gap against n) and bar charts.

matplotlib is optional (`pip install keras-ssl-lt[recipes]`) and imported only inside these functions;
figures are drawn on matplotlib's Agg canvas (no display, no change to the user's pyplot backend).
Every figure can carry a caption line (preset, hardware, wall time: see `aggregate.provenance`).

Example:

>>> import os, tempfile
>>> rows = [{"method": m, "n": n, "rel_gap_mean": g, "rel_gap_std": 0.01}
...         for m, g0 in [("simsiam", 0.05), ("supervised", 0.2)] for n, g in [(1000, g0), (4000, g0 / 2)]]
>>> path = plot_relative_gap({"ID": rows}, os.path.join(tempfile.mkdtemp(), "gap.png"), caption="preset smoke")
>>> open(path, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

import math
from pathlib import Path

__all__ = ["SUPERVISED_METHODS", "plot_bars", "plot_relative_gap"]

SUPERVISED_METHODS = ("supervised",)
_INSTALL_HINT = "plotting needs matplotlib: pip install keras-ssl-lt[recipes]  (or: pip install matplotlib)"
_LINE_FIELDS = ("dataset", "profile", "ratio", "preset", "metric")


def _figure(figsize):
    """A matplotlib Figure with an Agg canvas (raises ImportError with the install hint)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, caption):
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"`path` must end with .png; got {str(path)!r}")
    if caption:
        fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
        fig.text(0.01, 0.01, str(caption), fontsize=7, color="0.3", ha="left", va="bottom", wrap=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, format="png", dpi=150)
    tmp.replace(path)
    return path


def _number(row, key, where):
    value = row.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: row needs a finite number {key!r}; got {value!r} in {row!r:.200}")
    return float(value)


def _label(field, value):
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if field == "method" else f"{field}={text}"


def _is_supervised(method, supervised):
    return str(method).lower() in {s.lower() for s in supervised}


def plot_relative_gap(rows_by_panel, path, title=None, caption=None, supervised=SUPERVISED_METHODS, percent=True):
    """The paper's Figure 1: relative gap against n (log x), one panel per key, one line per method.

    Args:
        rows_by_panel: dict panel title -> `gap_rows` rows (e.g. {"ID": ..., "OOD": ...}); each row needs
            "method", "n", "rel_gap_mean" and "rel_gap_std". When rows of one method differ in dataset,
            profile, ratio, preset or metric, each combination gets its own line, labelled with them.
        path: output .png path (parent folders are created).
        title: optional figure title.
        caption: optional line under the panels (preset, hardware, wall time).
        supervised: method names drawn dashed with square markers (SSL methods: solid, round markers).
        percent: plot the relative gap in percent.

    Error bars are ± the std over seeds of the relative gap. Returns the path.
    """
    if not isinstance(rows_by_panel, dict) or not rows_by_panel:
        raise ValueError("`rows_by_panel` must be a non-empty dict: panel title -> list of gap rows")
    supervised = (supervised,) if isinstance(supervised, str) else tuple(supervised)
    n_panels = len(rows_by_panel)
    fig = _figure((4.2 * n_panels + 0.6, 3.6))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    scale = 100.0 if percent else 1.0
    for ax, (panel, rows) in zip(axes, rows_by_panel.items(), strict=True):
        rows = list(rows)
        if not rows:
            raise ValueError(f"panel {panel!r} has no rows")
        varying = [f for f in _LINE_FIELDS if len({repr(r.get(f)) for r in rows}) > 1]
        lines = {}
        for r in rows:
            if "method" not in r:
                raise ValueError(f"panel {panel!r}: every row needs a 'method'; got {r!r:.200}")
            lines.setdefault((r["method"],) + tuple(r.get(f) for f in varying), []).append(r)
        for key, members in sorted(
            lines.items(), key=lambda kv: (_is_supervised(kv[0][0], supervised), [str(k) for k in kv[0]])
        ):
            members = sorted(members, key=lambda r: _number(r, "n", f"panel {panel!r}"))
            ns = [_number(r, "n", f"panel {panel!r}") for r in members]
            if len(set(ns)) != len(ns):
                raise ValueError(
                    f"panel {panel!r}: line {key} has two rows at the same n {ns}; "
                    "split them into panels or filter the rows"
                )
            ys = [scale * _number(r, "rel_gap_mean", f"panel {panel!r}") for r in members]
            es = [scale * float(r.get("rel_gap_std") or 0.0) for r in members]
            sup = _is_supervised(key[0], supervised)
            label = str(key[0]) + "".join(
                f", {f}={v:g}" if isinstance(v, float) else f", {f}={v}" for f, v in zip(varying, key[1:], strict=True)
            )
            ax.errorbar(
                ns,
                ys,
                yerr=es,
                label=label,
                linestyle="--" if sup else "-",
                marker="s" if sup else "o",
                markersize=4,
                capsize=3,
                linewidth=1.5,
            )
        ax.set_xscale("log")
        ticks = sorted({_number(r, "n", f"panel {panel!r}") for r in rows})
        ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks], fontsize=7)
        ax.minorticks_off()
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(str(panel))
        ax.set_xlabel("n (pre-training examples)")
        ax.set_ylabel("relative gap (%)" if percent else "relative gap")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(str(title))
    return _save(fig, path, caption)


def plot_bars(rows, metric, path, label_fields=None, title=None, caption=None, floor=None, percent=True, ylabel=None):
    """A bar per row: `metric_mean` with ± `metric_std` error bars (e.g. `seed_summary` rows).

    Args:
        rows: row dicts with `<metric>_mean` (and `<metric>_std`).
        metric: the metric name.
        path: output .png path.
        label_fields: row fields that label each bar (default: the string/number fields that vary).
        title, caption: optional title and caption line (preset, hardware, wall time).
        floor: None; a number for one dashed horizontal line; or True to mark each bar's own
            `floor_<metric>_mean` (the untrained encoder) as a short dashed segment.
        percent: plot values in percent.
        ylabel: y-axis label (default: the metric name).

    Bars are coloured by the first label field. Returns the path.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("`rows` must not be empty")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"`metric` must be a metric name; got {metric!r}")
    if label_fields is None:
        label_fields = [
            k
            for k, v in rows[0].items()
            if isinstance(v, (str, int, float))
            and not isinstance(v, bool)
            and not k.endswith(("_mean", "_std"))
            and k not in ("n_seeds", "n")
            and len({repr(r.get(k)) for r in rows}) > 1
        ]
    elif isinstance(label_fields, str):
        label_fields = [label_fields]
    scale = 100.0 if percent else 1.0
    means = [scale * _number(r, f"{metric}_mean", "plot_bars") for r in rows]
    stds = [scale * float(r.get(f"{metric}_std") or 0.0) for r in rows]
    labels = ["\n".join(_label(f, r.get(f)) for f in label_fields) or str(i) for i, r in enumerate(rows)]
    fig = _figure((max(4.0, 0.9 * len(rows) + 1.5), 3.8))
    ax = fig.subplots()
    xs = list(range(len(rows)))
    # one colour per value of the first label field (e.g. the method)
    keys = [repr(r.get(label_fields[0])) if label_fields else "" for r in rows]
    palette = {k: f"C{i % 10}" for i, k in enumerate(dict.fromkeys(keys))}
    ax.bar(xs, means, yerr=stds, capsize=4, color=[palette[k] for k in keys], alpha=0.85)
    ax.set_xticks(xs, labels, fontsize=7)
    if floor is True:
        floors = [scale * _number(r, f"floor_{metric}_mean", "plot_bars(floor=True)") for r in rows]
        for i, f in enumerate(floors):
            ax.hlines(
                f, i - 0.4, i + 0.4, colors="tab:red", linestyles="--", label="untrained floor" if i == 0 else None
            )
    elif floor is not None:
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
            raise ValueError(f"`floor` must be None, True or a finite number; got {floor!r}")
        ax.axhline(scale * float(floor), color="tab:red", linestyle="--", label="floor")
    ax.set_ylabel(ylabel or (f"{metric} (%)" if percent else metric))
    ax.grid(True, axis="y", alpha=0.3)
    if floor is not None:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(str(title))
    return _save(fig, path, caption)
