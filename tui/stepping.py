"""The data behind the Step screen: one sample run forward (and backward).

``Trace.run(analysis, steps, seed)`` draws a sample of the right shapes
(random inputs; random +-1 cues for ``init: input`` nodes; random targets),
calls ``net.forward`` once and keeps every node's values, shape ``(T, size)``
for the sample.  Stepping only moves a cursor over these arrays, so the
values shown at step ``t`` are exactly ``net.forward``'s.  Backward mode
shows ``d loss / d v_n(t)`` from the engine's ``net.backward_trace`` (BPTT,
recurrent paths included) and its norm over units per node and step, the
picture of vanishing gradients.  Nothing here imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from rnngraph.engine.hopfield import find_memory_edge
from rnngraph.spec import HOPFIELD_RULES

from .layout import node_layers

__all__ = ["Trace", "hopfield_state", "sample_inputs", "AUTO_STEPS", "RANDOM_STEPS"]

AUTO_STEPS = 100    # a sample of the spec's data is shown whole up to this many steps
RANDOM_STEPS = 10   # steps of a random sample when T is not given


def _init_kind(spec, name) -> str | None:
    try:
        node = spec.expanded().nodes[name]
    except Exception:
        return None
    return getattr(node.init, "kind", None)


def hopfield_state(graph: nx.MultiDiGraph) -> list:
    """``[state node]`` of a Hopfield-style net (the engine's memory edge's
    source, ``rnngraph.engine.hopfield``), else ``[]``."""
    memory = find_memory_edge(graph)
    return [memory[0]] if memory is not None else []


def sample_inputs(spec, graph: nx.MultiDiGraph, steps: int, seed: int):
    """Random ``(inputs, initial, targets)`` for one sample, batch 1."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(getattr(spec, "dtype", "float64") or "float64")
    inputs, initial, targets = {}, {}, {}
    for n, a in graph.nodes(data=True):
        size = int(a.get("size", 1))
        if a.get("role") == "input":
            inputs[n] = rng.uniform(-1.0, 1.0, (1, steps, size)).astype(dtype)   # (B, T, size)
        kind = getattr(a.get("init"), "kind", None) or _init_kind(spec, n)
        if kind == "input":
            initial[n] = rng.choice([-1.0, 1.0], (1, size)).astype(dtype)       # (B, size)
        if a.get("role") == "output":
            targets[n] = rng.uniform(0.0, 1.0, (1, steps, size)).astype(dtype)  # (B, T, size)
    return inputs, initial, targets


def spec_sample(spec, net, steps: int | None, index: int):
    """Sample ``index`` of the spec's own data, cut to its first ``steps`` steps.

    ``steps`` None keeps the whole sample, up to ``AUTO_STEPS``: a loss
    counted only at the end (the adding problem's mask) needs the end.
    Returns ``(inputs, initial, targets, masks, note, count)`` (``count``: the
    samples there are to step through) or None when the spec
    has no data the engine can make or read (then the sample is random).
    Cutting is exact for the values: a step's values depend only on the
    steps before it (the loss and its gradients do change: later targets go).
    """
    task = getattr(spec, "task", None)
    if not task:
        return None
    try:
        from rnngraph.training import data as rgdata
        if "generator" in task:
            train, evaluation, _ = rgdata.task_splits(spec, net, getattr(spec, "seed", 0))
            source = f"task {task['generator']}"
        else:
            train, evaluation = rgdata.file_splits(spec, net)
            source = f"file {task.get('file')}"
    except Exception:
        return None
    data = evaluation if evaluation is not None and evaluation.n else train
    if data is None or not data.n:
        return None
    i = index % data.n
    one = data.subset(np.array([i]))
    length = one.steps or steps or RANDOM_STEPS
    stop = min(steps if steps is not None else AUTO_STEPS, length)
    cut = lambda d: {k: v[:, :stop] for k, v in d.items()}   # noqa: E731
    note = f"sample {i} of {data.n} from {source}, steps 0..{stop - 1}"
    if stop < length:
        note += f" of {length}"
    return cut(one.inputs), dict(one.initial), cut(one.targets), cut(one.masks), note, data.n


