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
        w = w_units = None
        positions = float(T * B)
    else:
        w = weights.astype(v.value.dtype, copy=False)
        w_units = w[..., None]
        positions = float(w.sum())
    if positions == 0:
        return None
    if kind == "mse":
        if w_units is None:
            return ad.mean_squared_error(v, y, positions * size)
        return ad.weighted_mean(ad.squared_error(v, y), w_units, positions * size)
    if kind == "bce":
        per = ad.bce_with_logits(a, y) if activation == "sigmoid" and not from_values else ad.bce_on_probs(v, y)
        return ad.weighted_mean(per, w_units, positions * size)
    if kind == "cross_entropy":
        per = (ad.cross_entropy_with_logits(a, y) if activation == "softmax" and not from_values
               else ad.cross_entropy_on_probs(v, y))
        return ad.weighted_mean(per, w, positions)
    raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")
