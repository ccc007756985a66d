"""What the PNG plots of runs and sweeps share, and a run's loss figure.

Everything here imports matplotlib when first called (the callers check that
it is installed).  Figures are made with matplotlib's object API (a
``Figure`` on an Agg canvas, ``new_figure``), never pyplot, so a caller's
backend and pyplot's figure list are left alone.

``save_loss_plot(curves, fh, scale)`` draws a run's ``loss.png``.  Building a
figure's axes and ticks costs about as much as drawing them, so each thread
keeps one loss figure and redraws it for every run it saves (a sweep's batch
writes its runs' folders one after another).  A redrawn figure is pixel for
pixel what a new one draws (a test checks it); it keeps the matplotlib style
in force when the thread made it.  The train curve is always the first
colour and the eval curve the second.
"""

from __future__ import annotations

import threading

LOSS_CURVES = (("train loss", {}), ("eval loss", {"marker": "o", "markersize": 3}))


def plain_log_axis(ax) -> None:
    """Put ``ax``'s y axis on a log scale labelled with plain numbers ("0.6",
    "2e-05"), thinned as matplotlib's own labels are.  Its default labels are
    mathtext ($10^{-1}$), whose layout takes most of a small plot's time."""
    from matplotlib import ticker

    class PlainLog(ticker.LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.3g}"
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLog(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(PlainLog(labelOnlyBase=False))


def new_figure(width: float, height: float):
    """A ``(figure, axes)`` of ``width`` x ``height`` inches at 100 dpi on its own
    Agg canvas: pyplot's backend and figure list are not touched, so nothing
    needs closing and the caller's own pyplot session is left as it was."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


class LossFigure:
    """One run's loss curves, train and eval, against the epoch: a 600 x 350
    pixel figure whose curves are replaced at every ``save``.  Not thread-safe:
    ``save_loss_plot`` gives each thread its own."""

    def __init__(self):
        self.figure, self.ax = new_figure(6, 3.5)
        self.lines = {label: self.ax.plot([], [], label=label, **style)[0] for label, style in LOSS_CURVES}
        self.ax.set_xlabel("epoch")
        self.figure.subplots_adjust(left=0.18, right=0.97, bottom=0.14, top=0.96)   # tight_layout costs a render

    def save(self, curves: dict, fh, scale: str) -> None:
        """Draw ``curves`` {label: (epochs, losses)} (labels of ``LOSS_CURVES``;
        an empty or missing curve is not drawn) as a PNG into the binary file
        ``fh``.  ``scale``: ``"log"`` (positive losses), ``"log10"`` (the
        losses given are already log10, on a linear axis) or ``"linear"``."""
        ax = self.ax
        shown = []
        for label, line in self.lines.items():
            epochs, losses = curves.get(label) or ((), ())
            line.set_data(epochs, losses)
            if len(epochs):
                shown.append(line)
        ax.set_ylabel("log10 loss" if scale == "log10" else "loss")
        if scale == "log":
            plain_log_axis(ax)
        else:
            ax.set_yscale("linear")
        ax.set_autoscale_on(True)
        if shown:
            ax.relim()
            ax.autoscale_view()
            ax.legend(handles=shown)
        else:   # no finite loss: the empty axes of a new figure
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        self.figure.savefig(fh, format="png")


_figures = threading.local()


def save_loss_plot(curves: dict, fh, scale: str) -> None:
    """``LossFigure.save`` on this thread's loss figure (made at its first plot)."""
    figure = getattr(_figures, "loss", None)
    if figure is None:
        figure = _figures.loss = LossFigure()
    figure.save(curves, fh, scale)
