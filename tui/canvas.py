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


# the ops of _draw_ops: a horizontal line (y, x0, x1), a vertical one (x, y0, y1), a
# character (x, y, code); each with a style id last
_H, _V, _P = 0, 1, 2


def _expand(lo, hi):
    """For intervals ``lo[i]..hi[i]`` (inclusive): each cell's interval and position."""
    counts = hi - lo + 1
    which = np.repeat(np.arange(len(lo)), counts)
    starts = np.cumsum(counts) - counts
    return which, lo[which] + np.arange(counts.sum()) - starts[which]


def _last_per_cell(flat, seq):
    """Indices of the last write (highest ``seq``) to each cell of ``flat``."""
    order = np.lexsort((seq, flat))
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = flat[order][1:] != flat[order][:-1]
    return order[keep]


def _draw_ops(canvas: "_Canvas", ops: list) -> None:
    """Draw ``ops`` (all at once, with the result of drawing them one by one in order).

    A line adds to each cell it crosses the directions it leaves that cell in, so
    joins and crossings get the right character; the last op to touch a cell gives
    it its style (and a character op its character).  Cells off the canvas are skipped.
    """
    if not ops:
        return
    table = np.array(ops, dtype=np.int64)
    seq_all = np.arange(len(table))
    kind, p, q, r, sid = table.T
    height, width = canvas.height, canvas.width
    ys, xs, bits, seqs, sids = [], [], [], [], []
    for k, (on_low, on_high) in ((_H, (W, E)), (_V, (N, S))):
        sel = kind == k
        lo, hi = np.minimum(q[sel], r[sel]), np.maximum(q[sel], r[sel])
        which, along = _expand(lo, hi)
        fixed = p[sel][which]
        cell_bits = (np.where(along > lo[which], on_low, 0)
                     | np.where(along < hi[which], on_high, 0)).astype(np.uint8)
        y, x = (fixed, along) if k == _H else (along, fixed)
        ys.append(y), xs.append(x), bits.append(cell_bits)
        seqs.append(seq_all[sel][which]), sids.append(sid[sel][which])
    sel = kind == _P
    ys.append(q[sel]), xs.append(p[sel]), bits.append(np.zeros(sel.sum(), dtype=np.uint8))
    seqs.append(seq_all[sel]), sids.append(sid[sel])
    y, x, bit, seq, style = (np.concatenate(a) for a in (ys, xs, bits, seqs, sids))
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    y, x, bit, seq, style = y[inside], x[inside], bit[inside], seq[inside], style[inside]
    np.bitwise_or.at(canvas.dirs, (y, x), bit)
    flat = y * width + x
    last = _last_per_cell(flat, seq)
    canvas.style_ids.flat[flat[last]] = style[last]
    chars = sel[seq]
    if chars.any():
        cflat, cseq = flat[chars], seq[chars]
        last = _last_per_cell(cflat, cseq)
        canvas.chars.flat[cflat[last]] = r[cseq[last]]


def render_layout(layout: Layout, selected=None,
                  checkpoint: Callable[[], None] | None = None) -> list[Text]:
    """The picture as one ``Text`` per row; ``selected`` is drawn reversed.

    ``checkpoint`` is called now and then; an exception it raises stops the drawing
    (a picture nobody waits for any more).
    """
    canvas = _Canvas(max(layout.width, 1), max(layout.height, 1))
    vs = layout.vertices
    ops = []   # the edges' lines and arrowheads, drawn at once by _draw_ops
    for i, (u, v, kind) in enumerate(layout.segments):
        if checkpoint is not None and i % 256 == 0:
            checkpoint()
        a, b = vs[u], vs[v]
        if b.layer != a.layer + 1:
            continue
        sid = canvas._sid(STYLES.get(kind, STYLES["edge"]))
        li = a.layer
        sx = layout.layer_x[li] if a.is_dummy else a.x + a.w
        if a.is_dummy:
            ops.append((_H, a.port, layout.layer_x[li], layout.channel_x[li], sid))
        tx = layout.tracks.get((li, v), layout.channel_x[li])   # no track: a straight run
        ops.append((_H, a.port, sx, tx, sid))
        ops.append((_V, tx, a.port, b.port, sid))
        end = layout.layer_x[li + 1] if b.is_dummy else b.x - 1
        ops.append((_H, b.port, tx, end, sid))
        if not b.is_dummy:
            ops.append((_P, b.x - 1, b.port, ord("▶"), sid))
    if checkpoint is not None:
        checkpoint()
    _draw_ops(canvas, ops)
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
