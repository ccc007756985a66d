"""The fast executor: carries out a ``Plan`` on the autodiff tape.

``run`` computes every node's pre-activation and value over all steps.
Time-parallel stages and sequence edges are whole-sequence array ops; each
recurrent stage is one ``scan`` (``loop.simple_scan`` with ``engine="simple"``).
With a ``Tape``, everything needed for ``Tape.backward`` is recorded; without
one, nothing is.

All arrays here are time-major: ``(T, B, size)``.  With replicas (``B`` given as
a pair ``(R, B)``, ``engine/replicas.py``) they are ``(T, R, B, size)``: R copies of
the network, each with its own parameters (stacked along a leading axis), run
as one program.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import autodiff as ad
from ..errors import DataError
from .compile.runtime import Columns, FusedOutput, scan
from .compile.replica_scan import replica_scan
from .loop import simple_scan

# how a recurrent stage's time loop runs: ``scan.scan`` (generated, fast) or
# ``loop.simple_scan`` (a plain loop of autodiff ops, readable)
ENGINES = ("compiled", "simple")


@dataclass
class Run:
    """What one execution produced.

    values : node -> (A, V) Vars (T, B, size)
    params : name -> Var, each parameter's leaf; a parameter read through a fused
        array gets its gradient there instead (``fused_grads``)
    history : node -> ndarray (D, B, size), each node's last D values, for
        carrying state into the next window (truncated BPTT).  Made when first
        read (a training step without truncation never reads it); with a
        workspace, read it before the next call, which overwrites the values.
    """

    values: dict
    params: dict
    traced: dict = None    # with a tracing tape: node -> dL/dv (T, B, size) from the scans
    depths: dict = None    # node -> the history depth the plan keeps (0: none)
    before: dict = None    # node -> Var (D, B, size), the history this run started from
    fused: list = None     # (leaf Var, flat.Flat): fused arrays read as one leaf; their members'
                           # gradients are row blocks of the leaf's (``fused_grads``)

    def fused_grads(self) -> dict:
        """dL/dparam after ``Tape.backward`` of the parameters read through a fused array
        (their row blocks of its gradient, None where none flowed); every other
        parameter's is its leaf's ``grad`` (``params[name].grad``)."""
        grads = {}
        for leaf, flat in self.fused or ():
            for name, (lo, hi) in zip(flat.names, flat.spans):
                grads[name] = None if leaf.grad is None else leaf.grad[lo:hi]
        return grads

    @functools.cached_property
    def history(self) -> dict:
        carried = {}
        for n, depth in self.depths.items():
            if depth == 0:
                continue
            seq = self.values[n][1].value
            carried[n] = np.concatenate([self.before[n].value, seq], axis=0)[-depth:] if seq.shape[0] < depth \
                else seq[seq.shape[0] - depth:].copy()
        return carried


def _rows(B) -> tuple:
    """The batch axes of an array: ``(B,)``, or ``(R, B)`` for replicas."""
    return tuple(B) if isinstance(B, tuple) else (B,)


def _param_lead(B) -> tuple:
    """The leading axes of a stacked replica parameter's non-matrix form: ``()``,
    or ``(R, 1)`` (a bias or diagonal weight is stored (R, 1, size))."""
    return (B[0], 1) if isinstance(B, tuple) else ()


def weight_vars(program, params: dict, tape) -> tuple[dict, dict]:
    """Leaf Vars for every parameter, and each edge's effective weight (its
    constraints applied as ops, so gradients respect them)."""
    if tape is None:
        leaves = {name: ad.const(value) for name, value in params.items()}
    else:
        trainable = program.trainable
        leaves = {name: tape.param(value) if name in trainable else ad.const(value) for name, value in params.items()}
    effective = {}
    for key, param, constraints in program.weighted_edges:
        w = leaves[param]
        if "symmetric" in constraints:
            w = ad.symmetric(w)
        if "zero_diagonal" in constraints:
            w = ad.zero_diagonal(w)
        effective[key] = w
    return leaves, effective


def histories(program, leaves: dict, T: int, B: int, dtype, initial: dict | None,
              carried: dict | None) -> dict:
    """node -> Var (D, B, size): the values a node shows at times -D .. -1.

    ``carried`` (from a previous window) wins over ``initial`` (B, size),
    which wins over the node's ``init``."""
    fixed = program.fixed_histories
    if not carried and not initial:
        found = fixed.get((B, dtype))
        if found is not None:
            return found
    out = {}
    data = program.nodes
    for n, depth in program.plan.history_depth.items():
        if depth == 0:
            continue
        size = data[n]["size"]
        init = data[n]["init"]
        if carried is not None and n in carried:
            h = np.asarray(carried[n], dtype=dtype)
            if h.shape[0] < depth:   # pad older times with the node's initial value
                pad = np.broadcast_to(h[:1] if init.kind == "input" else np.asarray(init.value, dtype),
                                      (depth - h.shape[0], *_rows(B), size))
                h = np.concatenate([pad, h], axis=0)
            out[n] = ad.const(np.ascontiguousarray(h[h.shape[0] - depth:]))
        else:
            out[n] = _initial_values(program, leaves, n, depth, B, dtype, initial)
    if not carried and not initial and all(data[n]["init"].kind != "input" and not data[n]["init"].trainable
                                           for n in out):
        # every history is a read-only constant: the same Vars serve every call (no tape holds them)
        fixed[(B, dtype)] = out
    return out


