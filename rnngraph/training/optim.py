"""Optimizers: each updates parameters in place from their gradients.

The update rules are PyTorch's (so a user moving between the two sees the
same numbers):

- ``sgd``: ``v = mu v + g``; ``p -= lr v`` (nesterov: ``p -= lr (g + mu v)``)
- ``adam``: ``m = b1 m + (1-b1) g``; ``s = b2 s + (1-b2) g^2``;
  ``p -= lr (m / (1-b1^k)) / (sqrt(s / (1-b2^k)) + eps)``
- ``rmsprop``: ``s = alpha s + (1-alpha) g^2``; ``p -= lr g / (sqrt(s) + eps)``
  (with momentum: ``b = mu b + g / (sqrt(s) + eps)``; ``p -= lr b``)
- ``adagrad``: ``s += g^2``; ``p -= lr g / (sqrt(s) + eps)``

``weight_decay`` adds ``wd * p`` to the gradient first.  ``state_dict`` and
``load_state_dict`` make a run resumable exactly.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    name = ""
    defaults: dict = {}

    def __init__(self, **options):
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name} takes {', '.join(self.defaults)}, not {', '.join(sorted(unknown))}")
        self.options = {**self.defaults, **options}
        self.state: dict = {}      # parameter name -> dict of arrays
        self.steps = 0

    def step(self, params: dict, grads: dict) -> None:
        """Update ``params[name]`` in place for every name in ``grads``."""
        self.steps += 1
        self.apply(params, grads)

    def apply(self, params: dict, grads: dict) -> None:
        """The update of step ``self.steps``, without counting it.

        The rules are written for arrays: an option, and ``steps``, may also be an
        array that broadcasts against the parameters (stacked replicas, each with
        its own options: ``training.replicas``)."""
        wd = self.options.get("weight_decay", 0.0)
        for name, g in grads.items():
            p = params[name]
            if np.any(wd):
                g = g + _cast(p, wd) * p
            self._update(name, p, g, self.state.setdefault(name, {}))

    def _update(self, name, p, g, state):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Flat {key: array} (for an .npz): the step count and every buffer."""
        out = {"steps": np.asarray(self.steps)}
        for name, buffers in self.state.items():
            for key, value in buffers.items():
                out[f"{name}::{key}"] = np.array(value, copy=True)   # a snapshot, not the live buffer
        return out

    def load_state_dict(self, flat: dict) -> None:
        self.steps = int(flat.get("steps", 0))
        self.state = {}
        for key, value in flat.items():
            if "::" in key:
                name, buf = key.rsplit("::", 1)
                self.state.setdefault(name, {})[buf] = np.array(value)


def _cast(p: np.ndarray, x):
    """An option, or an expression of options (a Python float, or per-replica
    float64 arrays), in the parameters' dtype: as numpy meets a Python float
    with an array, so a rule gives the same bits for one run and for stacked
    replicas."""
    return np.asarray(x, dtype=p.dtype)


class SGD(Optimizer):
    name = "sgd"
    defaults = {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}

    def _update(self, name, p, g, state):
        lr, mu = _cast(p, self.options["lr"]), self.options["momentum"]
        if np.any(mu):
            mu = _cast(p, mu)
            v = state.get("velocity")
            if v is None:
                v = state["velocity"] = np.array(g, dtype=p.dtype)
            else:
                v *= mu
                v += g
            p -= lr * (g + mu * v) if self.options["nesterov"] else lr * v
        else:
            p -= lr * g


class Adam(Optimizer):
    name = "adam"
    defaults = {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}

    def _update(self, name, p, g, state):
        b1, b2 = self.options["betas"]
        lr, eps = _cast(p, self.options["lr"]), _cast(p, self.options["eps"])
        if "m" not in state:
            state["m"] = np.zeros_like(p)
            state["s"] = np.zeros_like(p)
        m, s = state["m"], state["s"]
        m *= _cast(p, b1)
        m += _cast(p, 1 - b1) * g
        s *= _cast(p, b2)
        s += _cast(p, 1 - b2) * g * g
        k = self.steps
        m_hat = m / _cast(p, 1 - b1 ** k)
        s_hat = s / _cast(p, 1 - b2 ** k)
        p -= lr * m_hat / (np.sqrt(s_hat) + eps)


class RMSprop(Optimizer):
    name = "rmsprop"
    defaults = {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0}

    def _update(self, name, p, g, state):
        lr, alpha, eps, mu = (self.options[k] for k in ("lr", "alpha", "eps", "momentum"))
        if "s" not in state:
            state["s"] = np.zeros_like(p)
        s = state["s"]
        s *= _cast(p, alpha)
        s += _cast(p, 1 - alpha) * g * g
        step = g / (np.sqrt(s) + _cast(p, eps))
        if np.any(mu):
            b = state.get("buffer")
            if b is None:
                b = state["buffer"] = np.zeros_like(p)
            b *= _cast(p, mu)
            b += step
            step = b
        p -= _cast(p, lr) * step


class Adagrad(Optimizer):
    name = "adagrad"
    defaults = {"lr": 0.01, "eps": 1e-10, "weight_decay": 0.0}

    def _update(self, name, p, g, state):
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        s = state["sum"]
        s += g * g
        p -= _cast(p, self.options["lr"]) * g / (np.sqrt(s) + _cast(p, self.options["eps"]))


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def make_optimizer(config: dict) -> Optimizer:
    """From a spec's ``train.optimizer`` mapping (``{name: adam, lr: 0.01}``)."""
    config = dict(config)
    name = config.pop("name", "adam")
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return OPTIMIZERS[name](**config)


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients together so their joint L2 norm is at most
    ``max_norm``; returns the norm before clipping."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm
