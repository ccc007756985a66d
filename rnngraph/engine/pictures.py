"""Pictures of a network for Jupyter: the folded graph, or the graph unrolled in time.

``folded(graph)`` pictures the folded graph (what a ``Network`` shows inline by
itself); ``unrolled(graph, dag)`` the unrolled DAG, one column per time step as
``rnngraph unroll`` and the TUI lay it out (``rnngraph.draw`` picks one).  A ``Drawing`` holds
the picture as Graphviz ``dot``, Mermaid and plain text; in a notebook it
shows as SVG when the ``graphviz`` package and its ``dot`` program are
installed, else as a Mermaid diagram (JupyterLab 4.1+ and VS Code render
it), and as text everywhere else.  Nothing here is imported until a picture
is asked for.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

from .render import to_dot, to_mermaid, to_text


@dataclass(frozen=True)
class Drawing:
    """One picture in three notations: ``dot``, ``mermaid`` and ``text``."""

    dot: str
    mermaid: str
    text: str

    def svg(self) -> str | None:
        """The picture as SVG, drawn by Graphviz; None when Graphviz is not installed."""
        try:
            import graphviz
        except ImportError:
            return None
        if shutil.which("dot") is None:
            return None
        return graphviz.Source(self.dot).pipe(format="svg").decode("utf-8")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        svg = self.svg()
        if svg is not None:
            return {"image/svg+xml": svg, "text/plain": self.text}
        return {"text/markdown": f"```mermaid\n{self.mermaid}```\n", "text/plain": self.text}

    def __str__(self) -> str:
        return self.text


def _label(graph, n) -> str:
    d = graph.nodes[n]
    parts = [f"{d['size']}"]
    if d["activation"] != "identity":
        parts.append(d["activation"])
    if d["combine"] == "product":
        parts.append("product")
    return f"{n} ({', '.join(parts)})"


def _edge_label(data) -> str:
    kind = "" if data["weight"] == "dense" else f" {data['weight']}"
    return f"{data['name']}{kind}" + (f", delay {data['delay']}" if data["delay"] else "")


def folded(graph) -> Drawing:
    """The folded graph (``net.graph``): one vertex per node, delayed edges drawn bold and dashed."""
    shape = {"input": "ellipse", "output": "doubleoctagon", "hidden": "box"}
    dot = ["digraph folded {", "  rankdir=LR;", "  node [fontname=monospace];"]
    for n, d in graph.nodes(data=True):
        dot.append(f"  {json.dumps(n)} [label={json.dumps(_label(graph, n))}, shape={shape[d['role']]}];")
    for u, v, data in graph.edges(data=True):
        style = ", style=dashed, color=blue" if data["delay"] else ""
        dot.append(f"  {json.dumps(u)} -> {json.dumps(v)} [label={json.dumps(_edge_label(data))}{style}];")
    dot.append("}")
    ids = {n: f"n{i}" for i, n in enumerate(graph.nodes)}
    mermaid = ["flowchart LR"]
    for n in graph.nodes:
        mermaid.append(f"  {ids[n]}[\"{_label(graph, n)}\"]")
    for u, v, data in graph.edges(data=True):
        arrow = "-.->" if data["delay"] else "-->"
        mermaid.append(f"  {ids[u]} {arrow}|\"{_edge_label(data)}\"| {ids[v]}")
    text = [f"# {graph.graph.get('name') or 'network'}: {graph.number_of_nodes()} nodes, "
            f"{graph.number_of_edges()} edges"]
    text += [f"  {_label(graph, n)} [{d['role']}]" for n, d in graph.nodes(data=True)]
    text += [f"  {u} -> {v}: {_edge_label(data)}" for u, v, data in graph.edges(data=True)]
    return Drawing("\n".join(dot) + "\n", "\n".join(mermaid) + "\n", "\n".join(text) + "\n")


def unrolled(graph, dag) -> Drawing:
    """The unrolled DAG ``dag`` (of ``net.unroll(T, initial=True)``) over the folded ``graph``."""
    return Drawing(to_dot(graph, dag), to_mermaid(graph, dag), to_text(graph, dag))
