"""Printing the time-indexed DAG: text, Graphviz dot, Mermaid and JSON.

Each printer takes the DAG of ``net.unroll(T, initial=True)`` (and the
folded graph for equations) and returns a string; none changes anything.
Vertices print as ``hidden@3``; initial states as ``context@-1`` (or, read by
a negative delay, ``context@T``: the same initial value past the last step).
"""

from __future__ import annotations

import json

import networkx as nx

from ..engine.graph import vertex_name


def _by_time(dag):
    times = {}
    for v, t in dag.nodes(data="t"):
        times.setdefault(t, []).append(v)
    return dict(sorted(times.items()))


def _initial(dag, t: int) -> bool:
    """Whether time ``t`` holds initial states: before 0, or at T and later."""
    return not 0 <= t < dag.graph["T"]


def equation(graph, dag, vertex) -> str:
    """``hidden@3 = sigmoid(W[x->hidden] x@3 + W[context->hidden] context@2 + b)``."""
    n, t = vertex
    attrs = graph.nodes[n]
    if attrs["role"] == "input":
        return f"{vertex_name(vertex)} = data"
    terms = []
    for pred in sorted(dag.predecessors(vertex), key=lambda p: (p[1], str(p[0]))):
        for key in dag.edges[pred, vertex]["edges"]:
            kind = graph.edges[pred[0], n, key]["weight"]
            src = vertex_name(pred)
            terms.append(src if kind == "identity" else f"W[{key}] {src}" if kind == "dense"
                         else f"w[{key}] * {src}")
    if attrs["combine"] == "product":
        inner = " * ".join(f"({s})" if " " in s else s for s in terms) or "1"
    else:
        if attrs["bias"]:
            terms.append(f"b[{n}]")
        inner = " + ".join(terms) or "0"
    act = attrs["activation"]
    return f"{vertex_name(vertex)} = {inner}" if act == "identity" else f"{vertex_name(vertex)} = {act}({inner})"


def to_text(graph, dag) -> str:
    lines = [f"# {dag.graph.get('name') or 'network'} unrolled over T={dag.graph['T']}: "
             f"{sum(1 for _, d in dag.nodes(data='initial') if not d)} vertices, {dag.number_of_edges()} arcs"]
    for t, vertices in _by_time(dag).items():
        if _initial(dag, t):
            lines.append(f"t={t} (initial states): " + ", ".join(vertex_name(v) for v in vertices))
            continue
        lines.append(f"t={t}:")
        for v in vertices:
            lines.append("  " + equation(graph, dag, v))
    return "\n".join(lines) + "\n"


def _dot_id(vertex) -> str:
    return json.dumps(vertex_name(vertex))


def to_dot(graph, dag) -> str:
    lines = ["digraph unrolled {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for t, vertices in _by_time(dag).items():
        label = f"t={t} (initial)" if _initial(dag, t) else f"t={t}"
        lines.append(f'  subgraph "cluster_t{t}" {{ label="{label}"; style=dashed;')
        for v in vertices:
            shape = "ellipse" if graph.nodes[v[0]]["role"] == "input" else \
                "doubleoctagon" if graph.nodes[v[0]]["role"] == "output" else "box"
            style = ", style=dotted" if dag.nodes[v].get("initial") else ""
            lines.append(f"    {_dot_id(v)} [shape={shape}{style}];")
        lines.append("  }")
    for u, v, data in dag.edges(data=True):
        label = ", ".join(data["edges"])
        style = ", style=bold, color=blue" if data["delay"] else ""
        lines.append(f"  {_dot_id(u)} -> {_dot_id(v)} [label={json.dumps(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(vertex) -> str:
    n, t = vertex
    safe = "".join(c if c.isalnum() else "_" for c in n)
    return f"{safe}_{'m' if t < 0 else ''}{abs(t)}"


def to_mermaid(graph, dag) -> str:
    lines = ["flowchart LR"]
    for t, vertices in _by_time(dag).items():
        label = f"t={t} (initial)" if _initial(dag, t) else f"t={t}"
        lines.append(f"  subgraph t{'m' if t < 0 else ''}{abs(t)}[\"{label}\"]")
        for v in vertices:
            lines.append(f"    {_mermaid_id(v)}[\"{vertex_name(v)}\"]")
        lines.append("  end")
    for u, v, data in dag.edges(data=True):
        arrow = "-.->" if data["delay"] else "-->"
        lines.append(f"  {_mermaid_id(u)} {arrow}|{', '.join(data['edges'])}| {_mermaid_id(v)}")
    return "\n".join(lines) + "\n"


def to_json(graph, dag) -> str:
    vertices = [{"id": vertex_name(v), "node": v[0], "t": v[1], "initial": bool(dag.nodes[v].get("initial")),
                 "role": graph.nodes[v[0]]["role"], "size": graph.nodes[v[0]]["size"]}
                for v in nx.topological_sort(dag)]
    arcs = [{"from": vertex_name(u), "to": vertex_name(v), "edges": d["edges"], "delay": d["delay"]}
            for u, v, d in dag.edges(data=True)]
    return json.dumps({"T": dag.graph["T"], "vertices": vertices, "arcs": arcs}, indent=1) + "\n"


FORMATS = {"text": to_text, "dot": to_dot, "mermaid": to_mermaid, "json": to_json}
