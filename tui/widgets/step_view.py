"""Each node's values at the current step as bars, and over time as a heat strip."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..equations import vertex_equation
from ..gradients import decade_range, density_glyph, legend, log_plot, markers, share_of_largest
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


GRADED = ((0.5, "██", "bold white"), (0.0, "▓▓", "white"), (-0.5, "░░", "grey62"))


def bitmap(values: np.ndarray, lit: int | None = None) -> Text:
    """A +-1 state as a square-ish picture: ██ for +1, ·· for -1 (graded values of a
    continuous net: ██ above 0.5, ▓▓ above 0, ░░ above -0.5, else ··); unit ``lit`` (the
    one just updated) is ◆◆ (now +1) or ◇◇, highlighted."""
    n = len(values)
    cols = max(1, math.ceil(math.sqrt(n)))
    text = Text()
    for i, v in enumerate(values):
        if i == lit:
            text.append("◆◆" if v > 0 else "◇◇", "bold black on yellow")
        else:
            glyph, style = next(((g, st) for low, g, st in GRADED if v > low), ("··", "grey35"))
            text.append(glyph, style)
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
        self.selected = 0                 # the row (index into trace.order) linked to its vertex
        self.compare: Trace | None = None   # a second network's trace, drawn beside this one
        self.compare_name = ""
        self.spec_name = ""
        self.updates: int | None = None     # async Hopfield: the single-unit updates applied so far

    def plain_text(self, width: int = 160) -> str:
        """What the view shows, as plain text (for tests)."""
        import io

        from rich.console import Console
        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        console.print(self._renderable(self.message, width))
        return console.export_text()

    def show(self, trace: Trace | None, t: int, backward: bool, message: str = "",
             selected: int | None = None, compare: Trace | None = None, names: tuple[str, str] = ("", ""),
             update: int | None = None) -> None:
        """Draw ``trace`` at step ``t``; row ``selected`` of ``trace.order`` is linked to its
        vertex; ``compare`` (another spec's trace) is plotted beside it, ``names`` label the two;
        ``update``: for an async Hopfield net, the state after that many single-unit updates."""
        self.trace, self.t, self.backward, self.message = trace, t, backward, message
        self.updates = update
        self.selected, self.compare = selected, compare
        self.spec_name, self.compare_name = names
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
        chosen = self.chosen()
        for n in trace.order:
            values = trace.values[n]                                          # (T, size)
            rows.append((Text(f"▶ {n}", "bold reverse") if n == chosen else Text(f"  {n}"), values))
            if n in trace.targets:
                rows.append((Text(f"    {n} target", "italic"), trace.targets[n]))
        cells = []
        for label, values in rows:
            low, high = float(values.min()), float(values.max())
            now = bars(values[t], min(low, 0.0), max(high, 0.0))
            now.append(f"  {_summary(values[t])}", "dim")
            cells.append((label, now, values.mean(axis=1), low, high))      # mean: (T,)
        names = max(c[0].cell_len for c in cells)
        # names whole; the values give way first, then the strip keeps at least 12 steps
        now_width = min(max(c[1].cell_len for c in cells), max(8, width - names - 6 - 12))
        for c in cells:
            c[1].truncate(now_width, overflow="ellipsis")
        start, stop = window(trace.steps, t, max(8, width - names - now_width - 6 - 1))
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("node", no_wrap=True, min_width=names)
        table.add_column(f"at t={t}", no_wrap=True)
        span = "" if (start, stop) == (0, trace.steps) else f"  (steps {start}..{stop - 1} of {trace.steps})"
        table.add_column("over time →" + span, no_wrap=True)
        for label, now, series, low, high in cells:
            table.add_row(label, now, self._strip(series[start:stop], t - start, float(np.abs(series).max())))
        parts = [table, self._vertex(chosen, t)]
        if trace.hopfield and trace.unit_states is not None and self.updates is not None:
            parts.extend(self._units(trace, self.updates, width))
        elif trace.hopfield:
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
        parts.append(Text("bars: each unit's value at t (green >= 0, red < 0);  strip: the mean over "
                          "units per step, ░▒▓█ its size (█ the node's largest), blue < 0 < red;  "
                          "▲▼: pick the node", "dim"))
        return Group(*parts)

    @staticmethod
    def _units(trace: Trace, k: int, width: int) -> list:
        """An async Hopfield net after ``k`` single-unit updates: the state with the unit
        just updated highlighted, what it did to the energy, the energy so far, the overlaps."""
        n = trace.unit_states.shape[1]
        total = len(trace.unit_order)
        state = trace.unit_states[k]
        lit = int(trace.unit_order[k - 1]) if k else None
        name = trace.hopfield[0]
        where = f"sweep {(k - 1) // n + 1}, unit {lit}" if k else "the cue"
        pictures = Table.grid(padding=(0, 4))
        pictures.add_row(Text(f"{name} before t=0 (the cue)", "bold"),
                         Text(f"{name} after update {k} of {total} ({where})", "bold"))
        pictures.add_row(bitmap(trace.unit_states[0]), bitmap(state, lit))
        energies = trace.unit_energy
        lines = [Text(""), pictures, Text("██ = +1, ·· = -1;  ◆◆ / ◇◇ the unit just updated (now +1 / -1)", "dim")]
        if k:
            before = trace.unit_states[k - 1][lit]
            did = "flipped" if before != state[lit] else "kept"
            lines.append(Text(f"update {k}: unit {lit} {did} {before:+.0f} → {state[lit]:+.0f};  energy "
                              f"{energies[k - 1]:.4g} → {energies[k]:.4g} (ΔE = {energies[k] - energies[k - 1]:+.3g})",
                              "bold"))
        else:
            lines.append(Text(f"the cue: energy {energies[0]:.4g};  → updates one unit, ] a whole sweep", "bold"))
        lines.append(Text(trace.settle_note.replace("t = sweep t+1", "→ one unit update, ] one sweep"), "dim"))
        room = max(10, width - 40)
        shown = np.unique(np.linspace(0, k, min(k + 1, room)).round().astype(int))
        low, high = float(energies.min()), float(energies.max())
        levels = "▁▂▃▄▅▆▇█"
        curve = "".join(levels[0 if high == low else int(round((energies[i] - low) / (high - low) * 7))]
                        for i in shown)
        line = Text("energy (cue, then each update): ", "bold")
        line.append(curve, "yellow")
        line.append(f"  {energies[0]:.4g} → {energies[k]:.4g}")
        lines.append(line)
        if trace.patterns is not None:
            lines.extend(_overlap_lines(state @ trace.patterns.T / n))
        return lines

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
            lines.extend(_overlap_lines(trace.overlaps[t + 1]))
        return lines

    def chosen(self):
        """The node whose row is marked ▶ and whose vertex is shown: row ``selected``, or
        (``selected`` None) the first node that is not an input."""
        order = self.trace.order
        if self.selected is None:
            return next((n for n in order if n not in self.trace.input_nodes), order[0])
        return order[self.selected % len(order)]

    def _vertex(self, node, t: int) -> Text:
        """The selected row as a vertex of the unrolled graph: its equation at ``t`` and the
        values it reads (the table's link to the picture of the Unroll screen)."""
        trace = self.trace
        text = Text("this step in the graph: ", "bold")
        graph = getattr(trace.net, "graph", None)
        if graph is None or node not in graph:
            return text
        shapes = {k: tuple(v.shape) for k, v in trace.net.params.items()}
        equation, _ = vertex_equation(graph, node, t, shapes)
        text.append(equation)
        reads = []
        for u, _, a in graph.in_edges(node, data=True):
            s = t - int(a.get("delay", 0))
            if u in trace.values and 0 <= s < trace.steps:
                reads.append(f"{u}@{s} = {_summary(trace.values[u][s])}")
            elif u in trace.values and s < 0:
                reads.append(f"{u}@{s} = its init")
        text.append(f"   = {_summary(trace.values[node][t])}")
        if self.backward and trace.grads is not None and node in trace.grads:
            text.append(f"\n  ∂L/∂{node}@{t} = {_summary(trace.grads[node][t])}", "bold")
        if reads:
            text.append("\n  reads " + ",  ".join(reads), "dim")
        return text

    def _strip(self, series: np.ndarray, t: int, scale: float) -> Text:
        """The series as glyphs: density ░▒▓█ by size over ``scale`` (the largest size of the
        whole series; readable without colour), colour by sign."""
        text = Text()
        scale = scale or 1.0
        for i, v in enumerate(series):
            x = float(v) / scale
            if i > t:
                text.append("·", "grey35")
            elif i == t:
                text.append("▌", _diverging(x) + Style(color="white", bold=True))
            else:
                text.append(density_glyph(abs(x)), Style(color=_diverging(x).bgcolor))
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
        share_width = len("vs its largest")
        start, stop = window(trace.steps, t, max(8, width - (names + 2) - value_width - share_width - 9 - 1))
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("node", no_wrap=True, min_width=names + 2)
        table.add_column(f"|∂L/∂v| t={t}", no_wrap=True, justify="right", min_width=value_width)
        table.add_column("vs its largest", no_wrap=True, justify="right", min_width=share_width)
        span = "" if (start, stop) == (0, trace.steps) else f"  (steps {start}..{stop - 1})"
        table.add_column(f"over time: ← the gradient flows back from t={trace.steps - 1}{span}",
                         no_wrap=True, overflow="ellipsis", max_width=max(8, stop - start))
        chosen = self.chosen()
        for n in trace.order:
            label = Text(f"▶ {n}", "bold reverse") if n == chosen else Text(f"  {n}")
            if n not in norms:
                table.add_row(label, Text("—", "dim"), "", "")
                continue
            g = norms[n]                                                      # (T,)
            if n in trace.input_nodes and not np.any(g):
                table.add_row(label, Text("data", "dim"), "",
                              Text("an input: data, not differentiated", "dim"))
                continue
            peak = float(g.max())
            now = float(g[t])
            table.add_row(label, Text(f"{now:.3e}" if now else "0"),
                          Text(share_of_largest(now / peak) if peak else "—", "dim"),
                          self._heat_strip(g[start:stop], t - start, bottom, top))
        parts = [table, self._vertex(chosen, t), Text(""), self._legend(top, bottom)]
        reach = []
        for n in trace.order:
            g = norms.get(n)
            if g is None or n in trace.input_nodes or not np.any(g) or g[0] <= 0:
                continue
            reach.append(f"{n} {share_of_largest(float(g[0]) / float(g.max()))}")
        if reach:
            parts.append(Text("at t=0, each node's gradient as a share of its largest: "
                              + ",  ".join(reach), "dim"))
        parts.append(Text(""))
        parts.extend(self._plots(width))
        note = []
        if trace.loss is not None:
            note.append(f"loss {trace.loss:.4g}")
        if trace.backward_note:
            note.append(trace.backward_note)
        if note:
            parts.append(Text(";  ".join(note), "dim"))
        return Group(*parts)

    def _plots(self, width: int) -> list:
        """log10 |dL/dv| against t for every differentiated node; with a second spec
        loaded, both side by side on one y-axis so the one whose gradient vanishes shows."""
        traces = [(self.spec_name or "this spec", self.trace)]
        if self.compare is not None and self.compare.grad_norms is not None:
            traces.append((self.compare_name or "the other spec", self.compare))
        elif self.compare is not None:
            traces.append((self.compare_name, None))
        series = [_plotted(tr) if tr is not None else {} for _, tr in traces]
        decades = decade_range([g for s in series for g in s.values()])
        plot_width = max(24, (width - 4 * (len(traces) - 1)) // len(traces))
        blocks = []
        for (name, tr), nodes in zip(traces, series):
            if tr is None:
                blocks.append([name, "  no gradients: " + (self.compare.backward_error or "?")])
                continue
            marks = markers(list(nodes))
            lines = log_plot(nodes, plot_width, 10, decades, marks,
                             title=f"log10 |∂L/∂v| against t: {name}")
            lines.extend(_wrap(legend(marks), plot_width))
            blocks.append(lines)
        height = max(len(b) for b in blocks)
        out = []
        for r in range(height):
            row = Text()
            for i, block in enumerate(blocks):
                cell = block[r] if r < len(block) else ""
                row.append(cell[:plot_width].ljust(plot_width) + ("    " if i < len(blocks) - 1 else ""),
                           "bold" if r == 0 else "")
            out.append(row)
        if len(blocks) == 1:
            out.append(Text("c: compare with another spec side by side (e.g. specs/lstm_adding.yaml)", "dim"))
        return out

    def _heat_strip(self, norms: np.ndarray, t: int, bottom: float, top: float) -> Text:
        """Norms on the log scale: glyph density ░▒▓█ (readable without colour) and colour."""
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
                text.append("▌", style)
            else:
                text.append(density_glyph(x), Style(color=style.bgcolor))
        return text

    @staticmethod
    def _legend(top: float, bottom: float) -> Text:
        text = Text("strip: |∂L/∂v| on a log scale  ")
        text.append(f"10^{round(bottom)} ", "dim")
        for k in range(24):
            text.append(density_glyph(k / 23), Style(color=_heat(k / 23).bgcolor))
        text.append(f" 10^{round(top)}\n", "dim")
        text.append("- exactly 0;  · not reached yet by the backward pass (← takes it one step "
                    "back in time)", "dim")
        return text


def _overlap_lines(overlaps: np.ndarray) -> list:
    """One bar per stored pattern (up to 8): the overlap ``m_p = x . pattern_p / N``, the nearest marked."""
    best = int(np.argmax(overlaps))
    lines = []
    for p, m in enumerate(overlaps[:8]):
        row = Text(f"overlap with pattern {p}: ", "bold" if p == best else "")
        row.append(bars(np.array([m]), -1.0, 1.0))
        row.append(f" {m:+.2f}" + ("  ← nearest" if p == best else ""))
        lines.append(row)
    if len(overlaps) > 8:
        lines.append(Text(f"… and {len(overlaps) - 8} more patterns", "dim"))
    return lines


def _wrap(line: str, width: int) -> list[str]:
    """``line`` broken at double spaces into lines of at most ``width`` characters."""
    out, current = [], ""
    for item in line.split("  "):
        if current and len(current) + 2 + len(item) > width:
            out.append(current)
            current = item
        else:
            current = f"{current}  {item}" if current else item
    return out + [current]


def _plotted(trace: Trace) -> dict:
    """``{node: (T,) norms}`` of the nodes the backward pass differentiates (not inputs, not all 0)."""
    return {n: g for n, g in (trace.grad_norms or {}).items()
            if n not in trace.input_nodes and np.any(g)}


def _summary(v: np.ndarray) -> str:
    head = " ".join(f"{x:+.3f}" for x in v[:4])
    return f"[{head}{' …' if len(v) > 4 else ''}]"
