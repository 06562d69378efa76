"""A resumable grid runner: one JSON record per finished run, finished runs skipped on the next call.

`run_grid(specs, run_fn, out)` calls `run_fn(spec)` for every spec whose record in `out` is missing or not
"done", and writes the result as a record (see `records.py`). A run that raises writes no "done" record, so
a killed or crashed grid resumes where it stopped; `dry_run=True` only prints the plan. `identity` holds
what determines a result besides the spec (the config after overrides, the data's fingerprint, the package
version): a finished record made under another identity is refused, never reused. One process at a time
runs into a folder (`lock.FolderLock`).

Example:

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> specs = [RunSpec("simsiam", seed=s) for s in (0, 1)]
>>> def run_fn(spec):
...     return {"metrics": {"knn_top1": [0.40, 0.42][spec.seed]}, "n": 12406}
>>> records = run_grid(specs, run_fn, out, verbose=0)
>>> [r["metrics"]["knn_top1"] for r in records], [r["status"] for r in records]
([0.4, 0.42], ['done', 'done'])
>>> calls = []
>>> again = run_grid(specs, lambda s: calls.append(s), out, verbose=0)  # both done: nothing runs
>>> calls, len(again)
([], 2)
"""

import datetime
import math
import sys
import time
import traceback
from pathlib import Path

from keras_ssl_lt.experiments.lock import FolderLock
from keras_ssl_lt.experiments.records import (
    RunSpec,
    SetupError,
    environment,
    read_record,
    record_path,
    remove_stale_temp_files,
    to_jsonable,
    write_record,
)

__all__ = ["SetupError", "check_grid", "format_duration", "run_grid"]

RESERVED_KEYS = ("spec", "status", "run_id", "environment", "started", "finished", "wall_seconds", "identity")


def format_duration(seconds, coarse=False):
    """`3m05s`-style duration; `coarse=True` drops the last unit above a minute (`12m`, `1h05m`).

    >>> format_duration(185), format_duration(42.4), format_duration(3900, coarse=True), format_duration(None)
    ('3m05s', '42s', '1h05m', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(float(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m" if coarse else f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m" if coarse else f"{m}m{s:02d}s"
    return f"{s}s"


def _clock():
    return time.perf_counter()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _check_specs(specs):
    specs = [RunSpec.from_dict(s) for s in specs]
    seen = {}
    for i, spec in enumerate(specs):
        if spec.run_id in seen:
            raise ValueError(f"`specs` lists the same run twice (positions {seen[spec.run_id]} and {i}): {spec}")
        seen[spec.run_id] = i
    return specs


def _cost(cost_fn, spec):
    if cost_fn is None:
        return None
    value = cost_fn(spec)
    try:
        seconds = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"`cost_fn` must return a finite number of seconds >= 0; got {value!r} for {spec.run_id}")
    return seconds


def _check_result(result, spec):
    if not isinstance(result, dict):
        raise ValueError(
            f"`run_fn` must return a dict with a 'metrics' entry; got {type(result).__name__} for {spec.run_id}"
        )
    clash = sorted(set(result) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"`run_fn` result for {spec.run_id} uses keys the runner sets: {clash}")
    metrics = result.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(f"`run_fn` result for {spec.run_id} needs 'metrics': a non-empty dict of name -> number")
    clean = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise ValueError(f"metric names must be strings; got {name!r} for {spec.run_id}")
        try:
            if isinstance(value, bool):
                raise TypeError
            clean[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"metric {name!r} of {spec.run_id} must be a number; got {value!r}") from None
    out = dict(result)
    out["metrics"] = clean
    return out


def _eta(todo_costs, measured):
    """Seconds left for the runs in `todo_costs` (their cost estimates, None where unknown).

    With measured runs: the mean measured time per run, or, when every cost is known, the estimates scaled
    by measured/estimated of the finished runs. Without: the sum of the estimates (None if any is unknown).
    """
    if not todo_costs:
        return 0.0
    if measured:
        walls = [w for w, _ in measured]
        ests = [c for _, c in measured]
        if all(c is not None for c in todo_costs) and all(c is not None and c > 0 for c in ests):
            return sum(todo_costs) * sum(walls) / sum(ests)
        return len(todo_costs) * sum(walls) / len(walls)
    if all(c is not None for c in todo_costs):
        return float(sum(todo_costs))
    return None


def _flatten(value, prefix=""):
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def identity_diff(recorded, current, limit=4):
    """The settings where two identities differ, as text: `config.epochs: recorded 1, now 3; ...`.

    >>> identity_diff({"config": {"epochs": 1, "lr": 0.1}}, {"config": {"epochs": 3, "lr": 0.1}})
    'config.epochs: recorded 1, now 3'
    >>> identity_diff(None, {"config": {}})
    'recorded without an identity (before identities were recorded)'
    """
    if not isinstance(recorded, dict):
        return "recorded without an identity (before identities were recorded)"
    a, b = _flatten(recorded), _flatten(current)
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]
    parts = [f"{k}: recorded {_short(a.get(k, '<absent>'))}, now {_short(b.get(k, '<absent>'))}" for k in keys]
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_identity(identity):
    """`identity` as a function of the spec (JSON-ready dicts), or None; a dict is every spec's identity."""
    if identity is None:
        return None
    if isinstance(identity, dict):
        fixed = to_jsonable(identity)  # as it reads back from a record (tuples become lists, ...)
        return lambda spec: fixed
    if callable(identity):

        def of(spec):
            value = identity(spec)
            if not isinstance(value, dict):
                raise ValueError(f"`identity({spec.run_id})` must return a dict; got {type(value).__name__}")
            return to_jsonable(value)

        return of
    raise ValueError(f"`identity` must be a dict, a function of the spec or None; got {type(identity).__name__}")


