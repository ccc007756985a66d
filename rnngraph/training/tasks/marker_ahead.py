"""Is a marker still to come?  A task that needs the future."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData


class MarkerAhead(Task):
    """Marker ahead: at every step, say whether the rest of the sequence holds a marker.

    Source
        The kind of task bidirectional nets were made for: an output that
        depends on inputs after its own step.  M. Schuster & K. K. Paliwal,
        "Bidirectional recurrent neural networks", IEEE Trans. Signal
        Processing 45(11) (1997); A. Graves & J. Schmidhuber, "Framewise
        phoneme classification with bidirectional LSTM", Neural Networks 18
        (2005).

    Construction
        ``length`` steps, input size 1.  With probability ``p_marker`` a
        sequence holds one marker (input 1) at a step ``m`` drawn uniformly
        from ``0 .. length-1``; every other input is 0.  The target at step
        ``t`` (size 1) is 1 when the marker comes later (``m > t``), else 0.
        Every step counts (no mask).  ``extra["marker"]`` (N,) is ``m``, or
        -1 for a sequence without a marker.

        A net that reads only steps ``<= t`` cannot know this: until it sees
        the marker, "one is still to come" has probability
        ``p (L-1-t) / (p (L-1-t) + L (1-p))``, below 1/2 at every step for
        the defaults, so the best it can do is answer 0 until then.
        ``causal_bound`` is that best predictor's accuracy on the data.

    Parameters
        length (20): steps per sequence, >= 2.
        p_marker (0.5): probability that a sequence holds a marker, in [0, 1].
        n_train (1000), n_eval (500).

    Metrics
        accuracy: fraction of steps with ``(output > 0.5) == target``.
        sequence_accuracy: fraction of sequences right at every step.
        causal_bound: the accuracy of the best answer from steps ``<= t``
            alone (the Bayes rule above; it does not depend on the outputs),
            about 0.76 for the defaults: a forward-only net stays at or below it.

    default_train: ``{"loss": "bce", "loss_on": "all", "batch_size": 50}``.
    """

    signature = SIGNATURES["marker_ahead"]

    def _sample(self, p, world, rng, split, n):
        L = p["length"]
        has = rng.random(n) < p["p_marker"]
        marker = np.where(has, rng.integers(0, L, size=n), -1)             # (N,)
        steps = np.arange(L)
        inputs = (steps[None, :] == marker[:, None]).astype(float)         # (N, L)
        targets = (marker[:, None] > steps[None, :]).astype(float)         # (N, L)
        # the best answer from the past: 0 once the marker is seen, else whether one is more likely to come
        pm = p["p_marker"]
        later = pm * (L - 1 - steps)                       # P(marker after t) * L
        none_yet = later + L * (1 - pm)                    # P(no marker at steps <= t) * L
        with np.errstate(invalid="ignore", divide="ignore"):
            hope = np.where(none_yet > 0, later / none_yet, 0.0) > 0.5
        seen = (marker[:, None] >= 0) & (marker[:, None] <= steps[None, :])
        causal = np.where(seen, 0.0, hope[None, :].astype(float))
        return TaskData(inputs=inputs[:, :, None], targets=targets[:, :, None], mask=None,
                        extra={"marker": marker, "causal": causal})

    def _metrics(self, outputs, data):
        target = data.targets[..., 0] > 0.5
        right = (outputs[..., 0] > 0.5) == target
        return {"accuracy": float(right.mean()),
                "sequence_accuracy": float(right.all(axis=1).mean()),
                "causal_bound": float(((data.extra["causal"] > 0.5) == target).mean())}
