"""Every ```python block of README.md and docs/*.md runs, as a newcomer who pastes the page would run it.

The rule: the blocks of one page run **in order, in one fresh namespace** (a newcomer pasting the page top to
bottom into one interpreter), in a fresh temporary working directory, once, under `KERAS_BACKEND=torch` (the
suite's time budget; the unit tests check every backend), and again under each backend a block is written for. A
later block may use the names an earlier block of the same page defined; nothing else is defined for it. The
blocks use tiny sizes (the demo images of `keras_ssl_lt.data.demo_images`, small backbones, one epoch) and
say the paper's values in comments.

A block can be marked by an HTML comment on the line just before its opening fence (visible in the markdown
source, invisible on the rendered page):

- `<!-- docs-test: skip REASON -->`: not run. Only for what cannot run in a test at all (several hosts,
  paper-scale training); every skipped block is listed in `SKIPPED` below, so skips cannot grow silently.
- `<!-- docs-test: backend NAME -->`: written for one backend's engine (`tf.distribute` on TensorFlow,
  `keras.distribution` on JAX); runs only under that `KERAS_BACKEND`, and is counted in `BACKEND_ONLY`.
- `<!-- docs-test: signature MODULE -->`: a block of call signatures `name(arg, key=default, ...) -> T`; each
  must list exactly the parameters, order and defaults of `MODULE.name` (`inspect.signature`).

Shell commands are ```bash blocks (or plain ``` blocks) and are not run; ```py / ```python3 fences are refused,
so a Python block cannot escape the test by its spelling.
"""

import ast
import inspect
import os
import re
import time
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
MARKER = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")

# Every skipped block: (page, the reason its marker gives). Adding a skip means adding it here.
SKIPPED = {
    ("docs/scaling.md", "needs two hosts (or two processes): jax.distributed cannot start inside a test process"),
}
# The backend every page runs on (the fastest here: PyTorch's eager steps compile nothing); pages with a block
# written for another backend also run on that one.
PAGES_BACKEND = "torch"
# Every block that runs on one backend only: (page, backend).
BACKEND_ONLY = {
    ("docs/scaling.md", "jax"),
    ("docs/scaling.md", "tensorflow"),
}


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def blocks(path):
    """The fenced blocks of a markdown file: dicts with `lang`, `line` (1-based, of the fence), `code`, `marker`."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        body, i = [], i + 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{_rel(path)}:{start + 1}: a fenced block that is never closed")
        prev = lines[start - 1].strip() if start else ""
        marker = MARKER.match(prev)
        if prev.startswith("<!--") and "docs-test" in prev and marker is None:
            raise AssertionError(f"{_rel(path)}:{start}: malformed docs-test marker {prev!r}")
        out.append(
            {
                "lang": lang,
                "line": start + 1,
                "code": "\n".join(body) + "\n",
                "marker": (marker.group(1), marker.group(2)) if marker else None,
            }
        )
        i += 1
    return out


def python_blocks(path):
    return [b for b in blocks(path) if b["lang"] == "python"]


def _check_signatures(block, module_name, where):
    """Each `name(params) [-> T]` of the block lists exactly `module.name`'s parameters, order and defaults."""
    import importlib

    module = importlib.import_module(module_name)
    text = re.sub(r"\)\s*->\s*[^\n]+", ")", block["code"])  # drop return annotations
    calls = ast.parse(text).body
    assert calls, f"{where}: an empty signature block"
    for stmt in calls:
        assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call), (
            f"{where}: not a call: {ast.unparse(stmt)}"
        )
        call = stmt.value
        name = ast.unparse(call.func)
        obj = getattr(module, name, None)
        assert obj is not None, f"{where}: {module_name} has no `{name}`"
        documented = [(a.id, inspect.Parameter.empty) for a in call.args] + [
            (k.arg, ast.literal_eval(k.value)) for k in call.keywords
        ]
        actual = [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]
        assert documented == actual, f"{where}: `{name}` is documented as {documented}, the code has {actual}"


