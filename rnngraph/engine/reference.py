"""The reference interpreter: what a network computes, by definition.

For every vertex ``(n, t)`` of ``net.unroll(T)``, in topological order, it
applies the semantics of docs/spec-format.md literally, on ``(B, size)``
arrays with the generic autodiff ops::

    c_e(t) = W_e(v_s(t - d))      for each edge e = s -> n of delay d, where
                                  v_s(t - d) is s's initial state when t - d
                                  lies outside 0 .. T-1
    a_n(t) = sum_e c_e(t) + b_n   (combine: sum)
           | prod_e c_e(t)        (combine: product, elementwise)
    v_n(t) = activation_n(a_n(t))

With dropout masks (training), ``c_e(t) = W_e(m_e(t) * v_s(t - d))``: ``m_e``
is ``dropout_masks[e][:, t]`` for a delay-0 edge, ``dropout_masks[e]`` (one
per sequence) for a delayed one.

The arcs of the unrolled DAG give the reads inside the sequence; the edges
whose source time falls outside it read the initial state instead.

It reads only the primitive spec (``net.primitive``: nodes and edges, blocks
expanded), the unrolled DAG, ``net.params`` and numpy.  Initial states,
constraints, default biases, trainability and the losses are written out
here a second time, so the fast executor, which the tests compare with this
on every spec and on random graphs, is checked on all of them.  It is slow
on purpose: a few small ops per vertex and edge.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from . import autodiff as ad
from ..errors import DataError
from ..spec import Bias

LOSSES = ("mse", "bce", "cross_entropy")


# --------------------------------------------------------------------------- parameters

def _bias(node, incoming) -> Bias | None:
    """A node's bias: as written, else (by default) one for a ``sum`` node with a
    ``dense`` incoming edge.  Input and ``product`` nodes have none."""
    if node.role == "input" or node.combine == "product" or node.bias is False:
        return None
    if isinstance(node.bias, Bias):
        return node.bias
    return Bias() if any(e.weight == "dense" for e in incoming) else None


def _parameters(net) -> dict:
    """Every parameter the spec defines: name -> (shape, trainable).

    An edge's is named like the edge (``identity`` edges have none), a bias
    ``"<node>.bias"``, a trainable initial state ``"<node>.init"``.  Shapes:
    dense ``(to.size, from.size)``; diagonal, bias and init ``(size,)``; scalar ``()``."""
    spec = net.primitive
    size = {n.name: n.size for n in spec.nodes.values()}
    found = {}
    for e in spec.edges:
        if e.weight != "identity":
            shape = {"dense": (size[e.target], size[e.source]), "diagonal": (size[e.target],), "scalar": ()}
            found[e.name] = (shape[e.weight], e.trainable)
    for n in spec.nodes.values():
        bias = _bias(n, [e for e in spec.edges if e.target == n.name])
        if bias:
            found[f"{n.name}.bias"] = ((n.size,), bias.trainable)
    for n in spec.nodes.values():
        if n.init.trainable:
            found[f"{n.name}.init"] = ((n.size,), True)
    return found


def _leaves(net, tape) -> dict:
    """A Var per parameter from ``net.params``: on ``tape`` when trainable (and a
    tape is given), else a constant."""
    leaves = {}
    for name, (shape, trainable) in _parameters(net).items():
        if name not in net.params:
            raise DataError(f"net.params is missing {name!r}")
        value = np.asarray(net.params[name], dtype=net.dtype)
        if value.shape != shape:
            raise DataError(f"net.params[{name!r}] has shape {value.shape}, the network needs {shape}")
        leaves[name] = tape.param(value) if tape is not None and trainable else ad.const(value)
    return leaves


def _weight(edge, leaves) -> ad.Var | None:
    """The weight an edge applies: its parameter with the constraints applied as
    ops, so their gradients flow back to the parameter.  ``symmetric`` uses
    ``(W + W^T) / 2``; ``zero_diagonal`` uses ``W * (1 - I)`` (the two commute)."""
    if edge.weight == "identity":
        return None
    w = leaves[edge.name]
    if "symmetric" in edge.constraints:
        w = ad.scale(ad.add(w, ad.transpose(w)), 0.5)
    if "zero_diagonal" in edge.constraints:
        w = ad.mul(w, ad.const(1.0 - np.eye(w.shape[0], dtype=w.value.dtype)))
    return w


def _contribution(edge, w, v) -> ad.Var:
    """``c_e = W_e(v)`` for v (B, from.size): dense ``W v`` per row, diagonal and
    scalar elementwise, identity ``v`` itself."""
    if edge.weight == "dense":
        return ad.linear(v, w)               # v @ W^T
    if edge.weight in ("diagonal", "scalar"):
        return ad.mul(v, w)
    return v


# --------------------------------------------------------------------------- what the caller passes

def _array(where: str, value, shape: tuple, dtype) -> np.ndarray:
    """``value`` as an array of ``dtype`` whose shape matches ``shape``: its ints
    exactly, its names (``"batch"``) any length."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: not a numeric array ({exc})") from None
    if arr.ndim != len(shape) or any(isinstance(want, int) and got != want for got, want in zip(arr.shape, shape)):
        raise DataError(f"{where}: expected shape ({', '.join(map(str, shape))}), got {arr.shape}")
    return arr


