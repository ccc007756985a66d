"""The plan: how to compute a folded graph fast, decided once per network.

The strongly connected components of the folded graph say which nodes sit on
a cycle.  A node on no cycle is *time-parallel*: all ``T`` steps are one array
op on ``(T, B, size)``.  Each recurrent component needs a time loop, and only
the edges inside it run per step.  Every other edge (into time-parallel nodes,
or entering a recurrent component from outside) is a *sequence* edge: it runs
once over the whole sequence as soon as its source is known, which hoists a
recurrent component's input projections out of its loop.

A component whose delays are negative (it reads later steps of itself) runs
its loop backward, from ``T-1`` down to ``0``: the executor runs it as a
forward loop over time-reversed sequences, so the plan gives its inner groups
the delay the loop sees, ``-d``, and marks the stage ``backward``.  Edges into
and out of it are sequence edges like any other, whatever their delay's sign.

Dense edges that share a source and a delay are fused into one GEMM with the
weights concatenated along the output axis: ``x -> lstm/{i,f,o,g}`` is one
GEMM over all steps, ``lstm/h(t-1) -> lstm/{i,f,o,g}`` one GEMM per step.

A ``Plan`` is plain data (print it to see the schedule); ``executor.run``
carries it out and ``scan`` runs the loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import networkx as nx

from .graph import instant_order


@dataclass(frozen=True)
class EdgeRef:
    """One folded edge as the executor needs it."""

    name: str
    source: str
    target: str
    delay: int
    weight: str            # dense | diagonal | scalar | identity
    param: str | None


@dataclass
class Group:
    """Edges computed together: one GEMM for fused dense edges (``edges``
    share ``source``, ``delay`` and kind), else a single edge.  Target ``k``
    reads columns ``offsets[k]:offsets[k+1]`` of the group's output."""

    source: str
    delay: int
    weight: str
    edges: list
    offsets: list

    @property
    def width(self) -> int:
        return self.offsets[-1]

    def describe(self) -> str:
        names = ", ".join(e.name for e in self.edges)
        fused = "fused " if len(self.edges) > 1 else ""
        return f"{fused}{self.weight} [{names}] delay {self.edges[0].delay}"


@dataclass
class Stage:
    """One step of the schedule.

    ``kind`` is ``input`` (values from data), ``parallel`` (one node, all
    steps at once) or ``recurrent`` (a time loop over ``nodes`` in this
    within-step order, running ``inner`` groups per step).  ``produces``:
    sequence groups whose source this stage computes, run right after it.
    ``backward``: a recurrent stage whose loop runs from ``T-1`` down to ``0``.
    """

    kind: str
    nodes: list
    inner: list = field(default_factory=list)
    produces: list = field(default_factory=list)
    backward: bool = False


@dataclass
class Plan:
    stages: list
    sequence_groups: list                  # every group run over whole sequences
    consumers: dict                        # target node -> [(group, k)] sequence contributions
    inner_consumers: dict                  # target node -> [(group, k)] per-step contributions
    history_depth: dict                    # node -> the largest delay of an edge out of it
    order: list                            # all nodes, delay-0 edges pointing forward
    future_depth: dict = field(default_factory=dict)   # node -> the largest -delay of an edge out of it (> 0 only)

    def describe(self) -> str:
        """A readable schedule: what runs over whole sequences, what loops."""
        lines = []
        for i, stage in enumerate(self.stages):
            if stage.kind == "recurrent":
                backward = " (backward: from T-1 down to 0)" if stage.backward else ""
                lines.append(f"{i}: time loop over {', '.join(stage.nodes)}{backward}")
                for g in stage.inner:
                    lines.append(f"     per step: {g.describe()}")
            else:
                lines.append(f"{i}: {stage.kind} {stage.nodes[0]} (all steps at once)")
            for g in stage.produces:
                lines.append(f"     then over the sequence: {g.describe()}")
        return "\n".join(lines)