def _statuses(specs, out, identity):
    """(records, statuses, mismatch reasons) of `specs` in `out`: "done", "todo" or "mismatch"."""
    existing = [read_record(out, s) for s in specs]
    statuses, reasons = [], []
    for spec, r in zip(specs, existing, strict=True):
        reason = None
        if r is None or r.get("status") != "done":
            status = "todo"
        elif identity is not None and r.get("identity") != identity(spec):
            status, reason = "mismatch", identity_diff(r.get("identity"), identity(spec))
        else:
            status = "done"
        statuses.append(status)
        reasons.append(reason)
    return existing, statuses, reasons


def _mismatch_error(specs, statuses, reasons, out):
    bad = [(s.run_id, why) for s, st, why in zip(specs, statuses, reasons, strict=True) if st == "mismatch"]
    shown = "\n".join(f"  {rid}: {why}" for rid, why in bad[:5])
    more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
    return SetupError(
        f"{len(bad)} of the {len(specs)} runs in {out} were recorded with other settings or data than this grid "
        f"has; they are not reused and nothing ran:\n{shown}{more}\nUse another output folder (--out), or "
        "delete those records to rerun them."
    )


def _print_plan(plan, out, stream):
    width = max([len("run_id")] + [len(p["run_id"]) for p in plan])
    print(f"plan for {out}: {len(plan)} runs", file=stream)
    print(f"{'#':>4}  {'run_id':<{width}}  {'status':<8}  {'est.':>8}", file=stream)
    for i, p in enumerate(plan, 1):
        est = "-" if p["status"] != "todo" else format_duration(p["estimated_seconds"])
        status = p["status"] + ("*" if p.get("failed_before") else "")
        print(f"{i:>4}  {p['run_id']:<{width}}  {status:<8}  {est:>8}", file=stream)
    todo = [p for p in plan if p["status"] == "todo"]
    bad = [p for p in plan if p["status"] == "mismatch"]
    costs = [p["estimated_seconds"] for p in todo]
    total = sum(costs) if all(c is not None for c in costs) else None
    n_done = len(plan) - len(todo) - len(bad)
    line = f"{n_done} done, {len(todo)} to run, estimated {format_duration(total)}"
    if total is None and todo:
        line += " (no cost_fn)" if all(c is None for c in costs) else " (some costs unknown)"
    if any(p.get("failed_before") for p in plan):
        line += "; * = failed before, will be retried"
    print(line, file=stream, flush=True)
    if bad:
        print(
            f"{len(bad)} mismatch: recorded with other settings or data than this grid; a run refuses them "
            "(use another --out, or delete those records):",
            file=stream,
        )
        for p in bad:
            print(f"  {p['run_id']}: {p['mismatch']}", file=stream)
        stream.flush()


