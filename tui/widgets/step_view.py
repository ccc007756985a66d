"""Each node's values at the current step as bars, and over time as a heat strip."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..stepping import Trace

BARS = " ▁▂▃▄▅▆▇█"
MAX_UNITS = 32


def _diverging(x: float) -> Style:
    """-1 blue, 0 grey, +1 red."""
    x = max(-1.0, min(1.0, x))
    if x >= 0:
        r, g, b = 90 + int(165 * x), 90 - int(60 * x), 90 - int(60 * x)
    else:
        r, g, b = 90 + int(60 * x), 90 + int(60 * x), 90 - int(165 * x)
    return Style(bgcolor=f"rgb({r},{g},{b})")


def _heat(x: float) -> Style:
    """0 black .. 1 yellow: for gradient norms on a log scale."""
    x = max(0.0, min(1.0, x))
    return Style(bgcolor=f"rgb({int(40 + 215 * x)},{int(40 + 200 * x)},{int(40 * (1 - x))})")


def bars(values: np.ndarray, low: float, high: float) -> Text:
    """One bar per unit, height by value between ``low`` and ``high``."""
    text = Text()
    span = (high - low) or 1.0
    for v in values[:MAX_UNITS]:
        level = int(round((float(v) - low) / span * (len(BARS) - 1)))
        level = max(0, min(len(BARS) - 1, level))
        text.append(BARS[level], Style(color="red" if v < 0 else "green"))
    if len(values) > MAX_UNITS:
        text.append(f"…+{len(values) - MAX_UNITS}", "dim")
    return text


def bitmap(values: np.ndarray) -> Text:
    """A +-1 state as a square-ish picture: ██ for +1, ·· for -1."""
    n = len(values)
    cols = max(1, math.ceil(math.sqrt(n)))
    text = Text()
    for i, v in enumerate(values):
        text.append("██" if v > 0 else "··", "bold white" if v > 0 else "grey35")
        if (i + 1) % cols == 0 and i + 1 < n:
            text.append("\n")
    return text


class StepView(Static, can_focus=True):
    """Draws a ``Trace`` at step ``t`` in forward or backward mode."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.trace: Trace | None = None
        self.t = 0
        self.backward = False

    def plain_text(self, width: int = 160) -> str:
        """What the view shows, as plain text (for tests)."""
        import io

        from rich.console import Console
        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        console.print(self._renderable(""))
        return console.export_text()

    def show(self, trace: Trace | None, t: int, backward: bool, message: str = "") -> None:
        self.trace, self.t, self.backward = trace, t, backward
        self.update(self._renderable(message))

    def _renderable(self, message: str):
        trace = self.trace
        if trace is None:
            return Text(message or "no sample yet")
        t = self.t
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("node", no_wrap=True)
        table.add_column(f"at t={t}" if not self.backward else f"|∂L/∂v| at t={t}", no_wrap=True)
        table.add_column("over time " + ("(← gradient flows back)" if self.backward else "→"),
                         no_wrap=True)
        for n in trace.order:
            values = trace.values[n]                                          # (T, size)
            if self.backward:
                table.add_row(n, *self._grad_row(n, t))
                continue
            low, high = float(values.min()), float(values.max())
            now = bars(values[t], min(low, 0.0), max(high, 0.0))
            now.append(f"  {_summary(values[t])}", "dim")
            table.add_row(n, now, self._strip(values.mean(axis=1), t, low, high))
            if n in trace.targets:
                target = trace.targets[n]
                tlow, thigh = float(target.min()), float(target.max())
                row = bars(target[t], min(tlow, 0.0), max(thigh, 0.0))
                row.append(f"  {_summary(target[t])}", "dim")
                table.add_row(Text(f"  {n} target", "italic"), row,
                              self._strip(target.mean(axis=1), t, tlow, thigh))
        parts = [table]
        if trace.hopfield and not self.backward:
            for n in trace.hopfield:
                pictures = Table.grid(padding=(0, 4))
                heads, cells = [], []
                if n in trace.initial:
                    heads.append(Text(f"{n} before t=0 (the cue)", "bold"))
                    cells.append(bitmap(trace.initial[n]))
                heads.append(Text(f"{n} at t={t}  (██ = +1)", "bold"))
                cells.append(bitmap(trace.values[n][t]))
                pictures.add_row(*heads)
                pictures.add_row(*cells)
                parts.append(Text(""))
                parts.append(pictures)
        if self.backward:
            note = trace.backward_error or "brighter = larger gradient norm (log scale)"
            if trace.loss is not None:
                note = f"loss {trace.loss:.4g};  " + note
            parts.append(Text(note, "dim" if not trace.backward_error else "yellow"))
        return Group(*parts)

    def _strip(self, series: np.ndarray, t: int, low: float, high: float) -> Text:
        text = Text()
        scale = max(abs(low), abs(high)) or 1.0
        for i, v in enumerate(series):
            if i > t:
                text.append("·", "grey35")
            elif i == t:
                text.append("▌", _diverging(float(v) / scale) + Style(color="white", bold=True))
            else:
                text.append(" ", _diverging(float(v) / scale))
        return text

    def _grad_row(self, n, t: int):
        trace = self.trace
        if trace.grad_norms is None or n not in trace.grad_norms:
            return Text("—", "dim"), Text("")
        norms = np.asarray(trace.grad_norms[n], dtype=float)                  # (T,)
        logs = np.log10(norms + 1e-12)
        top = max(float(logs.max()), -12.0)
        bottom = max(top - 6.0, -12.0)                                        # six decades shown
        text = Text()
        for i, lv in enumerate(logs):
            x = (float(lv) - bottom) / ((top - bottom) or 1.0)
            if i < t:
                text.append("·", "grey35")
            else:
                text.append("▌" if i == t else " ", _heat(x))
        return Text(f"{norms[t]:.3e}"), text


def _summary(v: np.ndarray) -> str:
    head = " ".join(f"{x:+.3f}" for x in v[:4])
    return f"[{head}{' …' if len(v) > 4 else ''}]"