def futures(program, leaves: dict, B: int, dtype, initial: dict | None) -> dict:
    """node -> Var (D, B, size): the values a node shows at times T .. T+D-1, read
    by edges of negative delay: its initial value (``initial`` (B, size) wins over
    the node's ``init``), the same at every such time."""
    return {n: _initial_values(program, leaves, n, depth, B, dtype, initial)
            for n, depth in program.plan.future_depth.items()}


def _initial_values(program, leaves, n, depth, B, dtype, initial) -> ad.Var:
    """Node n's initial value repeated ``depth`` times: a Var (depth, B, size)."""
    size, init = program.nodes[n]["size"], program.nodes[n]["init"]
    if initial is not None and n in initial:
        return ad.const(np.broadcast_to(initial[n], (depth, *_rows(B), size)))
    if init.kind == "input":
        raise DataError(f"node {n!r} has `init: input`: its initial state must be supplied per sample, "
                        f"as initial={{{n!r}: array of shape (batch, {size})}} (or '{n}.init' in a data file)")
    if init.trainable:
        return ad.broadcast(leaves[f"{n}.init"], (depth, *_rows(B), size))
    return ad.const(_constant_history(program, n, init.value, depth, B, size, dtype))


def _constant_history(program, n, value, depth, B, size, dtype) -> np.ndarray:
    """A fixed initial value broadcast to (depth, B, size), made once per shape
    (np.broadcast_to costs as much as a small op, and this runs every step).  Read-only."""
    key = (n, depth, B, size, np.dtype(dtype).str)   # a built graph never changes its init values
    h = program.constant_histories.get(key)
    if h is None:
        h = program.constant_histories[key] = np.broadcast_to(np.asarray(value, dtype=dtype), (depth, *_rows(B), size))
    return h


