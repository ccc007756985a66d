"""Dropout masks for edges with ``dropout: p`` (docs/spec-format.md, "Edges").

While training, an edge ``e = s -> n`` with dropout ``p`` reads
``m_e(t) * v_s(t - d)`` instead of ``v_s(t - d)``, where every entry of the
mask is ``0`` with probability ``p`` and ``1 / (1 - p)`` otherwise (inverted
dropout: the expected value read is unchanged, so evaluation reads
``v_s`` itself).  The mask of a delayed edge (``delay != 0``) is drawn once
per sequence and used at every step (variational dropout, Gal & Ghahramani
2016); the mask of a delay-0 edge is drawn afresh at every step.

Masks are arrays the caller owns, keyed by edge name, batch-major:
``(B, T, from.size)`` for a delay-0 edge, ``(B, from.size)`` for a delayed
one.  ``net.dropout_masks`` draws them; ``net.loss_and_grad(...,
dropout_masks=...)`` and the reference interpreter take the same arrays, so
the gradient of one masked loss can be checked three ways.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, DataError


def dropout_edges(graph) -> dict:
    """{edge name: (p, source size, delay)} for every edge of the folded graph
    with dropout, in the graph's order."""
    return {k: (d["dropout"], graph.nodes[u]["size"], d["delay"])
            for u, v, k, d in graph.edges(keys=True, data=True) if d.get("dropout")}


def draw_masks(edges: dict, B: int, T: int, rng: np.random.Generator, dtype) -> dict:
    """Fresh masks for ``edges`` (``dropout_edges``), drawn from ``rng`` in the
    edges' order: {edge: (B, T, size) for delay 0, (B, size) otherwise}."""
    masks = {}
    for name, (p, size, delay) in edges.items():
        shape = (B, T, size) if delay == 0 else (B, size)
        keep = rng.random(shape) >= p
        masks[name] = keep.astype(dtype) * np.asarray(1.0 / (1.0 - p), dtype)
    return masks


def window(masks: dict, edges: dict, start: int, stop: int) -> dict:
    """The masks of steps ``start .. stop-1`` (truncated BPTT): delay-0 masks are
    sliced in time, a delayed edge's serves the whole sequence."""
    return {name: m[:, start:stop] if edges[name][2] == 0 else m for name, m in masks.items()}


def time_major_masks(masks, edges: dict, B: int, T: int, dtype) -> dict:
    """Check user-given ``masks`` against ``edges`` and a batch of ``B`` sequences
    of ``T`` steps; return them time-major for the executor: (T, B, size) for
    delay 0, (B, size) otherwise.  DataError (ArgumentError for a wrong type)
    naming the edge."""
    if masks is None:
        return {}
    if not isinstance(masks, dict):
        raise ArgumentError(f"dropout_masks: expected a dict {{edge name: array}}, got {type(masks).__name__}")
    out = {}
    for name, value in masks.items():
        if name not in edges:
            known = ", ".join(map(repr, edges)) or "none"
            raise DataError(f"dropout_masks: {name!r} is not an edge with dropout (those are: {known})")
        _, size, delay = edges[name]
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise DataError(f"dropout_masks[{name!r}]: not an array of numbers") from None
        want = (B, T, size) if delay == 0 else (B, size)
        if arr.shape != want:
            per = "one mask per step" if delay == 0 else "one mask per sequence (a delayed edge)"
            raise DataError(f"dropout_masks[{name!r}]: expected shape {want} ({per}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"dropout_masks[{name!r}]: NaN or infinite values")
        out[name] = np.ascontiguousarray(arr.transpose(1, 0, 2)) if delay == 0 else arr
    return out
