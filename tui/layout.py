"""Positions for the folded graph's picture, and what the pictures share.

The folded graph is a layered drawing (Sugiyama style), computed here and
drawn by ``tui.canvas`` (the unrolled DAG is drawn by ``tui.unrolled``):

* **folded**: layers by longest path over the delay-0 edges (a DAG, as the
  spec requires), drawn left to right; every delayed edge ``s -> n`` (delay
  ``d``) is a loop (``Layout.loops``): a double line out of ``s``'s right side,
  down a track in the channel after ``s``'s layer to a row of its own under
  the boxes (labelled ``z^-d``), back along it to a track in the channel
  before ``n``'s layer, and up into ``n``'s left side.

Edges spanning several layers are split into chains of dummy vertices; the
order within a layer comes from a few barycenter sweeps.  Nothing here
imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable

import networkx as nx

__all__ = [
    "Vertex", "Layout", "collapse_blocks", "node_layers", "folded_layout", "vertex_label",
]

BOX_PAD = 1  # blank cells between a box's border and its label

Checkpoint = Callable[[], None]


@dataclass
class Vertex:
    """One box (or dummy bend point) of a layered drawing."""

    id: Hashable
    lines: list[str]
    layer: int
    kind: str                 # input | hidden | output | block | ghost | dummy
    x: int = 0
    y: int = 0
    w: int = 0
    h: int = 0

    @property
    def is_dummy(self) -> bool:
        return self.kind == "dummy"

    @property
    def port(self) -> int:
        """The row where edges leave and enter."""
        return self.y + self.h // 2


@dataclass
class Loop:
    """A delayed edge of the folded picture: out of ``source``'s right side at
    row ``y_out``, down the track at ``down_x`` to row ``band_y``, along it to
    the track at ``up_x``, up to row ``y_in`` and into ``target``'s left side."""

    source: Hashable
    target: Hashable
    key: str
    delay: int
    down_x: int = 0
    up_x: int = 0
    band_y: int = 0


@dataclass
class Layout:
    """Vertices with positions, the edges between adjacent layers, and a size."""

    vertices: dict
    segments: list                 # (u, v, style) with layer(v) == layer(u) + 1
    layers: list                   # list of lists of vertex ids, in order
    layer_x: list = field(default_factory=list)
    layer_w: list = field(default_factory=list)
    channel_x: list = field(default_factory=list)
    tracks: dict = field(default_factory=dict)   # (layer, target id) -> track column
    headers: list = field(default_factory=list)  # (x, text)
    width: int = 0
    height: int = 0
    loops: list = field(default_factory=list)    # Loop: the delayed edges, drawn as loops
    free_track: dict = field(default_factory=dict)  # channel -> its first track left for loops

    def vertex_at(self, x: int, y: int):
        """The id of the box covering cell ``(x, y)``, or None."""
        for v in self.vertices.values():
            if not v.is_dummy and v.x <= x < v.x + v.w and v.y <= y < v.y + v.h:
                return v.id
        return None

    def boxes(self):
        return [v for v in self.vertices.values() if not v.is_dummy]


# -- graph preparation ----------------------------------------------------------

