"""The time loop of one recurrent component, written as a plain loop.

Three definitions of one network compute the same numbers:

* ``reference.py`` walks the unrolled DAG one vertex ``(node, t)`` at a time:
  the definition, obviously correct and slow.
* this module (``build(spec, engine="simple")``) follows the plan like the
  fast executor (time-parallel nodes and hoisted edges as whole-sequence ops)
  but runs each recurrent component as the loop below, one autodiff op at a
  time on ``(B, size)`` arrays: the tape records every step, so BPTT is
  ``Tape.backward`` with nothing written by hand.
* ``compile/`` (the default, ``engine="compiled"``) generates a specialised
  forward and backward loop per component, with preallocated buffers.

``simple_scan`` takes the same arguments and returns the same values as
``compile.runtime.scan`` (without its workspace and layout options).  At step ``t``::

    C_g(t) = W_g(v_s(t - d))                for each inner group g (source s, delay d)
    a_n(t) = base_n(t) + sum_k C_{g,k}(t)   (sum nodes)
           | base_n(t) * prod_k C_{g,k}(t)  (product nodes)
    v_n(t) = f_n(a_n(t))

where ``v_s(t - d)`` for ``t - d < 0`` is read from the history.
"""

from __future__ import annotations

import numpy as np

from . import autodiff as ad


def simple_scan(stage, graph, base: dict, weights: dict, hist: dict, T: int, B: int, dtype,
                masks: dict | None = None) -> dict:
    """Run the recurrent ``stage`` for ``T`` steps, one op at a time.

    Parameters
    ----------
    stage : plan.Stage (kind ``recurrent``)
        ``stage.nodes`` in their within-step order (a delay-0 edge's source comes
        before its target), ``stage.inner`` the groups of edges run per step.
    base : node -> Var (T, B, size) or None
        What the node gets from outside the loop: for sum nodes the hoisted
        edges plus bias, for product nodes the product of hoisted factors.
    weights : id(group) -> Var
        Each inner group's weight, a fused group's concatenated along its output
        axis: (width, source size) for dense, (size,) or () for diagonal and
        scalar; absent for identity groups.
    hist : node -> Var (D, B, size)
        The values at times -D .. -1 of the nodes read by delayed inner edges.
    masks : edge name -> dropout mask, optional: (T, B, source size) for a delay-0
        edge, (B, source size) for a delayed one (the same at every step).  A group
        with a masked edge computes each edge on its own, so its ``weights`` entry
        is a list of the edges' weights.

    Returns
    -------
    dict node -> (A, V): Vars of shape (T, B, size), pre-activation and value.
    """
    data = dict(graph.nodes(data=True))
    if T == 0:
        return {n: (_empty(B, data[n]["size"], dtype),) * 2 for n in stage.nodes}
    every_weight = [w for ws in weights.values() for w in (ws if isinstance(ws, list) else [ws])]
    tape = ad._tape_of([*every_weight, *hist.values(), *(b for b in base.values() if b is not None)])
    tracing = tape is not None and tape.trace
    if tracing:
        first_record = len(tape.records)
        hist = {n: h if h.needs_grad else tape.param(h.value) for n, h in hist.items()}   # see _trace_values

    into = {n: [] for n in stage.nodes}       # node -> [(group, k)]: it takes column block k of group's output
    for g in stage.inner:
        for k, e in enumerate(g.edges):
            into[e.target].append((g, k))
    base_at = {n: _steps(b) for n, b in base.items() if b is not None}   # node -> T Vars (B, size)
    A = {n: [] for n in stage.nodes}          # node -> [a(0), a(1), ...], each (B, size)
    V = {n: [] for n in stage.nodes}          # node -> [v(0), v(1), ...], each (B, size)

    def value(s, t):
        """v_s(t): computed earlier in this loop, or from the history when t < 0."""
        if t >= 0:
            return V[s][t]
        h = hist[s]                                           # (D, B, size), times -D .. -1
        return ad.take(h, h.shape[0] + t)

    masks = masks or {}

    def contributions(g, t):
        """Group g's output at step t, one Var (B, size_k) per target k."""
        x = value(g.source, t - g.delay)                       # (B, source size)
        if any(e.name in masks for e in g.edges):
            w = weights.get(id(g))
            out = []
            for k, e in enumerate(g.edges):
                m = masks.get(e.name)
                xk = x if m is None else ad.mul(x, ad.const(m[t] if e.delay == 0 else m))
                out.append(ad.edge_apply(g.weight, None if w is None else w[k], xk))
            return out
        out = ad.edge_apply(g.weight, weights.get(id(g)), x)   # (B, width): one GEMM for a fused group
        return ad.split(out, g.offsets) if len(g.edges) > 1 else [out]

    for t in range(T):
        step = {}                             # id(group) -> its contributions at step t, made when first read
        for n in stage.nodes:                 # within-step order: a delay-0 source is done before its targets
            parts = [base_at[n][t]] if n in base_at else []
            for g, k in into[n]:
                if id(g) not in step:
                    step[id(g)] = contributions(g, t)
                parts.append(step[id(g)][k])
            a = ad.product(parts) if data[n]["combine"] == "product" else ad.total(parts)
            v = ad.activation(data[n]["activation"], a)
            if any(v is p for p in parts):    # passed through: give n a Var of its own (its own dL/dv)
                v = ad.reshape(v, v.shape)
            A[n].append(a)
            V[n].append(v)

    if tracing:
        _trace_values(tape, first_record, V)
    return {n: (ad.stack(A[n]), ad.stack(V[n])) for n in stage.nodes}


def _steps(x):
    """x (T, B, n) as T Vars (B, n): one op, whose VJP stacks the steps' gradients
    (slicing each step with ``ad.take`` would scatter T full-size arrays back)."""
    T = x.shape[0]
    pieces = ad.split(x, list(range(T + 1)), axis=0) if T > 1 else [x]     # T Vars (1, B, n)
    return [ad.reshape(p, p.shape[1:]) for p in pieces]


def _trace_values(tape, first_record: int, V: dict) -> None:
    """With a tracing tape (which keeps every gradient), put each node's dL/dv(t)
    (T, B, size) in ``tape.traced``, as ``compile.runtime.scan`` does.  The loop reads a step's
    value as its own Var, so the stacked output's gradient holds only what
    flows in from outside the loop; the step Vars hold all of it once backward
    has passed the loop's first op, which is when a record placed before
    that op runs.  Every step Var is on the tape: the histories the loop
    starts from are made leaves (a step that depends on constants alone would
    otherwise get no gradient)."""
    for n, steps in V.items():
        def collect(grads, n=n, steps=steps):
            grads = grads if len(steps) > 1 else [grads]     # a record of one output is handed its grad alone
            tape.traced[n] = np.stack([np.zeros_like(v.value) if g is None else g
                                       for g, v in zip(grads, steps)])
            return ()
        tape.records.insert(first_record, (tuple(steps), (), collect))


def _empty(B: int, size: int, dtype):
    return ad.const(np.zeros((0, B, size), dtype))