def _block_states(net) -> dict:
    """block name -> the primitive nodes an ``initial`` under its name sets (its ``h``,
    and its ``c`` when it has one): a block's ``init`` is that of both."""
    nodes = net.primitive.nodes
    return {b.name: [n for n in (f"{b.name}/h", f"{b.name}/c") if n in nodes]
            for b in net.spec.nodes.values() if b.type}


def _problem(net, inputs, initial, steps, targets):
    """Check what the caller passed: returns inputs {node: (B, T, size)},
    initial states {primitive node: (B, size)}, T and B."""
    spec, dtype = net.primitive, net.dtype
    names = [n.name for n in spec.nodes.values() if n.role == "input"]
    inputs = {} if inputs is None else inputs
    if not isinstance(inputs, dict) or set(inputs) != set(names):
        got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise DataError(f"inputs: expected a dict with exactly the input nodes {names}, got {got}")
    xs = {n: _array(f"inputs[{n!r}]", inputs[n], ("batch", "time", spec.nodes[n].size), dtype) for n in names}
    if len({x.shape[:2] for x in xs.values()}) > 1:
        raise DataError(f"inputs: (batch, time) differ: {({n: x.shape[:2] for n, x in xs.items()})}")
    B, T = next(iter(xs.values())).shape[:2] if xs else (None, None)
    first_target = np.shape(next(iter(targets.values()))) if targets else ()
    if steps is not None:
        if T is not None and steps != T:
            raise DataError(f"steps={steps} disagrees with the inputs' length T={T}")
        T = steps
    if T is None and len(first_target) == 3:
        T = first_target[1]
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 0:
        raise DataError(f"steps: pass steps=T, an integer >= 0, where there are no inputs (got {T!r})")

    blocks, states = _block_states(net), {}
    for key, value in (initial or {}).items():
        if key not in spec.nodes and key not in blocks:
            raise DataError(f"initial: unknown node {key!r}")
        arr = _array(f"initial[{key!r}]", value, ("batch", spec.nodes[blocks.get(key, [key])[0]].size), dtype)
        for n in blocks.get(key, [key]):
            if key == n or n not in (initial or {}):     # a node's own entry wins over its block's
                states[n] = arr
    if B is None:
        B = next(iter(states.values())).shape[0] if states else first_target[0] if first_target else 1
    for n, arr in states.items():
        if arr.shape[0] != B:
            raise DataError(f"initial[{n!r}]: batch {arr.shape[0]}, the inputs' is {B}")
    return xs, states, int(T), int(B)


# --------------------------------------------------------------------------- the interpreter

