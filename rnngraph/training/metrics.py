"""Built-in metrics for any data with targets (``task.metrics``, docs/spec-format.md "Metrics").

Each metric compares output values with targets over the *counted* elements:
a mask ``(N, T)`` weights each (sequence, step) position (``loss_on: last`` or
``mask``; None counts every position), and a position's weight applies to all
of its units.  Several output nodes are pooled: their counted elements (or
decisions) are counted together.

``mse``        mean of ``(v - y)^2`` over counted elements.
``mae``        mean of ``|v - y|`` over counted elements.
``accuracy``   fraction of counted decisions that are right.  A softmax
               output makes one decision per position, ``argmax v == argmax y``;
               any other output one per unit: ``v`` and ``y`` on the same side
               of the activation's midpoint (0 for ``tanh`` and ``sign``, 0.5
               otherwise).
``bit_error``  fraction of counted units whose value is on the other side of
               the midpoint from the target's (softmax: 0.5).  For every
               output but softmax, ``accuracy == 1 - bit_error``.
``r2``         coefficient of determination, ``1 - SS_res / SS_tot``, with
               ``SS_tot`` the spread of each target unit around its own
               counted mean; NaN when the targets are constant (``SS_tot = 0``).
"""

from __future__ import annotations

import numpy as np

from ..spec.tasks import BUILTIN_METRICS as METRICS   # the names a spec may list, checked by the spec stage

LOWER_IS_BETTER = frozenset({"mse", "mae"})   # and any name holding "loss" or "error"
ZERO_MIDPOINT = ("tanh", "sign")


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better (for early stopping's patience)."""
    return name in LOWER_IS_BETTER or "loss" in name or "error" in name


def midpoint(activation: str) -> float:
    """Where an output's decision flips: 0 for ``tanh``/``sign`` outputs, else 0.5."""
    return 0.0 if activation in ZERO_MIDPOINT else 0.5


def compute(names, outputs: dict, targets: dict, masks: dict | None = None,
            activations: dict | None = None) -> dict[str, float]:
    """The metrics ``names`` (a subset of ``METRICS``) of ``outputs`` against ``targets``.

    Parameters
    ----------
    outputs : {node: array (N, T, size)}
        The network's values; only the nodes in ``targets`` are read.
    targets : {node: array (N, T, size)}
    masks : {node: array (N, T)}, optional
        Weights in [0, 1] of each position (1 where it counts); a node
        without one counts every position.
    activations : {node: str}, optional
        Each output's activation (default ``identity``); it decides how
        ``accuracy`` and ``bit_error`` read values.

    Returns
    -------
    {name: float}; NaN for a metric with nothing counted.
    """
    masks, activations = masks or {}, activations or {}
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    sums = {"sq": 0.0, "abs": 0.0, "elements": 0.0, "right": 0.0, "decisions": 0.0, "wrong_bits": 0.0,
            "ss_tot": 0.0}
    for node, y in targets.items():
        y = np.asarray(y, dtype=np.float64)                          # (N, T, size)
        v = np.asarray(outputs[node], dtype=np.float64)              # (N, T, size)
        w = masks.get(node)
        w = np.ones(y.shape[:2]) if w is None else np.asarray(w, dtype=np.float64)   # (N, T)
        wu = w[..., None]                                            # (N, T, 1)
        size = y.shape[2]
        sums["sq"] += float((wu * (v - y) ** 2).sum())
        sums["abs"] += float((wu * np.abs(v - y)).sum())
        sums["elements"] += float(w.sum()) * size
        activation = activations.get(node, "identity")
        mid = midpoint(activation)
        wrong = (v > mid) != (y > mid)                               # (N, T, size)
        sums["wrong_bits"] += float((wu * wrong).sum())
        if activation == "softmax":
            sums["right"] += float((w * (v.argmax(-1) == y.argmax(-1))).sum())
            sums["decisions"] += float(w.sum())
        else:
            sums["right"] += float((wu * ~wrong).sum())
            sums["decisions"] += float(w.sum()) * size
        counted = float(w.sum())
        if counted > 0:
            mean = (wu * y).sum(axis=(0, 1)) / counted               # (size,)
            sums["ss_tot"] += float((wu * (y - mean) ** 2).sum())

    def ratio(a, b):
        return a / b if b > 0 else float("nan")
    values = {
        "mse": ratio(sums["sq"], sums["elements"]),
        "mae": ratio(sums["abs"], sums["elements"]),
        "accuracy": ratio(sums["right"], sums["decisions"]),
        "bit_error": ratio(sums["wrong_bits"], sums["elements"]),
        "r2": (1.0 - sums["sq"] / sums["ss_tot"]) if sums["ss_tot"] > 0 else float("nan"),
    }
    return {n: float(values[n]) for n in names}
