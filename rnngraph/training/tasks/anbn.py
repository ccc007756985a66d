"""The context-free language a^n b^n."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData

SYMBOLS = "SabT"  # start, a, b, terminal
S, A, B, T = range(4)


class Anbn(Task):
    """a^n b^n: predict the next symbol; after the first b everything is determined.

    Source
        F. A. Gers & J. Schmidhuber, "LSTM recurrent networks learn simple
        context-free and context-sensitive languages", IEEE Transactions on
        Neural Networks 12(6), 1333-1340 (2001).

    Construction
        The string ``S a^n b^n T``.  Symbols are one-hot in the order S, a,
        b, T (size 4, inputs and outputs).  The input at step ``t`` is
        symbol ``t`` of ``S a^n b^n`` (``2n + 1`` steps; the final T is only
        a target); the target is the multi-hot set of legal next symbols:
        after S ``{a}``, after an a ``{a, b}``, after the k-th b ``{b}`` for
        k < n and ``{T}`` for k = n.  The *deterministic* steps are those
        whose input is a b (steps ``n+1 .. 2n``): the remaining b's and the
        T.  Train: n uniform in ``1 .. n_max``.  Eval (testing
        generalisation): sequence ``i`` has ``n = 1 + i mod n_eval_max``
        when ``n_eval >= n_eval_max`` (every n in turn), otherwise ``n_eval``
        values evenly spaced over ``1 .. n_eval_max``.  Padded with zeros at
        the end to ``2 n_max + 1`` (train) or ``2 n_eval_max + 1`` (eval)
        steps; ``mask`` is 1 on real steps.  ``extra``: ``n`` (N,),
        ``lengths`` (N,) = 2n + 1, ``deterministic`` (N, T) bool.

    Parameters
        n_max (10): largest n in training, >= 1.
        n_eval_max (20): largest n in evaluation, >= 1.
        n_train (100), n_eval (20).

    Metrics (a step is right when ``output > 0.5`` equals the legal set exactly)
        accuracy: fraction of sequences right at all their deterministic
            steps.
        full_accuracy: fraction right at every real step (Gers &
            Schmidhuber's acceptance criterion).
        max_correct_n: the largest N such that every n in 1..N occurs in the
            data and every sequence with n <= N is right at its
            deterministic steps (0 if n = 1 fails or is absent).

    default_train: ``{"loss": "bce", "loss_on": "mask"}``.
    """

    signature = SIGNATURES["anbn"]

    def _sample(self, p, world, rng, split, n):
        if split == "train":
            top = p["n_max"]
            ns = rng.integers(1, top + 1, size=n)
        else:
            top = p["n_eval_max"]
            if n >= top:
                ns = 1 + np.arange(n) % top
            else:
                ns = np.rint(np.linspace(1, top, n)).astype(int)
        steps = 2 * top + 1
        t = np.arange(steps)[None, :]                                # (1, T)
        k = ns[:, None]                                              # (N, 1)
        codes = np.where(t == 0, S, np.where(t <= k, A, B))          # (N, T) input symbol
        real = t <= 2 * k
        inputs = np.where(real[:, :, None], np.eye(4)[codes], 0.0)   # (N, T, 4)
        targets = np.zeros((len(ns), steps, 4))
        targets[:, :, A] = (t < k + 1)                               # after S or an a
        targets[:, :, B] = (t >= 1) & (t < 2 * k)                    # after an a or a non-final b
        targets[:, :, T] = (t == 2 * k)                              # after the n-th b
        targets[~real] = 0.0
        deterministic = (t > k) & real
        return TaskData(inputs=inputs, targets=targets, mask=real.astype(float),
                        extra={"n": ns, "lengths": 2 * ns + 1, "deterministic": deterministic})

    def _metrics(self, outputs, data):
        right = np.all((outputs > 0.5) == (data.targets > 0.5), axis=2)    # (N, T)
        real = data.mask > 0
        det = data.extra["deterministic"]
        ok = np.all(right | ~det, axis=1)                                  # (N,)
        ns = data.extra["n"]
        max_n = 0
        while np.any(ns == max_n + 1) and np.all(ok[ns == max_n + 1]):
            max_n += 1
        return {"accuracy": np.mean(ok),
                "full_accuracy": np.mean(np.all(right | ~real, axis=1)),
                "max_correct_n": max_n}
