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


DECADES = 12        # the gradient heat strip spans this many powers of ten


def _heat_rgb(x: float) -> tuple[int, int, int]:
    """0 near black, through red, to 1 yellow-white."""
    x = max(0.0, min(1.0, x))
    if x < 0.5:
        y = x / 0.5
        return int(30 + 180 * y), int(30 + 10 * y), int(40 - 10 * y)
    y = (x - 0.5) / 0.5
    return int(210 + 45 * y), int(40 + 200 * y), int(30 + 60 * y)


def _heat(x: float) -> Style:
    """Background colour for a gradient norm placed at ``x`` in [0, 1] of the log scale."""
    return Style(bgcolor="rgb({},{},{})".format(*_heat_rgb(x)))


def window(steps: int, t: int, width: int) -> tuple[int, int]:
    """The steps ``start:stop`` a strip of ``width`` cells shows: all, or a window holding ``t``."""
    if steps <= width:
        return 0, steps
    start = min(max(0, t - width // 2), steps - width)
    return start, start + width


def power_of_ten(ratio: float) -> str:
    """``10^-8.3``: how many decades below 1 a ratio is (``1`` and ``0`` as such)."""
    if ratio <= 0:
        return "0"
    power = math.log10(ratio)
    if power > -0.05:
        return "1"
    return f"10^{power:.1f}"


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
        self.message = ""

    def plain_text(self, width: int = 160) -> str:
        """What the view shows, as plain text (for tests)."""
        import io

        from rich.console import Console
        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        console.print(self._renderable(self.message, width))
        return console.export_text()

    def show(self, trace: Trace | None, t: int, backward: bool, message: str = "") -> None:
        self.trace, self.t, self.backward, self.message = trace, t, backward, message
        self._refresh_content()

    def on_resize(self) -> None:
        self._refresh_content()

    def _refresh_content(self) -> None:
        width = self.size.width or 120
        self.update(self._renderable(self.message, width))

    def _renderable(self, message: str, width: int = 120):
        trace = self.trace
        if trace is None:
            return Text(message or "no sample yet")
        if self.backward:
            return self._backward_view(width)
        t = self.t
        rows = []                                   # (label, now, series, low, high)
        for n in trace.order:
            values = trace.values[n]                                          # (T, size)
            rows.append((Text(str(n)), values))
            if n in trace.targets:
                rows.append((Text(f"  {n} target", "italic"), trace.targets[n]))
        cells = []
        for label, values in rows:
            low, high = float(values.min()), float(values.max())
            now = bars(values[t], min(low, 0.0), max(high, 0.0))
            now.append(f"  {_summary(values[t])}", "dim")
            cells.append((label, now, values.mean(axis=1), low, high))      # mean: (T,)
        used = max(c[0].cell_len for c in cells) + max(c[1].cell_len for c in cells) + 6
        start, stop = window(trace.steps, t, max(8, width - used - 1))
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("node", no_wrap=True)
        table.add_column(f"at t={t}", no_wrap=True)
        span = "" if (start, stop) == (0, trace.steps) else f"  (steps {start}..{stop - 1} of {trace.steps})"
        table.add_column("over time →" + span, no_wrap=True)
        for label, now, series, low, high in cells:
            table.add_row(label, now, self._strip(series[start:stop], t - start, low, high))
        parts = [table]
        if trace.hopfield:
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
            if trace.energy is not None:
                parts.extend(self._settling(trace, t))
        parts.append(Text("bars: each unit's value at t (green >= 0, red < 0);  strip: the mean "
                          "over units per step, blue < 0 < red", "dim"))
        return Group(*parts)

    @staticmethod
    def _settling(trace: Trace, t: int) -> list:
        """The energy after each sweep and the overlap with each stored pattern, up to ``t``."""
        lines = [Text(trace.settle_note, "dim")]
        energy = trace.energy[:t + 2]                                   # the cue, then sweeps 1..t+1
        low, high = float(trace.energy.min()), float(trace.energy.max())
        levels = "▁▂▃▄▅▆▇█"
        curve = "".join(levels[0 if high == low else int(round((e - low) / (high - low) * 7))] for e in energy)
        line = Text("energy (cue, then each sweep): ", "bold")
        line.append(curve, "yellow")
        line.append(f"  {energy[0]:.4g} → {energy[-1]:.4g}")
        lines.append(line)
        if trace.overlaps is not None:
            now = trace.overlaps[t + 1]
            best = int(np.argmax(now))
            for p, m in enumerate(now[:8]):
                row = Text(f"overlap with pattern {p}: ", "bold" if p == best else "")
                row.append(bars(np.array([m]), -1.0, 1.0))
                row.append(f" {m:+.2f}" + ("  ← nearest" if p == best else ""))
                lines.append(row)
            if len(now) > 8:
                lines.append(Text(f"… and {len(now) - 8} more patterns", "dim"))
        return lines

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

    # -- backward ------------------------------------------------------------------------
    def _backward_view(self, width: int):
        trace, t = self.trace, self.t
        if trace.grad_norms is None:
            return Text(trace.backward_error or "no gradients", "yellow")
        norms = trace.grad_norms
        positive = [float(v) for g in norms.values() for v in g if v > 0]
        top = math.log10(max(positive)) if positive else 0.0
        bottom = top - DECADES
        names = max(len(str(n)) for n in trace.order)
        value_width = max(12, len(f"|∂L/∂v| t={trace.steps - 1}"))
        start, stop = window(trace.steps, t, max(8, width - names - value_width - 10 - 9 - 1))
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("node", no_wrap=True)
        table.add_column(f"|∂L/∂v| t={t}", no_wrap=True, justify="right")
        table.add_column("of its max", no_wrap=True, justify="right")
        span = "" if (start, stop) == (0, trace.steps) else f"  (steps {start}..{stop - 1})"
        table.add_column(f"over time: ← the gradient flows back from t={trace.steps - 1}{span}",
                         no_wrap=True)
        for n in trace.order:
            if n not in norms:
                table.add_row(Text(str(n)), Text("—", "dim"), "", "")
                continue
            g = norms[n]                                                      # (T,)
            if n in trace.input_nodes and not np.any(g):
                table.add_row(Text(str(n)), Text("data", "dim"), "",
                              Text("an input: data, not differentiated", "dim"))
                continue
            peak = float(g.max())
            now = float(g[t])
            table.add_row(Text(str(n)), Text(f"{now:.3e}" if now else "0"),
                          Text(power_of_ten(now / peak) if peak else "—", "dim"),
                          self._heat_strip(g[start:stop], t - start, bottom, top))
        parts = [table, Text(""), self._legend(top, bottom)]
        reach = []
        for n in trace.order:
            g = norms.get(n)
            if g is None or n in trace.input_nodes or not np.any(g) or g[0] <= 0:
                continue
            reach.append(f"{n} {power_of_ten(float(g[0]) / float(g.max()))}")
        if reach:
            parts.append(Text("what is left of each node's largest gradient at t=0: "
                              + ",  ".join(reach), "dim"))
        note = []
        if trace.loss is not None:
            note.append(f"loss {trace.loss:.4g}")
        if trace.backward_note:
            note.append(trace.backward_note)
        if note:
            parts.append(Text(";  ".join(note), "dim"))
        return Group(*parts)

    def _heat_strip(self, norms: np.ndarray, t: int, bottom: float, top: float) -> Text:
        text = Text()
        for i, v in enumerate(norms):
            if i < t:                                  # the backward pass has not got here
                text.append("·", "grey35")
                continue
            if v <= 0:
                text.append("▌" if i == t else "-", Style(color="grey50", bold=i == t))
                continue
            x = (math.log10(float(v)) - bottom) / ((top - bottom) or 1.0)
            style = _heat(x)
            if i == t:
                style += Style(color="black" if x > 0.6 else "white", bold=True)
            text.append("▌" if i == t else " ", style)
        return text

    @staticmethod
    def _legend(top: float, bottom: float) -> Text:
        text = Text("colour: |∂L/∂v| on a log scale  ")
        text.append(f"1e{round(bottom)} ", "dim")
        for k in range(24):
            text.append(" ", _heat(k / 23))
        text.append(f" 1e{round(top)}\n", "dim")
        text.append("- exactly 0;  · not reached yet by the backward pass (← moves it to t-1)", "dim")
        return text


def _summary(v: np.ndarray) -> str:
    head = " ".join(f"{x:+.3f}" for x in v[:4])
    return f"[{head}{' …' if len(v) > 4 else ''}]"
