"""What the PNG plots of runs and sweeps share (matplotlib, imported by the caller)."""

from __future__ import annotations


def plain_log_axis(ax, ticker) -> None:
    """Put ``ax``'s y axis on a log scale labelled with plain numbers ("0.6",
    "2e-05"), thinned as matplotlib's own labels are.  Its default labels are
    mathtext ($10^{-1}$), whose layout takes most of a small plot's time."""
    class PlainLog(ticker.LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.3g}"
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLog(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(PlainLog(labelOnlyBase=False))