def hopfield_sample(spec, net, graph, index: int, corrupt: float | None = None):
    """For a Hopfield spec: a network with the task's patterns stored, and a cue.

    The cue is the data's cue ``index``, or, with ``corrupt`` (a fraction),
    stored pattern ``index mod P`` with that fraction of its units flipped
    (drawn from ``index``).
    Returns ``(net, initial, note, count, patterns (P, size))`` or None.  The patterns are stored in a
    fresh network (the app's own is left alone), by the spec's rule.
    """
    rule = (getattr(spec, "train", None) or {}).get("method")
    state = hopfield_state(graph)
    if rule not in HOPFIELD_RULES or not state or not getattr(spec, "task", None):
        return None
    try:
        import rnngraph as rg
        from rnngraph.training import data as rgdata
        train, evaluation, _ = rgdata.task_splits(spec, net, getattr(spec, "seed", 0))
        patterns = train.task_data.extra["patterns"]                 # (P, size)
        cues = evaluation.task_data.inputs[:, 0, :]                  # (N, size)
        stored = rg.build(spec)
        stored.store(patterns, rule=rule)
    except Exception:
        return None
    patterns = np.asarray(patterns, dtype=float)
    if corrupt is not None:
        i = index % len(patterns)
        cue = patterns[i].copy()
        flips = int(round(corrupt * cue.size))
        cue[np.random.default_rng(index).choice(cue.size, flips, replace=False)] *= -1
        note = (f"pattern {i} of {len(patterns)} with {flips} of {cue.size} units flipped ({corrupt:.0%}), "
                f"stored by the {rule} rule;  k: corrupt more, n: next pattern")
        return stored, {state[0]: cue[None, :]}, note, len(patterns), patterns
    i = index % len(cues)
    note = f"cue {i} of {len(cues)}; {len(patterns)} patterns stored by the {rule} rule;  k: corrupt a pattern"
    return (stored, {state[0]: np.asarray(cues[i:i + 1], dtype=float)}, note, len(cues),
            np.asarray(patterns, dtype=float))


HOPFIELD_SWEEPS = 30   # the most sweeps the Step screen settles a cue for


def settle_sweeps(net, cue: np.ndarray, update: str, limit: int = HOPFIELD_SWEEPS, seed: int = 0):
    """A discrete Hopfield net's dynamics from ``cue`` (1, N), one sweep at a time.

    Each sweep is the engine's (``rnngraph.engine.hopfield.settle``, one sweep;
    ``async``: the units one at a time in a random order, ``sync``: all at
    once).  Returns ``(states, energies, why)``: ``states`` (S+1, N) the cue and
    the state after each of the S sweeps run, ``energies`` (S+1,) their energy
    (``hopfield.energy``), ``why`` the sentence saying how it ended; or None for
    a continuous net (its dynamics are its own graph, stepped by ``forward``).
    """
    from rnngraph.engine.hopfield import energy, settle
    states = [np.asarray(cue, dtype=float)[0]]
    why = f"still changing after {limit} sweeps"
    for k in range(limit):
        result = settle(net, states[-1][None, :], update=update, sweeps=1, seed=seed + k, until_stable=False)
        if not result.discrete:
            return None
        states.append(result.states[0])
        if np.array_equal(states[-1], states[-2]):
            why = f"a fixed point: sweep {k + 1} changed no unit"
            break
        if update == "sync" and len(states) >= 3 and np.array_equal(states[-1], states[-3]):
            why = f"a 2-cycle: sweep {k + 1} came back to the state of sweep {k - 1}"
            break
    stack = np.stack(states)                                                  # (S+1, N)
    return stack, np.asarray(energy(net, stack), dtype=float), why


