"""The unrolled DAG drawn as textbooks draw it: time across, layers stacked.

``unrolled_picture(graph, T, start=, window=)`` asks the engine for the DAG
(``rnngraph.engine.graph.unroll``) and draws columns ``start .. start+window-1``:

* one column per time step, headed ``t=3``; in it the vertices of that step,
  one box per node, inputs at the bottom and outputs at the top (a node's
  height is its longest delay-0 path from an input, ``layout.node_layers``);
* an arc of the same step (delay 0) is a light line ending in ``▲`` under its
  target: straight up between neighbours, else along a lane left of the boxes;
* an arc from an earlier step (delay ``d >= 1``) is a double line ``═║`` from
  the source's right side to the target's left side, ending in ``▶``: arcs of
  delay 1 run in the gap between adjacent columns, longer ones along a band
  under the columns.  Arcs from before the window (or from initial states,
  ``t < 0``) start at dashed boxes in a column on the left;
* an arc from a later step (a negative delay, ``d <= -1``: a look-ahead or a
  backward-running block) runs the other way, from the source's left side to
  the target's right side, ending in ``◀``, one row lower in the box (boxes
  are four rows high then) and in its own colour, so the two directions
  never share a line.  Arcs from after the window (or from the initial
  states past the end, ``t >= T``) start at dashed boxes in a column on the
  right;
* the outputs of the steps where the loss counts have a heavy border ``┏━┓``
  and their column a ``loss`` mark under ``t=``.

``compact=True`` draws each box as one row (``│fc@0│``, ``┃y@0┃`` where the
loss counts; two rows with arcs from later steps) and, when that is
unambiguous, names a block's parts without the block (``fc`` for
``lstm/fc``): an expanded LSTM then fits 120x40.  ``fitted_picture`` picks
the largest drawing that fits a given size.

Lines of different arcs that cross are drawn as crossings (the horizontal one
broken, or ``╪``/``╫`` where a light and a double line cross), never as joins;
lines only join where they lead into the same box.  Nothing here imports Textual.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import networkx as nx
from rich.style import Style

from rnngraph.engine.graph import unroll

from .canvas import STYLES, LineGrid
from .layout import Vertex, node_layers, vertex_label

__all__ = ["Picture", "unrolled_picture", "fitted_picture", "LEGEND"]

BOX_H = 3          # a box: border, label, border
GAP_H = 2          # rows between boxes: the entry row of the box above, the exit row of the box below
TOP = 3            # rows above the first box: t=, loss mark, blank
LEGEND = "│▲ same step    ═▶ from an earlier step (delay)    ┏━┓ loss counted at this step"
LEGEND_AHEAD = "│▲ same step  ═▶ from an earlier step  ◀═ from a later step  ┏━┓ loss counted"
LEGEND_SHORT = "│▲ same step  ═▶ earlier step  ┏━┓ loss"   # for pictures narrower than the legend
LEGEND_AHEAD_SHORT = "│▲ same step  ═▶ earlier  ◀═ later  ┏━┓ loss"

STYLE_LOSS = Style(color="magenta", bold=True)
STYLE_AHEAD = Style(color="bright_cyan")


@dataclass
class Picture:
    """A drawn unrolled DAG: boxes by vertex id, and the lines of text.

    Vertex ids are ``(node, t)``, or ``("ghost", node, t)`` for the dashed
    boxes that stand for vertices before or after the window (or initial
    states).
    Duck-types ``layout.Layout`` for ``GraphCanvas`` (``vertices``,
    ``vertex_at``, ``width``).
    """

    vertices: dict
    lines: list
    width: int = 0
    height: int = 0
    loss_steps: tuple = ()        # the steps of the window where the loss counts
    window: int = 0               # the steps drawn
    compact: bool = False         # one-row boxes, short names
    columns: dict = field(default_factory=dict)   # t -> x of the column's boxes

    def vertex_at(self, x: int, y: int):
        for v in self.vertices.values():
            if v.x <= x < v.x + v.w and v.y <= y < v.y + v.h:
                return v.id
        return None

    def boxes(self):
        return list(self.vertices.values())


def _box(grid: LineGrid, v: Vertex, style, border: str = "light", compact: bool = False) -> None:
    h, vt, corners = {"light": ("─", "│", "┌┐└┘"), "dashed": ("┄", "┆", "┌┐└┘"),
                      "heavy": ("━", "┃", "┏┓┗┛")}[border]
    if compact:                   # sides only: the label row, and the row of arcs from later steps
        grid.put(v.x, v.y, vt + v.lines[0].center(v.w - 2) + vt, style)
        for row in range(1, v.h):
            grid.put(v.x, v.y + row, vt + " " * (v.w - 2) + vt, style)
        return
    grid.put(v.x, v.y, corners[0] + h * (v.w - 2) + corners[1], style)
    grid.put(v.x, v.y + 1, vt + v.lines[0].center(v.w - 2) + vt, style)
    for row in range(2, v.h - 1):
        grid.put(v.x, v.y + row, vt + " " * (v.w - 2) + vt, style)
    grid.put(v.x, v.y + v.h - 1, corners[2] + h * (v.w - 2) + corners[3], style)


def _kind(attrs: dict) -> str:
    return "block" if attrs.get("collapsed") else attrs.get("role", "hidden")


def short_names(graph: nx.MultiDiGraph) -> dict:
    """``{node: name drawn}``: a block's part without its block (``lstm/fc`` -> ``fc``)
    where no two nodes then share a name; else every node's own name."""
    short = {n: str(n).split("/", 1)[1] if graph.nodes[n].get("block") and "/" in str(n) else str(n)
             for n in graph.nodes}
    return short if len(set(short.values())) == len(short) else {n: str(n) for n in graph.nodes}


