"""The time loop of one recurrent component, as a single autodiff op.

``scan`` runs a recurrent ``Stage`` of a ``Plan`` forward over ``T`` steps and
records one VJP that runs the loop backward (BPTT).  It owns its buffers, so
per-step work is views and ``out=`` ufuncs, and it never builds a
full-sequence gradient for one step's slice.

Forward, at step ``t`` (SPEC.md semantics, restricted to the component)::

    C_g(t) = W_g(v_s(t - d))                for each inner group g (source s, delay d)
    a_n(t) = base_n(t) + sum_k C_{g,k}(t)   (sum nodes; base = hoisted edges + bias)
           | base_n(t) * prod_k C_{g,k}(t)  (product nodes; base = hoisted factors)
    v_n(t) = f_n(a_n(t))

Backward walks ``t = T-1 .. 0`` and the nodes in reverse order, collecting
``dL/dC_g(t)`` for every step.  Weight gradients are then one GEMM per group
over all steps (``dW = sum_t dC(t)^T v_s(t-d)``), not one per step.

Shapes: every sequence is time-major ``(T, B, size)``; histories ``(D, B, size)``
hold a node's values at times ``-D .. -1``.
"""

from __future__ import annotations

import numpy as np

from .activations import ACTIVATIONS
from .autodiff import Var, _tape_of


def _edge_forward(kind, w, x, out=None):
    if kind == "dense":
        return np.matmul(x, w.T, out=out)
    if kind == "identity":
        if out is None:
            return x
        np.copyto(out, x)
        return out
    return np.multiply(x, w, out=out)


def _edge_backward_input(kind, w, g):
    """dL/dx for ``C = W(x)`` given ``g = dL/dC``."""
    if kind == "dense":
        return g @ w
    if kind == "identity":
        return g
    return g * w


def _weight_grad(kind, g_seq, x_seq):
    """dL/dW summed over all steps: one GEMM for dense edges."""
    if kind == "dense":
        return g_seq.reshape(-1, g_seq.shape[-1]).T @ x_seq.reshape(-1, x_seq.shape[-1])
    if kind == "diagonal":
        return np.einsum("tbn,tbn->n", g_seq, x_seq)
    return np.asarray(np.vdot(g_seq, x_seq), dtype=g_seq.dtype)


def _shifted(seq, hist, delay):
    """The source as a delay-``delay`` edge reads it over all steps (T, B, n)."""
    if delay == 0:
        return seq
    T, D = seq.shape[0], hist.shape[0]
    head = hist[D - delay:D - delay + min(delay, T)]
    return np.concatenate([head, seq[:max(T - delay, 0)]], axis=0)


