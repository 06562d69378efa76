"""run_grid: records, resume after a crash, dry runs, failures, the progress line."""

import io
import re

import pytest

from keras_ssl_lt.experiments import (
    RunSpec,
    format_duration,
    read_record,
    read_records,
    run_grid,
)
from keras_ssl_lt.experiments import runner as runner_module


class Counter:
    """A run_fn that records its calls and can fail on a given call."""

    def __init__(self, fail_on=None, exc=RuntimeError):
        self.calls = []
        self.fail_on = fail_on
        self.exc = exc

    def __call__(self, spec):
        self.calls.append(spec.run_id)
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise self.exc(f"simulated crash in {spec.run_id}")
        return {
            "metrics": {"acc": 0.5 + 0.01 * spec.seed},
            "n": 100,
            "history": {"loss": [2.0, 1.5]},
            "manifest_sha256": "ab" * 32,
        }


def specs(k=5):
    return [RunSpec("simsiam", seed=s) for s in range(k)]


def test_records_hold_spec_environment_timings_and_result(tmp_path):
    fn = Counter()
    recs = run_grid(specs(2), fn, tmp_path, verbose=0, config={"epochs": 3, "lr": 0.1})
    assert len(fn.calls) == 2 and len(recs) == 2
    rec = recs[1]
    assert rec["status"] == "done" and rec["run_id"] == RunSpec("simsiam", seed=1).run_id
    assert rec["spec"] == RunSpec("simsiam", seed=1).to_dict()
    assert rec["metrics"] == {"acc": 0.51} and rec["n"] == 100 and rec["history"] == {"loss": [2.0, 1.5]}
    assert rec["config"] == {"epochs": 3, "lr": 0.1}
    assert rec["wall_seconds"] >= 0 and rec["started"] <= rec["finished"]
    assert rec["environment"]["backend"] and "cpu_count" in rec["environment"]
    assert read_record(tmp_path, RunSpec("simsiam", seed=1)) == rec


def test_run_config_updates_grid_config(tmp_path):
    def fn(spec):
        return {"metrics": {"acc": 1.0}, "config": {"lr": 0.5, "width": 2}}

    (rec,) = run_grid(specs(1), fn, tmp_path, verbose=0, config={"lr": 0.1, "epochs": 3})
    assert rec["config"] == {"lr": 0.5, "epochs": 3, "width": 2}


