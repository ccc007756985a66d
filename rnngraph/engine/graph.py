"""The folded graph of primitive nodes, its checks, and its unrolling in time.

``folded_graph(spec)`` is ``net.graph``: a networkx ``MultiDiGraph`` whose
nodes are primitive node names and whose edges are keyed by edge name.

Node attributes: ``size``, ``role``, ``activation``, ``combine``, ``bias``
(the bias parameter's name or None), ``init`` (an ``Init``), ``init_param`` (the trainable initial state's parameter name
or None), ``block`` and ``part`` (for nodes a block expanded into, else None).
Edge attributes: ``name``, ``delay``, ``weight``, ``param`` (the parameter's
name or None for identity edges), ``trainable``, ``constraints``, ``dropout`` (0 or the
probability training drops a unit of the value read).

``unroll(graph, T)`` is the definition of the network's meaning: a DAG with
a vertex ``(node, t)`` for ``0 <= t < T`` and an arc ``(s, t-d) -> (n, t)``
for every edge ``s -> n`` of delay ``d`` with ``t - d >= 0``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..spec import Bias, Spec


def resolved_bias(node, incoming) -> Bias | None:
    """The format's default: a bias for ``sum`` nodes with a dense incoming edge."""
    if node.role == "input" or node.combine == "product" or node.bias is False:
        return None
    if isinstance(node.bias, Bias):
        return node.bias
    return Bias() if any(e.weight == "dense" for e in incoming) else None


def folded_graph(spec: Spec) -> nx.MultiDiGraph:
    """``net.graph``: primitive nodes and edges with their attributes (module doc)."""
    spec = spec.expanded()
    graph = nx.MultiDiGraph(name=spec.name)
    incoming = {n: [] for n in spec.nodes}
    for edge in spec.edges:
        incoming[edge.target].append(edge)
    for node in spec.nodes.values():
        bias = resolved_bias(node, incoming[node.name])
        graph.add_node(node.name, size=node.size, role=node.role, activation=node.activation,
                       combine=node.combine, bias=f"{node.name}.bias" if bias else None,
                       bias_init=bias.init if bias else None, bias_trainable=bias.trainable if bias else False,
                       init=node.init, init_param=f"{node.name}.init" if node.init.trainable else None,
                       block=node.block, part=node.part)
    for edge in spec.edges:
        graph.add_edge(edge.source, edge.target, key=edge.name, name=edge.name, delay=edge.delay,
                       weight=edge.weight, param=edge.name if edge.has_param else None,
                       trainable=edge.trainable and edge.has_param, constraints=edge.constraints,
                       dropout=edge.dropout)
    return graph


def instant_order(graph: nx.MultiDiGraph, nodes=None) -> list:
    """Nodes in an order where every delay-0 edge goes forward (stable: ties
    keep the graph's node order)."""
    nodes = list(graph.nodes) if nodes is None else list(nodes)
    member = set(nodes)
    position = {n: i for i, n in enumerate(graph.nodes)}
    sub = nx.DiGraph()
    sub.add_nodes_from(nodes)
    for u, v, d in graph.edges(data="delay"):
        if d == 0 and u in member and v in member:
            sub.add_edge(u, v)
    return list(nx.lexicographical_topological_sort(sub, key=lambda n: position[n]))


def unroll(graph: nx.MultiDiGraph, T: int, initial: bool = False) -> nx.DiGraph:
    """The time-indexed DAG of ``graph`` over ``T`` steps.

    Vertices ``(node, t)`` carry the node's attributes plus ``t``; an arc
    ``(s, t-d) -> (n, t)`` carries ``edges`` (the names of the folded edges it
    stands for: two named edges may join the same pair) and ``delay``.
    With ``initial=True``, vertices ``(s, t)`` for ``t < 0`` stand for the
    initial states read by delayed edges (attribute ``initial=True``).
    """
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 0:
        raise ValueError(f"T must be an integer >= 0, got {T!r}")
    dag = nx.DiGraph(T=int(T), name=graph.graph.get("name", ""))
    order = instant_order(graph)
    for t in range(T):
        for n in order:
            dag.add_node((n, t), t=t, **graph.nodes[n])
    for u, v, key, d in graph.edges(keys=True, data="delay"):
        for t in range(T):
            src_t = t - d
            if src_t < 0:
                if not initial:
                    continue
                if (u, src_t) not in dag:
                    dag.add_node((u, src_t), t=src_t, initial=True, **graph.nodes[u])
            if dag.has_edge((u, src_t), (v, t)):
                dag.edges[(u, src_t), (v, t)]["edges"].append(key)
            else:
                dag.add_edge((u, src_t), (v, t), edges=[key], delay=d)
    return dag


def vertex_name(vertex) -> str:
    """``("hidden", 3)`` -> ``"hidden@3"``."""
    node, t = vertex
    return f"{node}@{t}"
