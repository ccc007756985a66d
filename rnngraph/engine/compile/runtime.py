"""Running a recurrent stage's compiled loops as one autodiff op.

``scan`` runs a recurrent ``Stage`` of a ``Plan`` forward over ``T`` steps and
records one VJP that runs the loop backward (BPTT).  At step ``t``
(docs/spec-format.md semantics, restricted to the component)::

    C_g(t) = W_g(v_s(t - d))                for each inner group g (source s, delay d)
    a_n(t) = base_n(t) + sum_k C_{g,k}(t)   (sum nodes; base = hoisted edges + bias)
           | base_n(t) * prod_k C_{g,k}(t)  (product nodes; base = hoisted factors)
    v_n(t) = f_n(a_n(t))

Each stage is laid out (``layout``) and its loops written (``codegen``) once
per pattern of call (which nodes have a base, which take gradients from
outside, small or large); here the ``CompiledLoop`` gets its buffers, whole-
sequence work is done around the loops (derivatives, folds, weight
gradients as one GEMM per group after the backward loop) and a training
step's workspace keeps buffers and per-step views from one call to the
next.  The values are ``StepVar``s: a dense readout hands back their dL/dv
as g @ W (``ad.Deferred``), which a small stage computes straight into its
dL/dv buffer and a large one a row at a time in the loop.

Shapes: sequences are time-major ``(T, B, size)``; histories ``(D, B, size)``
hold a node's values at times ``-D .. -1``.
"""

from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from ...activations import ACTIVATIONS
from ..autodiff import Var, _tape_of
from .codegen import CONSTANTS, LoopWriter
from .layout import DEFERRED, DERIVATIVES, Layout
from .numba_loops import TRANSCENDENTAL, faster

# A stage whose sequences (T x B x all its nodes' sizes) take at least this many bytes is
# laid out for memory: derivatives per step, and in a training step each pack's hoisted
# input becomes its pre-activation buffer.  Well below it the extra per-step ops and views
# cost more than they save; around it the two layouts time the same (benchmarks/README.md).
LARGE_STAGE_BYTES = 4 << 20

_CONSTANTS: dict = {}


def _constants(dtype) -> tuple:
    """The loops' constants (``codegen.CONSTANTS``) as 0-d arrays of ``dtype``, made once."""
    found = _CONSTANTS.get(dtype)     # a dtype, or anything np.dtype takes
    if found is None:
        found = _CONSTANTS[dtype] = tuple(np.array(c, dtype) for c in CONSTANTS.values())
    return found


def _weight_grad(kind, g_seq, x_seq, w=None):
    """dL/dW summed over all steps: one GEMM for dense edges (``w``, the weight, unread)."""
    if kind == "dense":
        return g_seq.reshape(-1, g_seq.shape[-1]).T @ x_seq.reshape(-1, x_seq.shape[-1])
    if kind == "diagonal":
        return np.einsum("tbn,tbn->n", g_seq, x_seq)
    return np.asarray(np.vdot(g_seq, x_seq), dtype=g_seq.dtype)


def _replica_weight_grad(kind, g_seq, x_seq, w):
    """``_weight_grad`` for replicas with their rows folded (``replica_scan``):
    g_seq (T, R * B, m), x_seq (T, R * B, n).  A dense weight ``w`` is each
    replica's own, (R, m, n), so its gradient sums each replica's rows alone:
    (R, m, n); a diagonal or scalar weight is given per row, (R * B, n) or
    (R * B, 1), so its gradient is too."""
    if kind == "dense":
        R, m, n = w.shape
        T, B = g_seq.shape[0], g_seq.shape[1] // R
        g = g_seq.reshape(T, R, B, m).transpose(1, 3, 0, 2).reshape(R, m, T * B)
        x = x_seq.reshape(T, R, B, n).transpose(1, 0, 2, 3).reshape(R, T * B, n)
        return np.matmul(g, x)
    if kind == "diagonal":
        return np.einsum("tbn,tbn->bn", g_seq, x_seq)
    return np.einsum("tbn,tbn->b", g_seq, x_seq)[:, None]


def _multiply_in(out, factor) -> None:
    """``out *= factor`` for a whole-sequence factor (T, B, n), or for a source as a
    delayed edge reads it, (sequence, history, delay): the history before t = delay,
    the sequence shifted by delay after (no shifted copy is made)."""
    if not isinstance(factor, tuple):
        np.multiply(out, factor, out=out)
        return
    seq, hist, delay = factor
    T, D = out.shape[0], hist.shape[0]
    k = min(delay, T)
    np.multiply(out[:k], hist[D - delay:D - delay + k], out=out[:k])
    if T > delay:
        np.multiply(out[delay:], seq[:T - delay], out=out[delay:])


