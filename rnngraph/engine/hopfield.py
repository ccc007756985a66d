"""Hopfield networks: storage rules, settling dynamics and energy.

A Hopfield-style network is one whose graph has a square dense delay-1 edge
with the ``symmetric`` constraint: its *memory edge* (a self-edge is preferred
when there are several).  ``store``, ``settle`` and ``energy`` refuse any other
network with a DataError: an Elman net's recurrent weight is not a memory.  Discrete nets (Hopfield 1982) have it as a
self-edge on a ``sign`` (or ``step``) node; continuous ones (Hopfield 1984),
written with primitives, have it from the output ``v`` back into the
integrator ``u``.

Storage rules write the memory edge in one pass over the patterns
(``P`` patterns of ``N`` units, each +-1):

- ``hebbian``: ``W = (1/N) sum_p x_p x_p^T``
- ``storkey`` (Storkey 1997): for each pattern in turn,
  ``W += (1/N) (x x^T - x h^T - h x^T)`` with ``h_ij = sum_{k != i,j} W_ik x_k``
- ``pseudoinverse`` (Personnaz et al. 1985): ``W = X^+ X``, the projection onto
  the patterns' span, so every pattern is a fixed point while they are
  linearly independent.

The edge's constraints (usually ``zero_diagonal``) are applied after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import arguments as arg
from ..errors import DataError
from ..spec import HOPFIELD_RULES



@dataclass
class SettleResult:
    """What ``settle`` found, per cue.

    states : (B, N) final states
    energy : (B, sweeps_run + 1) energy after each sweep, the cue's first
        (a cue that stopped early repeats its last energy)
    converged : (B,) a fixed point was reached
    cycle : (B,) a 2-cycle was reached instead (sync updates can oscillate)
    sweeps : (B,) sweeps each cue ran
    discrete : the states are +-1 (or 0/1) units updated by the sign rule; for a
        continuous net, ``energy`` is the quadratic part of the energy only
        (without the graded-response integral term) and may rise
    """

    states: np.ndarray
    energy: np.ndarray
    converged: np.ndarray
    cycle: np.ndarray
    sweeps: np.ndarray
    discrete: bool = True


def memory_edge(net):
    """(source, target, edge key) of the network's memory edge."""
    found = find_memory_edge(net.graph)
    if found is None:
        raise DataError("not a Hopfield-style network: store, settle and energy need a square dense edge "
                        "with delay 1 and `constraint: symmetric` (the memory); this network has none")
    return found


def find_memory_edge(graph):
    """(source, target, edge key) of a folded graph's memory edge, or None
    when it has none (``graph.folded_graph(spec)`` or ``net.graph``)."""
    candidates = []
    for u, v, key, d in graph.edges(keys=True, data=True):
        square = graph.nodes[u]["size"] == graph.nodes[v]["size"]
        if d["weight"] == "dense" and d["delay"] >= 1 and square and "symmetric" in d["constraints"]:
            candidates.append((u != v, u, v, key))
    if not candidates:
        return None
    candidates.sort()
    _, u, v, key = candidates[0]
    return u, v, key


def is_hopfield(graph) -> bool:
    """Whether a folded graph has a memory edge, so that ``store``, ``settle``
    and ``energy`` accept its network."""
    return find_memory_edge(graph) is not None


def state_node(net) -> str:
    """The node whose values are the network's state: the memory edge's
    source (``s`` of a discrete net, the outputs ``v`` of a continuous one).
    A data file holds the patterns under its name."""
    return memory_edge(net)[0]


