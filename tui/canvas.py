"""Draw a ``tui.layout.Layout`` as lines of rich ``Text`` with box-drawing.

Edges are routed orthogonally: out of the source's right side, along the
source's row to the target's track in the channel after the source's layer,
along the track to the target's row, and into the target with an arrowhead
(straight across when source and target share a row).
Cells remember which directions lines leave them in, so joins and crossings
get the right box-drawing character.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from rich.style import Style
from rich.text import Span, Text

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


_LUT = np.array([ord(_LINE.get(d, "┼")) for d in range(16)], dtype=np.uint32)


class _Canvas:
    """A grid of cells: line directions, written characters (0: none) and style ids (0: none)."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.dirs = np.zeros((height, width), dtype=np.uint8)
        self.chars = np.zeros((height, width), dtype=np.uint32)
        self.style_ids = np.zeros((height, width), dtype=np.uint16)
        self._styles: list[Style | None] = [None]
        self._ids: dict[int, int] = {}

    def _sid(self, style: Style) -> int:
        sid = self._ids.get(id(style))
        if sid is None:
            sid = self._ids[id(style)] = len(self._styles)
            self._styles.append(style)
        return sid

    def hline(self, x0, x1, y, style):
        if x0 > x1:
            x0, x1 = x1, x0
        if not 0 <= y < self.height:
            return
        lo, hi = max(x0, 0), min(x1, self.width - 1)
        if lo > hi:
            return
        row = self.dirs[y]
        row[max(x0 + 1, lo):hi + 1] |= W
        row[lo:min(x1, hi + 1)] |= E
        self.style_ids[y, lo:hi + 1] = self._sid(style)

    def vline(self, x, y0, y1, style):
        if y0 > y1:
            y0, y1 = y1, y0
        if not 0 <= x < self.width:
            return
        lo, hi = max(y0, 0), min(y1, self.height - 1)
        if lo > hi:
            return
        col = self.dirs[:, x]
        col[max(y0 + 1, lo):hi + 1] |= N
        col[lo:min(y1, hi + 1)] |= S
        self.style_ids[lo:hi + 1, x] = self._sid(style)

    def put(self, x, y, text, style):
        if not 0 <= y < self.height or not text:
            return
        lo, hi = max(x, 0), min(x + len(text), self.width)
        if lo >= hi:
            return
        codes = np.frombuffer(text[lo - x:hi - x].encode("utf-32-le"), dtype=np.uint32)
        self.chars[y, lo:hi] = codes
        self.style_ids[y, lo:hi] = self._sid(style)

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

    def lines(self, checkpoint: Callable[[], None] | None = None) -> list[Text]:
        out = []
        codes = np.where(self.chars != 0, self.chars, _LUT[self.dirs])
        for y in range(self.height):
            if checkpoint is not None and y % 4 == 0:
                checkpoint()
            string = codes[y].tobytes().decode("utf-32-le")
            ids = self.style_ids[y]
            cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), self.width]
            spans = [Span(a, b, self._styles[ids[a]]) for a, b in zip(cuts, cuts[1:])
                     if ids[a]]
            out.append(Text(string, no_wrap=True, overflow="crop", spans=spans))
        return out


def render_layout(layout: Layout, selected=None,
                  checkpoint: Callable[[], None] | None = None) -> list[Text]:
    """The picture as one ``Text`` per row; ``selected`` is drawn reversed.

    ``checkpoint`` is called now and then; an exception it raises stops the drawing
    (a picture nobody waits for any more).
    """
    canvas = _Canvas(max(layout.width, 1), max(layout.height, 1))
    vs = layout.vertices
    for i, (u, v, kind) in enumerate(layout.segments):
        if checkpoint is not None and i % 64 == 0:
            checkpoint()
        a, b = vs[u], vs[v]
        if b.layer != a.layer + 1:
            continue
        style = STYLES.get(kind, STYLES["edge"])
        li = a.layer
        sx = layout.layer_x[li] if a.is_dummy else a.x + a.w
        if a.is_dummy:
            canvas.hline(layout.layer_x[li], layout.channel_x[li], a.port, style)
        tx = layout.tracks.get((li, v), layout.channel_x[li])   # no track: a straight run
        canvas.hline(sx, tx, a.port, style)
        canvas.vline(tx, a.port, b.port, style)
        end = layout.layer_x[li + 1] if b.is_dummy else b.x - 1
        canvas.hline(tx, end, b.port, style)
        if not b.is_dummy:
            canvas.put(b.x - 1, b.port, "▶", style)
    for i, v in enumerate(vs.values()):
        if checkpoint is not None and i % 256 == 0:
            checkpoint()
        if v.is_dummy:
            continue
        style = STYLES.get(v.kind, STYLES["label"])
        if v.id == selected:
            style = style + STYLES["selected"]
        canvas.box(v.x, v.y, v.w, v.h, v.lines, style, dashed=v.kind == "ghost")
    for x, text in layout.headers:
        canvas.put(x, 0, text, STYLES["header"])
    return canvas.lines(checkpoint)
