"""The compiled loops of a recurrent stage run for replicas (``engine/replicas.py``):
R copies of the stage, each with its own parameters, as one loop over R * B rows.

Values ``(T, R, B, size)`` are reshaped (no copy) to ``(T, R * B, size)``, so
every elementwise step of the loop is the single run's on more rows; only what
reads a parameter differs:

* a dense weight is each replica's own, ``(R, out, in)``: the loops' GEMMs are
  one batched matmul (``codegen.REPLICA_NAMESPACE``) and its gradient sums each
  replica's rows alone (``runtime._replica_weight_grad``);
* a diagonal or scalar weight ``(R, 1, k)`` is broadcast to its replica's rows,
  ``(R * B, k)``, and the loop multiplies by it as by a single run's; the
  broadcast's VJP sums each replica's rows back.

The loops and workspaces are the stage cache's ``for_replicas`` ones.
"""

from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .runtime import Columns, FusedOutput, StageCache, _var, scan


def replica_scan(stage, graph, base: dict, weights: dict, hist: dict, T: int, RB: tuple, dtype,
                 cache: StageCache, reuse: bool = False, lean: frozenset = frozenset()) -> dict:
    """``runtime.scan`` for replicas: ``RB`` is ``(R, B)``; ``base`` node -> Var
    (T, R, B, size), ``Columns`` or None; ``hist`` node -> Var (D, R, B, size);
    ``weights`` id(group) -> stacked Var: dense (R, out, in), diagonal or scalar
    (R, 1, k).  ``reuse`` and ``lean`` as ``scan``'s.  Returns node -> (A, V),
    Vars of shape (T, R, B, size)."""
    R, B = RB
    rows = R * B

    def folded(v: ad.Var) -> ad.Var:        # (lead, R, B, size) -> (lead, R * B, size)
        return ad.reshape(v, (v.shape[0], rows, v.shape[-1]))

    row_weights = {}
    for g in stage.inner:
        w = weights.get(id(g))
        if w is None:
            continue
        if g.weight == "dense":
            row_weights[id(g)] = w
        else:
            k = w.shape[-1]
            row_weights[id(g)] = ad.reshape(ad.broadcast(w, (R, B, k)), (rows, k))
    out = scan(stage, graph, _row_bases(base, T, R, B), row_weights, {n: folded(h) for n, h in hist.items()},
               T, rows, dtype, cache.for_replicas, reuse, lean)
    return {n: (ad.reshape(a, (T, R, B, a.shape[-1])), ad.reshape(v, (T, R, B, v.shape[-1])))
            for n, (a, v) in out.items()}


def _row_bases(base: dict, T: int, R: int, B: int) -> dict:
    """``base`` with every Var folded to (T, R * B, size).  A fused sequence GEMM's
    output whose column blocks are all bases here (``x -> lstm/{i,f,o,g}``) gets
    its targets' biases added in place and stays one array, its columns
    ``Columns`` of it, so that ``scan`` takes a pack's base as it is."""
    rows = R * B
    blocks: dict = {}                          # id(fused) -> {k: node}
    for n, b in base.items():
        if isinstance(b, Columns):
            blocks.setdefault(id(b.fused), {})[b.k] = n
    out, whole = {}, {}
    for n, b in base.items():
        if b is None:
            out[n] = None
            continue
        fused = b.fused if isinstance(b, Columns) else None
        if fused is None or not fused.unsplit or len(blocks[id(fused)]) != len(fused.offsets) - 1:
            v = _var(b)
            out[n] = ad.reshape(v, (T, rows, v.shape[-1]))
            continue
        if id(fused) not in whole:
            v = fused.var
            members = [base[m] for _, m in sorted(blocks[id(fused)].items())]
            if any(c.bias is not None for c in members):
                dtype = v.value.dtype
                biases = [c.bias if c.bias is not None else ad.const(np.zeros((R, 1, hi - lo), dtype))
                          for c, (lo, hi) in zip(members, zip(fused.offsets, fused.offsets[1:]))]
                v = ad.add_into(v, ad.concat(biases, axis=-1))   # the GEMM's output is this stage's alone
            whole[id(fused)] = FusedOutput(ad.reshape(v, (T, rows, v.shape[-1])), fused.offsets)
        out[n] = Columns(whole[id(fused)], b.k)
    return out
