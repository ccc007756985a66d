"""The adding problem of Hochreiter & Schmidhuber (1997)."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData

TOLERANCE = 0.04  # "processed correctly if the absolute error at the sequence end is below 0.04"


class Adding(Task):
    """The adding problem: remember two marked values over a long sequence and add them.

    Source
        S. Hochreiter & J. Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1735-1780 (1997), section 5.4, experiment 4.

    Construction (as in the paper)
        Each element is a pair ``(value, marker)``: the value is uniform in
        [-1, 1]; the marker is 1, 0 or -1.  A sequence's length is uniform
        in ``[T, T + T // 10]`` (integers, both ends included).  Exactly two
        pairs are marked with 1: first one of the first ten pairs, uniformly
        (its value is X1); then one of the first ``T // 2 - 1`` pairs that is
        still unmarked, uniformly (its value is X2).  Every other marker is
        0, except that the first and the final pair have marker -1 when they
        are not marked.  If the first pair is marked, its value is set to 0
        (the paper: "we set X1 to zero"; we apply it to whichever marked
        pair is first).  The target, at the sequence's last step only, is
        ``0.5 + (X1 + X2) / 4``.  Sequences share one array of
        ``T + T // 10`` steps, padded with zeros at the end; ``mask`` is 1
        only at each sequence's last real step; targets are 0 elsewhere.
        Input size 2 (value, marker), output size 1.
        ``extra``: ``lengths`` (N,), ``marked`` (N, 2) the indices of X1 and
        X2, ``last`` (N,) = lengths - 1.

    Parameters
        T (50): the minimal sequence length, >= 10 (the paper used 100,
            500 and 1000).
        n_train (1000), n_eval (500).

    Metrics (at each sequence's last real step)
        accuracy: fraction of sequences with ``|output - target| < 0.04``.
        mse: mean of ``(output - target)**2``.
        A constant 0.5 scores accuracy ~0.15 and mse ~1/24.

    default_train: ``{"loss": "mse", "loss_on": "mask"}``.
    """

    signature = SIGNATURES["adding"]

    def _sample(self, p, world, rng, split, n):
        T = p["T"]
        t_max = T + T // 10
        lengths = rng.integers(T, t_max + 1, size=n)                 # (N,)
        values = rng.uniform(-1.0, 1.0, size=(n, t_max))              # (N, T_max)
        first = rng.integers(0, 10, size=n)                           # X1's index
        k = T // 2 - 1                                                # X2 among pairs 0..k-1
        inside = first < k
        j = rng.integers(0, k - inside.astype(int))                   # among the unmarked ones
        second = np.where(inside, j + (j >= first), j)                # X2's index
        rows = np.arange(n)

        real = np.arange(t_max)[None, :] < lengths[:, None]           # (N, T_max)
        markers = np.zeros((n, t_max))
        markers[:, 0] = -1.0
        markers[rows, lengths - 1] = -1.0
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        values[(first == 0) | (second == 0), 0] = 0.0
        values = np.where(real, values, 0.0)
        markers = np.where(real, markers, 0.0)

        targets = np.zeros((n, t_max, 1))
        targets[rows, lengths - 1, 0] = 0.5 + (values[rows, first] + values[rows, second]) / 4.0
        mask = np.zeros((n, t_max))
        mask[rows, lengths - 1] = 1.0
        inputs = np.stack([values, markers], axis=2)                  # (N, T_max, 2)
        return TaskData(inputs=inputs, targets=targets, mask=mask,
                        extra={"lengths": lengths, "last": lengths - 1,
                               "marked": np.stack([first, second], axis=1)})

    def _metrics(self, outputs, data):
        rows = np.arange(data.n)
        last = data.extra["last"]
        err = outputs[rows, last, 0] - data.targets[rows, last, 0]   # (N,)
        return {"accuracy": np.mean(np.abs(err) < TOLERANCE), "mse": np.mean(err ** 2)}