def _reset_global_state():
    """Undo what a page may set process-wide (a distribution, a dtype policy), so later tests start clean."""
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in p.read_text(encoding="utf-8")], ids=_rel)
def test_page_runs_as_pasted(page, tmp_path, monkeypatch, capsys):
    backend = keras.backend.backend()
    if backend != PAGES_BACKEND and (_rel(page), backend) not in BACKEND_ONLY:
        # The suite's time budget: each page runs once, on the fastest backend here; the package's behaviour on
        # every backend is what the unit tests check. A page with a block written for this backend runs here too.
        pytest.skip(f"pages run on {PAGES_BACKEND}; this page has no block written for {backend}")
    namespace = {"__name__": "__main__"}  # a fresh interpreter's globals
    monkeypatch.chdir(tmp_path)
    ran, start = 0, time.perf_counter()
    try:
        for block in python_blocks(page):
            where = f"{_rel(page)}:{block['line']}"
            kind, arg = block["marker"] or (None, None)
            if kind == "skip":
                continue
            if kind == "backend" and arg != backend:
                continue
            if kind == "signature":
                _check_signatures(block, arg, where)
                continue
            assert kind in (None, "backend"), f"{where}: unknown docs-test marker {kind!r}"
            code = compile(block["code"], where, "exec")
            exec(code, namespace)  # running the docs is the point of this test
            ran += 1
    finally:
        _reset_global_state()
    with capsys.disabled():
        if os.environ.get("KSL_DOCS_TIMES"):
            print(f"\n  {_rel(page)}: {ran} block(s) in {time.perf_counter() - start:.1f} s on {backend}")


def test_markers_are_listed_and_valid():
    """Skips and backend-only blocks are exactly the listed ones; every marker is known and names a block."""
    skipped, backend_only = set(), set()
    for page in PAGES:
        for block in blocks(page):
            where = f"{_rel(page)}:{block['line']}"
            assert block["lang"] not in ("py", "python3", "pycon", "Python"), f"{where}: write ```python"
            if block["marker"] is None:
                continue
            kind, arg = block["marker"]
            assert block["lang"] == "python", f"{where}: a docs-test marker on a ```{block['lang']} block"
            assert kind in ("skip", "backend", "signature"), f"{where}: unknown docs-test marker {kind!r}"
            if kind == "skip":
                assert arg, f"{where}: a skip needs a reason"
                skipped.add((_rel(page), arg))
            elif kind == "backend":
                assert arg in ("tensorflow", "jax", "torch"), f"{where}: unknown backend {arg!r}"
                backend_only.add((_rel(page), arg))
            else:
                assert arg.startswith("keras_ssl_lt"), f"{where}: a signature block names its module"
    assert skipped == SKIPPED, f"skipped blocks changed: {sorted(skipped ^ SKIPPED)}"
    assert backend_only == BACKEND_ONLY, f"backend-only blocks changed: {sorted(backend_only ^ BACKEND_ONLY)}"


def test_every_page_is_collected():
    """The pages with Python blocks are all collected, and the parser finds the fences (a bad fence would hide one)."""
    counts = {_rel(p): len(python_blocks(p)) for p in PAGES}
    assert counts["README.md"] >= 1
    assert sum(counts.values()) >= 20, counts
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert text.count("```python") == len(python_blocks(page)), _rel(page)


def test_signature_check_can_fail(tmp_path):
    """The signature check refuses a parameter the code does not have (the check itself is not a no-op)."""
    bad = {"code": 'make_subset(labels, profile="exp", ratios=None)\n'}
    with pytest.raises(AssertionError, match="make_subset"):
        _check_signatures(bad, "keras_ssl_lt.data", "test")
    good = {"code": "check_class_groups(class_groups, num_classes=None)\n"}
    _check_signatures(good, "keras_ssl_lt.evaluation", "test")


API_MODULES = (
    "keras_ssl_lt.data",
    "keras_ssl_lt.augment",
    "keras_ssl_lt.backbones",
    "keras_ssl_lt.losses",
    "keras_ssl_lt.methods",
    "keras_ssl_lt.optimizers",
    "keras_ssl_lt.rwsam",
    "keras_ssl_lt.evaluation",
    "keras_ssl_lt.callbacks",
    "keras_ssl_lt.experiments",
    "keras_ssl_lt.theory",
    "keras_ssl_lt.training",
)


def _public_names(module):
    """`__all__`, or (without one) the names a package's `__init__` imports from its own files."""
    import types

    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        k
        for k, v in vars(module).items()
        if not k.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", "").startswith(module.__name__)
    }


def test_api_page_lists_every_public_object():
    """docs/api.md: every path in its tables imports, and every public name of a listed subpackage is there."""
    import importlib

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(keras_ssl_lt(?:\.\w+)+)`", text, flags=re.M)
    assert len(listed) > 100, len(listed)
    for path in listed:
        module_name, _, name = path.rpartition(".")
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"docs/api.md lists `{path}`, which does not import"
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        missing = sorted(n for n in _public_names(module) if f"{module_name}.{n}" not in listed)
        assert not missing, f"docs/api.md does not list {module_name}: {missing}"
