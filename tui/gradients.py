"""Pictures of gradients made of characters: a log-scale plot of |dL/dv| against t.

Pure functions on numpy arrays (no Textual, no colour needed): the Step
screen draws them, tests read them as text.  A hand-written plot rather than
plotext because it must mark one series per node with its own letter, share a
y-axis between two networks placed side by side, and read in a monochrome
terminal; plotext's braille dots and colours do neither at 40 columns.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DENSITY", "density_glyph", "share_of_largest", "markers", "log_plot", "decade_range", "legend"]

DENSITY = " ░▒▓█"     # from nothing to full: readable without colour


def density_glyph(x: float) -> str:
    """The glyph for ``x`` in [0, 1]: ``░`` faint .. ``█`` full (values outside are clipped).

    Anything above 0 gets at least ``░``, so a small but non-zero value is
    not drawn as blank."""
    x = max(0.0, min(1.0, float(x)))
    if x <= 0.0:
        return DENSITY[0]
    return DENSITY[max(1, min(len(DENSITY) - 1, int(math.ceil(x * (len(DENSITY) - 1)))))]


def share_of_largest(ratio: float) -> str:
    """``ratio`` (a gradient over its largest) in words: ``largest``, ``63%``, ``0.52%``, ``3e-09``."""
    if ratio <= 0:
        return "zero"
    if ratio >= 0.995:
        return "largest"
    if ratio >= 0.01:
        return f"{ratio:.0%}"
    if ratio >= 1e-4:
        return f"{ratio:.2%}"
    return f"{ratio:.0e}"


def markers(names: list) -> dict:
    """One marker character per name: its first letter if free, else a digit.

    ``{name: char}``; the letters let a learner read a plot without a legend."""
    taken: dict = {}
    used = set()
    for name in sorted(names, key=lambda n: len(str(n).split("/")[-1])):   # one-letter names keep theirs
        last = str(name).split("/")[-1]
        char = next((c for c in last + str(name) if c.isalnum() and c not in used), None)
        if char is None:
            char = next(c for c in "123456789*+#@%&=" + "abcdefghijklmnopqrstuvwxyz" if c not in used)
        used.add(char)
        taken[name] = char
    return {name: taken[name] for name in names}


def decade_range(series: list[np.ndarray]) -> tuple[int, int]:
    """``(low, high)`` whole powers of ten holding every positive value of ``series`` (at least one decade)."""
    positive = [float(v) for s in series for v in np.ravel(s) if v > 0 and math.isfinite(v)]
    if not positive:
        return -1, 0
    low = math.floor(math.log10(min(positive)))
    high = math.ceil(math.log10(max(positive)))
    return low, max(high, low + 1)


def log_plot(series: dict, width: int, height: int = 10, decades: tuple[int, int] | None = None,
             marks: dict | None = None, title: str = "") -> list[str]:
    """A plot of ``log10 |dL/dv|`` against ``t``, one marker character per node.

    ``series``: ``{node: (T,) norms}``, all of one length T.  ``width`` is the
    whole plot's width in characters (y labels included); when T is larger
    than the plotting width, each column shows the mean log of its steps.
    ``decades``: the y-axis as ``(low, high)`` powers of ten (default: what
    the values need), so two plots side by side can share it.  Zeros are not
    drawn (log 0 is -inf).  Returns the lines: an optional title, ``height``
    rows with ``10^k`` labels on the left, the t axis and its labels.
    """
    names = list(series)
    marks = marks or markers(names)
    low, high = decades or decade_range(list(series.values()))
    steps = max((len(v) for v in series.values()), default=0)
    label_width = max(len(f"10^{k}") for k in (low, high)) + 1
    columns = max(4, width - label_width - 1)
    columns = min(columns, max(steps, 1)) if steps <= columns else columns
    grid = [[" "] * columns for _ in range(height)]
    span = high - low
    for name in names:
        values = np.asarray(series[name], dtype=float)
        for c in range(columns):
            a = c * len(values) // columns
            b = max(a + 1, (c + 1) * len(values) // columns)
            chunk = values[a:b]
            chunk = chunk[chunk > 0]
            if not len(chunk):
                continue
            y = float(np.mean(np.log10(chunk)))
            row = int(round((high - y) / span * (height - 1)))
            grid[max(0, min(height - 1, row))][c] = marks[name]
    labelled = {}
    every = max(1, math.ceil(span / 5))
    for k in range(high, low - 1, -1):
        if (high - k) % every == 0 or k == low:
            labelled.setdefault(int(round((high - k) / span * (height - 1))), f"10^{k}")
    lines = [title] if title else []
    for r in range(height):
        lines.append(f"{labelled.get(r, ''):>{label_width - 1}} ┤" + "".join(grid[r]))
    lines.append(" " * label_width + "└" + "─" * columns)
    last = max(steps - 1, 0)
    axis = f"t=0{' ' * max(1, columns - len(f't=0') - len(f't={last}'))}t={last}"
    lines.append(" " * (label_width + 1) + axis[:max(columns, len(axis))])
    return lines


def legend(marks: dict) -> str:
    """``h hidden  y y``: which marker is which node."""
    return "  ".join(f"{char} {name}" for name, char in marks.items())
