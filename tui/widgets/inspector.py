"""What one node is connected to and what its parameters hold."""

from __future__ import annotations

import networkx as nx
import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..model import Analysis, init_text


def members(graph: nx.MultiDiGraph, name: str) -> list:
    """The primitive nodes that make up user node ``name`` (itself, or a block's parts)."""
    if name in graph:
        return [name]
    return [n for n, a in graph.nodes(data=True) if a.get("block") == name]


def _stats(value) -> str:
    if value is None:
        return ""
    arr = np.asarray(value, dtype=float)
    if arr.size == 0:
        return ""
    return (f"mean {arr.mean():+.3f}  std {arr.std():.3f}  "
            f"min {arr.min():+.3f}  max {arr.max():+.3f}")


def inspect_node(analysis: Analysis, name: str):
    """A rich renderable describing ``name``: edges in and out, parameters."""
    graph = analysis.graph
    if graph is None:
        return Text("no graph yet")
    parts = members(graph, name)
    if not parts:
        return Text(f"{name}: not in the graph (fix the problems first)")
    inside = set(parts)
    params = analysis.params
    shapes = analysis.param_shapes
    first = graph.nodes[parts[0]]
    head = Text()
    head.append(name, "bold")
    if len(parts) > 1:
        head.append(f"  block of {len(parts)} primitive nodes: "
                    + ", ".join(str(p).split("/")[-1] for p in parts), "dim")
    else:
        init = init_text(first.get("init"))
        if first.get("init_param"):   # the engine names the trainable initial state
            init = init.replace(" (trainable)", "") + f" (trainable: {first['init_param']})"
        head.append(f"  size {first.get('size')}  role {first.get('role')}  "
                    f"activation {first.get('activation')}  combine {first.get('combine')}  "
                    f"init {init}", "dim")

    def edge_table(title, edges, other_end):
        table = Table(title=title, title_justify="left", expand=True, show_edge=False)
        for col in ("edge", "delay", "weight", "param shape", "trainable"):
            table.add_column(col, no_wrap=True)
        for u, v, k, a in edges:
            pname = a.get("param")
            shape = shapes.get(pname, "?")
            delay = a.get("delay", 0)
            table.add_row(Text(f"{u} → {v}"), f"z^-{delay}" if delay else "0",
                          Text(str(a.get("weight", "dense"))),
                          str(shape) if pname else "—", "yes" if a.get("trainable") else "no")
        if not edges:
            table.add_row(f"(none {other_end})", "", "", "", "")
        return table

    incoming = [(u, v, k, a) for u, v, k, a in graph.in_edges(parts, keys=True, data=True)
                if u not in inside or len(parts) == 1]
    outgoing = [(u, v, k, a) for u, v, k, a in graph.out_edges(parts, keys=True, data=True)
                if v not in inside or len(parts) == 1]
    names = []
    for _, _, _, a in [*incoming, *graph.in_edges(parts, keys=True, data=True)]:
        if a.get("param") and a["param"] not in names:
            names.append(a["param"])
    for p in parts:   # the graph names a node's own parameters: bias and trainable init
        for key in ("bias", "init_param"):
            pname = graph.nodes[p].get(key)
            if pname and pname not in names:
                names.append(pname)
    ptable = Table(title="parameters", title_justify="left", expand=True, show_edge=False)
    for col in ("name", "shape", "statistics"):
        ptable.add_column(col, no_wrap=True)
    for n in names:
        value = params.get(n)
        shape = shapes.get(n, "?")
        ptable.add_row(Text(str(n)), str(shape), _stats(value) if value is not None else "(build needed)")
    if not names:
        ptable.add_row("(none)", "", "")
    return Group(head, edge_table("incoming", incoming, "in"),
                 edge_table("outgoing", outgoing, "out"), ptable)
