"""Replicas: R networks of one program (the same spec but for seed and numeric
hyperparameters) run as one program over a leading replica axis.

Every value is ``(T, R, B, size)``, time-major as in the executor; each
replica has its own parameters, stacked: a dense weight ``(R, out, in)``
(one batched GEMM per edge and step for all replicas), a bias, diagonal
weight or trainable initial state ``(R, 1, size)`` and a scalar weight
``(R, 1, 1)``, so that they broadcast against the values.  Each replica's
loss is its own mean, and the loss differentiated is their sum, so each
replica's gradient is exactly its own run's.

The recurrent loops are the compiled ones over R * B rows
(``compile/replica_scan.py``), or ``loop.simple_scan`` with ``engine="simple"``;
either way the replica axis amortises a step's Python work.  What a program
must not have to run this way is ``unsupported``'s answer.
"""

from __future__ import annotations

import numpy as np

from . import autodiff as ad
from .executor import run
from .losses import per_element


def unsupported(net) -> str | None:
    """Why ``net``'s program cannot run as replicas (None when it can): edges
    with constraints (their projections act on one matrix), dropout, or a
    negative delay (``run``'s futures are not replica-shaped)."""
    if any(info.constraints for info in net.param_info.values()):
        return "a weight has constraints (symmetric, zero_diagonal)"
    if net.dropout:
        return "an edge has dropout"
    if any(d < 0 for _, _, d in net.graph.edges(data="delay")):
        return "an edge has a negative delay"
    return None


def stacked_shape(shape: tuple, replicas: int) -> tuple:
    """A parameter's shape in stacked form: (out, in) -> (R, out, in); (n,) -> (R, 1, n); () -> (R, 1, 1)."""
    if len(shape) == 2:
        return (replicas, *shape)
    return (replicas, 1, shape[0] if shape else 1)


class Replicas:
    """The parameters of ``nets`` (Networks of one program, the same dtype)
    stacked, and the loss and gradients of all of them at once.

    ``params[name]`` is the stacked array (``stacked_shape``); ``take(r)`` and
    ``give(r)`` copy replica ``r``'s parameters out of and into its network.
    ``engine`` runs the recurrent loops: ``"compiled"`` or ``"simple"``."""

    def __init__(self, nets: list, engine: str = "compiled"):
        self.nets = list(nets)
        self.engine = engine
        self.R = len(self.nets)
        first = self.nets[0]
        self.program, self.dtype = first.program, first.dtype
        self.info = first.param_info
        self.trainable = first.trainable
        self.params = {name: np.stack([np.asarray(net.params[name]).reshape(stacked_shape(info.shape, 1)[1:])
                                       for net in self.nets])
                       for name, info in self.info.items()}

    def give(self, r: int) -> None:
        """Write replica ``r``'s parameters into its network (in place: fused views stay views)."""
        net = self.nets[r]
        for name, info in self.info.items():
            net.params[name][...] = self.params[name][r].reshape(info.shape)

    def take(self, r: int) -> None:
        """Read replica ``r``'s parameters from its network."""
        net = self.nets[r]
        for name, info in self.info.items():
            self.params[name][r] = np.asarray(net.params[name]).reshape(self.params[name].shape[1:])

    def step(self, xs: dict, ys: dict, ws: dict, kind: str, T: int, B: int, initial: dict | None = None,
             carried: dict | None = None, grads: bool = True):
        """Every replica's loss and gradient on its own batch.

        xs : input node -> (T, R, B, size); ys : output node -> (T, R, B, size);
        ws : output node -> (T, R, B) loss weights (absent: every position counts);
        initial : node -> (R, B, size); carried : node -> (D, R, B, size) (a previous window's
        ``run.history``).
        Returns ``(losses (R,), grads {trainable: stacked (R, ...)} or None, run)``."""
        tape = ad.Tape() if grads else None
        # a training step's values are done with before the next step: its loops keep their buffers
        result = run(self.program, self.params, xs, T, (self.R, B), self.dtype, tape=tape, initial=initial,
                     carried=carried, reuse=grads, engine=self.engine)
        if grads:
            result.history   # noqa: B018 - made before backward
        losses = np.zeros(self.R, dtype=np.float64)
        terms = []
        for n, y in ys.items():
            a, v = result.values[n]
            found = replica_loss(kind, a, v, y, ws.get(n), self.program.nodes[n]["activation"])
            if found is not None:
                term, values = found
                terms.append(term)
                losses += values
        gradients = None
        if grads:
            if terms:
                total = ad.total(terms) if len(terms) > 1 else terms[0]
                if total.needs_grad:
                    tape.backward(total)
            gradients = {}
            for name in self.trainable:
                g = result.params[name].grad
                gradients[name] = np.zeros_like(self.params[name]) if g is None else \
                    np.asarray(g, self.dtype).reshape(self.params[name].shape)
        return losses, gradients, result


def replica_loss(kind: str, a: ad.Var, v: ad.Var, y: np.ndarray, weights: np.ndarray | None,
                 activation: str):
    """``losses.output_loss`` for each replica: a (T, R, B, size) pre-activation,
    v its value, y the targets, weights (T, R, B) or None.  Returns ``(term,
    losses)``: a 0-d Var, the sum of every replica's mean loss (so its gradient
    is each replica's own), and those means (R,); None when no replica counts
    a position."""
    T, R, B, size = v.shape
    dtype = v.value.dtype
    if weights is None:
        w = np.ones((T, R, B), dtype=dtype)
        positions = np.full(R, float(T * B))
    else:
        w = weights.astype(dtype, copy=False)
        positions = w.sum(axis=(0, 2), dtype=np.float64)
    if not np.any(positions):
        return None
    per, by_unit = per_element(kind, a, v, y, activation)
    count = positions * size if by_unit else positions
    counted = np.where(count > 0, count, 1.0)
    w = w[..., None] if per.value.ndim == 4 else w
    weighted = per.value * w
    axes = tuple(k for k in range(weighted.ndim) if k != 1)
    losses = np.where(count > 0, weighted.sum(axis=axes, dtype=dtype).astype(np.float64) / counted, 0.0)
    # d(sum of the replicas' means)/d(per element) = its weight over its replica's count
    scaled = (w / np.where(count > 0, counted, np.inf).astype(dtype).reshape(1, -1, *(1,) * (w.ndim - 2)))
    total = np.asarray(losses.sum(), dtype=dtype)
    return ad.apply(total, (per,), lambda g: (g * scaled,)), losses
