"""Figures: valid PNG files, argument checks, and a clear error without matplotlib."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from keras_ssl_lt.experiments import figures, plot_bars, plot_relative_gap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def gap_rows():
    rows = []
    for method, g in (("simsiam", 0.05), ("moco_v2", 0.06), ("supervised", 0.2)):
        for n, scale in ((1550, 1.5), (3101, 1.2), (12406, 1.0)):
            rows.append(
                {
                    "method": method,
                    "profile": "exp",
                    "ratio": 0.01,
                    "n": float(n),
                    "rel_gap_mean": g * scale,
                    "rel_gap_std": 0.01,
                }
            )
    return rows


def summary_rows():
    return [
        {"method": m, "sharpness": s, "n_seeds": 3, "knn_mean": a, "knn_std": 0.01, "floor_knn_mean": 0.27}
        for m, s, a in (("simsiam", "none", 0.42), ("simsiam", "sam", 0.44), ("simsiam", "rwsam", 0.45))
    ]


def read_png(path):
    image = pytest.importorskip("matplotlib.image").imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_relative_gap_figure_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    ood = [dict(r, rel_gap_mean=2 * r["rel_gap_mean"]) for r in gap_rows()]
    path = plot_relative_gap(
        {"ID": gap_rows(), "OOD": ood},
        tmp_path / "figs" / "gap.png",
        title="Figure 1",
        caption="preset cpu | jax 0.4 | Xeon x 2 CPUs | 36 runs, 1h02m of run time",
    )
    assert Path(path).read_bytes()[:8] == PNG_MAGIC
    image = read_png(path)
    assert image.shape[1] > image.shape[0]  # two panels side by side
    assert sorted(os.listdir(tmp_path / "figs")) == ["gap.png"]  # no temporary file left


def test_relative_gap_lines_split_by_varying_fields(tmp_path):
    pytest.importorskip("matplotlib")
    rows = gap_rows() + [dict(r, profile="step") for r in gap_rows()]
    read_png(plot_relative_gap({"ID": rows}, tmp_path / "gap.png"))
    with pytest.raises(ValueError, match="same n"):
        plot_relative_gap({"ID": rows + [dict(rows[0], rel_gap_mean=0.5)]}, tmp_path / "bad.png")


def test_supervised_methods_are_told_apart():
    assert figures._is_supervised("Supervised", figures.SUPERVISED_METHODS)
    assert not figures._is_supervised("simsiam", figures.SUPERVISED_METHODS)
    assert figures._is_supervised("sup_ce", ("sup_ce",))


def test_relative_gap_bad_input(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="rows_by_panel"):
        plot_relative_gap([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no rows"):
        plot_relative_gap({"ID": []}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="'n'"):
        plot_relative_gap({"ID": [dict(gap_rows()[0], n=None)]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r".png"):
        plot_relative_gap({"ID": gap_rows()}, tmp_path / "x.pdf")


def test_bar_chart_with_floors(tmp_path):
    pytest.importorskip("matplotlib")
    for floor in (True, 0.27, None):
        path = plot_bars(
            summary_rows(), "knn", tmp_path / f"bars_{floor}.png", floor=floor, title="rwSAM", caption="preset cpu"
        )
        assert Path(path).read_bytes()[:8] == PNG_MAGIC
        read_png(path)
    with pytest.raises(ValueError, match="floor"):
        plot_bars(summary_rows(), "knn", tmp_path / "b.png", floor="yes")
    with pytest.raises(ValueError, match="floor_acc_mean"):
        plot_bars([{"acc_mean": 0.5}], "acc", tmp_path / "b.png", floor=True)
    with pytest.raises(ValueError, match="empty"):
        plot_bars([], "knn", tmp_path / "b.png")


def test_clear_error_without_matplotlib(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"keras-ssl-lt\[recipes\]"):
        plot_relative_gap({"ID": gap_rows()}, tmp_path / "gap.png")
    with pytest.raises(ImportError, match=r"keras-ssl-lt\[recipes\]"):
        plot_bars(summary_rows(), "knn", tmp_path / "bars.png")


def test_package_imports_without_matplotlib():
    # Importing the package (experiments included) must not need matplotlib; only drawing a figure does.
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "import keras_ssl_lt\n"
        "from keras_ssl_lt import experiments\n"
        "print(experiments.parse_seeds('2'))\n"
    )
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[0, 1]"
