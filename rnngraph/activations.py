"""Activation functions, each defined once with everything the engine needs of it.

An ``Activation`` holds its forward function beside its vector-Jacobian
product (``vjp(g, a, v)``, ``g`` being dL/dv), and for the compiled time
loops the same function in the forms they run: in place on a step's arrays,
and its derivative written into a buffer, for a whole sequence from
``(a, v)`` or for one step from ``v`` alone.  The loop compiler derives its
tables from these records; a test checks every form against ``vjp``.

All act elementwise on the last axis (``softmax`` normalises over it).
``sign`` and ``step`` are piecewise constant: their derivative is zero almost
everywhere, and that is what the VJP returns.

Code templates (``in_place``, ``from_value``) are ufunc calls on the names
``a``, ``v`` (the step's pre-activation and value), ``d`` (a scratch row for
the derivative) and the constants ``HALF``, ``ONE``, ``ZERO``, which the
loops hold as 0-d arrays of the run's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """One activation function.

    Attributes
    ----------
    name, formula : str
        Its spec name and what it computes, for people.
    forward : a -> v
    vjp : (g, a, v) -> dL/da
    derivative : (a, v, out) -> None, optional
        Writes f'(a) into ``out`` (same shape) elementwise; None where the
        derivative is not elementwise (softmax), constant (identity,
        one_minus) or zero (sign, step).
    in_place : tuple of str
        ufunc calls computing ``v`` from ``a`` without temporaries; empty
        where the loops call ``forward`` instead.
    from_value : tuple of str, optional
        ufunc calls writing f'(a) into ``d`` from ``v`` alone; empty when f'(a)
        is ``v`` itself (exp).  None where the value does not determine it.
    zero_derivative : bool
        f' = 0 almost everywhere (no gradient flows through).
    """

    name: str
    formula: str
    forward: Callable
    vjp: Callable
    derivative: Callable | None = None
    in_place: tuple = ()
    from_value: tuple | None = None
    zero_derivative: bool = False

    @property
    def needs_only_value(self) -> bool:
        """Whether the derivative is known without the pre-activation ``a``
        (from ``v``, or constant), so ``a`` need not be kept."""
        return (self.from_value is not None or self.zero_derivative
                or self.name in ("identity", "one_minus"))

    def step_derivative(self, v: str, d: str) -> tuple[list, str]:
        """Lines computing f'(a) for one step from the value ``v`` into ``d``,
        and the expression that then holds it (``d``, or ``v`` itself)."""
        lines = [line.replace("{v}", v).replace("{d}", d) for line in self.from_value]
        return lines, (d if lines else v)


def _sigmoid(a):
    # (1 + tanh(a / 2)) / 2, the compiled loops' form (their ``in_place`` below), so a
    # sigmoid is the same bits in and out of a loop: no overflow, one array, four
    # vectorized passes (exp with a select takes eight and three temporaries)
    v = np.multiply(a, 0.5)
    if np.ndim(v) == 0:   # a scalar: no array to write into
        return np.asarray(0.5 + 0.5 * np.tanh(v))
    np.tanh(v, out=v)
    np.multiply(v, 0.5, out=v)
    np.add(v, 0.5, out=v)
    return v


def _softmax(a):
    z = a - a.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _softplus(a):
    # max(a, 0) + log1p(exp(-|a|)): never overflows, and vectorized passes where
    # logaddexp is an elementwise loop several times slower
    a = np.asarray(a)
    if a.ndim == 0:
        return np.logaddexp(0.0, a)
    out = np.abs(a)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    np.add(out, np.maximum(a, 0), out=out)
    return out


def _sigmoid_derivative(a, v, out):
    np.subtract(1.0, v, out=out)
    np.multiply(out, v, out=out)


def _tanh_derivative(a, v, out):
    np.multiply(v, v, out=out)
    np.subtract(1.0, out, out=out)


def _zero(g, a, v):
    return np.zeros_like(g)


_ALL = [
    Activation("identity", "a (linear)", lambda a: a, lambda g, a, v: g),
    Activation("sigmoid", "1 / (1 + exp(-a))", _sigmoid, lambda g, a, v: g * v * (1.0 - v),
               derivative=_sigmoid_derivative,
               # sigmoid(a) = (1 + tanh(a/2)) / 2: no exp overflow, no temporaries
               in_place=("multiply(a, HALF, out=v)", "tanh(v, out=v)", "multiply(v, HALF, out=v)",
                         "add(v, HALF, out=v)"),
               from_value=("subtract(ONE, {v}, out={d})", "multiply({d}, {v}, out={d})")),
    Activation("tanh", "tanh(a)", np.tanh, lambda g, a, v: g * (1.0 - v * v),
               derivative=_tanh_derivative, in_place=("tanh(a, out=v)",),
               from_value=("multiply({v}, {v}, out={d})", "subtract(ONE, {d}, out={d})")),
    Activation("relu", "max(a, 0)", lambda a: np.maximum(a, 0.0).astype(a.dtype, copy=False),
               lambda g, a, v: g * (a > 0),
               derivative=lambda a, v, out: np.greater(a, 0, out=out, casting="unsafe"),
               in_place=("maximum(a, ZERO, out=v)",),
               # v = max(a, 0): sign(v) is 1 exactly where a > 0, else 0
               from_value=("sign({v}, out={d})",)),
    Activation("leaky_relu", f"a if a > 0 else {LEAKY_SLOPE} a",
               lambda a: np.where(a > 0, a, LEAKY_SLOPE * a).astype(a.dtype, copy=False),
               lambda g, a, v: g * np.where(a > 0, 1.0, LEAKY_SLOPE).astype(a.dtype, copy=False),
               derivative=lambda a, v, out: np.copyto(out, np.where(a > 0, 1.0, LEAKY_SLOPE))),
    Activation("softplus", "log(1 + exp(a))", _softplus, lambda g, a, v: g * _sigmoid(a),
               derivative=lambda a, v, out: np.copyto(out, _sigmoid(a))),
    Activation("softmax", "exp(a) / sum(exp(a)) over the node's units", _softmax,
               lambda g, a, v: v * (g - (g * v).sum(axis=-1, keepdims=True))),
    # sign(0) = +1 so that states stay in {-1, +1} (Hopfield units)
    Activation("sign", "+1 if a >= 0 else -1", lambda a: np.where(a >= 0, 1.0, -1.0).astype(a.dtype, copy=False),
               _zero, zero_derivative=True),
    Activation("step", "1 if a > 0 else 0", lambda a: (a > 0).astype(a.dtype), _zero, zero_derivative=True),
    # the complement used by coupled gates (CIFG's f = 1 - i, GRU's 1 - z)
    Activation("one_minus", "1 - a", lambda a: 1.0 - a, lambda g, a, v: -g, in_place=("subtract(ONE, a, out=v)",)),
    Activation("exp", "exp(a)", np.exp, lambda g, a, v: g * v,
               derivative=lambda a, v, out: np.copyto(out, v), in_place=("exp(a, out=v)",), from_value=()),
    Activation("square", "a^2", lambda a: a * a, lambda g, a, v: 2.0 * g * a,
               derivative=lambda a, v, out: np.multiply(a, 2.0, out=out), in_place=("multiply(a, a, out=v)",)),
]

ACTIVATIONS: dict[str, Activation] = {f.name: f for f in _ALL}

DESCRIPTIONS = {name: f.formula for name, f in ACTIVATIONS.items()}

DIFFERENTIABLE = {name for name, f in ACTIVATIONS.items() if not f.zero_derivative}
