"""The equation of one vertex of the unrolled DAG, in the words of docs/spec-format.md.

``vertex_equation(graph, "hidden", 3)`` gives
``hidden@3 = sigmoid(W x@3 + U context@2 + b)`` and a legend saying which
parameter each symbol is (``W = x->hidden (4, 1)``).  The terms come from
the folded graph's real edges and delays; nothing is recomputed.
"""

from __future__ import annotations

import networkx as nx

from .layout import vertex_label
from .model import init_text

__all__ = ["vertex_equation"]

_SYMBOLS = {"dense": ("W", "U"), "diagonal": ("d", "e"), "scalar": ("a", "c")}


def vertex_equation(graph: nx.MultiDiGraph, node, t: int, shapes: dict):
    """``(equation, legend lines)`` for vertex ``(node, t)``; ``shapes`` maps
    parameter names to shapes (``Analysis.param_shapes``)."""
    attrs = graph.nodes[node]
    head = vertex_label(node, t)
    if attrs.get("role") == "input":
        return f"{head} = data[{node}][:, {t}]", [f"{node}: input, size {attrs.get('size')}"]
    edges = list(graph.in_edges(node, keys=True, data=True))
    # name the parameters: W for delay-0 dense, U for delayed dense, numbered when repeated
    groups: dict[str, list] = {}
    for u, _, k, a in edges:
        kind = a.get("weight", "dense")
        if kind in _SYMBOLS:
            base = _SYMBOLS[kind][1 if a.get("delay", 0) else 0]
            groups.setdefault(base, []).append(k)
    symbol = {}
    for base, keys in groups.items():
        for i, k in enumerate(keys):
            symbol[k] = base if len(keys) == 1 else f"{base}{i + 1}"
    terms, legend = [], []
    for u, v, k, a in edges:
        d = a.get("delay", 0)
        src = vertex_label(u, t - d)
        kind = a.get("weight", "dense")
        sym = symbol.get(k)
        if kind == "dense":
            terms.append(f"{sym} {src}")
        elif kind == "diagonal":
            terms.append(f"{sym} ⊙ {src}")
        elif kind == "scalar":
            terms.append(f"{sym}·{src}")
        else:
            terms.append(src)
        if sym:
            name = a.get("param") or a.get("name") or k
            shape = shapes.get(name, "?")
            frozen = "" if a.get("trainable", True) else ", frozen"
            legend.append(f"{sym} = {name} {shape}{frozen}, delay {d}")
        if t - d < 0:
            init = graph.nodes[u].get("init", 0)
            legend.append(f"{src} = init of {u} ({init_text(init)})")
    product = attrs.get("combine") == "product"
    expr = (" ⊙ " if product else " + ").join(terms) if terms else "0"
    bias = attrs.get("bias")
    if bias and not product:
        expr += " + b"
        legend.append(f"b = {bias} ({attrs.get('size')},)")
    act = attrs.get("activation") or "identity"
    if act != "identity":
        expr = f"{act}({expr})"
    return f"{head} = {expr}", legend
