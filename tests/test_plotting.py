"""The run's loss figure (rnngraph/plotting.py): one per thread, redrawn for
every run, must draw exactly what a new figure draws, and must leave pyplot alone."""

from __future__ import annotations

import io
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from rnngraph import plotting  # noqa: E402
from rnngraph.training.experiment import plot_history  # noqa: E402

LOG = {"train loss": (range(1, 41), 0.7 * np.exp(-np.arange(40) / 5) + 1e-3),
       "eval loss": (range(1, 41, 4), 0.7 * np.exp(-np.arange(0, 40, 4) / 5) + 2e-3)}
SHORT_SPAN = {"train loss": ((1, 2, 3, 4, 5), (0.69, 0.68, 0.68, 0.67, 0.6))}     # no eval curve
WIDE = {"train loss": ((1, 2, 3), (0.0, 150.0, 290.0)), "eval loss": ((1, 3), (0.0, 280.0))}
NEGATIVE = {"train loss": ((1, 2, 3, 4), (0.5, -0.2, -1.0, -3.0)), "eval loss": ((2, 4), (-0.1, -2.0))}
NOTHING = {"train loss": ((), ()), "eval loss": ((), ())}
CASES = [(LOG, "log"), (SHORT_SPAN, "log"), (WIDE, "log10"), (NEGATIVE, "linear"), (NOTHING, "linear")]


def pixels(figure: plotting.LossFigure, curves: dict, scale: str) -> np.ndarray:
    buf = io.BytesIO()
    figure.save(curves, buf, scale)
    buf.seek(0)
    return matplotlib.image.imread(buf, format="png")


@pytest.mark.parametrize("index", range(len(CASES)))
def test_a_reused_loss_figure_draws_what_a_new_one_draws(index):
    curves, scale = CASES[index]
    fresh = pixels(plotting.LossFigure(), curves, scale)
    reused = plotting.LossFigure()
    for other, other_scale in CASES[index + 1:] + CASES[:index]:   # every other kind first
        pixels(reused, other, other_scale)
    assert np.array_equal(pixels(reused, curves, scale), fresh)
    assert fresh.shape == (350, 600, 4)


def test_the_loss_plot_shows_the_curves_and_only_the_curves_given():
    figure = plotting.LossFigure()
    with_eval, without = pixels(figure, LOG, "log"), pixels(figure, SHORT_SPAN, "log")
    assert not np.array_equal(with_eval, without)
    assert [t.get_text() for t in figure.ax.get_legend().get_texts()] == ["train loss"]
    pixels(figure, LOG, "log")
    assert [t.get_text() for t in figure.ax.get_legend().get_texts()] == ["train loss", "eval loss"]
    assert figure.ax.get_yscale() == "log"
    pixels(figure, NEGATIVE, "linear")
    assert figure.ax.get_yscale() == "linear" and figure.ax.get_ylim()[0] < -3.0


def test_each_thread_draws_on_its_own_figure(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "eval_loss": 1.2 / e} for e in range(1, 30)]
    plot_history(history, str(tmp_path))
    expected = (tmp_path / "loss.png").read_bytes()
    failures = []

    def draw(k):
        try:
            for i in range(4):
                folder = tmp_path / f"{k}-{i}"
                folder.mkdir()
                plot_history(history, str(folder))
                if (folder / "loss.png").read_bytes() != expected:
                    failures.append(folder.name)
        except Exception as exc:   # noqa: BLE001 - reported by the assert below
            failures.append(repr(exc))
    threads = [threading.Thread(target=draw, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_plotting_a_run_leaves_pyplot_as_it_was(tmp_path):
    """A notebook's backend and open figures are its own: a run's plot is drawn off pyplot."""
    history = [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 5)]
    had_pyplot = "matplotlib.pyplot" in sys.modules
    if had_pyplot:
        import matplotlib.pyplot as plt
        backend, figures = matplotlib.get_backend(), plt.get_fignums()
    assert plot_history(history, str(tmp_path)).endswith("loss.png")
    if had_pyplot:
        assert matplotlib.get_backend() == backend and plt.get_fignums() == figures
    else:
        assert "matplotlib.pyplot" not in sys.modules
