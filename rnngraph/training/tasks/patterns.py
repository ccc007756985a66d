"""Memories for Hopfield networks: stored patterns and noisy cues."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData, TaskDataError
from .letters import COLS, NAMES, ROWS, letter_bitmaps

LETTER_SIZE = ROWS * COLS  # 35


class Patterns(Task):
    """Patterns to store in a Hopfield network and noisy cues to recall them from.

    Source
        J. J. Hopfield, "Neural networks and physical systems with emergent
        collective computational abilities", PNAS 79, 2554-2558 (1982).

    Construction
        The *memories* (shared by both splits; see "Randomness" in
        ``rnngraph.training.tasks``): ``count`` patterns of ``size`` units, +-1.
        They are the task's world, ``(patterns (count, size), shape, names)``;
        ``generate_splits(params, rng, world=(X, None, None))`` makes cues
        for given memories ``X`` (a Hopfield spec's data file).
        ``kind: random``: every unit +1 or -1 with probability 1/2.
        ``kind: letters``: the letters A, B, C, ... (the first ``count``)
        as 5x7 dot-matrix bitmaps, +1 on, -1 off, each dot repeated into a
        k x k block when ``size = 35 k**2``, flattened row by row.
        The *cues*: cue ``i`` is memory ``i mod count`` with exactly
        ``round(noise * size)`` distinct units, chosen uniformly, flipped.
        TaskData: ``inputs`` the cues (N, 1, size) (T = 1: the network's
        initial state), ``targets`` the memory each cue came from
        (N, 1, size), ``mask`` None, ``extra``: ``patterns`` (count, size),
        ``cue_pattern`` (N,), ``flipped`` (number of flipped units),
        ``shape`` (rows, cols) of a letter bitmap or None, ``names`` the
        letters or None.

    Parameters
        count (10): number of memories, >= 1 (<= 26 for letters).
        size (100 for random, 35 for letters): units per memory; letters
            need 35 k**2 (35, 140, 315, ...).
        kind ("random"): "random" or "letters".
        noise (0.1): fraction of units flipped in a cue, 0 <= noise <= 1.
        n_train (100), n_eval (100): number of cues per split.
        n_cues (null): when set, the number of cues in both splits.

    Metrics (given the final states, (N, 1, size) or (N, size))
        recall: fraction of cues whose final state, thresholded by sign
            (0 counts as wrong), equals its memory exactly.
        overlap: mean over cues of ``|m|``, ``m = s . p / size`` with ``s``
            the final state and ``p`` the cue's memory (1 for perfect recall
            or its negation).
        bit_error: fraction of units whose sign differs from the memory.

    default_train: ``{"method": "hebbian"}`` (one pass over
    ``extra["patterns"]``; then settle from ``inputs``).
    """

    signature = SIGNATURES["patterns"]

    def _world(self, p, rng):
        if p["kind"] == "letters":
            k = int(round(np.sqrt(p["size"] / LETTER_SIZE)))
            bitmaps = letter_bitmaps(p["count"], k)                 # (P, 7k, 5k)
            return bitmaps.reshape(p["count"], -1), bitmaps.shape[1:], list(NAMES[:p["count"]])
        pats = np.where(rng.random((p["count"], p["size"])) < 0.5, -1.0, 1.0)   # (P, size)
        return pats, None, None

    def _sample(self, p, world, rng, split, n):
        patterns, shape, names = world
        if p["n_cues"] is not None:
            n = p["n_cues"]
        size = p["size"]
        which = np.arange(n) % p["count"]                              # (N,)
        clean = patterns[which]                                        # (N, size)
        flips = int(round(p["noise"] * size))
        order = np.argsort(rng.random((n, size)), axis=1)[:, :flips]   # (N, flips) distinct units
        sign = np.ones((n, size))
        np.put_along_axis(sign, order, -1.0, axis=1)
        cues = clean * sign
        return TaskData(inputs=cues[:, None, :], targets=clean[:, None, :].copy(), mask=None,
                        extra={"patterns": patterns.copy(), "cue_pattern": which,
                               "flipped": flips, "shape": shape, "names": names})

    def _check_outputs(self, outputs, data):
        n, _, size = data.targets.shape
        if outputs.shape == (n, size):
            return outputs[:, None, :]
        if outputs.shape != (n, 1, size):
            raise TaskDataError(f"final states of task 'patterns' must have shape "
                                f"({n}, 1, {size}) or ({n}, {size}), got {outputs.shape}")
        return outputs

    def _metrics(self, outputs, data):
        s = outputs[:, 0, :]                                           # (N, size)
        p = data.targets[:, 0, :]
        same = np.sign(s) == p
        m = np.sum(s * p, axis=1) / p.shape[1]
        return {"recall": np.mean(np.all(same, axis=1)), "overlap": np.mean(np.abs(m)),
                "bit_error": np.mean(~same)}
