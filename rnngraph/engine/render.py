"""Printing the time-indexed DAG: text, Graphviz dot, Mermaid and JSON.

Each printer takes the DAG of ``net.unroll(T, initial=True)`` (and the
folded graph for equations) and returns a string; none changes anything.
Vertices print as ``hidden@3``; initial states as ``context@-1`` (or, read by
a negative delay, ``context@T``: the same initial value past the last step).

``marks`` (a ``lossmarks.Marks``, optional) shows where the loss counts
(``<- loss`` in text, a bold red outline in dot, a red class in Mermaid,
``"loss": true`` in JSON) and which input vertices the data leaves empty.
"""

from __future__ import annotations

import json

import networkx as nx

from .graph import vertex_name


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


def _loss(marks, v) -> bool:
    return marks is not None and v in marks.loss


def _empty(marks, v) -> bool:
    return marks is not None and v in marks.empty


def to_text(graph, dag, marks=None) -> str:
    lines = [f"# {dag.graph.get('name') or 'network'} unrolled over T={dag.graph['T']}: "
             f"{sum(1 for _, d in dag.nodes(data='initial') if not d)} vertices, {dag.number_of_edges()} arcs"]
    if marks is not None:
        counted = sorted(marks.loss, key=lambda v: (v[1], v[0]))
        lines.append(f"# {marks.note}: " + (", ".join(vertex_name(v) for v in counted) or "no step here"))
    for t, vertices in _by_time(dag).items():
        if _initial(dag, t):
            lines.append(f"t={t} (initial states): " + ", ".join(vertex_name(v) for v in vertices))
            continue
        lines.append(f"t={t}:")
        for v in vertices:
            text = equation(graph, dag, v)
            if _empty(marks, v):
                text = f"{vertex_name(v)} = 0 (no data at this step)"
            lines.append("  " + text + ("    <- loss" if _loss(marks, v) else ""))
    return "\n".join(lines) + "\n"


def _dot_id(vertex) -> str:
    return json.dumps(vertex_name(vertex))


def to_dot(graph, dag, marks=None) -> str:
    lines = ["digraph unrolled {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    if marks is not None:
        lines.append(f"  label={json.dumps('bold red: ' + marks.note)}; labelloc=t;")
    for t, vertices in _by_time(dag).items():
        label = f"t={t} (initial)" if _initial(dag, t) else f"t={t}"
        lines.append(f'  subgraph "cluster_t{t}" {{ label="{label}"; style=dashed;')
        for v in vertices:
            shape = "ellipse" if graph.nodes[v[0]]["role"] == "input" else \
                "doubleoctagon" if graph.nodes[v[0]]["role"] == "output" else "box"
            style = ", style=dotted" if dag.nodes[v].get("initial") or _empty(marks, v) else ""
            if _loss(marks, v):
                style += ', color=red, penwidth=3, xlabel="loss"'
            if _empty(marks, v):
                style += f", label={json.dumps(vertex_name(v) + ' (0)')}"
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


def to_mermaid(graph, dag, marks=None) -> str:
    lines = ["flowchart LR"]
    if marks is not None:
        lines.append(f"  %% red: {marks.note}")
    for t, vertices in _by_time(dag).items():
        label = f"t={t} (initial)" if _initial(dag, t) else f"t={t}"
        lines.append(f"  subgraph t{'m' if t < 0 else ''}{abs(t)}[\"{label}\"]")
        for v in vertices:
            label = vertex_name(v) + (" (loss)" if _loss(marks, v) else " (0)" if _empty(marks, v) else "")
            lines.append(f"    {_mermaid_id(v)}[\"{label}\"]")
        lines.append("  end")
    for u, v, data in dag.edges(data=True):
        arrow = "-.->" if data["delay"] else "-->"
        lines.append(f"  {_mermaid_id(u)} {arrow}|{', '.join(data['edges'])}| {_mermaid_id(v)}")
    if marks is not None:
        lines.append("  classDef loss stroke:#d00,stroke-width:3px,fill:#fee")
        lines.append("  classDef empty stroke-dasharray:4 3,color:#888")
        for name, chosen in (("loss", marks.loss), ("empty", marks.empty)):
            ids = sorted(_mermaid_id(v) for v in chosen if v in dag)
            if ids:
                lines.append(f"  class {','.join(ids)} {name}")
    return "\n".join(lines) + "\n"


def to_json(graph, dag, marks=None) -> str:
    vertices = [{"id": vertex_name(v), "node": v[0], "t": v[1], "initial": bool(dag.nodes[v].get("initial")),
                 "role": graph.nodes[v[0]]["role"], "size": graph.nodes[v[0]]["size"],
                 **({"loss": _loss(marks, v), "empty": _empty(marks, v)} if marks is not None else {})}
                for v in nx.topological_sort(dag)]
    arcs = [{"from": vertex_name(u), "to": vertex_name(v), "edges": d["edges"], "delay": d["delay"]}
            for u, v, d in dag.edges(data=True)]
    extra = {"loss_note": marks.note} if marks is not None else {}
    return json.dumps({"T": dag.graph["T"], **extra, "vertices": vertices, "arcs": arcs}, indent=1) + "\n"


FORMATS = {"text": to_text, "dot": to_dot, "mermaid": to_mermaid, "json": to_json}
