"""Parameters: their names, shapes and initial values (docs/spec-format.md, "Parameter names").

An edge's parameter is named like the edge (``"x->hidden"``), a bias
``"{node}.bias"``, a trainable initial state ``"{node}.init"``.  Shapes:
dense ``(to.size, from.size)``, diagonal, bias and init ``(size,)``, scalar ``()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import parse_initializer


@dataclass(frozen=True)
class ParamInfo:
    """What a parameter is: its shape, whether training changes it, and what
    it belongs to (``kind`` is ``edge``, ``bias`` or ``init``)."""

    name: str
    shape: tuple
    trainable: bool
    kind: str
    owner: str            # the edge name, or the node name for bias / init
    constraints: tuple = ()


def param_infos(graph) -> dict:
    """Every parameter of a folded graph, in a stable order: edges, biases, inits."""
    infos = {}
    sizes = {n: graph.nodes[n]["size"] for n in graph.nodes}
    for u, v, key, data in graph.edges(keys=True, data=True):
        if data["param"] is None:
            continue
        kind = data["weight"]
        shape = (sizes[v], sizes[u]) if kind == "dense" else (sizes[v],) if kind == "diagonal" else ()
        infos[data["param"]] = ParamInfo(data["param"], shape, data["trainable"], "edge", key,
                                         tuple(data["constraints"]))
    for n, data in graph.nodes(data=True):
        if data["bias"]:
            infos[data["bias"]] = ParamInfo(data["bias"], (sizes[n],), data["bias_trainable"], "bias", n)
    for n, data in graph.nodes(data=True):
        if data["init"].trainable:
            infos[f"{n}.init"] = ParamInfo(f"{n}.init", (sizes[n],), True, "init", n)
    return infos


def project(value: np.ndarray, constraints) -> np.ndarray:
    """The nearest matrix satisfying the constraints (symmetric, zero diagonal)."""
    if "symmetric" in constraints:
        value = (value + value.T) * 0.5
    if "zero_diagonal" in constraints:
        value = value.copy()
        np.fill_diagonal(value, 0.0)
    return value


def initial_value(init, shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """An edge parameter's initial value for an ``init`` as written in the spec.

    The default is ``uniform(-k, k)`` with ``k = 1/sqrt(fan_in)``."""
    form = parse_initializer(init)
    kind = form[0]
    if kind == "default":
        k = 1.0 / np.sqrt(fan_in)
        value = rng.uniform(-k, k, size=shape)
    elif kind == "constant":
        value = np.full(shape, form[1])
    elif kind == "uniform":
        value = rng.uniform(form[1], form[2], size=shape)
    elif kind == "normal":
        value = rng.normal(0.0, form[1], size=shape)
    elif kind == "xavier":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        value = rng.uniform(-a, a, size=shape)
    elif kind == "orthogonal":
        rows, cols = shape
        q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
        q = q * np.sign(np.diag(r))           # a uniformly distributed orthogonal matrix
        value = q if rows >= cols else q.T
        value = value[:rows, :cols]
    else:   # array
        value = np.array(form[1], dtype=float).reshape(shape)
    return np.asarray(value, dtype=dtype)


def init_params(graph, spec, seed: int, dtype) -> dict:
    """Fresh parameters for the folded graph of the (expanded) spec."""
    rng = np.random.default_rng(seed)
    edges = {e.name: e for e in spec.edges}
    params = {}
    sizes = {n: graph.nodes[n]["size"] for n in graph.nodes}
    for name, info in param_infos(graph).items():
        if info.kind == "edge":
            edge = edges[info.owner]
            value = initial_value(edge.init, info.shape, sizes[edge.source], sizes[edge.target], rng, dtype)
            params[name] = project(value, info.constraints) if info.constraints else value
        elif info.kind == "bias":
            params[name] = np.full(info.shape, graph.nodes[info.owner]["bias_init"], dtype=dtype)
        else:
            value = graph.nodes[info.owner]["init"].value
            params[name] = np.broadcast_to(np.asarray(value, dtype=dtype), info.shape).copy()
    return params
