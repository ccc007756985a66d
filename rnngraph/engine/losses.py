"""Losses on output sequences (docs/spec-format.md, "Train"), as autodiff ops.

Each is a mean over the counted targets: every counted element for ``mse``
and ``bce``, every counted (batch, time) position for ``cross_entropy``.
``bce`` on a sigmoid output and ``cross_entropy`` on a softmax output are
computed from the pre-activation, which stays finite where ``log(v)`` would not.
"""

from __future__ import annotations

import numpy as np

from . import autodiff as ad

LOSSES = ("mse", "bce", "cross_entropy")


def per_element(kind: str, a: ad.Var, v: ad.Var, y: np.ndarray, activation: str,
                from_values: bool = False) -> tuple[ad.Var, bool]:
    """The loss ``kind`` before its mean: a Var over every element (``mse``,
    ``bce``: ``v``'s shape) or every position (``cross_entropy``: without the
    unit axis), and whether its mean also divides by the units.  a, v: the
    output's pre-activation and value; ``from_values``: as ``output_loss``."""
    if kind == "mse":
        return ad.squared_error(v, y), True
    if kind == "bce":
        return (ad.bce_with_logits(a, y, v.value) if activation == "sigmoid" and not from_values
                else ad.bce_on_probs(v, y)), True
    if kind == "cross_entropy":
        return (ad.cross_entropy_with_logits(a, y) if activation == "softmax" and not from_values
                else ad.cross_entropy_on_probs(v, y)), False
    raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")


def output_loss(kind: str, a: ad.Var, v: ad.Var, y: np.ndarray, weights: np.ndarray | None,
                activation: str, from_values: bool = False) -> ad.Var | None:
    """The loss of one output node.

    a, v : Vars (T, B, size), its pre-activation and value; y (T, B, size);
    weights (T, B) with 1 where the loss counts (None: everywhere).
    ``from_values`` computes bce and cross-entropy from ``v`` even on a
    sigmoid or softmax output, so that dL/dv exists (for tracing gradients).
    Returns None when nothing is counted.
    """
    T, B, size = v.shape
    if weights is None:            # every position counts: a plain mean
        w = None
        positions = float(T * B)
    else:
        w = weights.astype(v.value.dtype, copy=False)
        positions = float(w.sum())
    if positions == 0:
        return None
    if kind == "mse" and w is None:
        return ad.mean_squared_error(v, y, positions * size)
    per, by_unit = per_element(kind, a, v, y, activation, from_values)
    if by_unit:
        return ad.weighted_mean(per, None if w is None else w[..., None], positions * size)
    return ad.weighted_mean(per, w, positions)
