"""Real-time recurrent learning (Williams & Zipser 1989): the gradient forward in time.

Alongside every value ``v_n(t)`` (B, size) it carries the sensitivity
``S_n(t) = dv_n(t)/dθ`` (B, size, P), θ being every trainable parameter
element laid end to end (P of them).  The semantics of docs/spec-format.md,
differentiated once forward::

    dc_e(t) = W_e dv_s(t-d) + (dW_e/dθ) v_s(t-d)     the second term: θ's own slice
    da_n(t) = sum_e dc_e(t) + db_n/dθ                 (sum)
            | sum_e (prod_{e' != e} c_e') dc_e(t)     (product)
    dv_n(t) = f'(a_n(t)) da_n(t)                      (softmax: its Jacobian)

and the loss gradient is ``sum_t dL/dv_out(t) . dv_out(t)/dθ`` (through
``a_out`` where the loss reads the pre-activation: bce on a sigmoid,
cross-entropy on a softmax).  Nodes are visited per step in the plan's
instant order; a delayed read takes the value and sensitivity the node had
``d`` steps earlier (kept for ``plan.history_depth`` steps), or its initial
state before 0 (whose sensitivity is the identity on ``"<node>.init"`` when
that is trainable, else zero).  A sensitivity that is zero (inputs, nodes
no parameter reaches) is ``None`` and costs nothing.

Memory is O(B · units · P) and each step costs O(B · Σ_dense to·from · P):
for a fully recurrent pool of n units (P ≈ n²) that is n³ memory and n⁴
time per step, against BPTT's O(T · n) memory.  No time loop runs
backward, so the weights may change after every step (``online``).

Only nonnegative delays: a value that reads the future is not known when
its step runs.  The spec validator refuses ``method: rtrl`` with a negative
delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import autodiff as ad
from ..activations import ACTIVATIONS
from ..errors import DataError
from .losses import output_loss

SENSITIVITY_COPIES = 4.0    # per node beyond its history: temporaries of a step (fitted on measured peaks: benchmarks/README.md, "RTRL")


@dataclass(frozen=True)
class Slot:
    """Where a trainable parameter's elements sit in θ: ``offset .. offset + size``."""

    name: str
    offset: int
    shape: tuple

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def parameter_slots(net) -> tuple[dict, int]:
    """{trainable parameter: Slot} in ``net.trainable`` order, and P (their total size)."""
    slots, offset = {}, 0
    for name in net.trainable:
        slot = Slot(name, offset, tuple(net.param_info[name].shape))
        slots[name] = slot
        offset += slot.size
    return slots, offset


def sensitivity_bytes(net, B: int) -> float:
    """Bytes the sensitivities of a batch of ``B`` take: every node's, for as many
    steps as delayed edges read it, plus temporaries."""
    _, P = parameter_slots(net)
    depth = net.plan.history_depth
    units = sum(d["size"] * (max(depth[n], 1) + SENSITIVITY_COPIES)
                for n, d in net.program.nodes.items() if d["role"] != "input")
    return float(B) * units * P * net.dtype.itemsize


def check_memory(net, B: int) -> None:
    """DataError, before anything is allocated, when RTRL on ``B`` sequences would
    need more memory than ``net.memory_limit`` (``budget.limit()`` at build)."""
    from .. import budget
    need = sensitivity_bytes(net, B)
    if need > net.memory_limit:
        _, P = parameter_slots(net)
        units = sum(d["size"] for d in net.program.nodes.values() if d["role"] != "input")
        budget.check(need, f"real-time recurrent learning (sensitivities of {units} units x {P} parameters "
                           f"x batch {B})", "use train.method: bptt, a smaller network or smaller batches")


