"""Aggregation of run records: mean ± std over seeds, the paper's gaps, floor checks, Markdown and CSV tables.

Records are the dicts of `read_records` / `run_grid` (only status "done" ones are used). Group fields are
RunSpec fields ("method", "ratio", ...) or keys of the spec's `extra` (e.g. "sharpness"). Standard deviations
are sample standard deviations over seeds (ddof=1); a group with a single seed reports std 0.0 and
`single_seed=True`.

Example:

>>> recs = [{"spec": {"method": "simsiam", "ratio": r, "seed": s}, "status": "done", "n": 100,
...          "metrics": {"acc": a}} for r, s, a in [(1.0, 0, 0.8), (1.0, 1, 0.9), (0.1, 0, 0.6), (0.1, 1, 0.9)]]
>>> rows = seed_summary(recs, "acc", by=("method", "ratio"))
>>> [(row["ratio"], round(row["acc_mean"], 4), round(row["acc_std"], 4)) for row in rows]
[(0.1, 0.75, 0.2121), (1.0, 0.85, 0.0707)]
>>> row, = gap_rows(recs, "acc", by=("method",))
>>> round(row["gap_mean"], 4), round(row["rel_gap_mean"], 4), row["n"], row["n_seeds"]
(0.1, 0.125, 100.0, 2)
"""

import csv
import io
import json
import math
import warnings

import numpy as np

from keras_ssl_lt.experiments.records import _atomic_write_text

__all__ = [
    "DEFAULT_BY",
    "GAP_BY",
    "floor_flags",
    "fmt_mean_std",
    "gap_rows",
    "metric_cells",
    "provenance",
    "seed_summary",
    "select",
    "to_csv",
    "to_markdown",
]

DEFAULT_BY = ("method", "dataset", "profile", "ratio", "sampling", "preset")
GAP_BY = ("method", "dataset", "profile", "sampling", "preset")
_SPEC_FIELDS = ("method", "dataset", "profile", "ratio", "sampling", "seed", "preset", "extra")


def _as_names(value, name):
    if isinstance(value, str):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(f"`{name}` must be a string or a sequence of strings; got {value!r}") from None
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"`{name}` must be a non-empty string or sequence of non-empty strings; got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"`{name}` repeats a name: {list(value)}")
    return value


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _done(records):
    if isinstance(records, dict):
        raise ValueError("`records` must be a list of record dicts, not one record")
    out = []
    for r in records:
        if not isinstance(r, dict) or not isinstance(r.get("spec"), dict):
            raise ValueError(f"each record must be a dict with a 'spec' dict; got {r!r:.200}")
        if r.get("status", "done") == "done":
            out.append(r)
    return out


def _field(record, name):
    spec = record["spec"]
    if name in spec and name != "extra":
        return _hashable(spec[name])
    if name == "extra":
        return _hashable(spec.get("extra", {}))
    return _hashable(spec.get("extra", {}).get(name))


def _check_fields(records, fields):
    for f in fields:
        if f in _SPEC_FIELDS:
            continue
        if records and not any(f in r["spec"] or f in r["spec"].get("extra", {}) for r in records):
            raise ValueError(
                f"group field {f!r} is neither a RunSpec field {list(_SPEC_FIELDS)} nor an `extra` key of any record"
            )


def _sort_key(values):
    out = []
    for v in values:
        if v is None:
            out.append((0, 0.0, ""))
        elif isinstance(v, (bool, int, float)):
            out.append((1, float(v), ""))
        elif isinstance(v, str):
            out.append((2, 0.0, v))
        else:
            out.append((3, 0.0, repr(v)))
    return tuple(out)


def _seed(record):
    return record["spec"].get("seed", 0)


def _run_id(record):
    return record.get("run_id", "?")


def _group(records, fields):
    """{key tuple: {seed: record}}, raising on two records of one group with the same seed."""
    groups = {}
    for r in records:
        key = tuple(_field(r, f) for f in fields)
        members = groups.setdefault(key, {})
        seed = _seed(r)
        if seed in members:
            other = members[seed]
            diff = _differing_fields(r["spec"], other["spec"])
            raise ValueError(
                f"two records of group {dict(zip(fields, key, strict=True))} have seed {seed} "
                f"({_run_id(other)} and {_run_id(r)}; they differ in {diff}): add the distinguishing "
                "field (or `extra` key) to `by`, or filter the records"
            )
        members[seed] = r
    return dict(sorted(groups.items(), key=lambda kv: _sort_key(kv[0])))


