"""Activation functions: each forward beside its vector-Jacobian product.

``ACTIVATIONS[name] = (forward(a) -> v, vjp(g, a, v) -> dL/da)`` where ``g`` is
dL/dv.  All act elementwise on the last axis (``softmax`` normalises over it).
``sign`` and ``step`` are piecewise constant: their derivative is zero almost
everywhere, and that is what the VJP returns.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(a):
    # exp of a non-positive number never overflows
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def _softmax(a):
    z = a - a.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _softplus(a):
    return np.logaddexp(0.0, a).astype(a.dtype, copy=False)


LEAKY_SLOPE = 0.01

ACTIVATIONS = {
    "identity": (lambda a: a, lambda g, a, v: g),
    "sigmoid": (_sigmoid, lambda g, a, v: g * v * (1.0 - v)),
    "tanh": (np.tanh, lambda g, a, v: g * (1.0 - v * v)),
    "relu": (lambda a: np.maximum(a, 0.0).astype(a.dtype, copy=False), lambda g, a, v: g * (a > 0)),
    "leaky_relu": (lambda a: np.where(a > 0, a, LEAKY_SLOPE * a).astype(a.dtype, copy=False),
                   lambda g, a, v: g * np.where(a > 0, 1.0, LEAKY_SLOPE).astype(a.dtype, copy=False)),
    "softplus": (_softplus, lambda g, a, v: g * _sigmoid(a)),
    "softmax": (_softmax, lambda g, a, v: v * (g - (g * v).sum(axis=-1, keepdims=True))),
    # sign(0) = +1 so that states stay in {-1, +1} (Hopfield units)
    "sign": (lambda a: np.where(a >= 0, 1.0, -1.0).astype(a.dtype, copy=False), lambda g, a, v: np.zeros_like(g)),
    "step": (lambda a: (a > 0).astype(a.dtype), lambda g, a, v: np.zeros_like(g)),
    # 1 - a: the complement used by coupled gates (CIFG's f = 1 - i, GRU's 1 - z)
    "one_minus": (lambda a: 1.0 - a, lambda g, a, v: -g),
    "exp": (np.exp, lambda g, a, v: g * v),
    "square": (lambda a: a * a, lambda g, a, v: 2.0 * g * a),
}

DESCRIPTIONS = {
    "identity": "a (linear)",
    "sigmoid": "1 / (1 + exp(-a))",
    "tanh": "tanh(a)",
    "relu": "max(a, 0)",
    "leaky_relu": f"a if a > 0 else {LEAKY_SLOPE} a",
    "softplus": "log(1 + exp(a))",
    "softmax": "exp(a) / sum(exp(a)) over the node's units",
    "sign": "+1 if a >= 0 else -1",
    "step": "1 if a > 0 else 0",
    "one_minus": "1 - a",
    "exp": "exp(a)",
    "square": "a^2",
}

DIFFERENTIABLE = {name for name in ACTIVATIONS if name not in ("sign", "step")}