class Sensitivities:
    """RTRL on one network: ``steps`` runs a batch forward, yielding each step's
    loss and gradient.  Reads ``net.params`` at every step when ``live``
    (online learning changes them between steps), else once."""

    def __init__(self, net):
        self.net = net
        self.slots, self.P = parameter_slots(net)
        graph = net.graph
        self.order = list(net.plan.order)
        self.nodes = net.program.nodes
        self.incoming = {n: [] for n in self.order}
        for u, v, key, d in graph.edges(keys=True, data=True):
            self.incoming[v].append((key, u, d))
        for n in self.incoming:   # a fixed order: sums are taken in the same order every step
            self.incoming[n].sort(key=lambda item: item[0])
        self.depth = dict(net.plan.history_depth)
        if any(d["delay"] < 0 for _, _, d in graph.edges(data=True)):
            raise DataError("real-time recurrent learning needs delays >= 0 (an edge reading the future is not "
                            "known when its step runs); use method bptt")

    # ------------------------------------------------------------------ parameters
    def _weights(self) -> dict:
        """edge key -> its effective weight (constraints applied), from ``net.params``."""
        params, out = self.net.params, {}
        for u, v, key, d in self.net.graph.edges(keys=True, data=True):
            if d["param"] is None:
                continue
            w = np.asarray(params[d["param"]])
            if "symmetric" in d["constraints"]:
                w = (w + w.T) * 0.5
            if "zero_diagonal" in d["constraints"]:
                w = w * (1.0 - np.eye(w.shape[0], dtype=w.dtype))
            out[key] = w
        return out

    # ------------------------------------------------------------------ one edge, one node
    def _edge(self, data: dict, w, u: np.ndarray, su):
        """The contribution ``c_e`` (B, to), its sensitivity (B, to, P) or None, and
        whether that sensitivity is a new array (else it is the source's own)."""
        kind, slot = data["weight"], self.slots.get(data["param"]) if data["param"] else None
        if kind == "identity":
            return u, su, False
        B = u.shape[0]
        if kind == "dense":
            c = u @ w.T                                          # (B, to)
            dc = None if su is None else np.matmul(w, su)        # (to, from) @ (B, from, P) -> (B, to, P)
        else:                                                    # diagonal (to,) or scalar ()
            c = u * w
            dc = None if su is None else (w[:, None] if w.ndim else w) * su
        if slot is None:
            return c, dc, True
        if dc is None:
            dc = np.zeros((B, c.shape[1], self.P), c.dtype)
        block = dc[:, :, slot.offset:slot.offset + slot.size]
        rows = np.arange(c.shape[1])
        if kind == "dense":
            direct = block.reshape(B, c.shape[1], *slot.shape)   # (B, i, k, l): d c_i / d W_kl
            constraints = data["constraints"]
            if not constraints:
                direct[:, rows, rows, :] += u[:, None, :]
            else:   # the constraints are linear maps of the parameter: apply them to its unit directions
                j = np.zeros_like(direct)
                j[:, rows, rows, :] = u[:, None, :]
                if "symmetric" in constraints:
                    j = (j + j.transpose(0, 1, 3, 2)) * 0.5
                if "zero_diagonal" in constraints:
                    j *= 1.0 - np.eye(slot.shape[0], dtype=j.dtype)
                direct += j
        elif kind == "diagonal":
            block[:, rows, rows] += u
        else:
            block[:, :, 0] += u
        return c, dc, True

    def _combine(self, n: str, parts: list, B: int):
        """``a_n`` (B, size) and its sensitivity from the edges' (c, dc, new) triples."""
        node = self.nodes[n]
        size, dtype = node["size"], self.net.dtype
        if node["combine"] == "product":
            a = parts[0][0].copy()
            for c, _, _ in parts[1:]:
                a = a * c
            da = None
            for i, (_, dc, _) in enumerate(parts):
                if dc is None:
                    continue
                others = np.ones_like(a)
                for j, (c, _, _) in enumerate(parts):
                    if j != i:
                        others = others * c
                term = others[:, :, None] * dc
                da = term if da is None else da + term
            return a, da
        a = np.zeros((B, size), dtype)
        da = None
        for c, dc, new in parts:
            a = a + c
            if dc is not None:
                if da is None:   # written into below: never the source's own array
                    da = dc if new else dc.copy()
                else:
                    da += dc
        bias = node["bias"]
        if bias is not None:
            a = a + self.biases[bias]
            slot = self.slots.get(bias)
            if slot is not None:
                if da is None:
                    da = np.zeros((B, size, self.P), dtype)
                rows = np.arange(size)
                da[:, rows, slot.offset + rows] += 1
        return a, da

    @staticmethod
    def _activate(name: str, a: np.ndarray, da):
        act = ACTIVATIONS[name]
        v = act.forward(a)
        if da is None or act.zero_derivative:
            return v, None
        if name == "identity":
            return v, da
        if name == "softmax":   # J = diag(v) - v v^T
            return v, v[:, :, None] * (da - np.einsum("bi,bip->bp", v, da)[:, None, :])
        slope = act.vjp(np.ones_like(a), a, v)                   # f'(a), elementwise
        return v, slope[:, :, None] * da

    # ------------------------------------------------------------------ initial states
    def _initial(self, initial: dict, B: int) -> dict:
        """node -> (value (B, size), sensitivity or None) for times before 0."""
        out, dtype = {}, self.net.dtype
        for n, depth in self.depth.items():
            if depth == 0:
                continue
            node = self.nodes[n]
            size, init = node["size"], node["init"]
            if n in initial:
                out[n] = (np.asarray(initial[n], dtype), None)
            elif init.kind == "input":
                raise DataError(f"node {n!r} has `init: input`: its initial state must be supplied per sample, "
                                f"as initial={{{n!r}: array of shape (batch, {size})}}")
            elif init.trainable:
                name = f"{n}.init"
                value = np.broadcast_to(np.asarray(self.net.params[name], dtype), (B, size)).copy()
                slot = self.slots.get(name)
                s = None
                if slot is not None:
                    s = np.zeros((B, size, self.P), dtype)
                    rows = np.arange(size)
                    s[:, rows, slot.offset + rows] = 1
                out[n] = (value, s)
            else:
                out[n] = (np.broadcast_to(np.asarray(init.value, dtype), (B, size)).copy(), None)
        return out

    # ------------------------------------------------------------------ the run
    def steps(self, xs: dict, ys: dict, ws: dict, initial: dict, T: int, B: int, kind: str,
              live: bool = False, per_step_mean: bool = False):
        """Run forward; yield ``(t, loss_t, grad_t)`` after every step.

        xs {input: (T, B, size)}, ys {output: (T, B, size)}, ws {output: (T, B)}
        (time-major, checked by the caller); grad_t (P,) is the gradient of loss_t;
        both are None at a step where the loss counts nowhere.
        loss_t is step t's share of the whole loss (each output's mean over every
        counted position of the sequence), so the ``loss_t`` and ``grad_t`` add up
        to the loss and gradient of BPTT; with ``per_step_mean`` it is each output's
        mean over step t's counted positions alone (online learning's error).
        ``live``: read ``net.params`` again at every step (they change between steps).
        """
        dtype = self.net.dtype
        counts = {}
        for n, y in ys.items():
            w = ws.get(n)
            counts[n] = float(T * B) if w is None else float(w.sum())
        start = self._initial(initial, B)
        history = {n: [] for n, d in self.depth.items() if d > 0}   # the last d (value, sensitivity) pairs
        weights = None
        for t in range(T):
            if weights is None or live:
                weights = self._weights()
                self.biases = {d["bias"]: np.asarray(self.net.params[d["bias"]], dtype)
                                        for d in self.nodes.values() if d["bias"]}
            now: dict = {}
            pre: dict = {}
            for n in self.order:
                node = self.nodes[n]
                if node["role"] == "input":
                    now[n] = (xs[n][t], None)
                    continue
                parts = []
                for key, source, data in self.incoming[n]:
                    d = data["delay"]
                    if d == 0:
                        u, su = now[source]
                    elif t - d < 0:
                        u, su = start[source]
                    else:
                        u, su = history[source][-d]
                    parts.append(self._edge(data, weights.get(key), u, su))
                if not parts:
                    a, da = np.zeros((B, node["size"]), dtype), None
                    if node["bias"] is not None:
                        a, da = self._combine(n, [(a, None, True)], B)
                else:
                    a, da = self._combine(n, parts, B)
                pre[n] = (a, da)
                now[n] = self._activate(node["activation"], a, da)
            loss_t, grad_t = self._step_loss(t, now, pre, ys, ws, counts, kind, B, per_step_mean)
            for n, kept in history.items():
                kept.append(now[n])
                if len(kept) > self.depth[n]:
                    kept.pop(0)
            yield t, loss_t, grad_t

    def _step_loss(self, t, now, pre, ys, ws, counts, kind, B, per_step_mean):
        """Step t's loss and its gradient (P,) through the outputs' sensitivities."""
        grad = np.zeros(self.P, self.net.dtype)
        total, any_counted = 0.0, False
        for n, y in ys.items():
            w = ws.get(n)
            w_t = None if w is None else w[t:t + 1]
            counted = float(B) if w_t is None else float(w_t.sum())
            if counted == 0:
                continue
            any_counted = True
            tape = ad.Tape()
            a, da = pre[n]
            v, dv = now[n]
            va, vv = tape.param(a[None]), tape.param(v[None])
            term = output_loss(kind, va, vv, y[t:t + 1], w_t, self.nodes[n]["activation"])
            scale = 1.0 if per_step_mean else counted / counts[n]
            tape.backward(term)
            total += scale * float(term.value)
            for var, s in ((va, da), (vv, dv)):
                if var.grad is not None and s is not None:
                    g = ad.dense(var.grad)[0] * scale                 # (B, size)
                    grad += np.einsum("bi,bip->p", g, s)
        return (total, grad) if any_counted else (None, None)

    def unflatten(self, flat: np.ndarray) -> dict:
        """θ (P,) -> {parameter: array of its shape}."""
        return {name: flat[s.offset:s.offset + s.size].reshape(s.shape).copy() for name, s in self.slots.items()}


def loss_and_grad(net, xs, ys, ws, initial, T, B, kind):
    """The whole sequence's loss and gradient by RTRL (equal to BPTT's to rounding)."""
    check_memory(net, B)
    rtrl = net.rtrl_engine()
    total, grad = 0.0, np.zeros(rtrl.P, net.dtype)
    for _, loss_t, grad_t in rtrl.steps(xs, ys, ws, initial, T, B, kind):
        if loss_t is not None:
            total += loss_t
            grad += grad_t
    return total, rtrl.unflatten(grad)


def online(net, xs, ys, ws, initial, T, B, kind):
    """Online RTRL: yields ``(t, loss_t, grads_t)`` after every step where the loss
    counts, ``loss_t`` being each output's mean over that step and ``grads_t``
    {parameter: its gradient}; the caller may change ``net.params`` before the next
    step, which then runs with them (the sensitivities carry on, as in the paper)."""
    check_memory(net, B)
    rtrl = net.rtrl_engine()
    for t, loss_t, grad_t in rtrl.steps(xs, ys, ws, initial, T, B, kind, live=True, per_step_mean=True):
        if loss_t is not None:
            yield t, loss_t, rtrl.unflatten(grad_t)