def _groups(edges: list, sizes: dict, column_key, sign: int = 1) -> list:
    """Fuse dense edges with the same (source, delay); others stand alone.
    Each group's ``delay`` is ``sign`` times its edges' (-1 in a backward loop).

    A fused group's columns are ordered by ``column_key(target)`` (stable): targets
    used together sit side by side, so the backward loop can treat them in one call.
    """
    groups: list[Group] = []
    fused: dict = {}
    for e in edges:
        if e.weight == "dense":
            key = (e.source, e.delay)
            if key in fused:
                g = fused[key]
                g.edges.append(e)
                g.offsets.append(g.offsets[-1] + sizes[e.target])
                continue
            g = Group(e.source, sign * e.delay, "dense", [e], [0, sizes[e.target]])
            fused[key] = g
            groups.append(g)
        else:
            groups.append(Group(e.source, sign * e.delay, e.weight, [e], [0, sizes[e.target]]))
    for g in fused.values():
        g.edges.sort(key=lambda e: column_key(e.target))
        g.offsets = list(accumulate((sizes[e.target] for e in g.edges), initial=0))
    return groups


def make_plan(graph: nx.MultiDiGraph) -> Plan:
    """Schedule a folded graph (``graph.folded_graph``) by its SCCs."""
    sizes = {n: graph.nodes[n]["size"] for n in graph.nodes}
    order = instant_order(graph)
    rank = {n: i for i, n in enumerate(order)}
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]          # node -> component id
    # components in a topological order of the condensation, ties by node order
    comp_order = list(nx.lexicographical_topological_sort(
        condensed, key=lambda c: min(rank[n] for n in condensed.nodes[c]["members"])))
    stages: list[Stage] = []
    stage_of: dict = {}
    recurrent_nodes: set = set()
    for c in comp_order:
        nodes = sorted(condensed.nodes[c]["members"], key=rank.__getitem__)
        cyclic = len(nodes) > 1 or graph.has_edge(nodes[0], nodes[0])
        if cyclic:
            stage = Stage("recurrent", nodes)
            recurrent_nodes.update(nodes)
        elif graph.nodes[nodes[0]]["role"] == "input":
            stage = Stage("input", nodes)
        else:
            stage = Stage("parallel", nodes)
        for n in nodes:
            stage_of[n] = stage
        stages.append(stage)

    # where each node's value is first read at its own step: an LSTM's i and g feed i*g,
    # f feeds f*c, o feeds h, so fused gate columns go i, g, f, o (i, g and f all take
    # dL/dc back: see engine/compile/codegen.py, LoopWriter._merge_folds)
    first_use = {n: min((rank[v] for _, v, d in graph.out_edges(n, data="delay") if d == 0), default=len(rank))
                 for n in graph.nodes}

    def column_key(n):
        return first_use[n], rank[n]

    edges = [EdgeRef(k, u, v, d["delay"], d["weight"], d["param"])
             for u, v, k, d in graph.edges(keys=True, data=True)]
    edges.sort(key=lambda e: (rank[e.target], rank[e.source]))
    inner_edges = [e for e in edges if members[e.source] == members[e.target] and e.target in recurrent_nodes]
    sequence_edges = [e for e in edges if not (members[e.source] == members[e.target] and e.target in recurrent_nodes)]

    sequence_groups = _groups(sequence_edges, sizes, column_key)
    consumers: dict = {n: [] for n in graph.nodes}
    for g in sequence_groups:
        stage_of[g.source].produces.append(g)
        for k, e in enumerate(g.edges):
            consumers[e.target].append((g, k))
    inner_consumers: dict = {n: [] for n in graph.nodes}
    for stage in stages:
        if stage.kind != "recurrent":
            continue
        mine = [e for e in inner_edges if e.target in set(stage.nodes)]
        stage.backward = any(e.delay < 0 for e in mine)     # graph.check_network: no component mixes signs
        stage.inner = _groups(mine, sizes, column_key, -1 if stage.backward else 1)
        for g in stage.inner:
            for k, e in enumerate(g.edges):
                inner_consumers[e.target].append((g, k))
    depth = {n: 0 for n in graph.nodes}
    ahead = {n: 0 for n in graph.nodes}
    for e in edges:
        depth[e.source] = max(depth[e.source], e.delay)
        ahead[e.source] = max(ahead[e.source], -e.delay)
    return Plan(stages=stages, sequence_groups=sequence_groups, consumers=consumers,
                inner_consumers=inner_consumers, history_depth=depth, order=order,
                future_depth={n: d for n, d in ahead.items() if d})
