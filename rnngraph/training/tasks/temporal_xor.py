"""Elman's temporal XOR."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData


class TemporalXor(Task):
    """Temporal XOR: predict the next bit of a stream whose every third bit is an XOR.

    Source
        J. L. Elman, "Finding Structure in Time", Cognitive Science 14,
        179-211 (1990), section "Exclusive-Or".

    Construction
        A stream of ``length`` bits made of triples ``(a, b, a XOR b)`` with
        ``a`` and ``b`` fair coin flips (the last triple is cut if
        ``length`` is not a multiple of 3; the stream starts at a triple
        boundary).  The input at step ``t`` is bit ``t`` and the target is
        bit ``t + 1``, so ``T = length - 1``.  Inputs and targets are 0/1,
        size 1.  Each sequence is its own stream; the eval split is a fresh
        stream.  No mask.  ``extra["predictable"]`` (N, T) bool marks the
        steps whose target is an XOR bit (``t % 3 == 1``); ``extra["bits"]``
        holds the streams (N, length).

    Parameters
        length (3000): bits per stream, >= 3.
        n_train (1), n_eval (1): number of streams.

    Metrics
        third_bit_error: root mean square of ``output - target`` over the
            predictable steps (0 for a perfect net).
        other_bit_error: the same over the other steps (coin flips: 0.5 at
            best, reached by always answering 0.5).
        rms_error: the same over all steps.

    default_train: ``{"loss": "bce", "loss_on": "all", "batch_size": 1}``.
    """

    signature = SIGNATURES["temporal_xor"]

    def _sample(self, p, world, rng, split, n):
        length = p["length"]
        triples = -(-length // 3)
        ab = rng.integers(0, 2, size=(n, triples, 2))                   # (N, K, 2)
        bits = np.concatenate([ab, ab[:, :, :1] ^ ab[:, :, 1:]], axis=2)  # (N, K, 3)
        bits = bits.reshape(n, 3 * triples)[:, :length]                   # (N, length)
        steps = length - 1
        predictable = np.broadcast_to(np.arange(steps) % 3 == 1, (n, steps)).copy()
        return TaskData(inputs=bits[:, :-1, None], targets=bits[:, 1:, None], mask=None,
                        extra={"predictable": predictable, "bits": bits})

    def _metrics(self, outputs, data):
        err = outputs[..., 0] - data.targets[..., 0]          # (N, T)
        pred = data.extra["predictable"]

        def rms(e):
            return float(np.sqrt(np.mean(e ** 2))) if e.size else float("nan")

        return {"third_bit_error": rms(err[pred]),
                "other_bit_error": rms(err[~pred]),
                "rms_error": rms(err)}
