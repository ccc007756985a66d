"""The reference interpreter: the unrolled DAG, walked one vertex at a time.

This is the definition of what a network computes, kept obviously correct
rather than fast: for each vertex ``(n, t)`` of ``net.unroll(T)`` in
topological order it applies SPEC.md's semantics literally, with the generic
autodiff ops on ``(B, size)`` arrays.  The fast executor (plan + scan) must
match it on every network; the tests check that on every spec and on random
graphs.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from . import autodiff as ad
from .executor import histories, weight_vars
from .losses import output_loss


def reference_values(net, inputs=None, initial=None, steps=None, tape=None, targets=None):
    """Every node's (A, V) as Vars (T, B, size), computed vertex by vertex.
    ``targets`` only tell the batch size where nothing else does."""
    xs, initial, T, B = net._prepare(inputs, initial, steps, targets=targets)
    graph = net.graph
    leaves, effective = weight_vars(net.program, net._checked_params(), tape)
    hist = histories(net.program, leaves, T, B, net.dtype, initial, None)
    dag = net.unroll(T)
    A, V = {}, {}
    for vertex in nx.topological_sort(dag):
        n, t = vertex
        attrs = graph.nodes[n]
        if attrs["role"] == "input":
            V[vertex] = A[vertex] = ad.const(xs[n][t])
            continue
        parts = []
        for pred in dag.predecessors(vertex):           # sources at t - d >= 0
            for key in dag.edges[pred, vertex]["edges"]:
                kind = graph.edges[pred[0], n, key]["weight"]
                parts.append(ad.edge_apply(kind, effective.get(key), V[pred]))
        for u, _, key, data in graph.in_edges(n, keys=True, data=True):
            d = data["delay"]
            if t - d < 0:                               # sources before time 0: initial states
                h = hist[u]
                parts.append(ad.edge_apply(data["weight"], effective.get(key),
                                           ad.take(h, h.shape[0] + t - d)))
        if attrs["combine"] == "product":
            a = ad.product(parts)
        else:
            a = ad.total(parts) if parts else ad.const(np.zeros((B, attrs["size"]), net.dtype))
            if attrs["bias"]:
                a = ad.add(a, leaves[attrs["bias"]])
        A[vertex] = a
        V[vertex] = ad.activation(attrs["activation"], a)
    out = {}
    for n in graph.nodes:
        if T == 0:
            empty = ad.const(np.zeros((0, B, graph.nodes[n]["size"]), net.dtype))
            out[n] = (empty, empty)
        else:
            out[n] = (ad.stack([A[(n, t)] for t in range(T)]), ad.stack([V[(n, t)] for t in range(T)]))
    return out, leaves


def reference_forward(net, inputs=None, initial=None, steps=None) -> dict:
    """Like ``net.forward``, by the reference interpreter."""
    values, _ = reference_values(net, inputs, initial, steps)
    return net._batch_major({n: v for n, (a, v) in values.items()})


def reference_loss_and_grad(net, inputs, targets, loss=None, initial=None, mask=None, steps=None,
                            targets_any_node=False):
    """Like ``net.loss_and_grad``, by the reference interpreter."""
    kind = loss or net.spec.train.get("loss", "mse")
    _, _, T, B = net._prepare(inputs, initial, steps, targets=targets)
    ys, ws = net._prepare_targets(targets, mask, T, B, targets_any_node)
    tape = ad.Tape()
    values, leaves = reference_values(net, inputs, initial, steps, tape=tape, targets=targets)
    terms = [t for t in (output_loss(kind, values[n][0], values[n][1], y, ws.get(n),
                                     net.graph.nodes[n]["activation"]) for n, y in ys.items()) if t is not None]
    total = (ad.total(terms) if len(terms) > 1 else terms[0]) if terms else ad.const(np.zeros((), net.dtype))
    if total.needs_grad:
        tape.backward(total)
    grads = {}
    for name in net.trainable:
        g = leaves[name].grad
        grads[name] = np.zeros_like(net.params[name]) if g is None else np.asarray(g).reshape(net.params[name].shape)
    return float(total.value), grads
