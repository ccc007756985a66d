"""The copy (memory) task."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData, one_hot


class Copy(Task):
    """The copy task: read a few symbols, wait, then write them back in order.

    Source
        The long-delay memory benchmark of S. Hochreiter & J. Schmidhuber,
        "Long Short-Term Memory" (1997), in the form of A. Graves, G. Wayne
        & I. Danihelka, "Neural Turing Machines", arXiv:1410.5401 (2014) and
        M. Arjovsky, A. Shah & Y. Bengio, "Unitary Evolution Recurrent
        Neural Networks", ICML 2016 (a delimiter starts the recall).

    Construction
        Input channels: ``symbols`` one-hot symbol channels, then a blank
        channel, then a go channel (size ``symbols + 2``).  With ``L =
        length`` and ``D = delay``, a sequence has ``T = 2L + D + 1`` steps:
        steps ``0 .. L-1`` show the L symbols (uniform, independent); steps
        ``L .. L+D-1`` are blank; step ``L+D`` is the go marker; steps
        ``L+D+1 .. 2L+D`` are blank and are the recall steps, where the
        target is the one-hot symbol ``t - (L+D+1)``.  Output size
        ``symbols``; ``mask`` is 1 on the recall steps only; targets are 0
        elsewhere.  ``extra``: ``symbols`` (N, L) the symbols,
        ``recall`` (L,) the recall steps.

    Parameters
        length (5): symbols to copy, >= 1.
        delay (10): blank steps between the last symbol and the go marker, >= 0.
        symbols (4): alphabet size, >= 2.
        n_train (1000), n_eval (200).

    Metrics (argmax of the output at each recall step)
        accuracy: fraction of recalled symbols that are right (chance:
            1 / symbols).
        sequence_accuracy: fraction of sequences recalled entirely right.

    default_train: ``{"loss": "cross_entropy", "loss_on": "mask"}``.
    """

    signature = SIGNATURES["copy"]

    def _sample(self, p, world, rng, split, n):
        L, D, K = p["length"], p["delay"], p["symbols"]
        steps = 2 * L + D + 1
        seq = rng.integers(0, K, size=(n, L))                          # (N, L)
        codes = np.full((n, steps), K)                                 # K = blank channel
        codes[:, :L] = seq
        codes[:, L + D] = K + 1                                        # the go marker
        inputs = one_hot(codes, K + 2)                                 # (N, T, K+2)
        recall = np.arange(L + D + 1, steps)                           # (L,)
        targets = np.zeros((n, steps, K))
        targets[:, recall] = one_hot(seq, K)
        mask = np.zeros((n, steps))
        mask[:, recall] = 1.0
        return TaskData(inputs=inputs, targets=targets, mask=mask,
                        extra={"symbols": seq, "recall": recall})

    def _metrics(self, outputs, data):
        recall = data.extra["recall"]
        guess = outputs[:, recall].argmax(axis=2)                     # (N, L)
        right = guess == data.extra["symbols"]
        return {"accuracy": np.mean(right), "sequence_accuracy": np.mean(np.all(right, axis=1))}
