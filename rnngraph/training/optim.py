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

A step updates every parameter at once: the parameters, gradients and
buffers laid end to end in one flat vector each (``_Layout``), so a rule's
dozen numpy calls are made once a step rather than once per parameter (at
small sizes a call costs more than its arithmetic).  The numbers are the same
as parameter by parameter: every operation is elementwise.
"""

from __future__ import annotations

import numpy as np


class _Layout:
    """Where each parameter sits in an optimizer's flat vectors: the last axis of
    ``lead + (N,)`` arrays, N the parameters' summed sizes, in ``names`` order
    (``lead``: the leading axes every parameter has, ``(R,)`` for stacked replicas).
    Holds the flat parameter vector between steps, with each parameter's view of it."""

    def __init__(self, names: tuple, params: dict, lead: int):
        self.names, self.lead = names, lead
        self.shapes = tuple(params[n].shape for n in names)
        sizes = [int(np.prod(shape[lead:], dtype=np.int64)) for shape in self.shapes]
        self.spans = list(zip(np.cumsum([0] + sizes[:-1]).tolist(), np.cumsum(sizes).tolist()))
        self.key = (names, self.shapes, params[names[0]].dtype, lead)
        self.shape = (*self.shapes[0][:lead], sum(sizes))
        self.flat_params = np.empty(self.shape, params[names[0]].dtype)
        self.param_views = [self.view(self.flat_params, k) for k in range(len(names))]

    def view(self, flat: np.ndarray, k: int) -> np.ndarray:
        """Parameter ``k``'s part of ``flat``, in its own shape (a view)."""
        lo, hi = self.spans[k]
        return flat[..., lo:hi].reshape(self.shapes[k])

    def gather(self, arrays: dict, out: np.ndarray | None = None) -> np.ndarray:
        """``arrays[name]`` of every parameter, end to end (into ``out`` when given)."""
        lead = self.lead
        parts = [arrays[n].reshape(*shape[:lead], -1) for n, shape in zip(self.names, self.shapes)]
        return np.concatenate(parts, axis=-1, out=out)

    def scatter(self, params: dict) -> None:
        """Write the flat parameters back into ``params`` (in place: views stay views)."""
        for n, view in zip(self.names, self.param_views):
            np.copyto(params[n], view)


