"""Sine waves: predict the next value, or generate a wave from one number."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData


class Sine(Task):
    """Sine waves of random frequency and phase: next-step prediction or one-to-many generation.

    Source
        A standard demonstration of recurrent dynamics, e.g. R. J. Williams
        & D. Zipser, "A learning algorithm for continually running fully
        recurrent neural networks", Neural Computation 1, 270-280 (1989)
        (their networks learned to produce periodic waveforms).

    Construction
        Each sequence draws a frequency ``f`` uniform in
        ``[freq_min, freq_max]`` (cycles per step) and a phase ``phi``
        uniform in [0, 2 pi); ``x(t) = sin(2 pi f t + phi)``.
        ``mode: next_step`` (many-to-many): the input at step ``t`` is
        ``x(t)`` and the target is ``x(t + 1)``, for ``t = 0 .. length-1``;
        input size 1.
        ``mode: one_to_many``: the input has two channels,
        ``(f / freq_max, phi / (2 pi))`` at step 0 and zero afterwards; the
        target is ``x(t)`` for ``t = 0 .. length-1``; input size 2.
        Output size 1, ``T = length``, no mask.  ``extra``: ``freq`` (N,),
        ``phase`` (N,).

    Parameters
        length (50): steps per sequence, >= 2.
        mode ("next_step"): "next_step" or "one_to_many".
        freq_min (0.02), freq_max (0.1): frequency range in cycles per step,
            0 < freq_min <= freq_max <= 0.5.
        n_train (200), n_eval (100).

    Metrics
        mse: mean of ``(output - target)**2`` over all steps (a constant 0
            scores about 0.5).

    default_train: ``{"loss": "mse", "loss_on": "all"}``.
    """

    signature = SIGNATURES["sine"]

    def _sample(self, p, world, rng, split, n):
        L = p["length"]
        freq = rng.uniform(p["freq_min"], p["freq_max"], size=n)      # (N,)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=n)                 # (N,)
        t = np.arange(L + 1)[None, :]                                 # (1, L+1)
        x = np.sin(2.0 * np.pi * freq[:, None] * t + phase[:, None])  # (N, L+1)
        if p["mode"] == "next_step":
            inputs, targets = x[:, :-1, None], x[:, 1:, None]          # (N, L, 1)
        else:
            inputs = np.zeros((n, L, 2))
            inputs[:, 0, 0] = freq / p["freq_max"]
            inputs[:, 0, 1] = phase / (2.0 * np.pi)
            targets = x[:, :-1, None]
        return TaskData(inputs=inputs, targets=targets, mask=None,
                        extra={"freq": freq, "phase": phase})

    def _metrics(self, outputs, data):
        return {"mse": np.mean((outputs - data.targets) ** 2)}