def run(program, params: dict, inputs: dict, T: int, B: int, dtype, tape=None,
        initial: dict | None = None, carried: dict | None = None, reuse: bool = False,
        lean: frozenset = frozenset(), engine: str = "compiled", masks: dict | None = None) -> Run:
    """Execute ``program.plan`` over ``T`` steps for a batch of ``B``.

    inputs : input node -> ndarray (T, B, size), time-major, already checked.
    initial : node -> (B, size) initial states overriding ``init``.
    carried : node -> (D, B, size) histories from a previous window.
    reuse : the recurrent loops keep their buffers in ``program.workspaces`` between
        calls: the values of recurrent nodes are then valid until the next call.
    lean : nodes whose pre-activations no one reads (passed to every ``scan``).
    A fused group whose members ``params`` still holds as views of its array
    (``program.flats``, see ``flat.lay_out``) reads the array as one leaf (``Run.fused``
    says which), instead of concatenating them.
    engine : one of ``ENGINES``: ``"simple"`` runs recurrent stages by ``loop.simple_scan``
        (workspace and lean then go unused).
    masks : edge name -> dropout mask, time-major (``dropout.time_major_masks``): a masked
        edge reads ``mask * v_s(t - d)``.  A masked edge is computed on its own (out of
        its fused group), and a recurrent stage with a masked edge inside runs by
        ``loop.simple_scan`` whatever ``engine`` says (the compiled loops take no masks).
    """
    masks = masks or {}
    dtype = np.dtype(dtype)
    graph, plan, flats, data = program.graph, program.plan, program.flats, program.nodes
    fused_leaves = []      # (leaf Var, Flat) of the fused arrays read as leaves
    leaves, effective = weight_vars(program, params, tape)
    hist = histories(program, leaves, T, B, dtype, initial, carried)
    future = futures(program, leaves, B, dtype, initial)
    values: dict = {}
    incoming: dict = {n: [] for n in data}   # node -> contributions of sequence edges (Vars, Columns)
    fresh: set = set()     # ids of contributions whose array is new and read by their one target alone

    group_biases, biased = program.folded_biases

    def bias_of(n):
        name = data[n]["bias"]
        return leaves[name] if name and n not in biased else None

    def joined(key, parts, axis=-2):
        """The row-wise concatenation of ``parts`` (Vars): the fused array ``flats[key]``
        as one leaf when the parameters are still its views, else a concat op (along
        ``axis``: -2 for matrices, -1 for vectors, so stacked replicas' too)."""
        if len(parts) == 1:
            return parts[0]
        flat = flats.get(key)
        if flat is None or not flat.intact(params):
            return ad.concat(parts, axis=axis)
        leaf = tape.param(flat.array) if tape is not None and flat.trainable else ad.const(flat.array)
        if leaf.needs_grad:
            fused_leaves.append((leaf, flat))
        return leaf

    def base_of(n, deferred=False):
        """The node's hoisted input (Var or None); with ``deferred``, a lone piece of a
        fused group's output stays a ``Columns`` for ``scan`` to lay out."""
        return base_and_owner(n, deferred)[0]

    def base_and_owner(n, deferred=False):
        """``base_of`` and whether its array is the node's own: new, read by no one
        else and by no VJP, so a loop may write into it (see ``scan``'s ``owned``)."""
        parts = incoming[n]
        if deferred and len(parts) == 1 and isinstance(parts[0], Columns) and data[n]["combine"] == "sum":
            return Columns(parts[0].fused, parts[0].k, bias_of(n)), False
        parts = [p.var() if isinstance(p, Columns) else p for p in parts]
        if data[n]["combine"] == "product":
            return (ad.product(parts) if parts else None), False
        bias = bias_of(n)
        if not parts:
            return (ad.broadcast(bias, (T, *_rows(B), data[n]["size"])) if bias is not None else None), False
        new = len(parts) > 1 or id(parts[0]) in fresh    # a's array is made for this node alone
        a = ad.total(parts)
        if bias is None:
            return a, new
        # into a's own array: neither the GEMM's nor the sum's VJP reads its output
        return (ad.add_into(a, bias) if new else ad.add(a, bias)), True

    for stage in plan.stages:
        if stage.kind == "input":
            n = stage.nodes[0]
            v = ad.const(inputs[n])
            values[n] = (v, v)
        elif stage.kind == "parallel":
            n = stage.nodes[0]
            a = base_of(n)
            if a is None:
                a = ad.const(np.zeros((T, *_rows(B), data[n]["size"]), dtype))
            values[n] = (a, ad.activation(data[n]["activation"], a))
            # a lone contribution passed through (identity activation, one factor, no bias)
            # is this node's value too, which others read: not one target's alone
            fresh.difference_update((id(a), id(values[n][1])))
        else:
            weights = {}
            masked = any(e.name in masks for g in stage.inner for e in g.edges)
            for g in stage.inner:
                if g.weight == "identity":
                    continue
                if masked and any(e.name in masks for e in g.edges):   # one weight per edge: one mask each
                    weights[id(g)] = [effective[e.name] for e in g.edges]
                    continue
                weights[id(g)] = effective[g.edges[0].name] if len(g.edges) == 1 else \
                    joined(id(g), [effective[e.name] for e in g.edges], -2 if g.weight == "dense" else -1)
            stage_hist = {n: hist[n] for n in stage.nodes if n in hist}
            if stage.backward:
                # a delay-0 edge's mask is one per step: the reversed loop reads them reversed
                stage_masks = {e.name: masks[e.name][::-1] if e.delay == 0 else masks[e.name]
                               for g in stage.inner for e in g.edges if e.name in masks} if masked else None
                values.update(_backward_stage(program, stage, {n: base_of(n) for n in stage.nodes}, weights,
                                              future, T, B, dtype, tape, reuse, lean,
                                              "simple" if masked else engine, stage_masks))
            elif engine == "simple" or masked:
                base = {n: base_of(n) for n in stage.nodes}
                values.update(simple_scan(stage, graph, base, weights, stage_hist, T, B, dtype,
                                          masks=masks if masked else None))
            else:
                based = {n: base_and_owner(n, deferred=True) for n in stage.nodes}
                base = {n: b for n, (b, _) in based.items()}
                owned = frozenset(n for n, (_, own) in based.items() if own)
                if isinstance(B, tuple):
                    values.update(replica_scan(stage, graph, base, weights, stage_hist, T, B, dtype,
                                               program.stages[id(stage)], reuse, lean))
                else:
                    values.update(scan(stage, graph, base, weights, stage_hist, T, B, dtype,
                                       program.stages[id(stage)], reuse, lean, owned))
        for g in stage.produces:
            source = values[g.source][1]
            x = ad.shift(source, g.delay, hist[g.source] if g.delay > 0 else future[g.source]) if g.delay else source
            if any(e.name in masks for e in g.edges):
                pieces = _masked_pieces(g, x, masks, effective, leaves, group_biases.get(id(g)))
                fresh.update(id(p) for p in pieces)
            elif g.weight == "dense":
                names = group_biases.get(id(g))
                if len(g.edges) == 1:
                    b = None if names is None else leaves[names[0]]
                    out = ad.linear(x, effective[g.edges[0].name], b)
                    pieces = [out]
                    fresh.add(id(out))
                else:
                    b = None if names is None else joined(("bias", id(g)), [
                        leaves[name] if name else ad.const(np.zeros((*_param_lead(B), hi - lo), dtype))
                        for name, lo, hi in zip(names, g.offsets, g.offsets[1:])], -1)
                    out = ad.linear(x, joined(id(g), [effective[e.name] for e in g.edges]), b)
                    fused = FusedOutput(out, g.offsets)
                    pieces = [Columns(fused, k) for k in range(len(g.edges))]
            else:
                e = g.edges[0]
                pieces = [ad.edge_apply(g.weight, effective.get(e.name), x)]
                if g.weight != "identity":   # an identity edge passes its source's own value
                    fresh.add(id(pieces[0]))
            for e, piece in zip(g.edges, pieces):
                incoming[e.target].append(piece)

    return Run(values=values, params=leaves, depths=plan.history_depth, before=hist, fused=fused_leaves)