class Optimizer:
    name = ""
    defaults: dict = {}

    def __init__(self, **options):
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name} takes {', '.join(self.defaults)}, not {', '.join(sorted(unknown))}")
        self.options = {**self.defaults, **options}
        # parameter name -> {buffer: array}; while stepping, views of the flat buffers
        self.state: dict = {}
        self.steps = 0
        self.nonfinite: dict = {}   # the last update's: leading index (() alone) -> first non-finite parameter
        self._layout = None         # _Layout of the last step
        self._flat = None           # (state, layout, {buffer: flat array}, what _share put in state)

    def step(self, params: dict, grads: dict, flat: np.ndarray | None = None) -> bool:
        """Update ``params[name]`` in place for every name in ``grads``; False (and
        ``params`` left as they were) when the update is not finite (``apply``)."""
        self.steps += 1
        return bool(self.apply(params, grads, flat=flat))

    def flat_gradients(self, params: dict, grads: dict, lead: int = 0) -> np.ndarray | None:
        """``grads`` end to end, ``lead + (N,)``, as ``apply`` lays them out: a caller
        checks or scales this one vector and passes it to ``apply`` (``flat=``)
        instead of ``grads``.  None when ``apply`` makes no single vector (no
        gradients, or parameters of mixed dtypes)."""
        names = tuple(grads)
        if not names or not _one_dtype(names, params, grads):
            return None
        return self._layout_of(names, params, lead).gather(grads)

    def apply(self, params: dict, grads: dict, lead: int = 0, flat: np.ndarray | None = None):
        """The update of step ``self.steps``, without counting it.  ``flat``, when
        given, is ``flat_gradients(params, grads, lead)`` (scaled or not): the
        gradients the update uses.

        The rules are written for arrays: an option, and ``steps``, may also be an
        array that broadcasts against the flat vectors (``lead + (N,)``): stacked
        replicas, each with its own options (``training.replicas``) pass ``lead=1``
        and options shaped (R, 1).

        Returns whether the update left the parameters finite: a bool, or one per
        leading index (R,).  A non-finite update is not written (the parameters
        keep their values, the buffers are updated); ``nonfinite`` names, per
        leading index, the first parameter it made NaN or infinite."""
        self.nonfinite = {}
        if not grads:
            return np.ones(next(iter(params.values())).shape[:lead], bool) if params else np.True_
        names = tuple(grads)
        if _one_dtype(names, params, grads):
            return self._apply(names, params, grads, lead, flat)
        # mixed dtypes: one vector would round every parameter to one dtype, so each
        # parameter is updated on its own (and kept or dropped on its own)
        return np.logical_and.reduce([self._apply((n,), params, grads, lead) for n in names])

    def _apply(self, names: tuple, params: dict, grads: dict, lead: int, flat: np.ndarray | None = None):
        """``apply`` for the parameters ``names``, of one dtype (their gradients of one
        dtype too): the rule once over their flat vectors."""
        layout = self._layout_of(names, params, lead)
        p = layout.gather(params, out=layout.flat_params)
        g = layout.gather(grads) if flat is None else flat
        wd = self.options.get("weight_decay", 0.0)
        if _nonzero(wd):
            g = g + _cast(p, wd) * p
        buffers = self._buffers(layout)
        made = len(buffers)
        self._update(p, g, buffers)
        if len(buffers) != made:   # the rule made a buffer: each parameter's state is its view
            self._share(layout, buffers)
        finite = np.isfinite(p).all(axis=-1)
        if not finite.all():   # rare: name the culprits, keep the parameters they would have replaced
            for index in zip(*np.nonzero(~finite)) if finite.ndim else [()]:
                self.nonfinite.setdefault(index[0] if len(index) == 1 else index, next(
                    name for name, view in zip(layout.names, layout.param_views) if not np.isfinite(view[index]).all()))
            if finite.ndim == 0:
                return finite
            p[~finite] = layout.gather(params)[~finite]
        layout.scatter(params)
        return finite

    def _layout_of(self, names: tuple, params: dict, lead: int) -> _Layout:
        layout = self._layout
        if layout is None or layout.key != (names, tuple(params[n].shape for n in names), params[names[0]].dtype,
                                            lead):
            layout = self._layout = _Layout(names, params, lead)
        return layout

    def _buffers(self, layout: _Layout) -> dict:
        """The flat buffers of ``layout``'s parameters: those of the last step while
        ``state`` still holds exactly their views, else made from ``state`` (loaded,
        changed from outside, or of other parameters).  A buffer a parameter lacks
        starts at zero, which every rule's update takes as its first (SGD's velocity
        mu * 0 + g is g)."""
        cached = self._flat
        if cached is not None and cached[0] is self.state and cached[1] is layout and self._intact(cached[3]):
            return cached[2]
        keys = dict.fromkeys(key for name in layout.names for key in self.state.get(name, {}))
        buffers = {}
        for key in keys:
            flat = buffers[key] = np.zeros(layout.shape, layout.flat_params.dtype)
            for k, name in enumerate(layout.names):
                held = self.state.get(name, {}).get(key)
                if held is not None:
                    layout.view(flat, k)[...] = held
        self._share(layout, buffers)
        return buffers

    def _share(self, layout: _Layout, buffers: dict) -> None:
        """Make each parameter's ``state`` entries views of ``buffers``, and remember them."""
        entries, held = [], {}
        for k, name in enumerate(layout.names):
            own = held[name] = self.state[name] = {}
            for key, flat in buffers.items():
                view = own[key] = layout.view(flat, k)
                entries.append((own, key, view))
        self._flat = (self.state, layout, buffers, (held, len(buffers), entries))

    def _intact(self, shared: tuple) -> bool:
        """Whether ``state`` still holds exactly the views ``_share`` put there (no
        entry replaced, added or removed from outside since)."""
        held, count, entries = shared
        state = self.state
        if any(state.get(name) is not own or len(own) != count for name, own in held.items()):
            return False
        return all(own.get(key) is view for own, key, view in entries)

    def _update(self, p, g, state):
        """The rule: ``p`` (flat parameters) updated in place from ``g``, with
        ``state`` {buffer: flat array} (a new buffer is added to it)."""
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


def _one_dtype(names: tuple, params: dict, grads: dict) -> bool:
    """Whether the parameters ``names`` and their gradients all share one dtype:
    then one flat vector holds them without rounding any."""
    return len({(params[n].dtype, getattr(grads[n], "dtype", None)) for n in names}) == 1


def _nonzero(x) -> bool:
    """Whether an option (a Python number, or per-replica arrays) is anywhere
    nonzero; np.any would first make a Python number an array."""
    return bool(x.any()) if isinstance(x, np.ndarray) else bool(x)


def _cast(p: np.ndarray, x):
    """An option, or an expression of options (a Python float, or per-replica
    float64 arrays), in the parameters' dtype: as numpy meets a Python float
    with an array, so a rule gives the same bits for one run and for stacked
    replicas."""
    return np.asarray(x, dtype=p.dtype)


class SGD(Optimizer):
    name = "sgd"
    defaults = {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}

    def _update(self, p, g, state):
        lr, mu = _cast(p, self.options["lr"]), self.options["momentum"]
        if _nonzero(mu):
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

    def _update(self, p, g, state):
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

    def _update(self, p, g, state):
        lr, alpha, eps, mu = (self.options[k] for k in ("lr", "alpha", "eps", "momentum"))
        if "s" not in state:
            state["s"] = np.zeros_like(p)
        s = state["s"]
        s *= _cast(p, alpha)
        s += _cast(p, 1 - alpha) * g * g
        step = g / (np.sqrt(s) + _cast(p, eps))
        if _nonzero(mu):
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

    def _update(self, p, g, state):
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


def clip_grad_norm(grads: dict, max_norm: float, flat: np.ndarray | None = None) -> float:
    """Scale all gradients together so their joint L2 norm is at most
    ``max_norm``; returns the norm before clipping.  With ``flat`` (the
    optimizer's ``flat_gradients``) that one vector is scaled instead."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in (grads.values() if flat is None else (flat,)):
            g *= scale
    return norm
