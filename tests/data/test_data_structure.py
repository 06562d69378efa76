"""The data layer's module structure: the imports among its modules form a DAG, no private name crosses a
module, and no module passes 600 lines (issue 20's structure rules, checked so they cannot regress)."""

import ast
import pathlib

import pytest

import keras_ssl_lt.data as data

ROOT = pathlib.Path(data.__file__).parent
MODULES = sorted(p.stem for p in ROOT.glob("*.py") if p.stem != "__init__")
MAX_LINES = 600


def _imports(name):
    """(data modules imported, private names imported from them or from any keras_ssl_lt module)."""
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    deps, private = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_ssl_lt"):
            if node.module.startswith("keras_ssl_lt.data."):
                deps.add(node.module.rsplit(".", 1)[1])
            private += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            deps |= {a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("keras_ssl_lt.data.")}
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                private.append(ast.unparse(node))
    return deps, private


def test_import_graph_is_a_dag_without_private_names():
    graph = {}
    for name in MODULES:
        deps, private = _imports(name)
        assert not private, f"data/{name}.py uses private names of other objects or modules: {private}"
        graph[name] = deps
    assert set().union(*graph.values()) <= set(MODULES)
    done, visiting = set(), []

    def visit(m):
        if m in visiting:
            pytest.fail(f"import cycle among data modules: {' -> '.join([*visiting[visiting.index(m) :], m])}")
        if m in done:
            return
        visiting.append(m)
        for d in sorted(graph[m]):
            visit(d)
        visiting.pop()
        done.add(m)

    for m in MODULES:
        visit(m)


def test_batch_planning_has_one_home_below_both_pipelines():
    for name in ("pipeline", "streaming"):
        assert "batching" in _imports(name)[0]
    assert not {"pipeline", "streaming", "sources"} & _imports("batching")[0]
    assert "streaming" not in _imports("sources")[0] and "pipeline" not in _imports("streaming")[0]


@pytest.mark.parametrize("name", MODULES)
def test_module_at_most_600_lines(name):
    lines = len((ROOT / f"{name}.py").read_text().splitlines())
    assert lines <= MAX_LINES, f"data/{name}.py has {lines} lines (> {MAX_LINES}): split it by concept"