def reference_values(net, inputs=None, initial=None, steps=None, tape=None, targets=None, dropout_masks=None):
    """Every node's pre-activation and value, ``{node: (A, V)}`` as Vars (T, B, size),
    computed vertex by vertex; and every parameter's Var, ``{name: Var}`` (on
    ``tape`` when trainable and a tape is given).

    ``inputs`` {input node: (B, T, size)}; ``initial`` {node or block: (B, size)}
    overrides the nodes' ``init``; ``steps`` gives T where there are no inputs;
    ``targets`` only tell T and the batch size where nothing else does;
    ``dropout_masks`` {edge: (B, T, from.size) for delay 0, (B, from.size) otherwise}."""
    xs, initial, T, B = _problem(net, inputs, initial, steps, targets)
    spec, dtype = net.primitive, net.dtype
    leaves = _leaves(net, tape)
    edges = {e.name: e for e in spec.edges}
    incoming = {n: [e for e in spec.edges if e.target == n] for n in spec.nodes}
    weights = {e.name: _weight(e, leaves) for e in spec.edges}
    biases = {n: leaves[f"{n}.bias"] for n, node in spec.nodes.items() if _bias(node, incoming[n])}
    states = {}
    dropout_masks = dropout_masks or {}

    def read(e, v, t):
        """What edge e reads at the target's step t: v, masked when e has a mask."""
        m = dropout_masks.get(e.name)
        if m is None:
            return v
        m = np.asarray(m, dtype)
        return ad.mul(v, ad.const(m[:, t] if e.delay == 0 else m))

    def initial_state(s) -> ad.Var:
        """v_s(t) for t outside 0 .. T-1: ``initial[s]``, else s's ``init`` (a number,
        a list, the trainable parameter ``"<s>.init"``); the same at every such t."""
        if s not in states:
            node = spec.nodes[s]
            if s in initial:
                states[s] = ad.const(initial[s])
            elif node.init.kind == "input":
                raise DataError(f"node {s!r} has `init: input`: its initial state must be supplied per "
                                f"sample, as initial={{{s!r}: array of shape (batch, {node.size})}}")
            elif node.init.trainable:
                states[s] = ad.broadcast(leaves[f"{s}.init"], (B, node.size))
            else:
                states[s] = ad.const(np.broadcast_to(np.asarray(node.init.value, dtype), (B, node.size)))
        return states[s]

    dag = net.unroll(T)
    A, V = {}, {}
    for vertex in nx.topological_sort(dag):
        n, t = vertex
        node = spec.nodes[n]
        if node.role == "input":
            A[vertex] = V[vertex] = ad.const(xs[n][:, t])
            continue
        parts = [_contribution(edges[name], weights[name], read(edges[name], V[source], t))   # arcs (s, t-d) -> (n, t)
                 for source, arc in dag.pred[vertex].items() for name in arc["edges"]]
        parts += [_contribution(e, weights[e.name], read(e, initial_state(e.source), t))
                  for e in incoming[n] if not 0 <= t - e.delay < T]
        if node.combine == "product":
            a = parts[0]
            for c in parts[1:]:
                a = ad.mul(a, c)
        else:
            a = ad.const(np.zeros((B, node.size), dtype))
            for c in parts:
                a = ad.add(a, c)
            if n in biases:
                a = ad.add(a, biases[n])
        A[vertex], V[vertex] = a, ad.activation(node.activation, a)
    out = {}
    for n, node in spec.nodes.items():
        if T == 0:
            empty = ad.const(np.zeros((0, B, node.size), dtype))
            out[n] = (empty, empty)
        else:
            out[n] = (ad.stack([A[(n, t)] for t in range(T)]), ad.stack([V[(n, t)] for t in range(T)]))
    return out, leaves


def reference_forward(net, inputs=None, initial=None, steps=None) -> dict:
    """Like ``net.forward``: every node's values {node: (B, T, size)}, and every
    block's output ``h`` under the block's name."""
    values, _ = reference_values(net, inputs, initial, steps)
    out = {n: v.value.transpose(1, 0, 2).copy() for n, (a, v) in values.items()}
    for block in _block_states(net):
        out[block] = out[f"{block}/h"]
    return out


# --------------------------------------------------------------------------- losses

def _log(x: ad.Var) -> ad.Var:
    return ad.apply(np.log(x.value), (x,), lambda g: (g / x.value,))


def _clip(x: ad.Var, lo: float, hi: float) -> ad.Var:
    """``x`` clipped into [lo, hi]; the clipped entries pass no gradient."""
    inside = (x.value > lo) & (x.value < hi)
    return ad.apply(np.clip(x.value, lo, hi), (x,), lambda g: (g * inside,))