def _check_out(out):
    if out is None or isinstance(out, bool) or not isinstance(out, (str, Path)) or not str(out):
        raise ValueError(f"`out` must be a folder path; got {out!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise SetupError(f"the output folder {str(out)!r} is a file, not a folder: choose another --out")


def check_grid(specs, out, identity=None):
    """Raise `SetupError` now if `run_grid(specs, ..., out, identity=identity)` would refuse to start.

    That is: `out` is a file, another live process holds its lock, or a finished record of `specs` was made
    under another identity. Invalid records raise ValueError naming the file. A recipe calls it before
    loading its data; returns the statuses ("done", "todo") of `specs`.

    >>> import tempfile
    >>> check_grid([RunSpec("simsiam")], tempfile.mkdtemp(), identity={"config": {"epochs": 1}})
    ['todo']
    """
    specs = _check_specs(specs)
    _check_out(out)
    identity = _check_identity(identity)
    FolderLock(out).check_free()
    _, statuses, reasons = _statuses(specs, out, identity)
    if "mismatch" in statuses:
        raise _mismatch_error(specs, statuses, reasons, out)
    return statuses


def run_grid(
    specs,
    run_fn,
    out,
    dry_run=False,
    cost_fn=None,
    verbose=1,
    config=None,
    keep_going=False,
    stream=None,
    identity=None,
):
    """Run every spec whose record in `out` is not "done", in order, writing one record per run.

    Args:
        specs: `RunSpec`s (or their dicts); the same run twice raises ValueError.
        run_fn: `run_fn(spec) -> dict` with "metrics" (name -> number, required) and optionally "history",
            "config", "manifest_sha256", "timings", "n" or anything else JSON-able.
        out: results folder (created when needed); record files are named `<run_id>.json`.
        dry_run: print the plan (run_id, done/todo/mismatch, estimated seconds) and return it; nothing runs.
        cost_fn: optional `cost_fn(spec) -> estimated seconds`, used by `dry_run` and for the ETA before the
            first run of this call has finished.
        verbose: 0 silent, 1 a progress line before each run and a summary, 2 also lists skipped runs.
        config: optional dict common to the grid (e.g. the preset's settings), stored in every new record as
            "config", updated with the run's own `result["config"]` when it has one.
        keep_going: when True a run that raises is logged, recorded with status "failed" (with the error and
            traceback; retried on the next call) and the grid continues; when False (default) the exception
            propagates and nothing is written for that run.
        stream: where progress goes (default: sys.stdout).
        identity: optional JSON-able dict of everything besides the spec that determines a run's result (the
            config after overrides, the data's `records.fingerprint`, the package version), or a function
            `spec -> dict` when it differs per run (e.g. only the run's own method's hyper-parameters). Stored
            in every new record; a finished record whose identity differs (or that has none) is a "mismatch": the dry
            run lists it with the differing settings, a real run raises `SetupError` before running anything.

    Returns:
        With `dry_run`, the plan: one dict per spec with "run_id", "spec", "status" ("done"/"todo"/"mismatch"),
        "failed_before", "mismatch" (the differing settings, or None) and "estimated_seconds". Otherwise the
        records of `specs` in order (old and new; with `keep_going`, failed runs appear with status "failed").

    `out` naming a file raises `SetupError` at once; while a grid runs, `out` holds a lock file
    (`lock.FolderLock`), so a second process running into the same folder is refused, and temporary files
    that killed writes left there are removed.

    The progress line reads `[run i/N] <run_id> | elapsed 3m05s | ETA 12m`: i counts all specs (finished
    ones included), elapsed is this call's time so far, and the ETA covers the runs still to do including
    this one (from this call's measured run times, else from `cost_fn`).
    """
    if not callable(run_fn):
        raise ValueError(f"`run_fn` must be callable; got {run_fn!r}")
    if cost_fn is not None and not callable(cost_fn):
        raise ValueError(f"`cost_fn` must be callable or None; got {cost_fn!r}")
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"`config` must be a dict or None; got {type(config).__name__}")
    identity = _check_identity(identity)
    if verbose not in (0, 1, 2) and verbose is not True and verbose is not False:
        raise ValueError(f"`verbose` must be 0, 1 or 2; got {verbose!r}")
    verbose = int(verbose)
    stream = sys.stdout if stream is None else stream
    specs = _check_specs(specs)
    _check_out(out)

    if dry_run:
        existing, statuses, reasons = _statuses(specs, out, identity)
        plan = [
            {
                "run_id": s.run_id,
                "spec": s,
                "status": st,
                "failed_before": bool(r is not None and r.get("status") != "done"),
                "mismatch": why,
                "estimated_seconds": _cost(cost_fn, s) if st == "todo" else None,
                "path": str(record_path(out, s)),
            }
            for s, r, st, why in zip(specs, existing, statuses, reasons, strict=True)
        ]
        if verbose:
            _print_plan(plan, out, stream)
        return plan

    with FolderLock(out):
        remove_stale_temp_files(out)
        existing, statuses, reasons = _statuses(specs, out, identity)
        if "mismatch" in statuses:
            raise _mismatch_error(specs, statuses, reasons, out)
        done = [st == "done" for st in statuses]
        costs = [None if d else _cost(cost_fn, s) for s, d in zip(specs, done, strict=True)]
        return _run(specs, run_fn, out, existing, done, costs, verbose, config, keep_going, stream, identity)


