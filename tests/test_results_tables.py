"""docs/results.md's tables are generated from the committed records (scripts/results_tables.py), never typed."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_matches_its_records(tables):
    text = tables.PAGE.read_text()
    _, changed = tables.regenerate(text)
    assert not changed, (
        f"docs/results.md is out of date with docs/records: run python scripts/results_tables.py ({changed})"
    )
    # every table the script knows is on the page, so none can silently drop out of it
    for name in tables.BLOCKS:
        assert f"<!-- table: {name} " in text and f"<!-- end table: {name} -->" in text, name


def test_a_typed_number_is_caught(tables):
    text = tables.PAGE.read_text()
    start = text.index("<!-- table: rwsam_cpu ")
    row = text.index("| plain |", start)
    edited = text[:row] + text[row:].replace("41.89", "43.89", 1)
    assert edited != text
    new, changed = tables.regenerate(edited)
    assert changed == ["rwsam_cpu"] and new == text


def test_unknown_table_name_is_refused(tables):
    page = "<!-- table: nope (generated from docs/records by scripts/results_tables.py; do not edit) -->\nx\n<!-- end table: nope -->\n"
    with pytest.raises(ValueError, match="nope"):
        tables.regenerate(page)


def test_control_verdicts(tables):
    assert tables._verdict(0.02, 0.01, 1) == "one seed: no verdict"
    assert tables._verdict(0.005, 0.01, 3) == "within the seeds' spread"
    assert tables._verdict(0.02, 0.01, 3) == "the weights help"
    assert tables._verdict(-0.02, 0.01, 3) == "the weights hurt"
    w = {"m_mean": 0.50, "m_std": 0.01, "n_seeds": 3}
    c = {"m_mean": 0.47, "m_std": 0.02, "n_seeds": 2}
    d, spread, n = tables._beyond(w, c, "m")
    assert abs(d - 0.03) < 1e-12 and spread == 0.02 and n == 2  # the larger std, the fewer seeds
