"""A call's arrays, checked and arranged: what a user passes to ``forward``,
``loss_and_grad`` and the training entry points, as the executor reads it
(time-major), or a DataError naming the argument and what is wrong."""

from __future__ import annotations

import numpy as np

from .. import arguments as arg
from .. import budget
from ..errors import DataError, suggest
from ..tokens import one_hot


def checked_array(net, where: str, value, ndim: int, dtype=None) -> np.ndarray:
    """``value`` as an ``ndim``-d array of ``dtype`` (the network's by default), or a
    DataError naming ``where``."""
    dtype = dtype or net.dtype
    if type(value) is np.ndarray and value.dtype == dtype:   # the training loop's arrays: nothing to convert
        arr = value
    else:
        arr = arg.real_array(where, value).astype(dtype, copy=False)
    if arr.ndim != ndim:
        layout = "(batch, time, size)" if ndim == 3 else "(batch, size)" if ndim == 2 else "(batch, time)"
        raise DataError(f"{where}: expected a {ndim}-d array {layout}, got shape {arr.shape}")
    return arr

def prepare_inputs(net, inputs, initial, steps, targets=None):
    """Check inputs and initial states; return time-major inputs, initial, T, B."""
    inputs = arg.mapping("inputs", inputs, "{input node: array (batch, time, size)}")
    names = net._role_nodes("input")
    for key in inputs:
        if key not in names:
            role = " (it is not an input node)" if key in net.graph else suggest(key, names)
            raise DataError(f"inputs: unknown input {key!r}{role}; this network's inputs are "
                            f"{', '.join(map(repr, names)) or 'none'}")
    missing = [n for n in names if n not in inputs]
    if missing:
        raise DataError(f"inputs: missing {', '.join(map(repr, missing))} (shape (batch, time, "
                        f"{net.size(missing[0])}))")
    xs, T, B = {}, None, None
    for n in names:
        value = inputs[n]
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and len(shape) == 3:   # an array: refused by its size before it is copied
            check_work(net, shape[1], shape[0])
        if net.primitive.nodes[n].encoding == "one_hot" and np.ndim(value) == 2:   # tokens (B, T)
            check_work(net, np.shape(value)[1], np.shape(value)[0])
            value = one_hot("inputs", n, np.asarray(value), net.size(n), net.dtype)
        arr = checked_array(net, f"inputs[{n!r}]", value, 3)
        if arr.shape[2] != net.size(n):
            raise DataError(f"inputs[{n!r}]: node {n!r} has size {net.size(n)}, got arrays of size "
                            f"{arr.shape[2]} (shape {arr.shape})")
        if B is not None and arr.shape[:2] != (B, T):
            raise DataError(f"inputs[{n!r}]: shape {arr.shape} disagrees with the other inputs' "
                            f"(batch, time) = {(B, T)}")
        B, T = arr.shape[:2]
        if not all_finite(arr):
            raise DataError(f"inputs[{n!r}]: NaN or infinite value at (batch, time, unit) = {first_bad(arr)}")
        xs[n] = np.ascontiguousarray(arr.transpose(1, 0, 2))
    if steps is not None:
        steps = arg.integer("steps", steps)
        if T is not None and steps != T:
            raise DataError(f"steps={steps} disagrees with the inputs' length T={T}")
        T = int(steps)
    initial = dict(arg.mapping("initial", initial, "{node: array (batch, size)}"))
    for n, value in list(initial.items()):
        node = net.blocks.get(n, n)
        if node not in net.graph:
            raise DataError(f"initial: unknown node {n!r}{suggest(n, net.graph.nodes)}")
        arr = checked_array(net, f"initial[{n!r}]", value, 2)
        if arr.shape[1] != net.size(node):
            raise DataError(f"initial[{n!r}]: node has size {net.size(node)}, got shape {arr.shape}")
        if B is not None and arr.shape[0] != B:
            raise DataError(f"initial[{n!r}]: batch {arr.shape[0]} disagrees with the inputs' batch {B}")
        B = arr.shape[0]
        if not np.all(np.isfinite(arr)):
            raise DataError(f"initial[{n!r}]: NaN or infinite values")
        del initial[n]
        initial[node] = arr
        if n in net.blocks:   # a block's state is its h and c
            c = f"{n}/c"
            if c in net.graph and c not in initial:
                initial[c] = arr
    if T is None:
        if targets:
            first = next(iter(targets.values()))
            T = int(np.shape(first)[1]) if np.ndim(first) == 3 else None
        if T is None:
            raise DataError("this network has no input nodes: pass steps=T to say how many steps to run")
    if B is None:
        B = int(np.shape(next(iter(targets.values())))[0]) if targets else 1
    check_work(net, T, B)
    return xs, initial, T, B