def _run(specs, run_fn, out, existing, done, costs, verbose, config, keep_going, stream, identity):
    n_total = len(specs)
    n_todo = n_total - sum(done)
    if verbose:
        print(
            f"run_grid: {n_total} runs in {out}: {n_total - n_todo} already done, {n_todo} to run",
            file=stream,
            flush=True,
        )
    t_start = _clock()
    env = None
    measured = []  # (wall seconds, estimated seconds) of the runs finished in this call
    records = []
    failures = []
    for i, (spec, old, is_done) in enumerate(zip(specs, existing, done, strict=True), 1):
        if is_done:
            if verbose >= 2:
                print(f"[skip {i}/{n_total}] {spec.run_id} (done)", file=stream, flush=True)
            records.append(old)
            continue
        remaining = [c for c, d in zip(costs[i - 1 :], done[i - 1 :], strict=True) if not d]
        eta = _eta(remaining, measured)
        if verbose:
            print(
                f"[run {i}/{n_total}] {spec.run_id} | elapsed {format_duration(_clock() - t_start)} "
                f"| ETA {format_duration(eta, coarse=True)}",
                file=stream,
                flush=True,
            )
        if env is None:
            env = environment()
        started = _now()
        t0 = _clock()
        try:
            result = _check_result(run_fn(spec), spec)
        except Exception as e:
            if not keep_going:
                raise
            wall = _clock() - t0
            tb = traceback.format_exc()
            failures.append(spec.run_id)
            if verbose:
                print(
                    f"[run {i}/{n_total}] {spec.run_id} FAILED after {format_duration(wall)}: {type(e).__name__}: {e}",
                    file=stream,
                    flush=True,
                )
            record = {
                "spec": spec.to_dict(),
                "status": "failed",
                "run_id": spec.run_id,
                "environment": env,
                "started": started,
                "finished": _now(),
                "wall_seconds": wall,
                "error": f"{type(e).__name__}: {e}",
                "traceback": tb,
            }
            if identity is not None:
                record["identity"] = identity(spec)
            if config is not None:
                record["config"] = to_jsonable(config)
            write_record(out, record)
            records.append(read_record(out, spec))
            continue
        wall = _clock() - t0
        measured.append((wall, costs[i - 1]))
        record = {
            "spec": spec.to_dict(),
            "status": "done",
            "run_id": spec.run_id,
            "environment": env,
            "started": started,
            "finished": _now(),
            "wall_seconds": wall,
        }
        if identity is not None:
            record["identity"] = identity(spec)
        if config is not None or "config" in result:
            merged = dict(config or {})
            if "config" in result:
                if not isinstance(result["config"], dict):
                    raise ValueError(f"`run_fn` result 'config' must be a dict for {spec.run_id}")
                merged.update(result["config"])
            result = dict(result, config=merged)
        record.update(result)
        write_record(out, record)
        records.append(read_record(out, spec))  # what a later call will see (JSON round trip)
    if verbose:
        ran = len(measured)
        line = f"run_grid: {ran} run(s) finished in {format_duration(_clock() - t_start)}"
        if failures:
            line += f"; {len(failures)} failed (recorded, retried next time): {', '.join(failures)}"
        print(line, file=stream, flush=True)
    return records