def _differing_fields(a, b):
    """Names of the spec fields (and `extra` keys, as given to `by`) where two specs differ."""
    out = [k for k in sorted(set(a) | set(b)) if k != "extra" and a.get(k) != b.get(k)]
    ea, eb = a.get("extra") or {}, b.get("extra") or {}
    return out + [k for k in sorted(set(ea) | set(eb)) if ea.get(k) != eb.get(k)]


def _metric(record, name):
    metrics = record.get("metrics", {})
    if name not in metrics:
        raise ValueError(f"record {_run_id(record)} has no metric {name!r}; it has {sorted(metrics)}")
    value = metrics[name]
    if value is None or isinstance(value, bool):
        raise ValueError(f"metric {name!r} of record {_run_id(record)} is not a number: {value!r}")
    return float(value)


def _mean_std(values):
    values = np.asarray(values, "float64")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size >= 2 else 0.0
    return mean, std


def _mean_n(records):
    ns = [float(r["n"]) for r in records if r.get("n") is not None]
    return float(np.mean(ns)) if ns else None


def _clears(mean, std):
    return bool(mean > 0 and mean > 2.0 * std)


def seed_summary(records, metrics, by=DEFAULT_BY):
    """Mean and sample std over seeds of each metric, one row per group of `by`.

    Each row holds the `by` fields, "seeds" (sorted list), "n_seeds", "single_seed" (True when the std is
    0.0 because only one seed exists), "n" (mean of the records' "n" when they carry one) and, per metric m,
    `m_mean` and `m_std` (ddof=1).

    Floor: when the records carry `metrics["floor_m"]` (the untrained encoder of the same architecture and
    seed), the row also has `floor_m_mean/std`, `m_minus_floor_mean/std` (per-seed differences) and
    `m_clears_floor`: True when the mean difference is > 0 and > 2 × its std over seeds (with one seed the
    spread is unknown and the rule reduces to > 0; `single_seed` says so). A group where only some records
    carry the floor raises ValueError.

    >>> recs = [{"spec": {"method": "simclr", "seed": s}, "metrics": {"knn": a, "floor_knn": f}}
    ...         for s, a, f in [(0, 0.42, 0.27), (1, 0.44, 0.26)]]
    >>> row, = seed_summary(recs, ["knn"], by=["method"])
    >>> round(row["knn_minus_floor_mean"], 4), row["knn_clears_floor"], row["n_seeds"]
    (0.165, True, 2)
    """
    metrics = _as_names(metrics, "metrics")
    by = _as_names(by, "by")
    recs = _done(records)
    _check_fields(recs, by)
    rows = []
    for key, members in _group(recs, by).items():
        seeds = sorted(members)
        group = [members[s] for s in seeds]
        row = dict(zip(by, key, strict=True))
        row.update(seeds=seeds, n_seeds=len(seeds), single_seed=len(seeds) == 1)
        n = _mean_n(group)
        if n is not None:
            row["n"] = n
        for m in metrics:
            values = [_metric(r, m) for r in group]
            row[f"{m}_mean"], row[f"{m}_std"] = _mean_std(values)
            has_floor = [f"floor_{m}" in r.get("metrics", {}) for r in group]
            if any(has_floor):
                if not all(has_floor):
                    missing = [_run_id(r) for r, h in zip(group, has_floor, strict=True) if not h]
                    raise ValueError(f"records {missing} lack metrics['floor_{m}'] that others of their group have")
                floors = [_metric(r, f"floor_{m}") for r in group]
                row[f"floor_{m}_mean"], row[f"floor_{m}_std"] = _mean_std(floors)
                dm, ds = _mean_std(np.subtract(values, floors))
                row[f"{m}_minus_floor_mean"], row[f"{m}_minus_floor_std"] = dm, ds
                row[f"{m}_clears_floor"] = _clears(dm, ds)
        rows.append(row)
    return rows


