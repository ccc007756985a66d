"""The embedded Reber grammar."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData, one_hot

SYMBOLS = "BTPSXVE"
INDEX = {s: i for i, s in enumerate(SYMBOLS)}

# The Reber grammar as a finite automaton: state -> ((symbol, next state), ...).
# Strings start with B (into state 0) and end with E (from state 5); each
# state's two edges are taken with probability 1/2.
#   0 -T-> 1, 0 -P-> 2;  1 -S-> 1, 1 -X-> 3;  2 -T-> 2, 2 -V-> 4;
#   3 -X-> 2, 3 -S-> 5;  4 -P-> 3, 4 -V-> 5;  5 -E-> end
REBER = {
    0: (("T", 1), ("P", 2)),
    1: (("S", 1), ("X", 3)),
    2: (("T", 2), ("V", 4)),
    3: (("X", 2), ("S", 5)),
    4: (("P", 3), ("V", 5)),
    5: (("E", None),),
}


def reber_string(rng: np.random.Generator) -> tuple[str, list[frozenset]]:
    """One Reber string and, for each of its symbols, the set of legal next symbols.

    The set after the final ``E`` is empty.
    """
    out, legal, state = ["B"], [frozenset("TP")], 0
    while state is not None:
        edges = REBER[state]
        symbol, state = edges[rng.integers(len(edges))] if len(edges) > 1 else edges[0]
        out.append(symbol)
        legal.append(frozenset(s for s, _ in REBER[state]) if state is not None else frozenset())
    return "".join(out), legal


def embedded_reber_string(rng: np.random.Generator) -> tuple[str, list[frozenset]]:
    """One embedded Reber string ``B o <Reber string> o E`` (o = T or P) and its legal-next sets."""
    outer = "TP"[rng.integers(2)]
    inner, inner_legal = reber_string(rng)
    legal = [frozenset("TP"), frozenset("B")] + inner_legal[:-1] + [frozenset(outer),
                                                                      frozenset("E"), frozenset()]
    return "B" + outer + inner + outer + "E", legal


class EmbeddedReber(Task):
    """The embedded Reber grammar: next-symbol prediction with one long-range dependency.

    Source
        S. Hochreiter & J. Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1735-1780 (1997), experiment 1; the benchmark is
        from S. Fahlman, "The recurrent cascade-correlation architecture",
        NIPS 3 (1991), after A. Cleeremans, D. Servan-Schreiber & J.
        McClelland (1989); the grammar is A. Reber's (1967).

    Construction
        A Reber string is a walk through the automaton ``B`` then
        ``0 -T-> 1, 0 -P-> 2; 1 -S-> 1, 1 -X-> 3; 2 -T-> 2, 2 -V-> 4;
        3 -X-> 2, 3 -S-> 5; 4 -P-> 3, 4 -V-> 5; 5 -E-> end``, each choice a
        fair coin.  An embedded string is ``B o R o E`` with ``o`` = T or P
        (a fair coin) and ``R`` a Reber string.  Symbols are one-hot in the
        order B, T, P, S, X, V, E (size 7).  The input at step ``t`` is
        symbol ``t`` (every symbol but the final E); the target is the
        multi-hot set of symbols that may legally come next: after the inner
        E that set is the single outer symbol ``o`` chosen at step 1 (the
        long-range dependency).  Sequences are padded with zeros at the end
        to the longest in the split; ``mask`` is 1 on real steps.
        ``extra``: ``strings`` (list of str), ``lengths`` (N,) real steps,
        ``penultimate`` (N,) the step whose target is the final ``o``
        (``lengths - 2``).

    Parameters
        n_train (256), n_eval (256).

    Metrics (a step's prediction is right when ``output > 0.5`` equals the
    legal set exactly)
        accuracy: fraction of sequences right at every real step.
        penultimate_accuracy: fraction right at the ``penultimate`` step.
        step_accuracy: fraction of real steps that are right.
        topk_accuracy: fraction of sequences in which, at every real step,
            every legal symbol's output is above every illegal one's
            (threshold-free; in the spirit of the 1997 paper's criterion).

    default_train: ``{"loss": "bce", "loss_on": "mask"}``.
    """

    signature = SIGNATURES["embedded_reber"]

    def _sample(self, p, world, rng, split, n):
        strings, legals = zip(*(embedded_reber_string(rng) for _ in range(n)))
        lengths = np.array([len(s) - 1 for s in strings])
        t_max = int(lengths.max())
        inputs = np.zeros((n, t_max, 7))
        targets = np.zeros((n, t_max, 7))
        mask = np.zeros((n, t_max))
        for i, (s, legal) in enumerate(zip(strings, legals)):
            steps = len(s) - 1
            inputs[i, :steps] = one_hot([INDEX[c] for c in s[:-1]], 7)
            for t in range(steps):
                targets[i, t, [INDEX[c] for c in legal[t]]] = 1.0
            mask[i, :steps] = 1.0
        return TaskData(inputs=inputs, targets=targets, mask=mask,
                        extra={"strings": list(strings), "lengths": lengths,
                               "penultimate": lengths - 2})

    def _metrics(self, outputs, data):
        real = data.mask > 0                                                # (N, T)
        legal = data.targets > 0.5                                          # (N, T, 7)
        right = np.all((outputs > 0.5) == legal, axis=2)                    # (N, T)
        lowest_legal = np.where(legal, outputs, np.inf).min(axis=2)
        highest_illegal = np.where(legal, -np.inf, outputs).max(axis=2)
        ranked = lowest_legal > highest_illegal                             # (N, T)
        pen = data.extra["penultimate"]
        return {"accuracy": np.mean(np.all(right | ~real, axis=1)),
                "penultimate_accuracy": np.mean(right[np.arange(data.n), pen]),
                "step_accuracy": np.sum(right & real) / np.sum(real),
                "topk_accuracy": np.mean(np.all(ranked | ~real, axis=1))}