class FusedOutput:
    """The output of a fused sequence group, ``(T, B, width)``, split into its
    targets' columns only when someone needs a piece on its own."""

    def __init__(self, var: Var, offsets: list):
        self.var, self.offsets, self._pieces = var, offsets, None

    @property
    def unsplit(self) -> bool:
        return self._pieces is None

    def piece(self, k: int) -> Var:
        if self._pieces is None:
            self._pieces = ad.split(self.var, self.offsets)
        return self._pieces[k]


class Columns:
    """A node's base as a deferred value: columns ``k`` of a fused group's output,
    plus the node's bias.  ``scan`` takes a pack's base straight from the fused
    output when the columns line up with the pack (no split, no concatenation:
    ``x -> lstm/{i,f,o,g}`` plus the four biases is the pack's base as it is)."""

    def __init__(self, fused: FusedOutput, k: int, bias: Var | None = None):
        self.fused, self.k, self.bias = fused, k, bias

    @property
    def span(self) -> tuple:
        return self.fused.offsets[self.k], self.fused.offsets[self.k + 1]

    def var(self) -> Var:
        v = self.fused.piece(self.k)
        return ad.add(v, self.bias) if self.bias is not None else v


def _var(base) -> Var:
    return base.var() if isinstance(base, Columns) else base


def _pack_base(parts: list, spans: list, width: int, dtype) -> tuple[Var, bool]:
    """The base of a pack (T, B, width) from its members' bases (Vars or Columns),
    and whether its array is the pack's own: made for it alone, read by no one
    else, and by no VJP (so the loop may write into it)."""
    fused = parts[0].fused if isinstance(parts[0], Columns) else None
    if (fused is not None and fused.offsets[-1] == width
            and all(isinstance(b, Columns) and b.fused is fused and b.span == span for b, span in zip(parts, spans))):
        # the GEMM's output feeds this pack alone (unless split) and its VJP reads only its inputs
        if all(b.bias is None for b in parts):
            return fused.var, fused.unsplit
        biases = [b.bias if b.bias is not None else ad.const(np.zeros(hi - lo, dtype))
                  for b, (lo, hi) in zip(parts, spans)]
        # the biases go into it in place, saving a (T, B, width) array
        add = ad.add_into if fused.unsplit else ad.add
        return add(fused.var, ad.concat(biases, axis=0)), True
    return ad.concat([_var(b) for b in parts], axis=-1), True