def unit_updates(net, cue: np.ndarray, sweeps: int, seed: int = 0):
    """The ``sweeps`` sweeps of ``async`` updates that ``settle_sweeps`` ran, one unit at a time.

    Sweep ``k`` visits the units in the order the engine's ``settle`` draws
    for seed ``seed + k`` and applies its rule to each (``sign``: +1 where
    ``W_i . s + b_i >= 0``, else -1; ``step``: 1 where it is > 0, else 0), so
    the state after update ``N (k+1)`` is the state after sweep ``k+1``.
    Returns ``(states (U+1, N), units (U,), energies (U+1,))`` with ``U = sweeps N``:
    the cue and the state after each single update, the unit each update
    visited, and ``hopfield.energy`` of each state.
    """
    from rnngraph.engine.hopfield import energy, memory_edge
    u, v, key = memory_edge(net)
    W = np.asarray(net.params[net.graph.edges[u, v, key]["param"]], dtype=np.float64)   # (N, N)
    n = W.shape[1]
    bias = net.graph.nodes[u]["bias"]
    b = np.asarray(net.params[bias], dtype=np.float64) if bias else np.zeros(n)
    sign = net.graph.nodes[u]["activation"] == "sign"
    state = np.asarray(cue, dtype=np.float64).reshape(-1).copy()
    states, units = [state.copy()], []
    for k in range(sweeps):
        order = np.argsort(np.random.default_rng(seed + k).random((1, n)), axis=1)[0]
        for unit in order:
            a = W[unit] @ state + b[unit]
            state[unit] = (1.0 if a >= 0 else -1.0) if sign else (1.0 if a > 0 else 0.0)
            states.append(state.copy())
            units.append(int(unit))
    stack = np.stack(states)
    return stack, np.asarray(units, dtype=int), np.asarray(energy(net, stack), dtype=float)


def settle_continuous(net, graph, initial: dict, sweeps: int):
    """A continuous Hopfield net's trajectory as ``hopfield.settle`` runs it: the graph
    stepped ``sweeps`` times with zero inputs from the cue in its ``init: input`` nodes.

    Returns ``(values {node: (1, S, size)}, energies (S+1,), why)``: every node's
    values per step, the energy (its quadratic part, as the engine's) of the cue
    and of the memory edge's source after each step, and how it ended.
    """
    from rnngraph.engine.hopfield import CONTINUOUS_TOLERANCE, energy, memory_edge
    inputs = {n: np.zeros((1, sweeps, int(a.get("size", 1)))) for n, a in graph.nodes(data=True)
              if a.get("role") == "input"}
    out = net.forward(inputs, initial=initial, steps=sweeps)
    source = memory_edge(net)[0]
    traj = np.asarray(out[source], dtype=np.float64)[0]                          # (S, N)
    cue = np.asarray(next(iter(initial.values())), dtype=np.float64)              # (1, N)
    energies = np.asarray(energy(net, np.vstack([cue, traj])), dtype=float)       # (S+1,)
    moved = np.max(np.abs(np.diff(np.vstack([cue, traj]), axis=0)), axis=1)      # (S,)
    still = np.flatnonzero(moved < CONTINUOUS_TOLERANCE)
    why = (f"settled: from t = {still[0]} on no unit moves more than {CONTINUOUS_TOLERANCE:g} a step"
           if len(still) else f"still moving after {sweeps} steps (largest change {moved[-1]:.2g})")
    return out, energies, why


def loss_steps(spec, net, steps: int):
    """``(steps where the loss counts, or None when unknown, a sentence saying so)``
    for a sequence of ``steps`` steps, by the spec's ``train.loss_on`` (and, for
    ``mask``, the mask of the first sample of the spec's data)."""
    train = getattr(spec, "train", None) or {}
    if train.get("method") in HOPFIELD_RULES:
        return None, "a Hopfield network stores patterns: no loss over time"
    if net is None or not net.output_nodes:
        return None, "no output node: no loss"
    loss_on = train.get("loss_on", "all")
    if loss_on == "all":
        return tuple(range(steps)), "loss: every step (many-to-many)"
    if loss_on == "last":
        return (steps - 1,), "loss: last step only (many-to-one)"
    sample = spec_sample(spec, net, None, 0)
    if sample is None or not sample[3]:
        return None, "loss: where the data's mask is 1 (no data to show it)"
    masks = sample[3]
    length = next(iter(masks.values())).shape[1]
    counted = np.flatnonzero(np.any([np.asarray(m)[0] != 0 for m in masks.values()], axis=0))
    where = ", ".join(map(str, counted[:6])) + (", …" if len(counted) > 6 else "")
    note = f"loss: mask, t = {where} of {length} (sample 0)"
    return tuple(int(t) for t in counted if t < steps), note


