"""Draw a ``tui.layout.Layout`` as lines of rich ``Text`` with box-drawing.

Edges are routed orthogonally: out of the source's right side, along the
source's row to the target's track in the channel after the source's layer,
along the track to the target's row, and into the target with an arrowhead.
Cells remember which directions lines leave them in, so joins and crossings
get the right box-drawing character.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from .layout import Layout

__all__ = ["render_layout", "STYLES"]

N, E, S, W = 1, 2, 4, 8
_LINE = {
    0: " ", N: "│", S: "│", N | S: "│", E: "─", W: "─", E | W: "─",
    E | S: "┌", W | S: "┐", N | E: "└", N | W: "┘",
    N | S | E: "├", N | S | W: "┤", E | W | S: "┬", E | W | N: "┴", N | E | S | W: "┼",
}

STYLES = {
    "edge": Style(color="grey62"),
    "feedback": Style(color="yellow"),
    "input": Style(color="green"),
    "hidden": Style(color="cyan"),
    "output": Style(color="magenta"),
    "block": Style(color="blue", bold=True),
    "ghost": Style(color="yellow", dim=True),
    "header": Style(color="white", bold=True),
    "selected": Style(reverse=True, bold=True),
    "label": Style(),
}


class _Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.dirs = [[0] * width for _ in range(height)]
        self.chars: list[list[str | None]] = [[None] * width for _ in range(height)]
        self.styles: list[list[Style | None]] = [[None] * width for _ in range(height)]

    def _ok(self, x, y):
        return 0 <= x < self.width and 0 <= y < self.height

    def hline(self, x0, x1, y, style):
        if x0 > x1:
            x0, x1 = x1, x0
        for x in range(x0, x1 + 1):
            if not self._ok(x, y):
                continue
            if x > x0:
                self.dirs[y][x] |= W
            if x < x1:
                self.dirs[y][x] |= E
            self.styles[y][x] = style

    def vline(self, x, y0, y1, style):
        if y0 > y1:
            y0, y1 = y1, y0
        for y in range(y0, y1 + 1):
            if not self._ok(x, y):
                continue
            if y > y0:
                self.dirs[y][x] |= N
            if y < y1:
                self.dirs[y][x] |= S
            self.styles[y][x] = style

    def put(self, x, y, text, style):
        for i, ch in enumerate(text):
            if self._ok(x + i, y):
                self.chars[y][x + i] = ch
                self.styles[y][x + i] = style

    def box(self, x, y, w, h, lines, style, dashed=False):
        hz, vt = ("┄", "┆") if dashed else ("─", "│")
        self.put(x, y, "┌" + hz * (w - 2) + "┐", style)
        for row in range(1, h - 1):
            self.put(x, y + row, vt + " " * (w - 2) + vt, style)
        self.put(x, y + h - 1, "└" + hz * (w - 2) + "┘", style)
        top = y + 1 + max(0, (h - 2 - len(lines)) // 2)
        for i, line in enumerate(lines):
            pad = (w - 2 - len(line)) // 2
            self.put(x + 1 + pad, top + i, line, style)

    def lines(self) -> list[Text]:
        out = []
        for y in range(self.height):
            text = Text(no_wrap=True, overflow="crop")
            run, run_style = [], None
            for x in range(self.width):
                ch = self.chars[y][x]
                if ch is None:
                    ch = _LINE.get(self.dirs[y][x], "┼")
                style = self.styles[y][x]
                if style is not run_style and run:
                    text.append("".join(run), run_style)
                    run = []
                run_style = style
                run.append(ch)
            if run:
                text.append("".join(run), run_style)
            out.append(text)
        return out


def render_layout(layout: Layout, selected=None) -> list[Text]:
    """The picture as one ``Text`` per row; ``selected`` is drawn reversed."""
    canvas = _Canvas(max(layout.width, 1), max(layout.height, 1))
    vs = layout.vertices
    for u, v, kind in layout.segments:
        a, b = vs[u], vs[v]
        if b.layer != a.layer + 1:
            continue
        style = STYLES.get(kind, STYLES["edge"])
        li = a.layer
        sx = layout.layer_x[li] if a.is_dummy else a.x + a.w
        if a.is_dummy:
            canvas.hline(layout.layer_x[li], layout.channel_x[li], a.port, style)
        tx = layout.tracks[(li, v)]
        canvas.hline(sx, tx, a.port, style)
        canvas.vline(tx, a.port, b.port, style)
        end = layout.layer_x[li + 1] if b.is_dummy else b.x - 1
        canvas.hline(tx, end, b.port, style)
        if not b.is_dummy:
            canvas.put(b.x - 1, b.port, "▶", style)
    for v in vs.values():
        if v.is_dummy:
            continue
        style = STYLES.get(v.kind, STYLES["label"])
        if v.id == selected:
            style = style + STYLES["selected"]
        canvas.box(v.x, v.y, v.w, v.h, v.lines, style, dashed=v.kind == "ghost")
    for x, text in layout.headers:
        canvas.put(x, 0, text, STYLES["header"])
    return canvas.lines()