def _output_loss(kind: str, v: ad.Var, y: np.ndarray, w: np.ndarray) -> ad.Var | None:
    """One output's loss, as docs/spec-format.md defines it: a mean over the counted
    targets, each element for ``mse`` and ``bce``, each (batch, time) position for
    ``cross_entropy``::

        mse           = mean((v - y)^2)
        bce           = mean(-(y log p + (1 - y) log(1 - p)))   p = v clipped into [1e-7, 1 - 1e-7]
        cross_entropy = mean(-sum_k y_k log p_k)                p = v clipped to at least 1e-12

    The clipping keeps the loss of an output that is not a probability (bce on an
    identity output) finite; it changes nothing on a sigmoid or softmax output
    whose values stay within 1e-7 of neither 0 nor 1.

    v (T, B, size), y (T, B, size), w (T, B): each position's weight (1 where it
    counts, 0 where not).  Returns None when nothing counts."""
    counted = float(w.sum())
    if counted == 0:
        return None
    if kind == "mse":
        d = ad.sub(v, ad.const(y))
        each, count = ad.mul(d, d), counted * v.shape[-1]
    elif kind == "bce":
        p = _clip(v, 1e-7, 1 - 1e-7)
        one_minus_p = ad.sub(ad.const(np.ones_like(p.value)), p)
        each = ad.neg(ad.add(ad.mul(ad.const(y), _log(p)), ad.mul(ad.const(1 - y), _log(one_minus_p))))
        count = counted * v.shape[-1]
    else:   # cross_entropy: the sum over units of each position, then the mean over positions
        each, count = ad.neg(ad.mul(ad.const(y), _log(_clip(v, 1e-12, np.inf)))), counted
    return ad.scale(ad.sum_all(ad.mul(each, ad.const(w[..., None]))), 1.0 / count)


def reference_loss_and_grad(net, inputs, targets, loss=None, initial=None, mask=None, steps=None,
                            any_node=False, dropout_masks=None):
    """Like ``net.loss_and_grad``: the loss and {trainable parameter: dL/dparam}.

    ``targets`` {output node or block: (B, T, size)} (any node with
    ``any_node``); ``mask`` {node: (B, T)}, 1 where the loss counts.
    With several outputs the loss is the sum of each output's."""
    kind = loss or net.spec.train.get("loss", "mse")
    if kind not in LOSSES:
        raise DataError(f"loss: unknown loss {kind!r}; known: {', '.join(LOSSES)}")
    if not isinstance(targets, dict) or not targets:
        raise DataError("targets: expected a dict {output node: array (batch, time, size)}")
    tape = ad.Tape()
    values, leaves = reference_values(net, inputs, initial, steps, tape=tape, targets=targets,
                                      dropout_masks=dropout_masks)
    spec, dtype = net.primitive, net.dtype
    T, B = values[next(iter(spec.nodes))][1].shape[:2]
    blocks = {b: f"{b}/h" for b in _block_states(net)}
    mask = mask or {}
    terms = []
    for key, y in targets.items():
        n = blocks.get(key, key)
        if n not in spec.nodes or not (any_node or spec.nodes[n].role == "output"):
            raise DataError(f"targets: {key!r} is not an output node")
        y = _array(f"targets[{key!r}]", y, (B, T, spec.nodes[n].size), dtype).transpose(1, 0, 2)
        w = np.ones((B, T), dtype) if key not in mask else _array(f"mask[{key!r}]", mask[key], (B, T), dtype)
        term = _output_loss(kind, values[n][1], y, w.T)
        if term is not None:
            terms.append(term)
    for key in mask:
        if key not in targets:
            raise DataError(f"mask: {key!r} has no targets")
    total = ad.const(np.zeros((), dtype))
    for term in terms:
        total = ad.add(total, term)
    if total.needs_grad:
        tape.backward(total)
    grads = {}
    for name, (shape, trainable) in _parameters(net).items():
        if trainable:
            g = leaves[name].grad
            grads[name] = np.zeros(shape, dtype) if g is None else np.asarray(g, dtype).reshape(shape)
    return float(total.value), grads
