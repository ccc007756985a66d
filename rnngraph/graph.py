"""The folded graph of primitive nodes, its checks, and its unrolling in time.

``folded_graph(spec)`` is ``net.graph``: a networkx ``MultiDiGraph`` whose
nodes are primitive node names and whose edges are keyed by edge name.

Node attributes: ``size``, ``role``, ``activation``, ``combine``, ``bias``
(the bias parameter's name or None), ``init`` (an ``Init``), ``init_param`` (the trainable initial state's parameter name
or None), ``block`` and ``part`` (for nodes a block expanded into, else None).
Edge attributes: ``name``, ``delay``, ``weight``, ``param`` (the parameter's
name or None for identity edges), ``trainable``, ``constraints``.

``unroll(graph, T)`` is the definition of the network's meaning: a DAG with
a vertex ``(node, t)`` for ``0 <= t < T`` and an arc ``(s, t-d) -> (n, t)``
for every edge ``s -> n`` of delay ``d`` with ``0 <= t - d < T`` (a negative
delay reads a later step).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .spec import MAX_PARAM_BYTES, Bias, Spec, parse_initializer, _array_shape


def resolved_bias(node, incoming) -> Bias | None:
    """The format's default: a bias for ``sum`` nodes with a dense incoming edge."""
    if node.role == "input" or node.combine == "product" or node.bias is False:
        return None
    if isinstance(node.bias, Bias):
        return node.bias
    return Bias() if any(e.weight == "dense" for e in incoming) else None


def param_shape(edge, sizes) -> tuple:
    """Shape of an edge's parameter: dense (to, from), diagonal (n,), scalar ()."""
    if edge.weight == "dense":
        return (sizes[edge.target], sizes[edge.source])
    if edge.weight == "diagonal":
        return (sizes[edge.target],)
    return ()


def check_network(spec: Spec) -> None:
    """Checks that need the whole primitive network; raises ``SpecError``.

    A cycle of delay-0 edges (named, in order), duplicate edge names made by
    expansion, product nodes without inputs, explicit initial weights of the
    wrong shape, and parameters too large to allocate.
    """
    sizes = {n.name: n.size for n in spec.nodes.values()}
    seen = {}
    for edge in spec.edges:
        if edge.name in seen:
            first = seen[edge.name]
            user = first if first.where[:1] == ("edges",) else edge   # point at what the user wrote
            raise spec.error(user.where, f"edge {edge.name!r} is defined twice (blocks already contain their own "
                                         f"recurrence h(t-1) -> gates; remove this edge or name it)")
        seen[edge.name] = edge
    instant = nx.DiGraph()
    instant.add_nodes_from(sizes)
    for edge in spec.edges:
        if edge.delay == 0:
            instant.add_edge(edge.source, edge.target, edge=edge)
    try:
        cycle = nx.find_cycle(instant)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = [u for u, _ in cycle] + [cycle[0][0]]
        first = instant.edges[cycle[0][0], cycle[0][1]]["edge"]
        raise spec.error(first.where, "cycle of delay-0 edges " + " -> ".join(names) +
                         ": every cycle needs an edge with delay >= 1 (a value cannot depend on itself "
                         "at the same time step)")
    _check_directions(spec, sizes)
    incoming = {n: [] for n in sizes}
    for edge in spec.edges:
        incoming[edge.target].append(edge)
    for node in spec.nodes.values():
        if node.combine == "product" and not incoming[node.name]:
            raise spec.error(node.where, f"product node {node.name!r} has no incoming edges to multiply")
    total = 0
    itemsize = np.dtype(spec.dtype).itemsize
    for edge in spec.edges:
        if not edge.has_param:
            continue
        shape = param_shape(edge, sizes)
        total += int(np.prod(shape, dtype=np.int64)) * itemsize
        try:
            init = parse_initializer(edge.init)
        except ValueError:
            continue
        if init[0] == "array" and _array_shape(edge.init) != shape:
            raise spec.error(edge.where + ("init",), f"init list has shape {_array_shape(edge.init)} but edge "
                                                     f"{edge.name!r} ({edge.weight}) needs shape {shape}")
        if init[0] == "orthogonal" and edge.weight != "dense":
            raise spec.error(edge.where + ("init",), "orthogonal init needs a dense edge")
    if total > MAX_PARAM_BYTES:
        biggest = max((e for e in spec.edges if e.has_param),
                      key=lambda e: int(np.prod(param_shape(e, sizes), dtype=np.int64)))
        raise spec.error(biggest.where, f"the parameters alone would need {total / 1024 ** 3:.1f} GiB "
                             f"(more than {MAX_PARAM_BYTES / 1024 ** 3:.0f} GiB); reduce the sizes")


def _check_directions(spec: Spec, sizes: dict) -> None:
    """Within a strongly connected component all nonzero delays share one sign (the
    component's loop runs forward or backward in time); and training that steps
    through time forward (``truncate``, ``method: rtrl``) needs no negative delay.

    A mixed component is reported with a closed walk through one edge of each sign:
    around it a value would depend on itself at the same step."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(sizes)
    for edge in spec.edges:
        graph.add_edge(edge.source, edge.target, edge=edge)
    for component in nx.strongly_connected_components(graph):
        inner = [e for e in spec.edges if e.source in component and e.target in component]
        later = next((e for e in inner if e.delay > 0), None)
        earlier = next((e for e in inner if e.delay < 0), None)
        if later is None or earlier is None:
            continue
        sub = nx.DiGraph(graph.subgraph(component))
        walk = [later.source] + nx.shortest_path(sub, later.target, earlier.source) + \
            nx.shortest_path(sub, earlier.target, later.source)
        raise spec.error(earlier.where, "cycle " + " -> ".join(walk) + f" mixes delays {later.delay} "
                         f"({later.source} -> {later.target}) and {earlier.delay} ({earlier.source} -> "
                         f"{earlier.target}): a cycle's nonzero delays must share one sign (its loop runs "
                         f"either forward or backward in time)")
    ahead = next((e for e in spec.edges if e.delay < 0), None)
    if ahead is None:
        return
    train = spec.train or {}
    reason = f"edge {ahead.source} -> {ahead.target} has delay {ahead.delay} (it reads a later step)"
    if train.get("truncate"):
        raise spec.error(("train", "truncate"), f"truncate needs every delay >= 0, but {reason}: windows "
                                                f"run forward in time and cannot see past their end; "
                                                f"remove truncate (full BPTT)")
    if train.get("method") == "rtrl":
        raise spec.error(("train", "method"), f"rtrl computes gradients forward in time and needs every "
                                              f"delay >= 0, but {reason}; use method: bptt")


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
                       trainable=edge.trainable and edge.has_param, constraints=edge.constraints)
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
    With ``initial=True``, vertices ``(s, t)`` for ``t < 0`` (or ``t >= T``,
    read by negative delays) stand for the initial states read by delayed
    edges (attribute ``initial=True``).
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
            if not 0 <= src_t < T:
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