def _backward_stage(program, stage, base: dict, weights: dict, future: dict, T: int, B: int, dtype, tape,
                    reuse: bool, lean: frozenset, engine: str, masks: dict | None = None) -> dict:
    """Run a ``backward`` recurrent stage, from ``t = T-1`` down to ``0``: the forward
    loop of either engine on time-reversed sequences (reversed time ``T-1-t``).  Its
    bases are reversed, its history is the values at ``T, T+1, ...`` (``future``,
    reversed: ``T`` is the step just before reversed time 0), its inner groups
    already carry the delays the reversed loop sees (``plan.Group``), and the
    values it returns are reversed back; ``masks`` (dropout, simple engine only) are
    already in the loop's order.  Returns node -> (A, V) in time order."""
    reverse = lambda v: None if v is None else ad.flip(v)    # noqa: E731
    base = {n: reverse(b) for n, b in base.items()}
    hist = {n: reverse(future[n]) for n in stage.nodes if n in future}
    first = len(tape.records) if tape is not None else 0
    if engine == "simple":
        out = simple_scan(stage, program.graph, base, weights, hist, T, B, dtype, masks=masks)
    else:
        out = scan(stage, program.graph, base, weights, hist, T, B, dtype, program.stages[id(stage)], reuse, lean)
    if tape is not None and tape.trace:
        # the loop reports each node's dL/dv in its own, reversed, time: put it back in order once it has
        # (a record placed before the loop's runs after it in the backward pass)
        def unreverse(grads, nodes=tuple(stage.nodes)):
            for n in nodes:
                if n in tape.traced:
                    tape.traced[n] = np.ascontiguousarray(tape.traced[n][::-1])
            return ()
        tape.records.insert(first, (tuple(v for pair in out.values() for v in pair), (), unreverse))
    return {n: (reverse(a), reverse(v)) for n, (a, v) in out.items()}


def _masked_pieces(g, x, masks: dict, effective: dict, leaves: dict, biases) -> list:
    """Each edge of the sequence group ``g`` on its own, a masked one reading
    ``mask * x``; ``x`` (T, B, source size) is the source's value at ``t - delay``.
    ``biases`` are the targets' biases the plan folded into the group's GEMM."""
    pieces = []
    for k, e in enumerate(g.edges):
        xe = ad.mul(x, ad.const(masks[e.name])) if e.name in masks else x
        if g.weight == "dense":
            b = leaves[biases[k]] if biases and biases[k] else None
            pieces.append(ad.linear(xe, effective[e.name], b))
        else:
            pieces.append(ad.edge_apply(g.weight, effective.get(e.name), xe))
    return pieces
