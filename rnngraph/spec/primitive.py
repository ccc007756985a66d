"""Checks that need the whole primitive network, after blocks are expanded."""

from __future__ import annotations

import networkx as nx
import numpy as np

from .model import MAX_PARAM_BYTES, Spec, param_shape
from .values import array_shape, parse_initializer


def check_primitive(spec: Spec) -> None:
    """Checks that need the whole primitive network; raises ``SpecError``.

    A cycle of delay-0 edges (named, in order), duplicate edge names made by
    expansion, product nodes without inputs, explicit initial weights of the
    wrong shape, and parameters too large to allocate.  Within a cycle all nonzero
    delays share one sign, and ``truncate`` needs none negative (``method: rtrl``'s
    own checks are the validator's ``training_options``).
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
        if init[0] == "array" and array_shape(edge.init) != shape:
            raise spec.error(edge.where + ("init",), f"init list has shape {array_shape(edge.init)} but edge "
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
    component's loop runs forward or backward in time); and truncated BPTT, whose
    windows step forward in time, needs no negative delay.

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
