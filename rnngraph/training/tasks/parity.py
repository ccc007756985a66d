"""Parity of a bit string, answered at the end."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData


class Parity(Task):
    """Parity: read ``length`` random bits, then say whether the number of ones is odd.

    Source
        The parity problem of M. Minsky & S. Papert, "Perceptrons" (1969),
        in its sequential form as a recurrent-net benchmark: Y. Bengio,
        P. Simard & P. Frasconi, "Learning long-term dependencies with
        gradient descent is difficult", IEEE TNN 5(2) (1994); S. Hochreiter
        & J. Schmidhuber, "LSTM can solve hard long time lag problems",
        NIPS 9 (1997).

    Construction
        ``length`` independent fair bits, one per step (input 0/1, size 1).
        Many-to-one: the target at the last step is the parity (sum mod 2)
        of all the bits; targets are 0 elsewhere and ``mask`` is 1 only at
        the last step.  Output size 1.  ``extra["parity"]`` (N,).

    Parameters
        length (8): bits per sequence, >= 1.
        n_train (1000), n_eval (500).

    Metrics
        accuracy: fraction of sequences with ``(output > 0.5) == parity`` at
            the last step (chance 0.5).

    default_train: ``{"loss": "bce", "loss_on": "last"}`` (the mask says the same).
    """

    signature = SIGNATURES["parity"]

    def _sample(self, p, world, rng, split, n):
        L = p["length"]
        bits = rng.integers(0, 2, size=(n, L))                       # (N, L)
        parity = bits.sum(axis=1) % 2
        targets = np.zeros((n, L, 1))
        targets[:, -1, 0] = parity
        mask = np.zeros((n, L))
        mask[:, -1] = 1.0
        return TaskData(inputs=bits[:, :, None], targets=targets, mask=mask,
                        extra={"parity": parity})

    def _metrics(self, outputs, data):
        return {"accuracy": np.mean((outputs[:, -1, 0] > 0.5) == (data.extra["parity"] == 1))}