def scan(stage, graph, base: dict, weights: dict, hist: dict, T: int, B: int, dtype):
    """Run ``stage`` for ``T`` steps.

    Parameters
    ----------
    base : node -> Var (T, B, size) or None
        What the node gets from outside the loop: for sum nodes the hoisted
        edges plus bias, for product nodes the product of hoisted factors.
    weights : id(group) -> Var
        The (fused) weight of each inner group; absent for identity groups.
    hist : node -> Var (D, B, size)
        Values before t = 0 of nodes read by delayed inner edges.

    Returns
    -------
    dict node -> (A, V): Vars of shape (T, B, size), pre-activation and value.
    """
    nodes = stage.nodes
    sizes = {n: graph.nodes[n]["size"] for n in nodes}
    acts = {n: ACTIVATIONS[graph.nodes[n]["activation"]] for n in nodes}
    is_product = {n: graph.nodes[n]["combine"] == "product" for n in nodes}
    groups = stage.inner
    delayed = [g for g in groups if g.delay > 0]
    instant_from = {n: [g for g in groups if g.delay == 0 and g.source == n] for n in nodes}
    contribs = {n: [] for n in nodes}                  # n -> [(group index, column slice)]
    for gi, g in enumerate(groups):
        for k, e in enumerate(g.edges):
            contribs[e.target].append((gi, slice(g.offsets[k], g.offsets[k + 1])))
    W = [weights[id(g)].value if id(g) in weights else None for g in groups]
    hv = {n: h.value for n, h in hist.items()}
    bv = {n: (b.value if b is not None else None) for n, b in base.items()}

    A = {n: np.empty((T, B, sizes[n]), dtype) for n in nodes}
    V = {n: np.empty((T, B, sizes[n]), dtype) for n in nodes}
    # group outputs are kept for every step only where a product node needs its factors back
    keep = [any(is_product[e.target] for e in g.edges) for g in groups]
    C_all = [np.empty((T, B, g.width), dtype) if keep[gi] else None for gi, g in enumerate(groups)]
    C_step = [np.empty((B, g.width), dtype) for g in groups]

    def source_at(g, t):
        s, d = g.source, g.delay
        if t - d >= 0:
            return V[s][t - d]
        return hv[s][hv[s].shape[0] + t - d]

    def run_group(gi, t):
        g = groups[gi]
        out = C_all[gi][t] if keep[gi] else C_step[gi]
        res = _edge_forward(g.weight, W[gi], source_at(g, t), out=out)
        if res is not out:        # identity groups may hand back the source itself
            np.copyto(out, res)
        return out

    index = {id(g): gi for gi, g in enumerate(groups)}
    delayed_idx = [index[id(g)] for g in delayed]
    instant_idx = {n: [index[id(g)] for g in instant_from[n]] for n in nodes}
    outs = [None] * len(groups)
    for t in range(T):
        for gi in delayed_idx:
            outs[gi] = run_group(gi, t)
        for n in nodes:
            a = A[n][t]
            parts = contribs[n]
            if is_product[n]:
                first = True
                if bv[n] is not None:
                    np.copyto(a, bv[n][t])
                    first = False
                for gi, cols in parts:
                    if first:
                        np.copyto(a, outs[gi][:, cols])
                        first = False
                    else:
                        a *= outs[gi][:, cols]
            else:
                if bv[n] is not None:
                    np.copyto(a, bv[n][t])
                else:
                    a.fill(0)
                for gi, cols in parts:
                    a += outs[gi][:, cols]
            forward = acts[n][0]
            if forward is ACTIVATIONS["identity"][0]:
                np.copyto(V[n][t], a)
            else:
                V[n][t] = forward(a)
            for gi in instant_idx[n]:
                outs[gi] = run_group(gi, t)

    base_nodes = [n for n in nodes if base.get(n) is not None]
    weight_groups = [gi for gi, g in enumerate(groups) if id(g) in weights]
    hist_nodes = [n for n in nodes if n in hist]
    inputs = [base[n] for n in base_nodes] + [weights[id(groups[gi])] for gi in weight_groups] + \
             [hist[n] for n in hist_nodes]
    A_vars = {n: Var(A[n]) for n in nodes}
    V_vars = {n: Var(V[n]) for n in nodes}
    tape = _tape_of(inputs)
    if tape is None:
        return {n: (A_vars[n], V_vars[n]) for n in nodes}
    for n in nodes:
        A_vars[n].tape = tape
        V_vars[n].tape = tape
    outputs = tuple(v for n in nodes for v in (A_vars[n], V_vars[n]))

    def vjp(out_grads):
        gA_ext = {n: out_grads[2 * i] for i, n in enumerate(nodes)}
        gV = {}
        for i, n in enumerate(nodes):
            g = out_grads[2 * i + 1]
            gV[n] = np.zeros((T, B, sizes[n]), dtype) if g is None else np.array(g, dtype=dtype, copy=True)
        GA = {n: np.empty((T, B, sizes[n]), dtype) for n in nodes}
        GC = [np.zeros((T, B, g.width), dtype) for g in groups]
        g_hist = {n: np.zeros(hv[n].shape, dtype) for n in hist_nodes}

        def send_to_source(gi, t):
            g = groups[gi]
            gx = _edge_backward_input(g.weight, W[gi], GC[gi][t])
            s, d = g.source, g.delay
            if t - d >= 0:
                gV[s][t - d] += gx
            elif s in g_hist:
                g_hist[s][g_hist[s].shape[0] + t - d] += gx

        def factor(gi, t, cols):
            if keep[gi]:
                return C_all[gi][t][:, cols]
            raise AssertionError("product factor not kept")

        for t in range(T - 1, -1, -1):
            for n in reversed(nodes):
                for gi in instant_idx[n]:
                    send_to_source(gi, t)
                backward = acts[n][1]
                ga = backward(gV[n][t], A[n][t], V[n][t])
                if gA_ext[n] is not None:
                    ga = ga + gA_ext[n][t]
                GA[n][t] = ga
                parts = contribs[n]
                if is_product[n]:
                    factors = ([bv[n][t]] if bv[n] is not None else []) + \
                              [factor(gi, t, cols) for gi, cols in parts]
                    offset = 1 if bv[n] is not None else 0
                    for j, (gi, cols) in enumerate(parts):
                        prod = ga
                        for m, f in enumerate(factors):
                            if m != j + offset:
                                prod = prod * f
                        GC[gi][t][:, cols] = prod
                else:
                    for gi, cols in parts:
                        GC[gi][t][:, cols] = ga
            for gi in delayed_idx:
                send_to_source(gi, t)

        grads = []
        for n in base_nodes:
            if is_product[n]:
                others = np.ones((T, B, sizes[n]), dtype)
                for gi, cols in contribs[n]:
                    others *= C_all[gi][:, :, cols]
                grads.append(GA[n] * others)
            else:
                grads.append(GA[n])
        for gi in weight_groups:
            g = groups[gi]
            if not weights[id(g)].needs_grad:
                grads.append(None)
                continue
            x_seq = _shifted(V[g.source], hv.get(g.source), g.delay)
            grads.append(_weight_grad(g.weight, GC[gi], x_seq))
        for n in hist_nodes:
            grads.append(g_hist[n])
        return grads

    tape.record(outputs, tuple(inputs), vjp)
    return {n: (A_vars[n], V_vars[n]) for n in nodes}