def _patterns(net, patterns, size) -> np.ndarray:
    X = arg.array("store: patterns", patterns, shape=f"(P, {size}) of +-1")
    if X.ndim != 2 or X.shape[1] != size:
        raise DataError(f"store: patterns: expected shape (P, {size}), got {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"store: patterns: expected at least one pattern, got shape {X.shape}")
    if not np.all(np.isin(X, (-1.0, 1.0))):
        bad = tuple(int(i) for i in np.argwhere(~np.isin(X, (-1.0, 1.0)))[0])
        raise DataError(f"store: patterns: every entry must be -1 or +1, got {X[bad]:g} at index {bad}")
    return X


def _states(name: str, value, size: int) -> np.ndarray:
    """Cues or states: a finite real array (B, size)."""
    s = arg.array(name, value, shape=f"(B, {size})")
    if s.ndim != 2 or s.shape[1] != size:
        raise DataError(f"{name}: expected shape (B, {size}), got {s.shape}")
    return s


def store(net, patterns, rule: str = "hebbian") -> None:
    """Write ``patterns`` (P, N) into the memory edge by ``rule``."""
    rule = arg.choice("store: rule", rule, HOPFIELD_RULES)
    u, v, key = memory_edge(net)
    N = net.graph.nodes[u]["size"]
    X = _patterns(net, patterns, N)
    if rule == "hebbian":
        W = X.T @ X / N
    elif rule == "storkey":
        W = np.zeros((N, N))
        for x in X:
            h = W @ x                                   # h_i = sum_k W_ik x_k
            H = h[:, None] - np.diag(W)[:, None] * x[:, None] - W * x[None, :]   # h_ij, k != i, j
            W = W + (np.outer(x, x) - x[:, None] * H.T - H * x[None, :]) / N
    else:
        W = np.linalg.pinv(X) @ X
    info = net.param_info[net.graph.edges[u, v, key]["param"]]
    net.params[info.name][...] = W
    net.project_constraints()
    bias = net.graph.nodes[v]["bias"]
    if bias:
        net.params[bias][...] = 0.0


def energy(net, states) -> np.ndarray:
    """``E = -1/2 s^T W s - b^T s`` per row of ``states`` (B, N)."""
    u, v, key = memory_edge(net)
    net._finite_params()
    W = net.params[net.graph.edges[u, v, key]["param"]].astype(np.float64)
    s = _states("energy: states", states, W.shape[1])
    bias = net.graph.nodes[v]["bias"]
    b = net.params[bias].astype(np.float64) if bias else 0.0
    return -0.5 * np.einsum("bi,ij,bj->b", s, W, s) - s @ (b if bias else np.zeros(W.shape[1]))


class SettleStopped(Exception):
    """``settle``'s ``should_stop()`` returned True before the states settled."""


def settle(net, cues, update: str = "async", sweeps: int = 100, seed: int = 0,
           until_stable: bool = True, should_stop=None) -> SettleResult:
    """Run the network's dynamics from ``cues`` (B, N).

    Discrete nets (the memory edge is a self-edge): ``async`` updates one unit
    at a time in a fresh random order each sweep (energy never increases);
    ``sync`` updates all units at once (may end in a 2-cycle, reported in
    ``cycle``).  Continuous nets: the graph itself runs ``sweeps`` steps from
    the cue (``update`` does not apply).

    ``should_stop()``, when given, is asked between updates (discrete nets);
    when it returns True, settling stops and ``SettleStopped`` is raised.
    """
    update = arg.choice("settle: update", update, ("sync", "async"))
    sweeps = arg.integer("settle: sweeps", sweeps, 1)
    seed = arg.integer("settle: seed", seed, 0)
    until_stable = arg.flag("settle: until_stable", until_stable)
    u, v, key = memory_edge(net)
    N = net.graph.nodes[u]["size"]
    cues = _states("settle: cues", cues, N)
    net._finite_params()
    if u != v:
        return _settle_graph(net, cues, sweeps, u)
    act = net.graph.nodes[u]["activation"]
    if act not in ("sign", "step"):
        return _settle_graph(net, cues, sweeps, u)
    W = net.params[net.graph.edges[u, v, key]["param"]].astype(np.float64)
    bias = net.graph.nodes[u]["bias"]
    b = net.params[bias].astype(np.float64) if bias else np.zeros(N)
    low = -1.0 if act == "sign" else 0.0

    def f(a):
        return np.where(a >= 0, 1.0, low) if act == "sign" else np.where(a > 0, 1.0, 0.0)
    rng = np.random.default_rng(seed)
    B = cues.shape[0]
    s = cues.copy()
    prev2 = None
    energies = [energy(net, s)]
    active = np.ones(B, bool)
    converged = np.zeros(B, bool)
    cycle = np.zeros(B, bool)
    ran = np.zeros(B, int)
    rows = np.arange(B)
    for _ in range(sweeps):
        if should_stop is not None and should_stop():
            raise SettleStopped
        before = s.copy()
        if update == "sync":
            new = f(s @ W.T + b)
            s = np.where(active[:, None], new, s)
        else:
            order = np.argsort(rng.random((B, N)), axis=1)        # a random order per cue
            for k in range(N):
                if should_stop is not None and should_stop():    # a sweep of a large net takes long
                    raise SettleStopped
                unit = order[:, k]
                a = np.einsum("bj,bj->b", W[unit], s) + b[unit]
                s[rows, unit] = np.where(active, f(a), s[rows, unit])
        ran += active
        energies.append(energy(net, s))
        same = np.all(s == before, axis=1)
        newly = active & same
        converged |= newly
        if update == "sync" and prev2 is not None:
            two = active & ~same & np.all(s == prev2, axis=1)
            cycle |= two
            newly = newly | two
        prev2 = before
        if until_stable:
            active &= ~newly
            if not active.any():
                break
    return SettleResult(states=s, energy=np.stack(energies, axis=1), converged=converged, cycle=cycle, sweeps=ran)


def _settle_graph(net, cues, sweeps, state_node) -> SettleResult:
    """Continuous nets: run the graph, cue in every ``init: input`` node."""
    initial = {n: cues for n in net.graph.nodes if net.graph.nodes[n]["init"].kind == "input"}
    if not initial:
        raise DataError("to settle from cues, a node of this network needs `init: input` (the cue)")
    out = net.forward({n: np.zeros((cues.shape[0], sweeps, net.size(n))) for n in net.input_nodes},
                      initial=initial, steps=sweeps)
    u, v, key = memory_edge(net)
    traj = out[u].astype(np.float64)                             # (B, sweeps, N): the memory edge's source
    energies = np.stack([energy(net, cues)] + [energy(net, traj[:, t]) for t in range(sweeps)], axis=1)
    last = traj[:, -1]
    moved = np.max(np.abs(traj[:, -1] - traj[:, -2]), axis=1) if sweeps > 1 else np.full(len(cues), np.inf)
    return SettleResult(states=last, energy=energies, converged=moved < CONTINUOUS_TOLERANCE,
                        cycle=np.zeros(len(cues), bool), sweeps=np.full(len(cues), sweeps), discrete=False)


CONTINUOUS_TOLERANCE = 1e-4   # a continuous net has settled when no unit moved more than this in the last step
