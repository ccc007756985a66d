"""Linear regression data, and its closed-form solution."""

from __future__ import annotations

import numpy as np

from ...spec.tasks import SIGNATURES
from .base import Task, TaskData, TaskDataError


def normal_equation(X, y) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares fit ``y ~ X W^T + b``: what the normal equations give.

    Parameters
    ----------
    X : array-like, (N, F) or (N, T, F)
        Features (a ``TaskData.inputs`` array is fine; time is flattened).
    y : array-like, (N,), (N, O) or (N, T, O)
        Targets, with the same leading dimensions as ``X``.

    Returns
    -------
    W : ndarray, (O, F)
        The weights, shaped like a dense edge's parameter ``(to.size, from.size)``.
    b : ndarray, (O,)
        The intercepts, shaped like a node's bias.

    Notes
    -----
    Solves ``min ||[X 1] [W b]^T - y||^2``, the solution of the normal
    equations ``A^T A w = A^T y`` with ``A = [X 1]``, by ``numpy.linalg.lstsq``
    (numerically safer than forming ``A^T A``; the minimum-norm solution when
    it is singular).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim not in (2, 3):
        raise TaskDataError(f"normal_equation: X must be (N, F) or (N, T, F), got shape {X.shape}")
    lead = X.shape[:-1]
    if y.shape == lead:
        y = y[..., None]
    if y.shape[:-1] != lead or y.ndim != X.ndim:
        raise TaskDataError(f"normal_equation: y must have shape {lead} or {lead} + (outputs,) "
                            f"to match X {X.shape}, got {y.shape}")
    A = X.reshape(-1, X.shape[-1])                                   # (M, F)
    A = np.hstack([A, np.ones((A.shape[0], 1))])                     # (M, F+1)
    w, *_ = np.linalg.lstsq(A, y.reshape(-1, y.shape[-1]), rcond=None)   # (F+1, O)
    return w[:-1].T.copy(), w[-1].copy()


class Linear(Task):
    """Linear regression: ``y = X theta + b + noise``, one step per sample.

    Source
        Least squares: A.-M. Legendre (1805), C. F. Gauss (1809); learned
        by gradient descent as the LMS rule of B. Widrow & M. Hoff,
        "Adaptive switching circuits" (1960).

    Construction
        The *world* (shared by both splits; see "Randomness" in
        ``rnngraph.training.tasks``): ``theta`` (features,) and the intercept ``b``,
        each entry standard normal.  Each sample: ``x`` standard normal
        (features,), ``y = x . theta + b + noise * e`` with ``e`` standard
        normal.  ``T = 1``: ``inputs`` (N, 1, features), ``targets``
        (N, 1, 1), ``mask`` None.  ``extra``: ``theta`` (features,),
        ``bias`` (float), ``noise``.  ``normal_equation(X, y)`` in this
        module returns the least-squares weights for comparison.

    Parameters
        features (3): number of inputs, >= 1.
        noise (0.1): standard deviation of the noise, >= 0.
        n_train (100), n_eval (100).

    Metrics
        mse: mean of ``(output - target)**2`` (the true function scores
            about ``noise**2``).

    default_train: ``{"loss": "mse", "loss_on": "all"}``.
    """

    signature = SIGNATURES["linear"]

    @staticmethod
    def normal_equation(X, y):
        """See ``rnngraph.training.tasks.linear.normal_equation``."""
        return normal_equation(X, y)

    def _world(self, p, rng):
        return rng.standard_normal(p["features"]), float(rng.standard_normal())

    def _sample(self, p, world, rng, split, n):
        theta, bias = world
        X = rng.standard_normal((n, p["features"]))                    # (N, F)
        y = X @ theta + bias + p["noise"] * rng.standard_normal(n)     # (N,)
        return TaskData(inputs=X[:, None, :], targets=y[:, None, None], mask=None,
                        extra={"theta": theta.copy(), "bias": bias, "noise": p["noise"]})

    def _metrics(self, outputs, data):
        return {"mse": np.mean((outputs - data.targets) ** 2)}
