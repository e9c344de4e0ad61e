"""The deferral plot: log cost axis, legend outside the curves, the trial shown named."""

from __future__ import annotations

import json
import os

import pytest

from uniroute.evaluation import plots

RESULT = {
    "models": {"big": {"cost": 1.0, "quality": 0.9}, "small": {"cost": 0.01, "quality": 0.5}},
    "curves": {
        "uniroute-kmeans": {"costs": [1.0, 0.3, 0.01], "qualities": [0.9, 0.85, 0.5]},
        "oracle": {"costs": [0.2, 0.0], "qualities": [0.95, 0.5]},  # a zero cost is drawn at the floor
    },
}


@pytest.fixture()
def figures(monkeypatch):
    kept = []

    def keep(fig, plt, path):
        fig.canvas.draw()
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return kept


def test_log_cost_axis_and_legend_outside_the_axes(figures, tmp_path) -> None:
    shown = {**RESULT, "trials": 20, "curves_shown": {"trial": 1, "pool": ["big", "small"]}}
    plots.deferral_plot(shown, tmp_path / "d.png", "Deferral curves (unseen protocol)")
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["uniroute-kmeans", "oracle"]
    renderer = fig.canvas.get_renderer()
    # the legend box starts right of the axes box: it cannot cover a curve
    assert legend.get_window_extent(renderer).x0 > ax.get_window_extent(renderer).x1
    assert "trial 1 of 20 shown, pool: big, small" in ax.get_title()
    assert min(min(line.get_xdata()) for line in ax.get_lines()) > 0  # log axis: no point at 0


def test_files_are_written(tmp_path) -> None:
    path = plots.deferral_plot(RESULT, tmp_path / "d.png")
    assert path.stat().st_size > 1000


def test_a_plot_that_fails_midway_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    """A crash while the PNG was written (full disk, Ctrl-C) left half a file over the last run's plot."""
    import matplotlib.image

    def half_then_fail(target, *args, **kwargs):
        if isinstance(target, (str, os.PathLike)):
            target = open(target, "wb")  # left open, as a dying process leaves it
        target.write(b"half a png")
        target.flush()
        raise OSError("No space left on device")

    path = tmp_path / "d.png"
    path.write_bytes(b"last run's plot")
    monkeypatch.setattr(matplotlib.image, "imsave", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        plots.deferral_plot(RESULT, path)
    assert path.read_bytes() == b"last run's plot" and [p.name for p in tmp_path.iterdir()] == ["d.png"]


def test_eval_cli_names_the_trial_its_unseen_plot_shows(figures, tmp_path, make_data) -> None:
    from test_evaluation_cli import _eval, _write

    data = tmp_path / "all.jsonl"
    _write(data, make_data(20, 0, 5))
    args = ["--protocol", "unseen", "--trials", "2", "--bootstrap", "0", "--pools", "1", "--map", "kmeans"]
    assert _eval(data, tmp_path / "out", tmp_path, *args) == 0
    shown = json.loads((tmp_path / "out" / "results.json").read_text())["curves_shown"]
    title = figures[0].axes[0].get_title()
    assert title.startswith("Deferral curves (unseen protocol)")
    assert f"trial 1 of 2 shown, pool: {', '.join(shown['pool'])}" in title