def collapse_blocks(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The folded graph with each block's primitive nodes merged into one node.

    Edges inside a block disappear, except delayed ones, which become a
    delayed self-edge of the block (its recurrence).  Returns ``graph``
    unchanged when merging would make a delay-0 cycle.
    """
    owner = {n: (a.get("block") or n) for n, a in graph.nodes(data=True)}
    if all(owner[n] == n for n in owner):
        return graph
    out = nx.MultiDiGraph()
    for n, a in graph.nodes(data=True):
        b = owner[n]
        if b == n:
            out.add_node(n, **a)
        elif b not in out:
            parts = {graph.nodes[m].get("part") for m in graph if owner[m] == b}
            kind = "lstm" if {"c", "g"} & parts else "gru" if {"r", "z"} & parts else "block"
            h = f"{b}/h"
            size = graph.nodes[h]["size"] if h in graph else a.get("size", 1)
            out.add_node(b, size=size, role="hidden", activation=kind, combine="sum",
                         bias=None, init=0, block=b, part=None, collapsed=True)
    for u, v, k, a in graph.edges(keys=True, data=True):
        bu, bv = owner[u], owner[v]
        delay = a.get("delay", 0)
        if bu == bv and bu != u and delay == 0:
            continue
        key = k if bu == u and bv == v else f"{bu}->{bv}@{delay}"
        if out.has_edge(bu, bv, key):
            continue
        out.add_edge(bu, bv, key=key, **{**a, "name": key})
    zero = nx.DiGraph((u, v) for u, v, a in out.edges(data=True) if a.get("delay", 0) == 0)
    if not nx.is_directed_acyclic_graph(zero):
        return graph
    return out


def node_layers(graph: nx.MultiDiGraph) -> dict:
    """Layer of each node: its longest delay-0 path from a source."""
    zero = nx.DiGraph()
    zero.add_nodes_from(graph.nodes)
    zero.add_edges_from((u, v) for u, v, a in graph.edges(data=True)
                        if a.get("delay", 0) == 0 and u != v)
    if nx.is_directed_acyclic_graph(zero):
        order = list(nx.topological_sort(zero))
    else:  # an invalid spec: drop back edges of a DFS so the picture still draws
        order = list(nx.dfs_preorder_nodes(zero))
        seen = set()
        kept = nx.DiGraph()
        kept.add_nodes_from(zero.nodes)
        for n in order:
            seen.add(n)
            for m in zero.successors(n):
                if m not in seen:
                    kept.add_edge(n, m)
        zero = kept if nx.is_directed_acyclic_graph(kept) else nx.DiGraph(list(zero.nodes))
        zero.add_nodes_from(graph.nodes)
        order = list(nx.topological_sort(zero))
    layer = {}
    for n in order:
        layer[n] = max((layer[p] + 1 for p in zero.predecessors(n)), default=0)
    # Pull nodes without successors-by-delay-0 that read only delayed edges to
    # the right of nothing: they stay at 0; outputs move to the last layer.
    last = max(layer.values(), default=0)
    for n, a in graph.nodes(data=True):
        if a.get("role") == "output" and not list(zero.successors(n)):
            layer[n] = last
    return layer


def _kind(attrs: dict) -> str:
    if attrs.get("collapsed"):
        return "block"
    return attrs.get("role", "hidden")


def vertex_label(node, t: int) -> str:
    """``hidden@3``: how the unrolled view prints vertex ``(hidden, 3)``."""
    return f"{node}@{t}"


# -- the layered layout itself ---------------------------------------------------

def _track_order(targets: dict, segments: list, vertices: dict, pos: dict, layer: int) -> list:
    """The targets of one channel, left to right, so that no line shares a row with another.

    A target's line in runs along its own row from its track; a source's line out runs
    along its row to its targets' tracks.  Where a source and a target share a row, the
    target's track goes right of every track the source's line reaches (else the two
    lines overlap and the source looks as if it fed that target).  Otherwise, and where
    those constraints go round in a circle, top to bottom.
    """
    out = {}
    for u, v, _ in segments:
        if vertices[u].layer == layer and v in targets:
            out.setdefault(u, set()).add(v)
    row_target = {pos[v]: v for v in targets}
    before = nx.DiGraph()
    before.add_nodes_from(targets)
    for u, reached in out.items():
        v = row_target.get(pos[u])
        if v is not None:
            before.add_edges_from((w, v) for w in reached if w != v)
    try:
        return list(nx.lexicographical_topological_sort(before, key=lambda vid: pos[vid]))
    except nx.NetworkXUnfeasible:
        return sorted(targets, key=lambda vid: pos[vid])


def _layered(vertices: dict, edges: list, order_key=None, sweeps: int = 4,
             checkpoint: Checkpoint | None = None, extra_tracks: dict | None = None) -> Layout:
    """Split long edges, order layers, assign coordinates.

    ``vertices`` maps id -> Vertex (``layer`` set); ``edges`` is a list of
    ``(u, v, style)`` with ``layer(u) < layer(v)``.  ``checkpoint`` is called
    now and then (once per layer and sweep at least); an exception it raises
    ends the layout.  ``extra_tracks`` maps a channel (the layer before it;
    -1: left of the first layer) to a number of tracks to keep free in it
    after the edges' tracks.
    """
    extra_tracks = extra_tracks or {}
    vertices = dict(vertices)
    segments = []
    seen = set()
    dummy = 0
    for i, (u, v, style) in enumerate(edges):
        if checkpoint is not None and i % 256 == 0:
            checkpoint()
        if (u, v) in seen:
            continue
        seen.add((u, v))
        lu, lv = vertices[u].layer, vertices[v].layer
        if lu >= lv:  # only an invalid spec (a delay-0 self-edge) gets here
            continue
        prev = u
        for layer in range(lu + 1, lv):
            d = ("dummy", dummy)
            dummy += 1
            vertices[d] = Vertex(d, [], layer, "dummy")
            segments.append((prev, d, style))
            prev = d
        segments.append((prev, v, style))

    n_layers = max((v.layer for v in vertices.values()), default=-1) + 1
    layers = [[] for _ in range(n_layers)]
    keyed = sorted(vertices.values(), key=lambda v: (order_key(v) if order_key else 0))
    for v in keyed:
        layers[v.layer].append(v.id)
    if checkpoint is not None:
        checkpoint()

    preds = {vid: [] for vid in vertices}
    succs = {vid: [] for vid in vertices}
    for u, v, _ in segments:
        preds[v].append(u)
        succs[u].append(v)
    if checkpoint is not None:
        checkpoint()

    pos = {}
    for layer in layers:
        for i, vid in enumerate(layer):
            pos[vid] = i

    def sweep(layer_range, neighbours):
        for li in layer_range:
            if checkpoint is not None:
                checkpoint()
            layer = layers[li]
            def key(vid):
                ns = neighbours[vid]
                if not ns:
                    return pos[vid]
                return sum(pos[n] for n in ns) / len(ns)
            layer.sort(key=lambda vid: (key(vid), pos[vid]))
            for i, vid in enumerate(layer):
                pos[vid] = i

    for s in range(sweeps):
        if s % 2 == 0:
            sweep(range(1, n_layers), preds)
        else:
            sweep(range(n_layers - 2, -1, -1), succs)
    if sweeps:
        sweep(range(1, n_layers), preds)

    # sizes
    label_h = max((len(v.lines) for v in vertices.values() if not v.is_dummy), default=1)
    box_h = label_h + 2
    for v in vertices.values():
        if v.is_dummy:
            v.w, v.h = 0, box_h
        else:
            v.w = max((len(line) for line in v.lines), default=1) + 2 + 2 * BOX_PAD
            v.h = box_h
    row = box_h + 1

    # tracks: one vertical track per target in each channel, for the targets reached
    # from another row (a segment that stays in its row runs straight through)
    tracks = {}
    track_count = [0] * n_layers
    targets_by_channel = [{} for _ in range(n_layers)]
    for u, v, _ in segments:
        if pos[u] != pos[v]:
            targets_by_channel[vertices[u].layer][v] = None
    for li in range(n_layers):
        if checkpoint is not None:
            checkpoint()
        targets = _track_order(targets_by_channel[li], segments, vertices, pos, li)
        for i, vid in enumerate(targets):
            tracks[(li, vid)] = i
        track_count[li] = len(targets)

    top = 1
    x = 1 + (extra_tracks.get(-1, 0) + 2 if extra_tracks.get(-1) else 0)
    layer_x, layer_w, channel_x = [], [], []
    for li, layer in enumerate(layers):
        width = max((vertices[vid].w for vid in layer), default=1)
        layer_x.append(x)
        layer_w.append(width)
        for i, vid in enumerate(layer):
            v = vertices[vid]
            v.x = x
            v.y = top + i * row
        x += width
        channel_x.append(x)
        x += track_count[li] + extra_tracks.get(li, 0) + 3
    for (li, vid), i in list(tracks.items()):
        tracks[(li, vid)] = channel_x[li] + 1 + i
    height = top + max((len(layer) for layer in layers), default=0) * row
    layout = Layout(vertices=vertices, segments=segments, layers=layers, layer_x=layer_x,
                    layer_w=layer_w, channel_x=channel_x, tracks=tracks, width=x + 1,
                    height=height)
    layout.free_track = {li: (channel_x[li] + 1 + track_count[li] if li >= 0 else 1)
                         for li in [-1, *range(n_layers)]}
    return layout


def folded_layout(graph: nx.MultiDiGraph, *, collapse: bool = False,
                  checkpoint: Checkpoint | None = None) -> Layout:
    """The folded graph: delay-0 edges left to right, delayed edges as loops.

    ``checkpoint`` (no arguments) is called every so often; an exception it
    raises ends the computation and propagates (the caller's way to drop a
    layout nobody waits for any more).
    """
    if collapse:
        graph = collapse_blocks(graph)
    layer = node_layers(graph)
    order = {n: i for i, n in enumerate(graph.nodes)}
    vertices = {}
    for n, a in graph.nodes(data=True):
        detail = f"{a.get('size', '?')} {a.get('activation', '') or ''}".strip()
        if a.get("combine") == "product":
            detail += " ×"
        vertices[n] = Vertex(n, [str(n), detail], layer[n], _kind(a))
    edges, loops = [], []
    for u, v, k, a in graph.edges(keys=True, data=True):
        d = a.get("delay", 0)
        if d >= 1 or u == v:
            loops.append(Loop(u, v, k, max(d, 1)))
        else:
            edges.append((u, v, "edge"))
    sources = {}                       # channel -> sources of loops leaving through it
    targets = {}                       # channel -> loops entering through it, one track each
    for loop in loops:
        sources.setdefault(layer[loop.source], []).append(loop.source)
        targets.setdefault(layer[loop.target] - 1, []).append(loop)
    sources = {li: list(dict.fromkeys(ns)) for li, ns in sources.items()}
    extra = {li: len(sources.get(li, ())) + len(targets.get(li, ()))
             for li in set(sources) | set(targets)}
    layout = _layered(vertices, edges, order_key=lambda vx: order.get(vx.id, 0), checkpoint=checkpoint,
                      extra_tracks=extra)
    for i, loop in enumerate(loops):
        ls, lt = layer[loop.source], layer[loop.target] - 1
        loop.down_x = layout.free_track[ls] + sources[ls].index(loop.source)
        loop.up_x = layout.free_track[lt] + len(sources.get(lt, ())) + targets[lt].index(loop)
        loop.band_y = layout.height + i
    layout.loops = loops
    if loops:
        layout.height += len(loops) + 1
    return layout