class CompiledLoop(Layout):
    """A stage's layout with its loops written and compiled (``forward``,
    ``backward``; their ``.source`` is printable) and the buffers they need."""

    def __init__(self, *args, replicas: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        writer = LoopWriter(self, replicas)
        self.forward, self.backward = writer.forward, writer.backward
        # large stages are GEMM-bound: numpy's BLAS beats numba's loop nests (which take one weight, not R)
        if not self.large and not replicas:
            gemm = sum(self.size[self.src[gi]] * g.width for gi, g in enumerate(self.groups) if g.weight == "dense")
            # the backward loop of a small stage reads whole-sequence derivatives: no tanh, exp
            transcendental = sum(s for s, a in zip(self.size, self.act) if a in TRANSCENDENTAL)
            self.forward = faster(writer.forward, transcendental, gemm)
            self.backward = faster(writer.backward, 0, gemm)
        self.F = [ACTIVATIONS[a].forward for a in self.act]        # forward functions, for the generic path
        self.FV = [ACTIVATIONS[a].vjp for a in self.act]           # and their VJPs

    # ------------------------------------------------------------------ buffers
    def forward_buffers(self, T, B, dtype, lean: frozenset = frozenset(), transient: frozenset = frozenset()):
        """A, V (per node, views into packs or aliases where laid out so),
        AP (pack pre-activations), VP (pack values), C (kept group outputs).

        Nodes in ``lean`` (indices) compute their activation in place: their A
        is their V.  Only for nodes whose derivative needs nothing but v (see
        ``LEAN_ACTIVATIONS``) and whose pre-activation no one reads.  Nodes in
        ``transient`` (indices; see ``self.transient``) get one (B, size) row
        that every step's view shares (a stride-0 time axis): the loops are
        unchanged, and after the loop the array holds only the last step.

        A seeded pack's AP (and its VP when computed in place) is left None,
        as are the views into it: ``with_seeds`` fills them at each call."""
        n_nodes = len(self.nodes)
        AP, VP = [], []
        for p, (gi, members, has_base) in enumerate(self.packs):
            width = self.groups[gi].width
            AP.append(None if p in self.seeded else np.empty((T, B, width), dtype))
            in_place = all(self.act[i] == "identity" or i in lean for i, _, _ in members)
            VP.append(AP[-1] if in_place else np.empty((T, B, width), dtype))
        A, V = [None] * n_nodes, [None] * n_nodes
        for i in range(n_nodes):
            if self.pack_of[i] is not None:
                continue
            if i in transient:
                A[i] = V[i] = _sequence(T, B, self.size[i], dtype, one_row=True)
                continue
            if self.alias[i] is None and i not in self.seeded_nodes:
                A[i] = np.empty((T, B, self.size[i]), dtype)
                if self.act[i] == "identity" or i in lean:
                    V[i] = A[i]
            if i in self.seeded_nodes and (self.act[i] == "identity" or i in lean):
                continue                  # A and V both the seed
            if V[i] is None and self.act[i] != "identity":
                V[i] = np.empty((T, B, self.size[i]), dtype)
        self._views(A, V, AP, VP)
        C = [np.empty((T, B, g.width), dtype) if self.keep[gi] else
             (np.empty((B, g.width), dtype) if self.buffered(gi) or self._into_seed(gi) else None)
             for gi, g in enumerate(self.groups)]
        return A, V, AP, VP, C

    def _views(self, A, V, AP, VP) -> None:
        """Fill in A and V of pack members (views into AP, VP) and of aliases
        (their source's V), where those buffers are there."""
        for i in range(len(self.nodes)):   # sources of aliases come first in the step order
            if self.pack_of[i] is not None:
                p, lo, hi = self.pack_of[i]
                A[i] = AP[p][:, :, lo:hi] if AP[p] is not None else None
                V[i] = A[i] if self.act[i] == "identity" else (VP[p][:, :, lo:hi] if VP[p] is not None else None)
            elif self.alias[i] is not None:
                A[i] = V[self.alias[i]]
                if self.act[i] == "identity":
                    V[i] = A[i]

    def with_seeds(self, buffers, seeds: dict, node_seeds: dict):
        """``buffers`` (from ``forward_buffers``) with each seeded pack's AP the
        array ``seeds[p]`` hands over (its hoisted input, which the loop then
        adds to), and VP too where the pack is activated in place; likewise
        each seeded node's A (and V) from ``node_seeds[i]``."""
        A, V, AP, VP, C = (list(b) for b in buffers)
        for p, array in seeds.items():
            if VP[p] is None:
                VP[p] = array
            AP[p] = array
        for i, array in node_seeds.items():
            if V[i] is None:
                V[i] = array
            A[i] = array
        self._views(A, V, AP, VP)
        return A, V, AP, VP, C



class _Ring:
    """Two (B, size) rows that a loop's steps use in turn: ``ring[t]`` is row t % 2."""

    def __init__(self, B, size, dtype):
        self.rows = (np.empty((B, size), dtype), np.empty((B, size), dtype))

    def __getitem__(self, t: int) -> np.ndarray:
        return self.rows[t & 1]

    def fill(self, value) -> None:
        for row in self.rows:
            row.fill(value)


def _sequence(T, B, size, dtype, one_row: bool = False) -> np.ndarray:
    """A (T, B, size) buffer; with ``one_row``, every step's view is the same (B, size)
    row (a stride-0 time axis), for values only needed at their own step."""
    if not one_row:
        return np.empty((T, B, size), dtype)
    row = np.empty((B, size), dtype)
    return np.lib.stride_tricks.as_strided(row, (T, B, size), (0, *row.strides))


class _BackwardBuffers:
    """The backward loop's arrays for one (T, B, dtype) and one pattern of
    outside gradients: dL/dv (GV, GVP), dL/da (GA, GAP), derivatives (DER,
    DERP), group gradients (GC), history gradients (GH) and per-step scratch
    (TMP, TP).  ``reset`` readies them for a call; a workspace reuses them."""

    def __init__(self, prog: CompiledLoop, T, B, dtype, H, AP, trace: bool):
        n_nodes, groups = len(prog.nodes), prog.groups
        self.prog = prog
        # a recycled pack's dL/dv is one row and its dL/da goes into its values' buffer (reset)
        self.GVP = [_sequence(T, B, groups[gi].width, dtype, p in prog.recycled)
                    for p, (gi, _, _) in enumerate(prog.packs)]
        # each step's dL/da of a pack overwrites its dL/dv in place, which nothing reads
        # again (unless a trace keeps dL/dv): one (T, B, width) array fewer
        self.GAP = [np.empty_like(g) for g in self.GVP] if trace else list(self.GVP)
        self.DERP = [np.empty_like(a) if any(s[0] == p for s in prog.der_spans) else None for p, a in enumerate(AP)]
        self.DS = [np.empty((B, groups[gi].width), dtype) if any(s[0] == p for s in prog.step_spans) else None
                   for p, (gi, _, _) in enumerate(prog.packs)]
        self.zeroed = [g for (gi, members, _), g in zip(prog.packs, self.GVP)
                       if not all(prog.fresh[i] for i, _, _ in members)]
        GV, GA, DER = [], [], []
        for i in range(n_nodes):
            act = prog.act[i]
            if prog.pack_of[i] is not None:
                p, lo, hi = prog.pack_of[i]
                GV.append(self.GVP[p][:, :, lo:hi])
                GA.append(self.GAP[p][:, :, lo:hi])
                DER.append(self.DERP[p][:, :, lo:hi] if self.DERP[p] is not None else None)
                continue
            # dL/da is read after the loop by base and weight gradients; dL/dv of a fresh
            # node is written and read at its own step only: without a trace, one row does
            ga_row = not trace and not prog.ga_after[i]
            gv_row = not trace and prog.fresh[i] and (ga_row or not prog.ga_is_gv(i))
            rolling = prog.rolling[i] and not trace
            if prog.galias[i] is not None:   # its dL/dv is its target's dL/da (set below)
                GV.append(None)
            elif rolling:
                GV.append(_Ring(B, prog.size[i], dtype))
                self.zeroed.append(GV[i])
            else:
                GV.append(_sequence(T, B, prog.size[i], dtype, gv_row))
                if not prog.fresh[i] and (not prog.ext_v[i] or prog.rolling[i]):
                    self.zeroed.append(GV[i])
            # each step's dL/da may overwrite its dL/dv, which nothing reads again (unless a
            # trace keeps it, or dL/dv is someone else's dL/da)
            share = prog.ga_is_gv(i) or (not trace and prog.galias[i] is None and not rolling and gv_row == ga_row)
            GA.append(GV[i] if share else _sequence(T, B, prog.size[i], dtype, ga_row))
            DER.append(np.empty((T, B, prog.size[i]), dtype) if act in DERIVATIVES and not prog.step_der[i] else None)
        self.outside = list(GV)          # where dL/dv from outside the loop is copied in
        for i in reversed(range(n_nodes)):   # targets first: aliases can chain (h -> m -> n)
            if prog.galias[i] is not None:
                tgt = prog.galias[i]
                GV[i] = GV[tgt] if prog.ga_is_gv(tgt) else GA[tgt]
                if prog.ga_is_gv(i):
                    GA[i] = GV[i]
        self.GV, self.GA, self.DER = GV, GA, DER
        self.GC = [np.empty((T, B, g.width), dtype) if prog.buffered(gi) else None
                   for gi, g in enumerate(groups)]
        self.zeroed += [g for g in self.GC if g is not None]
        # C-contiguous (a history may be any view): np.dot may write a step's row
        self.GH = [np.empty(h.shape, h.dtype) if h is not None else None for h in H]
        self.zeroed += [g for g in self.GH if g is not None]
        self.TMP = [np.empty((B, prog.size[prog.src[gi]]), dtype) for gi in range(len(groups))]
        self.TP = [np.empty((B, prog.size[i]), dtype) if prog.product[i] else None for i in range(n_nodes)]
        self.DN = [np.empty((B, prog.size[i]), dtype) if prog.step_der[i] and prog.pack_of[i] is None else None
                   for i in range(n_nodes)]
        # a row for each step's g @ W of a deferred outside gradient that a rolling node adds
        self.GVT = [np.empty((B, prog.size[i]), dtype) if prog.rolling[i] and prog.ext_v[i] == DEFERRED else None
                    for i in range(n_nodes)]
        self.cached_views = None
        # what reset does at every call, decided once: copy in dL/dv from outside (a rolling
        # node adds it step by step), whole-sequence derivatives, folds
        self.copy_in = [(2 * i + 1, self.outside[i]) for i in range(n_nodes) if prog.ext_v[i] and not prog.rolling[i]]
        self.node_derivatives = [(DERIVATIVES[prog.act[i]], i) for i in range(n_nodes)
                                 if self.DER[i] is not None and prog.pack_of[i] is None]
        self.folded = [i for i, fold in enumerate(prog.fold_into) if fold is not None]

    def release(self) -> None:
        """Drop this call's arrays (recycled packs' AP), which a workspace must not keep alive."""
        for p in self.prog.recycled:
            self.GAP[p] = None
            for i, _, _ in self.prog.packs[p][1]:
                self.GA[i] = None

    def reset(self, A, V, AP, VP, BS, C, H, out_grads) -> None:
        """Point recycled packs' dL/da at this call's AP, zero what accumulates,
        copy in dL/dv from outside, compute the whole-sequence derivatives (with
        their products' other factors multiplied in, for folded nodes)."""
        prog = self.prog
        for p in prog.recycled:
            self.GAP[p] = AP[p]
            for i, lo, hi in prog.packs[p][1]:
                self.GA[i] = AP[p][:, :, lo:hi]
        for g in self.zeroed:
            g.fill(0)
        for k, outside in self.copy_in:
            g_v = out_grads[k]
            if isinstance(g_v, ad.Deferred):
                g_v.into(outside)
            else:
                np.copyto(outside, g_v)
        for derivative, i in self.node_derivatives:
            derivative(A[i], V[i], self.DER[i])
        for p, lo, hi, act in prog.der_spans:
            if act == "mixed":   # see CompiledLoop.__init__
                _, _, dm, dc = prog.pack_scales(self.DERP[p].dtype)[p]
                np.subtract(dm, VP[p], out=self.DERP[p])
                np.multiply(self.DERP[p], VP[p], out=self.DERP[p])
                np.add(self.DERP[p], dc, out=self.DERP[p])
            else:
                DERIVATIVES[act](AP[p][:, :, lo:hi], VP[p][:, :, lo:hi], self.DERP[p][:, :, lo:hi])
        for i in self.folded:
            for factor in prog.fold_factors(i, V, BS, C, H):
                _multiply_in(self.DER[i], factor)


class StageCache:
    """What ``scan`` keeps for one recurrent stage of one network between calls:
    its ``_Calls`` by pattern of bases, every loop compiled for it by signature, and
    the workspaces of training steps (buffers kept from one call to the next).
    The network's ``engine.program.Program`` holds one per recurrent stage."""

    def __init__(self, replicas: bool = False):
        self.replicas = replicas     # the loops of replicas (``replica_scan``), rows folded
        self.calls: dict = {}        # has_base -> _Calls
        self.compiled: dict = {}     # signature -> CompiledLoop
        self.workspaces: dict = {}   # (signature, T, B) -> _Workspace, the most recently used last
        self._replica_cache = None

    @property
    def for_replicas(self) -> "StageCache":
        """The cache of this stage's loops run as replicas (their own loops and workspaces)."""
        if self._replica_cache is None:
            self._replica_cache = StageCache(replicas=True)
        return self._replica_cache


def _compiled(cache: StageCache, stage, graph, has_base: tuple, ext_a: tuple, ext_v: tuple = (),
              step_derivatives: bool = False, seeded: frozenset = frozenset(),
              seeded_nodes: frozenset = frozenset(), fold: bool = False,
              prescaled: frozenset = frozenset()) -> CompiledLoop:
    key = (has_base, ext_a, ext_v, step_derivatives, seeded, seeded_nodes, fold, prescaled)
    found = cache.compiled.get(key)
    if found is None:
        found = cache.compiled[key] = CompiledLoop(stage, graph, has_base, ext_a, ext_v, step_derivatives, seeded,
                                                   seeded_nodes, fold, prescaled, replicas=cache.replicas)
    return found


class _Workspace:
    """Buffers of one stage at one (T, B, dtype) kept between calls, with the
    per-step views the loops read.  Reusing them saves allocating (and the
    kernel zeroing) the sequence arrays and making the views at every step."""

    def __init__(self, forward_buffers):
        self.forward = forward_buffers
        self.forward_views = None
        self.history = None           # node -> (D, B, size) copy of this call's history
        self.history_from: list = []  # node -> the array that copy was made from, when read-only
        self.zero_history: list = []  # node -> whether the copy is all zeros
        self.backward: dict = {}      # (ext_a, ext_v) -> _BackwardBuffers


WORKSPACES_PER_STAGE = 2   # e.g. full batches and the last, smaller one


def _workspace(per_stage: dict, key: tuple, make) -> _Workspace:
    ws = per_stage.pop(key, None)
    if ws is None:
        ws = _Workspace(make())
        while len(per_stage) >= WORKSPACES_PER_STAGE:
            per_stage.pop(next(iter(per_stage)))
    per_stage[key] = ws             # most recently used last
    return ws


class _Calls:
    """A stage's calls with one pattern of bases (which nodes have one), and what
    they share: the layout's compiled loops (``probe``: no outside gradients yet)
    and a ``_CallPlan`` per signature.  At small sizes a step is mostly Python
    bookkeeping, so a call looks its decisions up here rather than making them."""

    def __init__(self, cache: StageCache, stage, graph, has_base: tuple):
        self.cache = cache
        self.probe = _compiled(cache, stage, graph, has_base, (False,) * len(stage.nodes))
        self.pack_parts = [(gi, [stage.nodes[i] for i, _, _ in members], [(lo, hi) for _, lo, hi in members],
                            self.probe.groups[gi].width, with_base)
                           for gi, members, with_base in self.probe.packs]
        self.plans: dict = {}


def _calls(cache: StageCache, stage, graph, has_base: tuple) -> _Calls:
    found = cache.calls.get(has_base)
    if found is None:
        found = cache.calls[has_base] = _Calls(cache, stage, graph, has_base)
    return found


class _CallPlan:
    """What ``scan`` decides from a call's signature alone: which pack bases are their
    own arrays (``owns``), the layout (``large``), dtype, lean and owned nodes and
    whether a workspace keeps buffers.  Holds the loops to run and the index lists
    the call and its VJP walk; ``workspace_key`` names the buffers this signature uses."""

    def __init__(self, stage, graph, calls: _Calls, has_base: tuple, owns: tuple, large: bool, dtype,
                 lean: frozenset, owned: frozenset, workspace: bool, hist: dict):
        nodes = stage.nodes
        probe = calls.probe
        self.lean_idx = probe.lean_indices(lean)
        transient, seeded, seeded_nodes = frozenset(), frozenset(), frozenset()
        if workspace:
            transient = probe.transient_indices(stage, lean)
            if large:
                # a large stage in a training step: a hoisted input whose array is its pack's or
                # sum node's own becomes that pre-activation buffer (one (T, B, n) array fewer)
                seeded = frozenset(p for p, own in enumerate(owns) if own)
                seeded_nodes = frozenset(i for i, n in enumerate(nodes) if n in owned and probe.pack_of[i] is None
                                         and not probe.product[i] and i not in transient)
        # a mixed pack whose pre-activation no one reads takes its weights' and base's columns
        # prescaled (a call a step fewer); its base is scaled in place, so must be its own array
        self.prescaled = prescaled = frozenset(
            p for p, (gi, members, with_base) in enumerate(probe.packs)
            if probe.mixed[p] and all(i in self.lean_idx for i, _, _ in members) and (not with_base or owns[p]))
        if large or prescaled:
            probe = _compiled(calls.cache, stage, graph, has_base, (False,) * len(nodes), (), large, seeded,
                              seeded_nodes,
                              prescaled=prescaled)
        self.stage, self.graph, self.cache, self.probe, self.large = stage, graph, calls.cache, probe, large
        self.has_base, self.transient, self.seeded, self.seeded_nodes = has_base, transient, seeded, seeded_nodes
        groups = probe.groups
        self.base_nodes = [n for i, n in enumerate(nodes) if has_base[i] and probe.pack_of[i] is None]
        self.base_index = [probe.index[n] for n in self.base_nodes]
        self.based_packs = [p for p, (_, _, with_base) in enumerate(probe.packs) if with_base]
        self.scales = probe.pack_scales(dtype)
        self.prescale = [(p, self.scales[p][0]) for p in sorted(prescaled) if p in self.based_packs]
        # the nodes with histories: those delayed edges read, fixed by the plan
        self.hist_nodes = [n for n in nodes if n in hist]
        self.hist_index = [probe.index[n] for n in self.hist_nodes]
        self.depths = [hist[n].shape[0] if n in hist else 0 for n in nodes]
        self.group_ids = [id(g) for g in groups]
        self.weight_groups = [gi for gi, g in enumerate(groups) if g.weight != "identity"]
        # the per-step GEMM reads W^T: a C-contiguous copy is markedly faster than a transposed
        # view (a prescaled pack's scaled in the same pass)
        self.transposed = [(gi, None if probe.packed_group[gi] not in prescaled else self.scales[probe.packed_group[gi]][0])
                           for gi, g in enumerate(groups) if g.weight == "dense"]
        self.workspace_key = (has_base, np.dtype(dtype).str, self.lean_idx, large, transient, seeded, seeded_nodes,
                              prescaled)
        self.no_grads = (None,) * len(nodes)
        self.vjps: dict = {}         # (ext_a, ext_v, trace) -> _VjpPlan


class _VjpPlan:
    """The backward program of a ``_CallPlan`` for one pattern of outside gradients:
    the compiled loop and the index lists its VJP walks."""

    def __init__(self, cp: _CallPlan, ext_a: tuple, ext_v: tuple, trace: bool):
        # a trace reports every node's dL/dv, which folded nodes never hold
        prog = _compiled(cp.cache, cp.stage, cp.graph, cp.has_base, ext_a, ext_v, cp.large, cp.seeded, cp.seeded_nodes,
                         fold=not trace)
        self.prog = prog
        self.any_ext_a = any(ext_a)
        self.rolling_ext = [i for i, e in enumerate(ext_v) if e and prog.rolling[i]]
        groups = prog.groups
        self.gc_packed = [(gi, prog.packed_group[gi]) for gi in range(len(groups)) if prog.packed_group[gi] is not None]
        self.gc_direct = [(gi, prog.index[groups[gi].edges[0].target]) for gi in range(len(groups))
                          if prog.packed_group[gi] is None and prog.direct[gi]]
        # product nodes with a base: (position among the base gradients, node)
        self.products = [(k, i) for k, i in enumerate(cp.base_index) if prog.product[i]]
        self.weight_grads = [(gi, groups[gi].weight, prog.src[gi], groups[gi].delay) for gi in cp.weight_groups]


def scan(stage, graph, base: dict, weights: dict, hist: dict, T: int, B: int, dtype, cache: StageCache,
         reuse: bool = False, lean: frozenset = frozenset(), owned: frozenset = frozenset()):
    """Run ``stage`` for ``T`` steps.

    Parameters
    ----------
    base : node -> Var (T, B, size), Columns or None
        What the node gets from outside the loop: for sum nodes the hoisted
        edges plus bias, for product nodes the product of hoisted factors.
        ``Columns`` (a piece of a fused sequence GEMM plus a bias) lets a pack
        take its base without splitting and concatenating.
    weights : id(group) -> Var
        The (fused) weight of each inner group; absent for identity groups.
    hist : node -> Var (D, B, size)
        Values before t = 0 of nodes read by delayed inner edges.
    cache : StageCache
        What this stage keeps between calls: its compiled loops and workspaces.
    reuse : bool
        Keep the buffers in a workspace between calls.  The returned values are
        then overwritten by the next call with the same (T, B, dtype): only for
        callers that are done with them by then (a training step).
    lean : node names whose pre-activation no one reads; where their
        activation allows (``LEAN_ACTIVATIONS``), their returned A is their V.
        With ``reuse``, lean nodes that nothing after the stage reads and
        that the loop needs only at their own step (``CompiledLoop.transient``)
        keep no sequence at all: their returned values are not their values.
    owned : node names whose base array is theirs alone (new, read by no one else
        and by no VJP): with ``reuse``, a large stage writes into it.

    Returns
    -------
    dict node -> (A, V): Vars of shape (T, B, size), pre-activation and value.
    """
    nodes = stage.nodes
    has_base = tuple([base.get(n) is not None for n in nodes])
    calls = _calls(cache, stage, graph, has_base)
    pack_bases = [_pack_base([base[n] for n in names], spans, width, dtype) if with_base else (None, False)
                  for _, names, spans, width, with_base in calls.pack_parts]
    owns = tuple([own for _, own in pack_bases])
    large = T * B * dtype.itemsize * calls.probe.total_size >= LARGE_STAGE_BYTES
    key = (owns, large, dtype, lean, owned, reuse)
    cp = calls.plans.get(key)
    if cp is None:
        cp = calls.plans[key] = _CallPlan(stage, graph, calls, has_base, owns, large, dtype, lean, owned,
                                          reuse, hist)
    probe = cp.probe
    groups = probe.groups
    base_vars = [_var(base[n]) for n in cp.base_nodes]
    BS = [None] * len(nodes)
    for i, b in zip(cp.base_index, base_vars):
        BS[i] = b.value
    pack_vars = [b for b, _ in pack_bases]
    BSP = [b.value if b is not None else None for b in pack_vars]
    for p, scale in cp.prescale:
        np.multiply(BSP[p], scale, out=BSP[p])
    ws = None
    if reuse:
        ws = _workspace(cache.workspaces, (cp.workspace_key, T, B),
                        lambda: probe.forward_buffers(T, B, dtype, cp.lean_idx, cp.transient))
        A, V, AP, VP, C = ws.forward
        if cp.seeded or cp.seeded_nodes:
            A, V, AP, VP, C = probe.with_seeds(ws.forward, {p: BSP[p] for p in cp.seeded},
                                               {i: BS[i] for i in cp.seeded_nodes})
    else:
        A, V, AP, VP, C = probe.forward_buffers(T, B, dtype, cp.lean_idx)
    hist_vars = [hist[n] for n in cp.hist_nodes]
    H = [None] * len(nodes)
    for i, h in zip(cp.hist_index, hist_vars):
        H[i] = h.value
    if ws is not None:
        if ws.history is None:
            ws.history = [np.empty(h.shape, dtype) if h is not None else None for h in H]
            ws.history_from, ws.zero_history = [None] * len(H), [False] * len(H)
        for i in cp.hist_index:
            # a node's fixed initial value is one read-only array made once (executor's
            # _constant_history): the copy already holds it, and whether it is all zeros
            if H[i] is not ws.history_from[i]:
                np.copyto(ws.history[i], H[i])
                ws.history_from[i] = None if H[i].flags.writeable else H[i]
                ws.zero_history[i] = not ws.history[i].any()
        H = ws.history
    D = cp.depths
    weight_grad = _replica_weight_grad if cache.replicas else _weight_grad
    weight_vars = [weights[cp.group_ids[gi]] for gi in cp.weight_groups]
    W = [None] * len(groups)
    for gi, w in zip(cp.weight_groups, weight_vars):
        W[gi] = w.value
    WT = [None] * len(groups)
    for gi, scale in cp.transposed:
        # (the last two axes: a replica's stacked weight (R, out, in) too)
        wt = np.swapaxes(W[gi], -1, -2)
        WT[gi] = np.ascontiguousarray(wt) if scale is None else np.multiply(wt, scale, order="C")
    K = _constants(dtype)
    if T:
        args = (T, A, V, BS, H, D, W, WT, C, probe.F, AP, VP, BSP, K, cp.scales)
        if ws is not None and ws.forward_views is None and probe.forward.has_cached:
            ws.forward_views = probe.forward.cached_views(*args)
        probe.forward(args, ws.forward_views if ws is not None else None)

    inputs = base_vars + [pack_vars[p] for p in cp.based_packs] + weight_vars + hist_vars
    tape = _tape_of(inputs)
    A_vars = [Var(a, tape) for a in A]
    V_vars = [ad.StepVar(v, tape) for v in V]   # the backward loop takes dL/dv from dense readouts as g @ W
    if tape is None:
        return dict(zip(nodes, zip(A_vars, V_vars)))
    outputs = [None] * (2 * len(nodes))
    outputs[0::2], outputs[1::2] = A_vars, V_vars
    outputs = tuple(outputs)

    def vjp(out_grads):
        ext_a = tuple([g is not None for g in out_grads[0::2]])
        ext_v = tuple([0 if g is None else DEFERRED if isinstance(g, ad.Deferred) else 1 for g in out_grads[1::2]])
        key = (ext_a, ext_v, tape.trace)
        vp = cp.vjps.get(key)
        if vp is None:
            vp = cp.vjps[key] = _VjpPlan(cp, ext_a, ext_v, tape.trace)
        prog = vp.prog
        reuse = ws is not None and not tape.trace
        bufs = ws.backward.get((ext_a, ext_v)) if reuse else None
        if bufs is None:
            bufs = _BackwardBuffers(prog, T, B, dtype, H, AP, tape.trace)
            if reuse:
                ws.backward[(ext_a, ext_v)] = bufs
        bufs.reset(A, V, AP, VP, BS, C, H, out_grads)
        GV, GA, GC, GH, GAP = bufs.GV, bufs.GA, list(bufs.GC), bufs.GH, bufs.GAP
        GAX = [np.asarray(g, dtype) if g is not None else None for g in out_grads[0::2]] if vp.any_ext_a \
            else cp.no_grads
        GVX, GVW = cp.no_grads, cp.no_grads
        if vp.rolling_ext:   # added step by step, in the loop
            GVX, GVW = list(GVX), list(GVW)
            for i in vp.rolling_ext:
                g = out_grads[2 * i + 1]
                if isinstance(g, ad.Deferred):
                    GVX[i], GVW[i] = np.asarray(g.g, dtype), np.asarray(g.w, dtype)   # np.dot's out: one dtype
                else:
                    GVX[i] = np.asarray(g, dtype)
        if T:
            args = (T, A, V, BS, H, D, W, WT, C, GV, GA, GC, GH, bufs.DER, GAX, bufs.TMP, prog.FV, bufs.TP,
                    bufs.GVP, GAP, bufs.DERP, bufs.DS, VP, bufs.DN, GVX, GVW, bufs.GVT, K, cp.scales)
            if reuse and bufs.cached_views is None and prog.backward.has_cached:
                bufs.cached_views = prog.backward.cached_views(*args)
            prog.backward(args, bufs.cached_views if reuse else None)
        for gi, p in vp.gc_packed:
            GC[gi] = GAP[p]
        for gi, i in vp.gc_direct:
            GC[gi] = GA[i]
        if tape.trace:   # dL/dv for every step, recurrent paths included (T, B, size)
            for i, n in enumerate(nodes):
                tape.traced[n] = GV[i]

        grads = [GA[i] for i in cp.base_index]
        for k, i in vp.products:
            others = np.ones((T, B, prog.size[i]), dtype)
            for factor in prog.product_factors(i, V, C, H):
                _multiply_in(others, factor)
            grads[k] = GA[i] * others
        grads += [GAP[p] for p in cp.based_packs]
        for (gi, kind, s, delay), w in zip(vp.weight_grads, weight_vars):
            if not w.needs_grad:
                grads.append(None)
                continue
            d = min(delay, T)
            # dW = sum_t dC(t)^T v_s(t - d): steps t >= d read the sequence, earlier ones the history
            gw = weight_grad(kind, GC[gi][d:], V[s][:T - d], W[gi])
            if d and not (ws is not None and ws.zero_history[s]):   # zeros before t = 0 add nothing
                gw = gw + weight_grad(kind, GC[gi][:d], H[s][H[s].shape[0] - delay:][:d], W[gi])
            grads.append(gw)
        for i in cp.hist_index:
            grads.append(GH[i])
        bufs.release()
        return grads

    tape.record(outputs, tuple(inputs), vjp)
    return dict(zip(nodes, zip(A_vars, V_vars)))


def compiled_loops(cache: StageCache) -> list:
    """The (forward compilation, backward compilation or None) pairs ``scan`` has made
    for a stage so far, in the order made: a network built afresh and run once has one."""
    found = []
    for calls in cache.calls.values():
        for cp in calls.plans.values():
            for vp in cp.vjps.values():
                found.append((cp.probe, vp.prog))
            if not cp.vjps:
                found.append((cp.probe, None))
    return found
