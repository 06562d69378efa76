"""The one skeleton of a study's report: a Markdown page (title, provenance, body, figure) and its CSV tables.

The robustness-gap study (`robustness.report`), rwSAM (`recipes/rwsam.py`) and ImageNet-LT
(`recipes/imagenet_lt.py`) build only their body lines, tables and figure; `write_report` writes them the same
way: `# title`, `Produced by: <provenance caption>.`, the body, the CSV files, then the figure (its Markdown
link, or a line saying why it was not drawn when matplotlib is missing).

Example:

>>> import tempfile
>>> from pathlib import Path
>>> rec = {"spec": {"method": "simclr", "preset": "cpu"}, "status": "done", "wall_seconds": 60.0,
...        "environment": {"backend": "jax", "backend_version": "0.4", "cpu_model": "Xeon", "cpu_count": 2}}
>>> text, paths = write_report(tempfile.mkdtemp(), "demo", "Demo", [rec], ["| a |", "|---|", "| 1 |", ""],
...                            tables={"csv": ([{"a": 1}], "demo.csv")})
>>> print(text)
# Demo
<BLANKLINE>
Produced by: preset cpu | jax 0.4 | Xeon x 2 CPUs, no accelerator | 1 run, 1m00s of run time.
<BLANKLINE>
| a |
|---|
| 1 |
<BLANKLINE>
>>> [(k, Path(p).name) for k, p in paths.items()]
[('table', 'demo.md'), ('csv', 'demo.csv')]
"""

from pathlib import Path

from keras_ssl_lt.experiments.aggregate import provenance, to_csv

__all__ = ["write_report"]


def write_report(out, stem, title, records, body, tables=None, figure=None):
    """Write `<out>/<stem>.md` and the report's CSV tables and figure; returns `(markdown_text, paths)`.

    Args:
        out: the results folder (created when needed).
        stem: the Markdown file's name without `.md`.
        title: the page's heading.
        records: the records reported (their provenance caption follows the heading).
        body: the page's Markdown lines after the provenance line.
        tables: optional dict `key -> (rows, file name)`, each written as CSV (`to_csv`) in order and listed
            in `paths` under its key.
        figure: optional `(file name, alt text, draw)`; `draw(path, caption)` draws the figure at `path`
            and returns its path. It is drawn after the tables; an ImportError (no matplotlib) becomes a
            "(figure not drawn: ...)" line instead of the link.

    `paths` holds "table" (the Markdown file), the `tables` keys and, when drawn, "figure".
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    caption = provenance(records)["caption"]
    lines = [f"# {title}", "", f"Produced by: {caption}.", "", *body]
    paths = {"table": out / f"{stem}.md"}
    for key, (rows, name) in (tables or {}).items():
        paths[key] = out / name
        to_csv(rows, paths[key])
    if figure is not None:
        name, alt, draw = figure
        try:
            paths["figure"] = Path(draw(out / name, caption))
            lines += [f"![{alt}]({paths['figure'].name})", ""]
        except ImportError as e:  # matplotlib is optional
            lines += [f"(figure not drawn: {e})", ""]
    text = "\n".join(lines)
    paths["table"].write_text(text)
    return text, paths
