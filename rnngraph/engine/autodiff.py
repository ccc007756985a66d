"""A small reverse-mode autodiff on numpy: a tape of vector-Jacobian products.

A ``Var`` holds a value; an op computes its output and, when any input needs
a gradient, records on the ``Tape`` a closure that maps the output's gradient
to its inputs' gradients.  Each op's forward and VJP sit side by side below.

``Tape.backward(loss)`` walks the records once, newest first: records are
appended in execution order, so that order is already topological, and the
walk is a plain loop (no recursion: a 10,000-step unroll is just a longer
list).  Gradients accumulate: a weight used at every time step receives the
sum of its uses.  Broadcasting is undone in one place, ``unbroadcast``.
A dense edge reading a recurrent loop's values (``StepVar``) hands their
gradient back unmultiplied (``Deferred``: g and W), for the loop to compute
a step at a time instead of as a (T, B, n) array.

Ops that need no gradient (every input constant) record nothing, so the same
code runs forward-only at full speed.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..activations import ACTIVATIONS


class Var:
    """A value on (or off) a tape.

    ``value``: the ndarray.  ``grad``: dL/dvalue after ``Tape.backward``
    (None until something flows into it).  ``tape``: the tape recording ops
    on it, or None for a constant.
    """

    __slots__ = ("value", "grad", "tape")

    def __init__(self, value, tape: "Tape | None" = None):
        self.value = value
        self.grad = None
        self.tape = tape

    @property
    def needs_grad(self) -> bool:
        return self.tape is not None

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Var(shape={self.value.shape}, needs_grad={self.needs_grad})"

    # whether the op that made this Var takes a ``Deferred`` gradient (see ``StepVar``)
    takes_deferred = False


class StepVar(Var):
    """A Var made by an op that reads its gradient one step at a time (a recurrent
    loop's values): a dense edge reading it may hand over dL/dx = g @ W as a
    ``Deferred``, which that loop computes a row at a time (no (T, B, n) array)."""

    __slots__ = ()
    takes_deferred = True


class Deferred:
    """dL/dx = ``g @ w`` for x (..., n), not yet computed: g (..., m), w (m, n).

    Only a ``StepVar``'s producer receives one; ``Tape.backward`` computes it
    (``dense``) when a second gradient must be added to it."""

    __slots__ = ("g", "w")

    def __init__(self, g: np.ndarray, w: np.ndarray):
        self.g, self.w = g, w

    def dense(self) -> np.ndarray:
        return _matmul_rows(self.g, self.w)

    def into(self, out: np.ndarray) -> None:
        """Write ``g @ w`` into ``out`` (same shape), without a temporary where it can."""
        if out.flags.c_contiguous and out.dtype == self.g.dtype == self.w.dtype:
            np.matmul(self.g.reshape(-1, self.g.shape[-1]), self.w, out=out.reshape(-1, out.shape[-1]))
        else:
            np.copyto(out, self.dense())


def dense(g):
    """A gradient as an array (a ``Deferred`` computed)."""
    return g.dense() if isinstance(g, Deferred) else g


def const(value) -> Var:
    """A Var no gradient flows into (data, targets, frozen values)."""
    return Var(value)


class Tape:
    """Records VJPs as ops run; ``backward`` replays them in reverse."""

    def __init__(self, trace: bool = False):
        self.records: list = []   # (output Vars tuple, input Vars tuple, vjp)
        # with trace=True, gradients of values are kept (not released) and ops
        # with hidden intermediate values (scan) report them in `traced`
        self.trace = trace
        self.traced: dict = {}

    def param(self, value) -> Var:
        """A leaf whose gradient is wanted."""
        return Var(value, self)

    def record(self, outputs: tuple, inputs: tuple, vjp) -> None:
        self.records.append((outputs, inputs, vjp))

    def backward(self, out: Var, seed=None) -> None:
        """Accumulate d out / d v into ``v.grad`` for every Var on the tape.

        ``out`` is usually a scalar loss (seed 1).  Intermediate gradients are
        released as soon as they have been propagated, so peak memory is that
        of the forward activations plus one step of gradients.
        """
        if seed is None:   # a loss is 0-d: no array to fill
            seed = np.array(1, out.value.dtype) if out.value.ndim == 0 else np.ones_like(out.value)
        out.grad = seed
        for outputs, inputs, vjp in reversed(self.records):
            if len(outputs) == 1:
                grads = outputs[0].grad
                if grads is None:
                    continue
            else:
                grads = [o.grad for o in outputs]
                if all(g is None for g in grads):
                    continue
            in_grads = vjp(grads)
            for var, g in zip(inputs, in_grads):
                if g is None or var.tape is None:
                    continue
                var.grad = g if var.grad is None else dense(var.grad) + dense(g)
            if not self.trace:
                for o in outputs:
                    if o is not out:
                        o.grad = None
        self.records.clear()


def _tape_of(inputs) -> "Tape | None":
    for v in inputs:
        if v.tape is not None:
            return v.tape
    return None


def apply(value, inputs: tuple, vjp) -> Var:
    """Wrap ``value`` as the output of an op on ``inputs`` with ``vjp``
    (``g -> tuple of input grads``), recording only if a gradient is needed."""
    tape = _tape_of(inputs)
    out = Var(value, tape)
    if tape is not None:
        tape.record((out,), inputs, vjp)
    return out


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the VJP of numpy broadcasting."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:   # np.add.reduce is what ndarray.sum calls, without its Python wrapper
        g = np.add.reduce(g, axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = np.add.reduce(g, axis=axes, keepdims=True)
    return g


# --------------------------------------------------------------------------- elementwise

def add(a: Var, b: Var) -> Var:
    return apply(a.value + b.value, (a, b),
                 lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def add_into(a: Var, b: Var) -> Var:
    """``a + b`` written into ``a``'s array (no new array of a's size).  Only for
    an ``a`` that nothing else reads afterwards (an intermediate whose one
    consumer is this op, and whose producer's VJP does not need its value)."""
    np.add(a.value, b.value, out=a.value)
    return apply(a.value, (a, b), lambda g: (g, unbroadcast(g, b.shape)))


def sub(a: Var, b: Var) -> Var:
    return apply(a.value - b.value, (a, b),
                 lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a: Var, b: Var) -> Var:
    return apply(a.value * b.value, (a, b),
                 lambda g: (unbroadcast(g * b.value, a.shape) if a.needs_grad else None,
                            unbroadcast(g * a.value, b.shape) if b.needs_grad else None))


def neg(a: Var) -> Var:
    return apply(-a.value, (a,), lambda g: (-g,))


def scale(a: Var, c: float) -> Var:
    """``c * a`` for a constant number ``c``."""
    return apply(a.value * c, (a,), lambda g: (g * c,))


def total(parts: list) -> Var:
    """Sum of equally shaped Vars (one op, one VJP that fans the gradient out)."""
    if len(parts) == 1:
        return parts[0]
    value = parts[0].value.copy()
    for p in parts[1:]:
        value += p.value
    shapes = [p.shape for p in parts]
    return apply(value, tuple(parts), lambda g: tuple(unbroadcast(g, s) for s in shapes))


def product(parts: list) -> Var:
    """Elementwise product of Vars: the ``product`` combine."""
    if len(parts) == 1:
        return parts[0]
    values = [p.value for p in parts]
    out = values[0] * values[1]
    for v in values[2:]:
        out = out * v

    def vjp(g):
        grads = []
        for i, p in enumerate(parts):
            if not p.needs_grad:
                grads.append(None)
                continue
            others = None
            for j, v in enumerate(values):
                if j != i:
                    others = v if others is None else others * v
            grads.append(unbroadcast(g * others, p.shape))
        return tuple(grads)
    return apply(out, tuple(parts), vjp)


def activation(name: str, a: Var) -> Var:
    """``v = f(a)`` for an activation of ``activations.ACTIVATIONS``."""
    if name == "identity":
        return a
    f = ACTIVATIONS[name]
    v = f.forward(a.value)
    return apply(v, (a,), lambda g: (f.vjp(g, a.value, v),))


# --------------------------------------------------------------------------- linear algebra

def _matmul_rows(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for x (..., k): one GEMM over all leading axes (numpy runs a
    3-d @ 2-d product as one small GEMM per leading index, 1.5-3x slower)."""
    if x.ndim <= 2:
        return x @ w
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def linear(x: Var, w: Var, b: Var | None = None) -> Var:
    """``x @ w.T (+ b)``: x (..., in), w (out, in), b (out,) -> (..., out).  The dense
    edge; with ``b``, its target's bias too, added into the GEMM's own output (one
    op and one VJP fewer than a separate add)."""
    xv, wv = x.value, w.value
    if wv.ndim == 3:
        return _replica_linear(x, w, b)

    def vjp(g):
        gx = None
        if x.needs_grad:   # a recurrent loop's values take it step by step (unless traced)
            gx = Deferred(g, wv) if x.takes_deferred and not x.tape.trace else _matmul_rows(g, wv)
        g2 = g.reshape(-1, g.shape[-1])
        gw = g2.T @ xv.reshape(-1, xv.shape[-1]) if w.needs_grad else None
        if b is None:
            return gx, gw
        return gx, gw, np.add.reduce(g2, axis=0) if b.needs_grad else None
    out = _matmul_rows(xv, wv.T)
    if b is None:
        return apply(out, (x, w), vjp)
    np.add(out, b.value, out=out)
    return apply(out, (x, w, b), vjp)


def _replica_axis_first(a: np.ndarray) -> np.ndarray:
    """(..., R, B, n) -> (R, rows, n): each replica's rows in time-major order."""
    if a.ndim == 3:
        return a
    return np.moveaxis(a, -3, 0).reshape(a.shape[-3], -1, a.shape[-1])


def _replica_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (..., R, B, k) @ b (R, k, n): each replica's rows times its own matrix.
    With k = 1 an outer product, one broadcast multiply (the same numbers; a
    GEMM per (step, replica) with k = 1 is several times slower)."""
    return a * b if a.shape[-1] == 1 else np.matmul(a, b)


def _replica_linear(x: Var, w: Var, b: Var | None) -> Var:
    """``linear`` for replicas: x (..., R, B, in), w (R, out, in) (each replica's
    own weight), b (R, 1, out) -> (..., R, B, out), one batched GEMM; the weight
    and bias gradients are reduced over each replica's own rows only."""
    xv, wv = x.value, w.value

    def vjp(g):
        gx = _replica_matmul(g, wv) if x.needs_grad else None
        gw = np.matmul(_replica_axis_first(g).transpose(0, 2, 1), _replica_axis_first(xv)) if w.needs_grad else None
        if b is None:
            return gx, gw
        return gx, gw, unbroadcast(g, b.shape) if b.needs_grad else None
    out = _replica_matmul(xv, wv.transpose(0, 2, 1))
    if b is None:
        return apply(out, (x, w), vjp)
    np.add(out, b.value, out=out)
    return apply(out, (x, w, b), vjp)


def transpose(w: Var) -> Var:
    return apply(w.value.T, (w,), lambda g: (g.T,))


def edge_apply(kind: str, w: Var | None, x: Var) -> Var:
    """An edge's contribution ``W_e(x)`` for its weight kind (docs/spec-format.md, "Semantics")."""
    if kind == "dense":
        return linear(x, w)
    if kind in ("diagonal", "scalar"):
        return mul(x, w)
    return x   # identity


# --------------------------------------------------------------------------- shapes

def concat(parts: list, axis: int) -> Var:
    if len(parts) == 1:
        return parts[0]
    ends = list(itertools.accumulate(p.shape[axis] for p in parts))
    lead = (slice(None),) * (axis % parts[0].value.ndim)
    pieces = [lead + (slice(lo, hi),) for lo, hi in zip([0] + ends[:-1], ends)]
    return apply(np.concatenate([p.value for p in parts], axis=axis), tuple(parts),
                 lambda g: tuple(g[piece] for piece in pieces))


def take(x: Var, index, shape_of=None) -> Var:
    """``x[index]`` for a basic (view) index; the VJP scatters into zeros.

    Use it where ``x`` is small or sliced once: slicing one step out of a
    whole sequence at every step would cost O(T^2) in backward (the scan
    kernel avoids that by owning its buffers)."""
    shape, dtype = x.shape, x.value.dtype

    def vjp(g):
        full = np.zeros(shape, dtype=dtype)
        full[index] += g
        return (full,)
    return apply(x.value[index], (x,), vjp)


def broadcast(x: Var, shape) -> Var:
    return apply(np.broadcast_to(x.value, shape), (x,), lambda g: (unbroadcast(g, x.shape),))


def reshape(x: Var, shape) -> Var:
    old = x.shape
    return apply(x.value.reshape(shape), (x,), lambda g: (g.reshape(old),))


def stack(parts: list, axis: int = 0) -> Var:
    return apply(np.stack([p.value for p in parts], axis=axis), tuple(parts),
                 lambda g: tuple(np.moveaxis(g, axis, 0)))


def shift(seq: Var, delay: int, history: Var) -> Var:
    """The sequence as read by an edge of ``delay``: ``out[t] = seq[t - delay]``,
    and ``history[D + t - delay]`` where ``t - delay < 0``.

    seq (T, B, n); history (D, B, n) with ``D >= delay``: the values at times
    ``-D .. -1``.  A negative delay reads later steps: then ``history`` holds
    the values at times ``T .. T+D-1`` (``D >= -delay``), read where
    ``t - delay >= T``.  Returns (T, B, n)."""
    if delay == 0:
        return seq
    if delay < 0:
        return flip(shift(flip(seq), -delay, flip(history)))
    T, D = seq.shape[0], history.shape[0]
    head = history.value[D - delay:D - delay + min(delay, T)]          # (min(d,T), B, n)
    value = np.concatenate([head, seq.value[:max(T - delay, 0)]], axis=0)

    def vjp(g):
        g_hist = None
        if history.needs_grad:
            g_hist = np.zeros(history.shape, dtype=g.dtype)
            g_hist[D - delay:D - delay + min(delay, T)] = g[:min(delay, T)]
        g_seq = None
        if seq.needs_grad:
            g_seq = np.zeros(seq.shape, dtype=g.dtype)
            g_seq[:max(T - delay, 0)] = g[delay:]
        return g_seq, g_hist
    return apply(value, (seq, history), vjp)


def flip(x: Var) -> Var:
    """``x`` in reversed order along its first (time) axis, as a new array."""
    return apply(np.ascontiguousarray(x.value[::-1]), (x,), lambda g: (np.ascontiguousarray(dense(g)[::-1]),))


# --------------------------------------------------------------------------- constraints

def symmetric(w: Var) -> Var:
    """``(W + W^T) / 2``: the part of W a symmetric constraint keeps."""
    return apply((w.value + w.value.T) * 0.5, (w,), lambda g: ((g + g.T) * 0.5,))


def zero_diagonal(w: Var) -> Var:
    mask = 1.0 - np.eye(w.shape[0], dtype=w.value.dtype)
    return apply(w.value * mask, (w,), lambda g: (g * mask,))


# --------------------------------------------------------------------------- reductions and losses

def weighted_mean(values: Var, weights: np.ndarray | None, count: float) -> Var:
    """``sum(values * weights) / count`` with constant weights (None: all ones)."""
    w, dtype = weights, values.value.dtype
    if w is None:
        out = np.asarray(values.value.sum() / count, dtype=dtype)
        return apply(out, (values,), lambda g: (np.full(values.shape, g / count, dtype=dtype),))
    out = np.asarray((values.value * w).sum() / count, dtype=dtype)
    return apply(out, (values,), lambda g: (g * w / count,))


def bce_with_logits(a: Var, y: np.ndarray, s: np.ndarray | None = None) -> Var:
    """Elementwise ``-(y log s(a) + (1-y) log(1 - s(a)))`` computed stably as
    ``softplus(a) - y a``.  ``s``: ``sigmoid(a)`` where the caller has it (a sigmoid
    output's value), which the VJP ``g (s - y)`` then reads instead of computing it."""
    av = a.value
    value = ACTIVATIONS["softplus"].forward(av)
    value -= y * av

    def vjp(g):   # g (sigmoid(a) - y)
        d = np.subtract(ACTIVATIONS["sigmoid"].forward(av) if s is None else s, y)
        d *= g
        return (d,)
    return apply(value, (a,), vjp)


def bce_on_probs(v: Var, y: np.ndarray, eps: float = 1e-7) -> Var:
    """Elementwise binary cross-entropy on probabilities (clipped to [eps, 1-eps])."""
    p = np.clip(v.value, eps, 1 - eps)
    value = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    inside = (v.value > eps) & (v.value < 1 - eps)
    return apply(value, (v,), lambda g: (g * inside * (p - y) / (p * (1 - p)),))


def cross_entropy_with_logits(a: Var, y: np.ndarray) -> Var:
    """Per position ``-sum_k y_k log softmax(a)_k`` (last axis summed)."""
    av = a.value
    z = av - av.max(axis=-1, keepdims=True)
    logsum = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    value = -(y * (z - logsum)).sum(axis=-1)
    probs = np.exp(z - logsum)
    return apply(value, (a,), lambda g: (g[..., None] * (probs * y.sum(axis=-1, keepdims=True) - y),))


def cross_entropy_on_probs(v: Var, y: np.ndarray, eps: float = 1e-12) -> Var:
    p = np.maximum(v.value, eps)
    value = -(y * np.log(p)).sum(axis=-1)
    inside = v.value > eps
    return apply(value, (v,), lambda g: (-g[..., None] * y * inside / p,))


def sum_all(x: Var) -> Var:
    """The sum of every element, 0-d."""
    shape, dtype = x.shape, x.value.dtype
    return apply(np.asarray(x.value.sum(), dtype=dtype), (x,), lambda g: (np.broadcast_to(g, shape).astype(dtype),))


def squared_error(v: Var, y: np.ndarray) -> Var:
    d = v.value - y
    return apply(d * d, (v,), lambda g: (2.0 * g * d,))


def mean_squared_error(v: Var, y: np.ndarray, count: float) -> Var:
    """``sum((v - y)^2) / count`` as one op: unlike ``weighted_mean(squared_error)``
    it keeps no array of squares on the tape and its VJP writes into ``v - y``.
    (np.dot sums in the dtype: in float32 about 1e-6 relative off a pairwise sum.)"""
    d = v.value - y
    flat = d.reshape(-1)
    out = np.asarray(np.dot(flat, flat) / count, dtype=d.dtype)

    def vjp(g):   # a tape calls it once, and d is not needed afterwards
        return (np.multiply(d, np.asarray(2.0 * g / count, dtype=d.dtype), out=d),)
    return apply(out, (v,), vjp)


def split(x: Var, offsets: list, axis: int = -1) -> list:
    """Pieces ``x[..., offsets[k]:offsets[k+1]]`` as separate Vars (one op,
    one VJP that concatenates their gradients, zeros where none arrived)."""
    pieces = [x.value[..., offsets[k]:offsets[k + 1]] for k in range(len(offsets) - 1)] if axis == -1 else \
        np.split(x.value, offsets[1:-1], axis=axis)
    tape = _tape_of((x,))
    outs = [Var(p, tape) for p in pieces]
    if tape is not None:
        def vjp(grads):
            return (np.concatenate([g if g is not None else np.zeros_like(p)
                                    for g, p in zip(grads, pieces)], axis=axis),)
        tape.record(tuple(outs), (x,), vjp)
    return outs