def gap_rows(records, metric, by=GAP_BY, counterpart="counterpart_of"):
    """The paper's gap A(n, 1) - A(n, r) and relative gap (A(n, 1) - A(n, r)) / A(n, 1), paired by seed.

    Records are grouped by `by` (which must not contain "ratio" or "seed"); inside a group the ratio-1.0
    records (the balanced counterpart, same sampling so same n) are paired seed by seed with the records of
    each ratio r < 1. The balanced counterpart of each r has the n of that r, so a grid with several r holds
    several balanced runs per seed: mark each with `extra={counterpart: r}` (default key "counterpart_of")
    and each r is paired only with its own counterparts (balanced records without the key serve every r
    that has no marked counterpart).

    One row per (group, r) with the `by` fields, "ratio", "metric", "n" (mean "n" of the imbalanced records,
    when recorded), `balanced_mean/std`, `imbalanced_mean/std`, `gap_mean/std`, `rel_gap_mean/std` (ddof=1
    over the paired seeds), "seeds", "n_seeds" and "single_seed"; plus `balanced_floor_mean` /
    `imbalanced_floor_mean` when the records carry `floor_<metric>`. Seeds present on one side only are
    left out; a ratio with no paired seed is skipped with a warning, and a balanced n that differs from the
    imbalanced n is warned about.

    >>> recs = [{"spec": {"method": "supervised", "ratio": r, "seed": s}, "metrics": {"acc": a}}
    ...         for r, s, a in [(1.0, 0, 0.5), (0.01, 0, 0.4), (0.01, 1, 0.3)]]
    >>> row, = gap_rows(recs, "acc", by=["method"])
    >>> round(row["gap_mean"], 4), round(row["rel_gap_mean"], 4), row["seeds"]
    (0.1, 0.2, [0])
    """
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"`metric` must be one metric name (a string); got {metric!r}")
    if not isinstance(counterpart, str) or not counterpart:
        raise ValueError(f"`counterpart` must be the name of an `extra` key; got {counterpart!r}")
    by = _as_names(by, "by")
    bad = [f for f in ("ratio", "seed", counterpart) if f in by]
    if bad:
        raise ValueError(f"`by` must not contain {bad}: gaps pair ratios, counterparts and seeds inside each group")
    recs = _done(records)
    _check_fields(recs, by)
    groups = {}
    for r in recs:
        groups.setdefault(tuple(_field(r, f) for f in by), []).append(r)
    rows = []
    for key in sorted(groups, key=_sort_key):
        members = groups[key]
        where = dict(zip(by, key, strict=True))
        balanced_all = [r for r in members if float(r["spec"].get("ratio", 0.0)) == 1.0]
        by_ratio = _group([r for r in members if float(r["spec"].get("ratio", 0.0)) != 1.0], ("ratio",))
        for (ratio,), imbalanced in by_ratio.items():
            marked = [r for r in balanced_all if _is_counterpart_of(r, counterpart, ratio)]
            pool = marked or [r for r in balanced_all if _field(r, counterpart) is None]
            if not pool:
                warnings.warn(f"no balanced (ratio 1.0) records for {where}, ratio {ratio}; skipped", stacklevel=2)
                continue
            balanced = _group(pool, ())[()]
            seeds = sorted(set(balanced) & set(imbalanced))
            if not seeds:
                warnings.warn(
                    f"no seed has both ratio 1.0 and ratio {ratio} records for {where}; skipped", stacklevel=2
                )
                continue
            bal = [balanced[s] for s in seeds]
            imb = [imbalanced[s] for s in seeds]
            a1 = np.array([_metric(r, metric) for r in bal])
            ar = np.array([_metric(r, metric) for r in imb])
            if np.any(a1 <= 0):
                raise ValueError(f"balanced {metric!r} must be > 0 for a relative gap; got {a1.tolist()} for {where}")
            n_bal, n_imb = _mean_n(bal), _mean_n(imb)
            if n_bal is not None and n_imb is not None and not math.isclose(n_bal, n_imb, rel_tol=1e-9):
                warnings.warn(
                    f"balanced n {n_bal} differs from imbalanced n {n_imb} for {where}, ratio {ratio}: "
                    f"the gap should compare the same n (mark counterparts with extra {counterpart!r})",
                    stacklevel=2,
                )
            row = dict(where)
            row.update(ratio=ratio, metric=metric, n=n_imb if n_imb is not None else n_bal)
            row["balanced_mean"], row["balanced_std"] = _mean_std(a1)
            row["imbalanced_mean"], row["imbalanced_std"] = _mean_std(ar)
            row["gap_mean"], row["gap_std"] = _mean_std(a1 - ar)
            row["rel_gap_mean"], row["rel_gap_std"] = _mean_std((a1 - ar) / a1)
            if all(f"floor_{metric}" in r.get("metrics", {}) for r in bal + imb):
                row["balanced_floor_mean"] = float(np.mean([_metric(r, f"floor_{metric}") for r in bal]))
                row["imbalanced_floor_mean"] = float(np.mean([_metric(r, f"floor_{metric}") for r in imb]))
            row.update(seeds=seeds, n_seeds=len(seeds), single_seed=len(seeds) == 1)
            rows.append(row)
    return rows