def test_resume_after_a_crash_runs_only_the_missing_runs(tmp_path):
    crashing = Counter(fail_on=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_grid(specs(), crashing, tmp_path, verbose=0)
    assert len(crashing.calls) == 3
    assert sorted(r["spec"]["seed"] for r in read_records(tmp_path)) == [0, 1]  # nothing for the crashed run
    again = Counter()
    recs = run_grid(specs(), again, tmp_path, verbose=0)
    assert again.calls == [s.run_id for s in specs()[2:]]
    assert [r["spec"]["seed"] for r in recs] == [0, 1, 2, 3, 4]
    assert all(r["status"] == "done" for r in recs)
    third = Counter()
    run_grid(specs(), third, tmp_path, verbose=0)
    assert third.calls == []


def test_keyboard_interrupt_propagates_even_with_keep_going(tmp_path):
    fn = Counter(fail_on=2, exc=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        run_grid(specs(3), fn, tmp_path, verbose=0, keep_going=True)
    assert [r["spec"]["seed"] for r in read_records(tmp_path)] == [0]


def test_keep_going_records_failures_and_retries_them(tmp_path):
    fn = Counter(fail_on=2)
    out = io.StringIO()
    recs = run_grid(specs(3), fn, tmp_path, keep_going=True, stream=out)
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    assert "RuntimeError: simulated crash" in recs[1]["error"] and "Traceback" in recs[1]["traceback"]
    assert "FAILED" in out.getvalue() and "1 failed" in out.getvalue()
    plan = run_grid(specs(3), fn, tmp_path, dry_run=True, verbose=0)
    assert [(p["status"], p["failed_before"]) for p in plan] == [("done", False), ("todo", True), ("done", False)]
    retry = Counter()
    recs = run_grid(specs(3), retry, tmp_path, verbose=0, keep_going=True)
    assert retry.calls == [RunSpec("simsiam", seed=1).run_id]
    assert [r["status"] for r in recs] == ["done"] * 3


def test_dry_run_runs_nothing_and_prints_the_plan(tmp_path):
    run_grid(specs(1), Counter(), tmp_path, verbose=0)
    fn = Counter()
    out = io.StringIO()
    plan = run_grid(specs(3), fn, tmp_path, dry_run=True, cost_fn=lambda s: 60.0 * (s.seed + 1), stream=out)
    assert fn.calls == []
    assert [p["status"] for p in plan] == ["done", "todo", "todo"]
    assert [p["estimated_seconds"] for p in plan] == [None, 120.0, 180.0]
    assert [p["run_id"] for p in plan] == [s.run_id for s in specs(3)]
    text = out.getvalue()
    assert all(s.run_id in text for s in specs(3))
    assert "1 done, 2 to run, estimated 5m00s" in text
    assert len(read_records(tmp_path)) == 1
    out = io.StringIO()
    run_grid(specs(3), fn, tmp_path, dry_run=True, stream=out)
    assert "estimated ? (no cost_fn)" in out.getvalue()


def test_progress_line_and_eta(tmp_path, monkeypatch):
    clock = iter(float(t) for t in range(0, 10_000, 5))  # every clock reading advances 5 s
    monkeypatch.setattr(runner_module, "_clock", lambda: next(clock))
    out = io.StringIO()
    run_grid(specs(3), Counter(), tmp_path, cost_fn=lambda s: 100.0, stream=out)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[run")]
    pattern = r"\[run (\d)/3\] (\S+) \| elapsed (\S+) \| ETA (\S+)$"
    parsed = [re.match(pattern, ln).groups() for ln in lines]
    assert [p[0] for p in parsed] == ["1", "2", "3"]
    assert [p[1] for p in parsed] == [s.run_id for s in specs(3)]
    assert [p[2] for p in parsed] == ["5s", "20s", "35s"]
    # first the cost estimates (3 x 100 s); then the estimates scaled by measured / estimated (5 s / 100 s)
    assert [p[3] for p in parsed] == ["5m", "10s", "5s"]
    assert "3 run(s) finished in 50s" in out.getvalue()


def test_eta_rules():
    assert runner_module._eta([100.0, 100.0], []) == 200.0
    assert runner_module._eta([100.0, None], []) is None
    assert runner_module._eta([None, None], [(30.0, None)]) == 60.0  # mean measured time per run
    assert runner_module._eta([100.0, 50.0], [(20.0, 10.0)]) == 300.0  # estimates scaled by 2
    assert runner_module._eta([], []) == 0.0


def test_resumes_records_written_by_an_earlier_process(tmp_path):
    run_grid(specs(2), Counter(), tmp_path, verbose=0)
    out = io.StringIO()
    fn = Counter()
    run_grid(specs(3), fn, tmp_path, verbose=2, stream=out)
    assert len(fn.calls) == 1
    text = out.getvalue()
    assert "2 already done, 1 to run" in text and text.count("[skip") == 2 and "[run 3/3]" in text


@pytest.mark.parametrize(
    "result, match",
    [
        (None, "metrics"),
        ({}, "metrics"),
        ({"metrics": {}}, "metrics"),
        ({"metrics": {"acc": "high"}}, "acc"),
        ({"metrics": {"acc": True}}, "acc"),
        ({"metrics": {"acc": 1.0}, "status": "done"}, "status"),
        ({"metrics": {"acc": 1.0}, "config": [1]}, "config"),
    ],
)
def test_bad_results_raise_and_write_nothing(tmp_path, result, match):
    with pytest.raises(ValueError, match=match):
        run_grid(specs(1), lambda s: result, tmp_path, verbose=0)
    assert read_records(tmp_path) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="same run twice"):
        run_grid([RunSpec("a"), RunSpec("a")], Counter(), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="run_fn"):
        run_grid(specs(1), None, tmp_path, verbose=0)
    with pytest.raises(ValueError, match="cost_fn"):
        run_grid(specs(1), Counter(), tmp_path, dry_run=True, cost_fn=lambda s: -1, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        run_grid(specs(1), Counter(), tmp_path, verbose=5)
    with pytest.raises(ValueError, match="config"):
        run_grid(specs(1), Counter(), tmp_path, config=[1], verbose=0)


def test_specs_as_dicts(tmp_path):
    recs = run_grid([RunSpec("simclr", seed=1).to_dict()], Counter(), tmp_path, verbose=0)
    assert recs[0]["run_id"] == RunSpec("simclr", seed=1).run_id


def test_format_duration():
    assert format_duration(0) == "0s"
    assert format_duration(59.6) == "1m00s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3725) == "1h02m05s"
    assert format_duration(725, coarse=True) == "12m"
    assert format_duration(float("inf")) == "?"