def fitted_picture(graph: nx.MultiDiGraph, steps: int, *, start: int = 0, window: int = 5,
                   width: int | None = None, height: int | None = None, **kwargs) -> Picture:
    """The largest drawing of ``unrolled_picture`` that fits ``width`` x ``height``: full
    boxes, else compact ones, with as many of the ``window`` steps as fit (at least one;
    a picture that still does not fit scrolls).  ``kwargs`` go to ``unrolled_picture``."""
    fits = lambda p: (width is None or p.width <= width) and (height is None or p.height <= height)  # noqa: E731
    picture = unrolled_picture(graph, steps, start=start, window=window, **kwargs)
    if fits(picture):
        return picture
    tall = (height is not None and picture.height > height)
    for shown in range(window, 0, -1):
        candidate = unrolled_picture(graph, steps, start=start, window=shown, compact=tall, **kwargs)
        if fits(candidate):
            return candidate
        if shown == window and tall and not fits(candidate) and (width is None or candidate.width <= width):
            return candidate          # as short as it gets: it scrolls down
    return candidate


def unrolled_picture(graph: nx.MultiDiGraph, steps: int, *, start: int = 0, window: int = 5,
                     loss_steps=None, checkpoint: Callable[[], None] | None = None,
                     compact: bool = False) -> Picture:
    """Draw columns ``start .. start+window-1`` of ``graph`` unrolled for ``steps``.

    ``loss_steps``: the steps (of ``0 .. steps-1``) where the loss counts, or None
    when unknown (nothing marked).  ``checkpoint`` is called now and then; an
    exception it raises ends the drawing (a picture nobody waits for any more).
    ``compact``: one-row boxes and short names (see the module's doc).
    """
    check = checkpoint or (lambda: None)
    stop = min(steps, start + window)
    window = max(0, stop - start)
    longest = max((d for _, _, d in graph.edges(data="delay")), default=0)
    earlier = min(start, longest)              # steps before the window the DAG must hold
    dag = unroll(graph, earlier + window, initial=True)
    shift = start - earlier                    # dag step + shift = real step
    check()

    # one column's geometry: nodes top (outputs) to bottom (inputs)
    ahead = [(u, v, -d) for u, v, d in graph.edges(data="delay") if d < 0]   # (source, target, steps ahead)
    bh = BOX_H + 1 if ahead else BOX_H          # a fourth row carries the arcs from later steps
    top_h = TOP
    label_of = lambda n, t: vertex_label(n, t)   # noqa: E731
    if compact:
        bh, top_h = (2 if ahead else 1), TOP - 1
        short = short_names(graph)
        label_of = lambda n, t: vertex_label(short[n], t)   # noqa: E731
    pos_off = 0 if compact else 1               # the row of a box where arcs from earlier steps arrive
    layer = node_layers(graph)
    index = {n: i for i, n in enumerate(graph.nodes)}
    role = lambda n: graph.nodes[n].get("role")   # noqa: E731
    order = sorted(graph.nodes, key=lambda n: (-layer[n], role(n) != "output", role(n) == "input", index[n]))
    row = {n: i for i, n in enumerate(order)}
    box_y = {n: top_h + row[n] * (bh + GAP_H) for n in order}
    label_w = max((len(label_of(n, t)) for n in order for t in (start, stop - 1)), default=1)
    box_w = max(label_w + 2, 7)

    instant = [(u, v) for u, v, d in graph.edges(data="delay") if d == 0 and u != v]
    far = defaultdict(set)                     # source -> targets not directly above it
    near = set()
    for u, v in instant:
        if row[u] == row[v] + 1:
            near.add((u, v))
        elif row[u] > row[v]:
            far[u].add(v)
    # lanes: one per source of far arcs, shorter spans nearer the boxes, shared when apart
    spans = {u: (min(box_y[v] + bh for v in vs), box_y[u] - 1) for u, vs in far.items()}
    lanes: list[list] = []
    lane_of = {}
    for u in sorted(spans, key=lambda u: (spans[u][1] - spans[u][0], index[u])):
        lo, hi = spans[u]
        for k, used in enumerate(lanes):
            if all(hi < a or lo > b for a, b in used):
                used.append((lo, hi))
                lane_of[u] = k
                break
        else:
            lane_of[u] = len(lanes)
            lanes.append([(lo, hi)])
    left_w = len(lanes) + 1                    # the lanes, the ▶ column

    delayed = [(u, v, d) for u, v, d in graph.edges(data="delay") if d >= 1]
    sources = sorted({u for u, _, _ in delayed}, key=lambda n: row[n])
    long_arcs = sorted({(u, d) for u, _, d in delayed if d >= 2}, key=lambda a: (row[a[0]], a[1]))
    ahead_sources = sorted({u for u, _, _ in ahead}, key=lambda n: row[n])
    long_ahead = sorted({(u, k) for u, _, k in ahead if k >= 2}, key=lambda a: (row[a[0]], a[1]))
    back = len(sources) + len(long_arcs)       # the first track of the arcs from later steps
    gap_w = back + len(ahead_sources) + len(long_ahead) + 1   # where the ═ leaves the box, the tracks
    pitch = left_w + box_w + gap_w

    ghosts_needed = {u for u, v, d in delayed if start - d < stop and any(
        t - d < start for t in range(start, stop))} if window else set()
    has_ghosts = bool(ghosts_needed)
    ghost_w = max((len(label_of(u, start - 1)) + 2 for u in ghosts_needed), default=0)
    x0 = 1 + (ghost_w + gap_w if has_ghosts else 0)
    ghosts_after = {u for u, v, k in ahead if any(t + k >= stop for t in range(start, stop))} if window else set()
    after_w = max((len(label_of(u, stop)) + 2 for u in ghosts_after), default=0)

    def col_x(c: int) -> int:            # x of the boxes of window column c (-1: the ghosts)
        return 1 if c < 0 else x0 + c * pitch + left_w

    def gap_x(c: int) -> int:            # x of the first track of the gap after column c
        right = (1 + ghost_w) if c < 0 else col_x(c) + box_w
        return right + 1

    long_all = len(long_arcs) + len(long_ahead)
    bands = GAP_H + long_all * window if long_all else 0   # rows of arcs longer than a step
    height = top_h + len(order) * (bh + GAP_H) - GAP_H + bands + 2
    # the gap after the last column carries arcs only to a ghost column on the right
    width = (x0 + window * pitch + 1 + after_w + left_w) if ghosts_after else x0 + (window - 1) * pitch + left_w + box_w
    grid = LineGrid()
    vertices: dict = {}
    counted = set(loss_steps) if loss_steps is not None else set()

    # boxes
    for c, t in enumerate(range(start, stop)):
        check()
        grid.put(col_x(c), 0, f"t={t}", STYLES["header"])
        if t in counted:
            grid.put(col_x(c), 1, "loss", STYLE_LOSS)
        for n in order:
            a = graph.nodes[n]
            v = Vertex((n, t), [label_of(n, t)], 0, _kind(a), x=col_x(c), y=box_y[n], w=box_w, h=bh)
            vertices[v.id] = v
            loss_box = t in counted and a.get("role") == "output"
            _box(grid, v, STYLES.get(v.kind, STYLES["label"]), "heavy" if loss_box else "light", compact)
    if has_ghosts:
        grid.put(1, 0, "t<0" if start == 0 else f"t<{start}", STYLES["header"])
        grid.put(1, 1, "init" if start == 0 else "earlier", STYLES["ghost"])
        for u in sorted(ghosts_needed, key=lambda n: row[n]):
            v = Vertex(("ghost", u, start - 1), [label_of(u, start - 1)], 0, "ghost",
                       x=1, y=box_y[u], w=ghost_w, h=bh)
            vertices[v.id] = v
            _box(grid, v, STYLES["ghost"], "dashed", compact)
    if ghosts_after:
        gx = col_x(window)
        grid.put(gx, 0, f"t≥{stop}", STYLES["header"])
        grid.put(gx, 1, "init" if stop >= steps else "later", STYLES["ghost"])
        for u in sorted(ghosts_after, key=lambda n: row[n]):
            v = Vertex(("ghost", u, stop), [label_of(u, stop)], 0, "ghost",
                       x=gx, y=box_y[u], w=after_w, h=bh)
            vertices[v.id] = v
            _box(grid, v, STYLES["ghost"], "dashed", compact)

    # arcs of one step, in every column
    edge_style = STYLES["edge"]
    for c, t in enumerate(range(start, stop)):
        check()
        bx = col_x(c)
        centre = bx + box_w // 2
        for u, v in near:
            grid.path(("near", u, v, t), [(centre, box_y[u] - 1), (centre, box_y[v] + bh)], False, edge_style)
            if not compact:              # a compact box has no top border: the line meets its label row
                grid.put(centre, box_y[u], "┴", edge_style)
        for u, vs in far.items():
            lane = bx - 2 - lane_of[u]
            exit_y = box_y[u] - 1
            if not compact:
                grid.put(bx + 1, box_y[u], "┴", edge_style)
            top = min(box_y[v] + bh for v in vs)
            grid.path(("far", u, t), [(bx + 1, box_y[u]), (bx + 1, exit_y), (lane, exit_y), (lane, top)],
                      False, edge_style)
            for v in vs:
                entry = box_y[v] + bh
                grid.path(("far", u, t), [(lane, entry), (centre, entry)], False, edge_style)
        for v in {v for _, v in instant if row[_] > row[v]} | {v for u, v in near}:
            grid.put(centre, box_y[v] + bh, "▲", edge_style)

    # arcs from earlier steps
    feedback = STYLES["feedback"]
    arrows = set()
    for (u, su), (v, tv), data in dag.edges(data=True):
        d = data["delay"]
        s, t = su + shift, tv + shift
        if d <= 0 or not start <= t < stop:   # arcs from later steps: below
            continue
        check()
        c_t = t - start
        c_s = s - start if s >= start else -1
        src = vertices[(u, s)] if c_s >= 0 else vertices[("ghost", u, start - 1)]
        port_u, port_v = box_y[u] + pos_off, box_y[v] + pos_off
        out_x = src.x + src.w
        grid.put(out_x - 1, port_u, "╞", feedback)
        in_x = col_x(c_t) - 1
        if c_t - c_s == 1:
            track = gap_x(c_s) + sources.index(u)
            grid.path(("from", u, s), [(out_x, port_u), (track, port_u), (track, port_v)], True, feedback)
            grid.path(("into", v, t), [(track, port_v), (in_x, port_v)], True, feedback)
        else:
            band = top_h + len(order) * (bh + GAP_H) + long_arcs.index((u, d)) * window + c_t   # a row per arc
            down = gap_x(c_s) + sources.index(u)
            up = gap_x(c_t - 1) + len(sources) + long_arcs.index((u, d))
            grid.path(("from", u, s), [(out_x, port_u), (down, port_u), (down, band)], True, feedback)
            grid.path(("band", u, d, t), [(down, band), (up, band), (up, port_v)], True, feedback)
            grid.path(("into", v, t), [(up, port_v), (in_x, port_v)], True, feedback)
        arrows.add((in_x, port_v))
    for x, y in arrows:
        grid.put(x, y, "▶", feedback)

    # arcs from later steps: right to left, one row under the label
    arrows = set()
    for c_t, t in enumerate(range(start, stop)):
        check()
        for u, v, k in ahead:
            s = t + k
            src = vertices[(u, s)] if s < stop else vertices[("ghost", u, stop)]
            c_s = s - start if s < stop else window
            port_u, port_v = box_y[u] + pos_off + 1, box_y[v] + pos_off + 1
            grid.put(src.x, port_u, "╡", STYLE_AHEAD)
            in_x = col_x(c_t) + box_w
            if c_s - c_t == 1:
                track = gap_x(c_t) + back + ahead_sources.index(u)
                grid.path(("back-from", src.id), [(src.x - 1, port_u), (track, port_u), (track, port_v)],
                          True, STYLE_AHEAD)
                grid.path(("back-into", v, t), [(track, port_v), (in_x, port_v)], True, STYLE_AHEAD)
            else:
                band = (top_h + len(order) * (bh + GAP_H) + (len(long_arcs) + long_ahead.index((u, k))) * window
                        + c_t)
                down = gap_x(c_s - 1) + back + ahead_sources.index(u)
                up = gap_x(c_t) + back + len(ahead_sources) + long_ahead.index((u, k))
                grid.path(("back-from", src.id), [(src.x - 1, port_u), (down, port_u), (down, band)],
                          True, STYLE_AHEAD)
                grid.path(("back-band", u, k, t), [(down, band), (up, band), (up, port_v)], True, STYLE_AHEAD)
                grid.path(("back-into", v, t), [(up, port_v), (in_x, port_v)], True, STYLE_AHEAD)
            arrows.add((in_x, port_v))
    for x, y in arrows:
        grid.put(x, y, "◀", STYLE_AHEAD)

    legend = LEGEND_AHEAD if ahead else LEGEND
    if len(legend) + 2 > width:
        legend = LEGEND_AHEAD_SHORT if ahead else LEGEND_SHORT
    if compact:
        legend = legend.replace("┏━┓", "┃ ┃")
        blocks = sorted({str(n).split("/", 1)[0] for n in graph.nodes if short[n] != str(n)})
        if blocks:
            example = next(n for n in order if short[n] != str(n))
            note = (f"block parts are drawn without their block's name ({', '.join(b + '/' for b in blocks)}):"
                    f" {short[example]} is {example}")
            if len(note) > width - 2:
                note = f"{short[example]} is {example}, and so on"
            grid.put(1, height - 2, note, STYLES["header"])
    grid.put(1, height - 1, legend, STYLES["header"])
    width = max(width, len(legend) + 2)
    lines = grid.render(width, height, checkpoint)
    columns = {t: col_x(c) for c, t in enumerate(range(start, stop))}
    return Picture(vertices=vertices, lines=lines, width=width, height=height,
                   loss_steps=tuple(sorted(t for t in counted if start <= t < stop)), columns=columns,
                   window=window, compact=compact)