def _is_counterpart_of(record, key, ratio):
    value = _field(record, key)
    if value is None:
        return False
    try:
        return math.isclose(float(value), float(ratio), rel_tol=1e-9)
    except (TypeError, ValueError):
        raise ValueError(f"`extra[{key!r}]` of record {_run_id(record)} must be a ratio; got {value!r}") from None


def select(records, status="done", **where):
    """The records whose spec matches every condition of `where` (and whose status is `status`).

    Each condition names a RunSpec field or an `extra` key; its value is one allowed value or a list, tuple
    or set of them (an absent `extra` key reads as None). `status=None` keeps every status.

    >>> recs = [{"spec": {"method": m, "ratio": r, "extra": {}}, "status": "done"}
    ...         for m in ("simsiam", "supervised") for r in (1.0, 0.1, 0.01)]
    >>> [(r["spec"]["method"], r["spec"]["ratio"]) for r in select(recs, method="simsiam", ratio=(1.0, 0.01))]
    [('simsiam', 1.0), ('simsiam', 0.01)]
    """
    if isinstance(records, dict):
        raise ValueError("`records` must be a list of record dicts, not one record")
    out = []
    for r in records:
        if not isinstance(r, dict) or not isinstance(r.get("spec"), dict):
            raise ValueError(f"each record must be a dict with a 'spec' dict; got {r!r:.200}")
        if status is not None and r.get("status", "done") != status:
            continue
        ok = True
        for name, allowed in where.items():
            allowed = allowed if isinstance(allowed, (list, tuple, set, frozenset)) else (allowed,)
            if _field(r, name) not in {_hashable(a) if isinstance(a, (list, dict)) else a for a in allowed}:
                ok = False
                break
        if ok:
            out.append(r)
    return out


def floor_flags(rows, metrics, margin=0.0):
    """The `seed_summary` rows whose metric does not clear its untrained-encoder floor.

    A row fails for metric m when `m_clears_floor` is False (mean difference not > 0 and > 2 std, see
    `seed_summary`) or when `m_minus_floor_mean <= margin` (a margin in the metric's units, e.g. 0.10 for
    10 points of an accuracy stored as a fraction). Returns one dict per (row, metric) failure: a copy of
    the row plus "metric" and a readable "reason". Raises ValueError when a row has no floor for m.

    >>> rows = [{"method": "simclr", "knn_minus_floor_mean": 0.05, "knn_minus_floor_std": 0.01,
    ...          "knn_clears_floor": True}]
    >>> floor_flags(rows, "knn"), [f["reason"] for f in floor_flags(rows, "knn", margin=0.10)]
    ([], ['knn - floor = 0.05 <= margin 0.1'])
    """
    metrics = _as_names(metrics, "metrics")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        raise ValueError(f"`margin` must be a finite number; got {margin!r}")
    out = []
    for row in rows:
        for m in metrics:
            if f"{m}_clears_floor" not in row:
                raise ValueError(f"row {_describe(row)} has no floor for {m!r}: the records need metrics['floor_{m}']")
            dm, ds = row[f"{m}_minus_floor_mean"], row[f"{m}_minus_floor_std"]
            reason = None
            if not row[f"{m}_clears_floor"]:
                reason = f"{m} - floor = {dm:.4g} is not > 0 and > 2 x std ({ds:.4g})"
            elif dm <= margin:
                reason = f"{m} - floor = {dm:.4g} <= margin {margin:g}"
            if reason:
                out.append(dict(row, metric=m, reason=reason))
    return out