def check_work(net, T: int, B: int) -> None:
    """DataError, before anything is allocated, when running ``B`` sequences
    of ``T`` steps would need more memory than ``memory_limit`` (``budget.limit()`` at build)."""
    need = budget.estimate(net, T, B)
    if need > net.memory_limit:   # the message is made only then: this runs at every call
        budget.check(need, f"running {B} sequences of {T} steps", "use smaller batches or fewer steps (or truncate)")

def prepare_targets(net, targets, mask, T, B, any_node=False):
    """Check targets (output nodes', or any node's with ``any_node``) and masks;
    return them time-major: ({node: (T, B, size)}, {node: (T, B)})."""
    arg.mapping("targets", targets, "{output node: array (batch, time, size)}")
    if not targets:
        raise DataError("targets: expected a dict {output node: array (batch, time, size)}, got no targets")
    outputs = net._role_nodes("output")
    ys, ws = {}, {}
    for key, value in targets.items():
        node = net.blocks.get(key, key)
        if node not in net.graph:
            raise DataError(f"targets: unknown node {key!r}{suggest(key, outputs)}")
        if not any_node and node not in outputs:
            raise DataError(f"targets: {key!r} is not an output node (outputs: "
                            f"{', '.join(map(repr, outputs)) or 'none'})")
        y = checked_array(net, f"targets[{key!r}]", value, 3)
        if y.shape != (B, T, net.size(node)):
            hint = ""
            if y.shape[0] == B and y.shape[1] == 1 and T > 1:
                hint = (f"; a target for the last step only still needs all {T} steps: put it at "
                        f"[:, -1] and pass mask={{{key!r}: m}} with m (batch, time) 1 at the last step "
                        f"(train.loss_on: last does this in a spec)")
            raise DataError(f"targets[{key!r}]: expected shape {(B, T, net.size(node))}, got {y.shape}{hint}")
        if not all_finite(y):
            raise DataError(f"targets[{key!r}]: NaN or infinite value at (batch, time, unit) = {first_bad(y)}")
        ys[node] = y.transpose(1, 0, 2)   # a view: losses only read it (a copy costs T*B*size)
    for key, value in arg.mapping("mask", mask, "{output node: array (batch, time)}").items():
        node = net.blocks.get(key, key)
        if node not in ys:
            raise DataError(f"mask: {key!r} has no targets")
        m = checked_array(net, f"mask[{key!r}]", value, 2)
        if m.shape != (B, T):
            raise DataError(f"mask[{key!r}]: expected shape {(B, T)}, got {m.shape}")
        if not all_finite(m):
            raise DataError(f"mask[{key!r}]: NaN or infinite value at (batch, time) = {first_bad(m)}")
        if m.min(initial=0.0) < 0 or m.max(initial=0.0) > 1:
            raise DataError(f"mask[{key!r}]: values must lie in [0, 1] (1 where the loss counts, 0 where "
                            f"it does not), got {m.min():g} .. {m.max():g}")
        ws[node] = np.ascontiguousarray(m.T)
    return ys, ws

def batch_major(net, values: dict) -> dict:
    """The executor's values {node: Var (T, B, size)} as the user reads them,
    {node: (B, T, size)}, a block's under its own name too."""
    out = {n: np.ascontiguousarray(v.value.transpose(1, 0, 2)) for n, v in values.items()}
    for block, h in net.blocks.items():
        out[block] = out[h]
    return out


def all_finite(arr: np.ndarray) -> bool:
    """No NaN or infinity in ``arr``.  Up to 2**20 elements, ``isfinite(arr).all()``
    (half the time of a pairwise sum and its errstate; its bool temporary is small).
    Above, a finite sum proves it in one pass with no temporary (NaN and inf
    propagate); a non-finite sum may be overflow, so the elementwise check decides then."""
    if arr.size <= 1 << 20:
        return bool(np.isfinite(arr).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.all(np.isfinite(arr)))


def first_bad(arr: np.ndarray) -> tuple:
    """The index of the first NaN or infinity in ``arr``, as plain ints (for messages)."""
    return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
