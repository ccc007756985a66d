"""Draw a ``tui.layout.Layout`` as lines of rich ``Text`` with box-drawing.

Edges are routed orthogonally: out of the source's right side, along the
source's row to the target's track in the channel after the source's layer,
along the track to the target's row, and into the target with an arrowhead
(straight across when source and target share a row).
Cells remember which directions lines leave them in, so joins and crossings
get the right box-drawing character.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np
from rich.style import Style
from rich.text import Span, Text

from .layout import Layout

__all__ = ["render_layout", "STYLES", "LineGrid"]

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


_DOUBLE = {N: "║", S: "║", N | S: "║", E: "═", W: "═", E | W: "═", E | S: "╔", W | S: "╗", N | E: "╚",
           N | W: "╝", N | S | E: "╠", N | S | W: "╣", E | W | S: "╦", E | W | N: "╩", N | E | S | W: "╬"}
_STRAIGHT = (N | S, E | W)


class LineGrid:
    """Cells of text and of lines; lines remember which arc (bus) drew them, so
    that lines of different arcs that cross are drawn crossing, not joined:
    where two straight lines cross, the horizontal one is broken (``║``,
    ``│``), or ``╪``/``╫`` where a light and a double line cross.  Lines only
    join where one of them ends or turns (arcs into the same box)."""

    def __init__(self) -> None:
        self.text: dict = {}                         # (x, y) -> (char, style)
        self.lines: dict = defaultdict(dict)         # (x, y) -> {bus: [bits, double, style]}

    def put(self, x: int, y: int, text: str, style) -> None:
        for i, ch in enumerate(text):
            self.text[(x + i, y)] = (ch, style)

    def path(self, bus, points: list, double: bool, style) -> None:
        """An orthogonal polyline through ``points`` drawn for ``bus``."""
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 != x1 and y0 != y1:
                raise ValueError("path segments are horizontal or vertical")
            step = (1 if x1 > x0 else -1 if x1 < x0 else 0, 1 if y1 > y0 else -1 if y1 < y0 else 0)
            ahead = {(1, 0): E, (-1, 0): W, (0, 1): S, (0, -1): N}.get(step, 0)
            back = {E: W, W: E, S: N, N: S}.get(ahead, 0)
            x, y = x0, y0
            while True:
                cell = self.lines[(x, y)].setdefault(bus, [0, double, style])
                if (x, y) != (x0, y0):
                    cell[0] |= back
                if (x, y) == (x1, y1):
                    break
                cell[0] |= ahead
                x, y = x + step[0], y + step[1]

    def glyph(self, entries: dict):
        """The character and style of a cell crossed by the lines of ``entries``."""
        items = list(entries.values())
        if len(items) == 1:
            bits, double, style = items[0]
            return (_DOUBLE if double else _LINE).get(bits, " "), style
        if all(bits in _STRAIGHT for bits, _, _ in items):
            vertical = [i for i in items if i[0] == N | S]
            horizontal = [i for i in items if i[0] == E | W]
            if vertical and horizontal:        # a crossing: the lines do not meet
                v, h = vertical[0], horizontal[0]
                if v[1] != h[1]:
                    return ("╫" if v[1] else "╪"), (v if v[1] else h)[2]
                return ("║" if v[1] else "│"), v[2]
        bits = 0
        for b, _, _ in items:
            bits |= b
        double = any(d for _, d, _ in items)
        style = next(s for _, d, s in items if d == double)
        return (_DOUBLE if double else _LINE).get(bits, "┼"), style

    def render(self, width: int, height: int, checkpoint=None) -> list:
        rows = [[(" ", None)] * width for _ in range(height)]
        for i, ((x, y), entries) in enumerate(self.lines.items()):
            if checkpoint is not None and i % 512 == 0:
                checkpoint()
            if 0 <= x < width and 0 <= y < height:
                rows[y][x] = self.glyph(entries)
        for (x, y), cell in self.text.items():
            if 0 <= x < width and 0 <= y < height:
                rows[y][x] = cell
        out = []
        for y, row in enumerate(rows):
            if checkpoint is not None and y % 16 == 0:
                checkpoint()
            string = "".join(ch for ch, _ in row)
            spans, begin = [], 0
            for x in range(1, width + 1):
                if x == width or row[x][1] is not row[begin][1]:
                    if row[begin][1] is not None:
                        spans.append(Span(begin, x, row[begin][1]))
                    begin = x
            out.append(Text(string, no_wrap=True, overflow="crop", spans=spans))
        return out


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
    joins get the right character; the last op to touch a cell gives it its style
    (and a character op its character).  A cell that lines only pass straight
    through, some across and some up or down, with none ending or turning there,
    is a crossing: drawn as the vertical line over a broken horizontal one
    (``│``), never as ``┼``, so an edge is not seen joining one it only crosses.
    Cells off the canvas are skipped.
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
    canvas.dirs.flat[_crossings(flat[bit != 0], bit[bit != 0])] = N | S
    last = _last_per_cell(flat, seq)
    canvas.style_ids.flat[flat[last]] = style[last]
    chars = sel[seq]
    if chars.any():
        cflat, cseq = flat[chars], seq[chars]
        last = _last_per_cell(cflat, cseq)
        canvas.chars.flat[cflat[last]] = r[cseq[last]]


def _crossings(flat: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """The cells (flat indices) where every line passes straight through (``bits`` of
    each line's pass, per cell), some horizontally and some vertically."""
    if not len(flat):
        return flat
    order = np.argsort(flat, kind="stable")
    flat, bits = flat[order], bits[order]
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    horizontal, vertical = bits == (E | W), bits == (N | S)
    straight = np.logical_and.reduceat(horizontal | vertical, starts)
    both = np.logical_or.reduceat(horizontal, starts) & np.logical_or.reduceat(vertical, starts)
    return flat[starts][straight & both]


def _draw_loops(canvas: _Canvas, layout: Layout) -> None:
    """The delayed edges as double-line loops (``Layout.loops``), over the light lines."""
    if not layout.loops:
        return
    grid = LineGrid()
    feedback = STYLES["feedback"]
    for loop in layout.loops:
        a, b = layout.vertices[loop.source], layout.vertices[loop.target]
        grid.path(("from", loop.source), [(a.x + a.w, a.y + 1), (loop.down_x, a.y + 1),
                                          (loop.down_x, loop.band_y)], True, feedback)
        grid.path(("loop", loop.key), [(loop.down_x, loop.band_y), (loop.up_x, loop.band_y),
                                       (loop.up_x, b.y + 1)], True, feedback)
        grid.path(("into", loop.target), [(loop.up_x, b.y + 1), (b.x - 1, b.y + 1)], True, feedback)
    for (x, y), entries in grid.lines.items():
        if not (0 <= x < canvas.width and 0 <= y < canvas.height):
            continue
        light = int(canvas.dirs[y, x])
        if light and not canvas.chars[y, x]:
            entries = {**entries, "light": [light, False, canvas._styles[canvas.style_ids[y, x]]]}
        char, style = grid.glyph(entries)
        canvas.put(x, y, char, style)
    for loop in layout.loops:   # the delay, on the loop's own row
        left, right = sorted((loop.down_x, loop.up_x))
        label = f" z^-{loop.delay} "
        if right - left > len(label) + 1:
            canvas.put(left + (right - left - len(label)) // 2 + 1, loop.band_y, label, feedback)


def _entry_rows(layout: Layout) -> dict:
    """``{(channel, target): row}`` for the targets whose line in would overlap the line out
    of the source on their row (that line runs on past the target's track): their lines
    come in one row higher, on the label row, when no loop enters there."""
    vs = layout.vertices
    reach = {}                                     # (channel, source) -> its farthest track
    for u, v, _ in layout.segments:
        a, b = vs[u], vs[v]
        tx = layout.tracks.get((a.layer, v))
        if b.layer == a.layer + 1 and tx is not None:
            reach[(a.layer, a.port)] = max(reach.get((a.layer, a.port), tx), tx)
    looped = {loop.target for loop in layout.loops}
    entry = {}
    for (li, v), tx in layout.tracks.items():
        b = vs[v]
        if not b.is_dummy and v not in looped and b.port != b.y + 1 and reach.get((li, b.port), tx) > tx:
            entry[(li, v)] = b.y + 1
    return entry


def render_layout(layout: Layout, selected=None,
                  checkpoint: Callable[[], None] | None = None) -> list[Text]:
    """The picture as one ``Text`` per row; ``selected`` is drawn reversed.

    ``checkpoint`` is called now and then; an exception it raises stops the drawing
    (a picture nobody waits for any more).
    """
    canvas = _Canvas(max(layout.width, 1), max(layout.height, 1))
    vs = layout.vertices
    entry = _entry_rows(layout)
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
        row = entry.get((li, v), b.port)
        ops.append((_V, tx, a.port, row, sid))
        end = layout.layer_x[li + 1] if b.is_dummy else b.x - 1
        ops.append((_H, row, tx, end, sid))
        if not b.is_dummy:
            ops.append((_P, b.x - 1, row, ord("▶"), sid))
    if checkpoint is not None:
        checkpoint()
    _draw_ops(canvas, ops)
    _draw_loops(canvas, layout)
    for i, v in enumerate(vs.values()):
        if checkpoint is not None and i % 256 == 0:
            checkpoint()
        if v.is_dummy:
            continue
        style = STYLES.get(v.kind, STYLES["label"])
        if v.id == selected:
            style = style + STYLES["selected"]
        canvas.box(v.x, v.y, v.w, v.h, v.lines, style, dashed=v.kind == "ghost")
    feedback = STYLES["feedback"]
    for loop in layout.loops:   # where each loop leaves its source and enters its target
        a, b = vs[loop.source], vs[loop.target]
        canvas.put(a.x + a.w - 1, a.y + 1, "╞", feedback)
        canvas.put(b.x - 1, b.y + 1, "▶", feedback)
    for x, text in layout.headers:
        canvas.put(x, 0, text, STYLES["header"])
    return canvas.lines(checkpoint)