def _describe(row):
    return {k: v for k, v in row.items() if not isinstance(v, float) or k in _SPEC_FIELDS}


def fmt_mean_std(mean, std, percent=True, digits=None):
    """`"45.23 ± 1.20"`: percent (× 100, 2 decimals) by default, else 4 decimals; "n/a" for a missing mean.

    >>> fmt_mean_std(0.45234, 0.012), fmt_mean_std(1.5, 0.25, percent=False), fmt_mean_std(None, None)
    ('45.23 ± 1.20', '1.5000 ± 0.2500', 'n/a')
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    digits = (2 if percent else 4) if digits is None else digits
    scale = 100.0 if percent else 1.0
    text = f"{scale * float(mean):.{digits}f}"
    if std is not None:
        text += f" ± {scale * float(std):.{digits}f}"
    return text


def metric_cells(rows, metrics, percent=True):
    """Adds a display cell `"<m>_cell"` to each `seed_summary` row: mean ± std, the floor's mean in brackets.

    `percent` is one bool for every metric or a callable `metric -> bool` (accuracies in %, losses plain).
    Returns the cell column names, in the order of `metrics`.

    >>> rows = [{"knn_mean": 0.45, "knn_std": 0.01, "floor_knn_mean": 0.281}]
    >>> metric_cells(rows, ["knn"]), rows[0]["knn_cell"]
    (['knn_cell'], '45.00 ± 1.00 (floor 28.1)')
    """
    columns = []
    for m in metrics:
        pct = percent(m) if callable(percent) else bool(percent)
        for row in rows:
            row[f"{m}_cell"] = fmt_mean_std(row.get(f"{m}_mean"), row.get(f"{m}_std"), percent=pct)
            if row.get(f"floor_{m}_mean") is not None:
                row[f"{m}_cell"] += f" (floor {(100 if pct else 1) * row[f'floor_{m}_mean']:.{1 if pct else 4}f})"
        columns.append(f"{m}_cell")
    return columns


def _plain(value, percent, digits):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (list, tuple)):
        return ",".join(_plain(v, False, digits) for v in value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if percent:
            return f"{100.0 * value:.{2 if digits is None else digits}f}"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{4 if digits is None else digits}g}"
    return str(value)


def _percent_set(percent, columns):
    if percent is True:
        return None  # every mean ± std column
    if percent is False or percent is None:
        return set()
    if isinstance(percent, str):
        percent = (percent,)
    names = set(percent)
    unknown = sorted(names - set(columns))
    if unknown:
        raise ValueError(f"`percent` names columns that are not in `columns`: {unknown}")
    return names


def to_markdown(rows, columns, headers=None, percent=True, digits=None):
    """A Markdown table of `rows` (dicts) with the given `columns`.

    A column c that rows hold as `c_mean` / `c_std` is shown as "mean ± std". `percent=True` shows every
    mean ± std column in percent, False none, and a list of column names exactly those (plain float columns
    included). Booleans show as "yes" / "NO", None as an empty cell. A column in no row raises ValueError.

    >>> rows = [{"method": "simsiam", "ratio": 0.01, "acc_mean": 0.5, "acc_std": 0.02, "ok": True}]
    >>> print(to_markdown(rows, ["method", "ratio", "acc", "ok"], headers=["method", "r", "kNN (%)", "clears"]))
    | method | r | kNN (%) | clears |
    |---|---|---|---|
    | simsiam | 0.01 | 50.00 ± 2.00 | yes |
    """
    rows = list(rows)
    columns = _as_names(columns, "columns")
    if headers is None:
        headers = columns
    else:
        headers = tuple(headers)
        if len(headers) != len(columns):
            raise ValueError(f"`headers` must have one entry per column ({len(columns)}); got {len(headers)}")
    pct = _percent_set(percent, columns)
    for c in columns:
        if rows and not any(c in r or f"{c}_mean" in r for r in rows):
            raise ValueError(
                f"column {c!r} is in no row (neither {c!r} nor {c + '_mean'!r}); row keys: {sorted(rows[0])}"
            )

    def cell(row, c):
        if f"{c}_mean" in row and c not in row:
            return fmt_mean_std(row[f"{c}_mean"], row.get(f"{c}_std"), percent=pct is None or c in pct, digits=digits)
        return _plain(row.get(c), pct is not None and c in pct, digits)

    def line(cells):
        return "| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |"

    out = [line(headers), "|" + "---|" * len(columns)]
    out += [line(cell(r, c) for c in columns) for r in rows]
    return "\n".join(out)


def to_csv(rows, path, columns=None):
    """Write `rows` to a CSV file atomically; returns the path.

    `columns` defaults to every key in order of first appearance; a column c held as `c_mean` / `c_std`
    expands to those two columns. Numbers keep full precision, lists are JSON, None is an empty cell.
    """
    rows = list(rows)
    if columns is None:
        names = []
        for r in rows:
            names += [k for k in r if k not in names]
    else:
        names = []
        for c in _as_names(columns, "columns"):
            if rows and not any(c in r for r in rows) and any(f"{c}_mean" in r for r in rows):
                names += [f"{c}_mean", f"{c}_std"]
            elif rows and not any(c in r for r in rows):
                raise ValueError(f"column {c!r} is in no row; row keys: {sorted(rows[0])}")
            else:
                names.append(c)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for r in rows:
        writer.writerow(
            [
                ""
                if r.get(c) is None
                else json.dumps(r[c])
                if isinstance(r[c], (list, tuple, dict))
                else repr(float(r[c]))
                if isinstance(r[c], (float, np.floating))
                else r[c]
                for c in names
            ]
        )
    return _atomic_write_text(path, buf.getvalue())


def provenance(records):
    """What produced `records`: presets, backend, hardware, run count and total wall time, plus a caption line.

    Returns a dict with "presets", "backends", "hardware", "n_runs", "wall_seconds" (sum over the runs) and
    "caption", a one-line statement for a table or figure.

    >>> rec = {"spec": {"method": "simsiam", "preset": "cpu"}, "wall_seconds": 125.0,
    ...        "environment": {"backend": "jax", "backend_version": "0.4", "cpu_model": "Xeon", "cpu_count": 2,
    ...                        "accelerators": []}}
    >>> provenance([rec])["caption"]
    'preset cpu | jax 0.4 | Xeon x 2 CPUs, no accelerator | 1 run, 2m05s of run time'
    """
    from keras_ssl_lt.experiments.runner import format_duration

    recs = _done(records)
    presets = sorted({r["spec"].get("preset", "?") for r in recs})
    backends, hardware = [], []
    for r in recs:
        env = r.get("environment") or {}
        b = " ".join(str(x) for x in (env.get("backend"), env.get("backend_version")) if x)
        acc = env.get("accelerators") or []
        h = f"{env.get('cpu_model') or 'unknown CPU'} x {env.get('cpu_count') or '?'} CPUs, "
        h += ", ".join(acc) if acc else "no accelerator"
        if b and b not in backends:
            backends.append(b)
        if env and h not in hardware:
            hardware.append(h)
    wall = float(sum(float(r.get("wall_seconds") or 0.0) for r in recs))
    parts = [
        "preset " + (", ".join(presets) if presets else "?"),
        "; ".join(backends) or "backend unknown",
        "; ".join(hardware) or "hardware unknown",
        f"{len(recs)} run{'s' if len(recs) != 1 else ''}, {format_duration(wall)} of run time",
    ]
    return {
        "presets": presets,
        "backends": backends,
        "hardware": hardware,
        "n_runs": len(recs),
        "wall_seconds": wall,
        "caption": " | ".join(parts),
    }