@dataclass
class Trace:
    """One sample's forward values and backward gradients for every node."""

    steps: int
    order: list                                   # nodes, in drawing order
    values: dict = field(default_factory=dict)    # node -> (T, size)
    targets: dict = field(default_factory=dict)   # output -> (T, size)
    initial: dict = field(default_factory=dict)   # node -> (size,)
    grads: dict | None = None                     # node -> (T, size): d loss / d v_n(t)
    grad_norms: dict | None = None                # node -> (T,): |d loss / d v_n(t)|
    loss: float | None = None
    backward_error: str = ""
    backward_note: str = ""                       # e.g. the mask leaves no step counted
    hopfield: list = field(default_factory=list)
    inputs: dict = field(default_factory=dict)    # what net.forward was given, (1, T, size)
    initial_full: dict = field(default_factory=dict)   # (1, size)
    targets_full: dict = field(default_factory=dict)   # (1, T, size)
    masks: dict = field(default_factory=dict)     # output -> (1, T), from the data
    input_nodes: set = field(default_factory=set)
    note: str = ""                                # where the sample came from
    samples: int = 0                              # how many samples the data has (0: random)
    net: object = None                            # the network that ran (Hopfield: patterns stored)
    energy: np.ndarray | None = None              # Hopfield: (T+1,) the cue's energy, then each sweep's
    patterns: np.ndarray | None = None            # Hopfield: (P, N) the stored patterns
    unit_states: np.ndarray | None = None         # async Hopfield: (U+1, N) the cue, then after each unit update
    unit_order: np.ndarray | None = None          # async Hopfield: (U,) the unit each update visited
    unit_energy: np.ndarray | None = None         # async Hopfield: (U+1,) the energy of each of unit_states
    overlaps: np.ndarray | None = None            # Hopfield: (T+1, P) m_p = x . pattern_p / N
    settle_note: str = ""                         # Hopfield: how the settling ended, and how it updates
    weights: str = ""                             # which weights ran: initial, trained, loaded from where

    @classmethod
    def run(cls, analysis, steps: int | None = None, seed: int = 0, corrupt: float | None = None) -> "Trace":
        """Run sample ``seed`` for ``steps`` steps (None: the whole sample, or 10 random).

        ``corrupt``: for a Hopfield net, the fraction of a stored pattern's units
        flipped to make the cue (None: the data's own cue)."""
        net, graph, spec = analysis.net, analysis.graph, analysis.spec
        layers = node_layers(graph)
        index = {n: i for i, n in enumerate(graph.nodes)}
        order = sorted(graph.nodes, key=lambda n: (layers[n], index[n]))
        hopfield = hopfield_sample(spec, net, graph, seed, corrupt)
        real = None if hopfield else spec_sample(spec, net, steps, seed)
        masks = {}
        if steps is None:
            steps = RANDOM_STEPS
        samples = 0
        if hopfield is not None:
            net, initial, note, samples, patterns = hopfield
            inputs, targets = {}, {}
        elif real is not None:
            inputs, initial, targets, masks, note, samples = real
            for group in (inputs, targets):
                for value in group.values():
                    steps = value.shape[1]
        else:
            inputs, initial, targets = sample_inputs(spec, graph, steps, seed)
            note = f"random sample (seed {seed}): the spec has no data the engine can make"
        settled = continuous = None
        dynamics = getattr(spec, "dynamics", None) or {}
        update = dynamics.get("update", "async")
        if hopfield is not None and list(graph.nodes) == hopfield_state(graph):
            cue = next(iter(initial.values()))
            settled = settle_sweeps(net, cue, update, seed=seed)
        elif hopfield is not None:
            continuous = settle_continuous(net, graph, initial, int(dynamics.get("sweeps", 100)))
        if settled is not None:
            states, energies, why = settled
            steps = len(states) - 1
            out = {hopfield_state(graph)[0]: states[None, 1:]}                 # (1, T, N): after each sweep
        elif continuous is not None:
            out, energies, why = continuous
            steps = next(iter(out.values())).shape[1]
        else:
            out = net.forward(inputs, initial=initial or None, steps=steps)
        trace = cls(steps=steps, order=order, inputs=inputs, initial_full=initial, note=note, net=net,
                    weights=("patterns stored by the spec's rule" if hopfield is not None
                             else getattr(analysis, "weights", "")),
                    targets_full=targets, masks=masks, samples=samples,
                    input_nodes={n for n, a in graph.nodes(data=True) if a.get("role") == "input"})
        trace.values = {n: np.asarray(v)[0] for n, v in out.items()}         # (T, size)
        trace.targets = {n: v[0] for n, v in targets.items()}
        trace.initial = {n: v[0] for n, v in initial.items()}
        trace.hopfield = hopfield_state(graph)
        if settled is not None:
            trace.energy, trace.patterns = energies, patterns
            trace.overlaps = states @ patterns.T / states.shape[1]                 # (T+1, P)
            trace.settle_note = (f"t = sweep t+1 of `{update}` updates "
                                 f"({'one unit at a time, random order' if update == 'async' else 'all units at once'})"
                                 f"; {why}")
            if update == "async":
                trace.unit_states, trace.unit_order, trace.unit_energy = unit_updates(
                    net, states[0], steps, seed)
        elif continuous is not None:
            state = hopfield_state(graph)[0]
            states = np.vstack([trace.initial[state][None, :], trace.values[state]])   # (T+1, N)
            trace.energy, trace.patterns = energies, patterns
            trace.overlaps = states @ patterns.T / states.shape[1]
            trace.settle_note = (f"t = Euler step t+1 of the graph (all units at once, as "
                                 f"`hopfield.settle` runs a continuous net); {why}; the energy is its "
                                 "quadratic part only, as the engine reports it, so it need not fall at every step")
        trace._backward(net, inputs, targets, initial, masks)
        return trace

    def _backward(self, net, inputs, targets, initial, masks=None) -> None:
        if not targets:
            self.backward_error = ("no output node with a target: nothing to differentiate"
                                   if not self.hopfield else
                                   "a Hopfield network settles to a fixed point: it has no loss "
                                   "to differentiate")
            return
        trace_fn = getattr(net, "backward_trace", None)
        if trace_fn is None:
            self.backward_error = ("gradient norms per node and step need the engine's "
                                   "net.backward_trace (d loss / d v_n(t)); not there yet")
            return
        try:
            self.loss, _ = net.loss_and_grad(inputs, targets, initial=initial or None,
                                             mask=masks or None)
            grads = trace_fn(inputs, targets, initial=initial or None, mask=masks or None)
        except Exception as err:  # shown, never a crash
            self.backward_error = f"backward failed: {type(err).__name__}: {err}"
            return
        if masks:
            counted = np.flatnonzero(np.any([np.asarray(m)[0] != 0 for m in masks.values()], axis=0))
            if not len(counted):
                self.backward_note = (f"the data's mask counts no step in 0..{self.steps - 1}: "
                                      "the loss is 0 here; raise T to reach the counted steps")
            elif len(counted) < self.steps:
                where = (f"t = {counted[0]}" if len(counted) == 1 else
                         f"{len(counted)} steps, t = {counted[0]}..{counted[-1]}")
                self.backward_note = f"the loss counts at {where} only (the data's mask)"
        self.grads, self.grad_norms = {}, {}
        for n in self.order:                         # primitive nodes (blocks repeat their h)
            if n not in grads:
                continue
            g = np.asarray(grads[n])[0]                                           # (T, size)
            self.grads[n] = g
            self.grad_norms[n] = np.array([np.linalg.norm(g[t]) for t in range(len(g))],
                                          dtype=float)                            # (T,)

    def at(self, node, t: int) -> np.ndarray:
        """The value of ``node`` at step ``t`` (what the screen shows)."""
        return self.values[node][t]

    def grad_norm(self, node, t: int) -> float | None:
        """``|d loss / d v_node(t)|`` for the sample (what backward mode shows)."""
        if self.grad_norms is None or node not in self.grad_norms:
            return None
        return float(self.grad_norms[node][t])
