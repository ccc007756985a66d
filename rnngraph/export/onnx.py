"""ONNX export: a built network as an ONNX model that runs on any batch size and length.

The model is a printer of the network's plan (``net.plan``), in the same
stages the executor runs:

- inputs: every input node ``(N, T, size)`` and ``<node>.init`` ``(N, size)``
  for every node with ``init: input``;
- inside, values are time-major ``(T, N, size)``: an input stage transposes,
  a ``parallel`` stage computes one node over the whole sequence at once, a
  ``recurrent`` stage is one ``Scan`` whose body computes one time step of
  the component's nodes in the plan's order.  Edges entering a component
  from outside are computed over the whole sequence before its ``Scan`` and
  enter it as scan inputs (hoisted, as in the executor);
- outputs: every output node ``(N, T, size)``.

Delays: an edge of delay ``d`` outside a loop reads its source shifted by
``d`` steps along time, padded with the source's initial state.  Inside a
``Scan``, each node read by a delayed edge carries its last ``D`` values as a
scan state ``(D, N, size)`` (oldest first), ``D`` its largest delay there.  A
component whose delays are negative (it reads the future) scans backwards:
every scan input and output runs in reverse, so the same state reads
``v(t + d)``.

Parameters are initializers named like ``net.params`` (``x->hidden``,
``hidden.bias``, ``trace.init``), holding ``net.params``' values; a
constrained weight (``symmetric``, ``zero_diagonal``) is stored as the
parameter and constrained by ops, as the engine does.  Tensor names carry the
graph's names: ``hidden.a`` and ``hidden.v`` are a node's pre-activation and
value over the sequence, ``hidden.v@t`` its value inside a step.

Hopfield-style networks with no input node (``hopfield.memory_edge``) export
their settling: synchronous updates for ``dynamics.sweeps`` sweeps from the
cue ``<node>.init``; the one output is the settled state node ``(N, size)``.
Any other network without an input node is refused (nothing would say the
sequence length).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..activations import LEAKY_SLOPE
from ..arguments import integer
from ..errors import DataError
from ..io import atomic_write

OPSET = 17
INT64_MAX = np.iinfo(np.int64).max


def _onnx():
    try:
        import onnx
    except ImportError:
        raise DataError("ONNX export needs the onnx package: pip install 'rnngraph[onnx]'") from None
    return onnx


# --------------------------------------------------------------------------- building graphs

class GraphWriter:
    """The ops, initializers and names of one ONNX graph (the model's, or a Scan body).

    ``op`` appends a node and returns its output's name; names are unique
    across the model (``names`` is shared with every body made by ``body()``).
    """

    def __init__(self, onnx, dtype: np.dtype, names: set | None = None):
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.names = set() if names is None else names
        self.constants: dict = {}          # (name, dtype, shape, bytes) -> initializer: one per value

    def body(self) -> "GraphWriter":
        return GraphWriter(self.onnx, self.dtype, self.names)

    def fresh(self, name: str) -> str:
        """``name``, or ``name#2``, ``name#3``… when taken."""
        candidate, k = name, 1
        while candidate in self.names:
            k += 1
            candidate = f"{name}#{k}"
        self.names.add(candidate)
        return candidate

    def op(self, op_type: str, inputs: list, name: str, reserved: bool = False, **attrs) -> str:
        """Append an op; its output is named ``name`` (made unique), or exactly
        ``name`` when ``reserved`` (a name kept aside with ``names.add``)."""
        out = name if reserved else self.fresh(name)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def constant(self, name: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (in the model's float dtype unless
        ``dtype``); asking again for the same name and value gives the same one."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = (name, array.dtype.str, array.shape, array.tobytes())
        if key in self.constants:
            return self.constants[key]
        out = self.constants[key] = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, out))
        return out

    def ints(self, name: str, values) -> str:
        return self.constant(name, np.asarray(values, dtype=np.int64), np.int64)

    def value_info(self, name: str, shape: list):
        return self.onnx.helper.make_tensor_value_info(name, self.elem, shape)

    def graph(self, name: str, inputs: list, outputs: list):
        return self.onnx.helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)


class Shapes:
    """The run's sizes as tensors of the model graph: ``batch`` ([N], int64),
    ``steps`` ([T], int64) and ``step_index`` (T,), the step numbers 0..T-1, which
    every Scan takes as a scan input so that it runs T iterations even when
    nothing else enters the component."""

    def __init__(self, g: GraphWriter, batch_source: str, steps: str | int):
        shape = g.op("Shape", [batch_source], f"{batch_source}.shape")
        self.batch = g.op("Slice", [shape, g.ints("0", [0]), g.ints("1", [1])], "N")
        if isinstance(steps, int):
            self.steps = g.ints("T", [steps])
        else:
            if steps != batch_source:
                shape = g.op("Shape", [steps], f"{steps}.shape")
            self.steps = g.op("Slice", [shape, g.ints("1", [1]), g.ints("2", [2])], "T")
        self.scalar_steps = g.op("Squeeze", [self.steps, g.ints("axes", [0])], "T.scalar")
        zero, one = g.constant("zero", 0, np.int64), g.constant("one", 1, np.int64)
        self.step_index = g.op("Range", [zero, self.scalar_steps, one], "t")


# --------------------------------------------------------------------------- the network's pieces

def _one_op(op_type: str):
    return lambda g, a, out: g.op(op_type, [a], out)


def _leaky_relu(g, a, out):          # not LeakyRelu: onnxruntime holds its alpha as a float32
    return g.op("Where", [g.op("Greater", [a, g.constant("zero", 0.0)], f"{out}.positive"), a,
                          g.op("Mul", [a, g.constant("leaky_slope", LEAKY_SLOPE)], f"{out}.leak")], out)


def _softplus(g, a, out):            # log(1 + exp(a)) = max(a, 0) + log(1 + exp(-|a|)), never overflows
    small = g.op("Exp", [g.op("Neg", [g.op("Abs", [a], f"{out}.|a|")], f"{out}.-|a|")], f"{out}.exp")
    tail = g.op("Log", [g.op("Add", [g.constant("one", 1.0), small], f"{out}.1+exp")], f"{out}.log")
    return g.op("Add", [g.op("Relu", [a], f"{out}.relu"), tail], out)


def _sign(g, a, out):                # +1 where a >= 0 (ONNX's Sign gives 0 at 0)
    return g.op("Where", [g.op("Less", [a, g.constant("zero", 0.0)], f"{out}.negative"),
                          g.constant("minus_one", -1.0), g.constant("one", 1.0)], out)


def _step(g, a, out):
    return g.op("Where", [g.op("Greater", [a, g.constant("zero", 0.0)], f"{out}.positive"),
                          g.constant("one", 1.0), g.constant("zero", 0.0)], out)


ACTIVATION_OPS = {
    # name in activations.py -> (writer, a, out name) -> v: the same function as ONNX ops
    "identity": _one_op("Identity"),
    "sigmoid": _one_op("Sigmoid"),
    "tanh": _one_op("Tanh"),
    "relu": _one_op("Relu"),
    "exp": _one_op("Exp"),
    "softmax": lambda g, a, out: g.op("Softmax", [a], out, axis=-1),
    "leaky_relu": _leaky_relu,
    "softplus": _softplus,
    "sign": _sign,
    "step": _step,
    "one_minus": lambda g, a, out: g.op("Sub", [g.constant("one", 1.0), a], out),
    "square": lambda g, a, out: g.op("Mul", [a, a], out),
}


def _activation(g: GraphWriter, name: str, a: str, out: str) -> str:
    """``v = f(a)`` with ONNX ops, exactly as activations.py defines ``f``."""
    if name not in ACTIVATION_OPS:
        raise DataError(f"ONNX export: activation {name!r} has no ONNX form yet")
    return ACTIVATION_OPS[name](g, a, out)


def _weights(g: GraphWriter, net, params: dict) -> dict:
    """edge key -> the tensor its contribution multiplies by: a dense edge's
    effective weight transposed ``(from, to)`` (constraints applied as ops), a
    diagonal or scalar edge's parameter; none for identity edges.  ``params``:
    parameter name -> its initializer."""
    weights = {}
    for u, v, key, d in net.graph.edges(keys=True, data=True):
        if d["param"] is None:
            continue
        w = params[d["param"]]
        if d["weight"] == "dense":
            if "symmetric" in d["constraints"]:         # (W + W^T) / 2
                w = g.op("Mul", [g.op("Add", [w, g.op("Transpose", [w], f"{key}.T")], f"{key}+T"),
                                 g.constant("half", 0.5)], f"{key}.symmetric")
            if "zero_diagonal" in d["constraints"]:
                size = net.graph.nodes[v]["size"]
                w = g.op("Mul", [w, g.constant(f"{key}.off_diagonal", 1.0 - np.eye(size))], f"{key}.zero_diagonal")
            w = g.op("Transpose", [w], f"{key}.weight^T")
        weights[key] = w
    return weights


def _edge(g: GraphWriter, key: str, kind: str, weight: str | None, value: str, suffix: str) -> str:
    """One edge's contribution ``c_e = W_e(v)``: dense ``v W^T``, diagonal and
    scalar elementwise, identity ``v``.  ``value`` (..., N, from.size)."""
    if kind == "dense":
        return g.op("MatMul", [value, weight], f"{key}{suffix}")
    if kind in ("diagonal", "scalar"):
        return g.op("Mul", [value, weight], f"{key}{suffix}")
    return value


def _combine(g: GraphWriter, node: str, data: dict, parts: list, zeros, bias: str | None, suffix: str) -> str:
    """``a_n``: the sum of the contributions plus the bias (``sum``), or their
    elementwise product (``product``).  ``zeros()`` makes a zero ``a`` for a sum
    node that nothing feeds."""
    op = "Mul" if data["combine"] == "product" else "Add"
    if not parts:
        parts = [zeros()]
    a = parts[0]
    for k, c in enumerate(parts[1:], 1):
        a = g.op(op, [a, c], f"{node}.a{suffix}.{k}")
    if bias is not None:
        a = g.op("Add", [a, bias], f"{node}.a{suffix}.bias")
    return g.op("Identity", [a], f"{node}.a{suffix}")


def _node(g: GraphWriter, node: str, data: dict, parts: list, zeros, bias: str | None, suffix: str) -> str:
    """``v_n = f_n(a_n)``; returns the value's name ``<node>.v<suffix>``."""
    a = _combine(g, node, data, parts, zeros, bias, suffix)
    return _activation(g, data["activation"], a, f"{node}.v{suffix}")


class InitialStates:
    """node -> its state before the sequence ``(N, size)``, made when first asked
    for: the model input ``<node>.init`` (``init: input``), its trainable
    ``<node>.init`` parameter, or its constant ``init``, broadcast over the batch."""

    def __init__(self, g: GraphWriter, net, shapes: Shapes, params: dict, fed: dict):
        self.g, self.net, self.shapes, self.params = g, net, shapes, params
        self.states = dict(fed)

    def __getitem__(self, n: str) -> str:
        if n not in self.states:
            g, data = self.g, self.net.graph.nodes[n]
            size = data["size"]
            value = self.params[data["init_param"]] if data["init_param"] else \
                g.constant(f"{n}.init", np.broadcast_to(np.asarray(data["init"].value, dtype=g.dtype), (size,)))
            shape = g.op("Concat", [self.shapes.batch, g.ints(f"{n}.size", [size])], f"{n}.init.shape", axis=0)
            self.states[n] = g.op("Expand", [value, shape], f"{n}.initial")
        return self.states[n]


def _history(g: GraphWriter, node: str, initial: str, depth: int) -> str:
    """The initial state repeated ``depth`` times along time: ``(depth, N, size)``."""
    first = g.op("Unsqueeze", [initial, g.ints("axes", [0])], f"{node}.initial@1")
    return g.op("Expand", [first, g.ints(f"{node}.repeat", [depth, 1, 1])], f"{node}.history{depth}")


def _shifted(g: GraphWriter, source: str, values: str, initial: str, delay: int) -> str:
    """``v_s(t - delay)`` for every t, ``(T, N, size)``: the sequence moved by
    ``delay`` steps (either sign), the initial state filling the steps outside it."""
    if delay == 0:
        return values
    pad = _history(g, source, initial, abs(delay))
    if delay > 0:       # initial states, then v(0) .. v(T-1-d)
        joined = g.op("Concat", [pad, values], f"{source}.v.delayed{delay}", axis=0)
        return g.op("Slice", [joined, g.ints("0", [0]), g.ints(f"-{delay}", [-delay]), g.ints("0", [0])],
                    f"{source}.v(t-{delay})")
    joined = g.op("Concat", [values, pad], f"{source}.v.ahead{-delay}", axis=0)
    return g.op("Slice", [joined, g.ints(f"{-delay}", [-delay]), g.ints("end", [INT64_MAX]), g.ints("0", [0])],
                f"{source}.v(t+{-delay})")


# --------------------------------------------------------------------------- stages

@dataclass
class Exported:
    """What the stages share: the network, the model graph's sizes, every
    parameter's initializer (``params``), each edge's weight tensor
    (``weights``), the initial states, and each node's values ``(T, N, size)``
    as the stages compute them."""

    net: object
    shapes: Shapes
    params: dict
    weights: dict
    initial: InitialStates
    values: dict = field(default_factory=dict)
    shifted: dict = field(default_factory=dict)      # (node, delay) -> v(t - delay), made once

    def bias(self, node: str) -> str | None:
        name = self.net.graph.nodes[node]["bias"]
        return self.params[name] if name else None


def _sequence_contributions(g: GraphWriter, m: Exported, node: str) -> list:
    """The contributions of the plan's sequence edges into ``node``, each ``(T, N, size)``."""
    parts = []
    for group, k in m.net.plan.consumers[node]:
        e = group.edges[k]
        if (e.source, e.delay) not in m.shifted:
            m.shifted[e.source, e.delay] = _shifted(g, e.source, m.values[e.source], m.initial[e.source], e.delay)
        parts.append(_edge(g, e.name, e.weight, m.weights.get(e.name), m.shifted[e.source, e.delay], ".c"))
    return parts


def _zeros(g: GraphWriter, node: str, leading: list, size: int):
    """A function making zeros of shape (*leading, size), ``leading`` int64 [k] tensors."""
    def make():
        shape = g.op("Concat", leading + [g.ints(f"{node}.size", [size])], f"{node}.zeros.shape", axis=0)
        zero = g.onnx.helper.make_tensor("zero", g.elem, [1], [0.0])
        return g.op("ConstantOfShape", [shape], f"{node}.zeros", value=zero)
    return make


def _parallel_stage(g: GraphWriter, m: Exported, node: str) -> None:
    """One node on no cycle, over the whole sequence at once."""
    data = m.net.graph.nodes[node]
    parts = _sequence_contributions(g, m, node)
    m.values[node] = _node(g, node, data, parts, _zeros(g, node, [m.shapes.steps, m.shapes.batch], data["size"]),
                           m.bias(node), "")


def _direction(stage) -> int:
    """+1 for a component whose delays are positive (runs forward in time), -1 for negative."""
    delays = [e.delay for group in stage.inner for e in group.edges if e.delay != 0]
    return -1 if delays and delays[0] < 0 else 1


def _step_body(g: GraphWriter, m: Exported, stage, depth: dict, outside: list):
    """The Scan body of a recurrent component: one time step of its nodes, in the plan's order.

    Inputs: each carried node's last ``depth[n]`` values ``(D, N, size)``
    (oldest first), the step index, each node in ``outside``'s contributions
    from outside the component ``(N, size)``.  Outputs: the carried histories
    moved on by one step, then each node's value ``(N, size)``."""
    data = m.net.graph.nodes
    inner = [e for group in stage.inner for e in group.edges]
    carried = [n for n in stage.nodes if depth[n] > 0]
    body = g.body()
    history = {n: body.fresh(f"{n}.history@t-1") for n in carried}
    step = body.fresh("t@step")
    from_outside = {n: body.fresh(f"{n}.outside@t") for n in outside}
    now = {}
    for n in stage.nodes:
        parts = [from_outside[n]] if n in from_outside else []
        for e in inner:
            if e.target != n:
                continue
            if e.delay == 0:                   # computed earlier in this step
                read = now[e.source]
            else:
                index = body.ints(f"{e.source}.back{abs(e.delay)}", depth[e.source] - abs(e.delay))
                read = body.op("Gather", [history[e.source], index], f"{e.source}.v@t{-e.delay:+d}", axis=0)
            parts.append(_edge(body, e.name, e.weight, m.weights.get(e.name), read, ".c@t"))
        now[n] = _node(body, n, data[n], parts, _zeros(body, n, [m.shapes.batch], data[n]["size"]), m.bias(n), "@t")
    moved = {}
    for n in carried:                          # drop the oldest value, append this step's
        newest = body.op("Unsqueeze", [now[n], body.ints("axes", [0])], f"{n}.v@t.row")
        kept = body.op("Slice", [history[n], body.ints("1", [1]), body.ints("end", [INT64_MAX]),
                                 body.ints("0", [0])], f"{n}.history.kept")
        moved[n] = body.op("Concat", [kept, newest], f"{n}.history@t", axis=0)
    return body.graph(
        "loop:" + ",".join(stage.nodes),
        [body.value_info(history[n], [depth[n], "N", data[n]["size"]]) for n in carried]
        + [body.onnx.helper.make_tensor_value_info(step, body.onnx.TensorProto.INT64, [])]
        + [body.value_info(from_outside[n], ["N", data[n]["size"]]) for n in outside],
        [body.value_info(moved[n], [depth[n], "N", data[n]["size"]]) for n in carried]
        + [body.value_info(now[n], ["N", data[n]["size"]]) for n in stage.nodes])


def _recurrent_stage(g: GraphWriter, m: Exported, stage) -> None:
    """A recurrent component as one ``Scan`` over ``_step_body``.

    Its edges from outside are computed over the whole sequence first and
    enter as scan inputs; a node read with delay ``d`` inside carries its last
    ``D`` values (``D`` its largest such ``|d|``), starting from its initial
    state.  A component with negative delays scans every input and output in
    reverse.  onnxruntime's Scan refuses zero iterations, so an ``If`` runs it
    only when T > 0 (else every value is empty, ``(0, N, size)``)."""
    data = m.net.graph.nodes
    inner = [e for group in stage.inner for e in group.edges]
    depth = {n: max([abs(e.delay) for e in inner if e.source == n], default=0) for n in stage.nodes}
    carried = [n for n in stage.nodes if depth[n] > 0]
    outside = {}
    for n in stage.nodes:
        parts = _sequence_contributions(g, m, n)
        if parts:
            outside[n] = _combine(g, f"{n}.outside", data[n], parts, None, None, "")
    body = _step_body(g, m, stage, depth, list(outside))
    histories = [_history(g, n, m.initial[n], depth[n]) for n in carried]
    scan_inputs = [m.shapes.step_index] + list(outside.values())
    reverse = int(_direction(stage) < 0)

    run = g.body()
    scanned = [run.fresh(f"{n}.history@end") for n in carried] + [run.fresh(f"{n}.v@scan") for n in stage.nodes]
    run.nodes.append(run.onnx.helper.make_node(
        "Scan", histories + scan_inputs, scanned, name=run.fresh(body.name), body=body,
        num_scan_inputs=len(scan_inputs), scan_input_directions=[reverse] * len(scan_inputs),
        scan_output_directions=[reverse] * len(stage.nodes)))
    empty = g.body()
    nothing = [_zeros(empty, f"{n}.empty", [empty.ints("no_steps", [0]), m.shapes.batch], data[n]["size"])()
               for n in stage.nodes]
    sequences = [["T", "N", data[n]["size"]] for n in stage.nodes]
    then_branch = run.graph(f"{body.name} (T > 0)", [], [run.value_info(v, shape)
                                                         for v, shape in zip(scanned[len(carried):], sequences)])
    else_branch = empty.graph(f"{body.name} (T = 0)", [], [empty.value_info(v, shape)
                                                           for v, shape in zip(nothing, sequences)])
    outputs = [g.fresh(f"{n}.v") for n in stage.nodes]
    any_steps = g.op("Greater", [m.shapes.scalar_steps, g.constant("zero", 0, np.int64)], "T>0")
    g.nodes.append(g.onnx.helper.make_node("If", [any_steps], outputs, name=g.fresh(f"if T > 0: {body.name}"),
                                           then_branch=then_branch, else_branch=else_branch))
    for n, out in zip(stage.nodes, outputs):
        m.values[n] = out


# --------------------------------------------------------------------------- the model

def _hopfield_state(net) -> str | None:
    """The state node when ``net`` is a Hopfield-style net with no input node
    (exported as its settling), else None."""
    from ..engine.hopfield import memory_edge
    if net.input_nodes:
        return None
    try:
        return memory_edge(net)[0]
    except DataError:
        return None


def _describe(net, settled: str | None, sweeps: int | None) -> str:
    """The model's doc string: where it came from and what it computes."""
    text = f"rnngraph network {net.spec.name!r}" + (f": {net.spec.description}" if net.spec.description else "")
    if settled:
        update = net.spec.dynamics.get("update", "async")
        text += (f"\nHopfield settling: {sweeps} synchronous updates from the cue; the output is the settled "
                 f"state of {settled!r}" + (f" (the spec asks for {update} updates)" if update != "sync" else ""))
    return text


def to_onnx(net, nodes: list | None = None, sweeps: int | None = None):
    """The ``onnx.ModelProto`` of ``net`` (module doc: inputs, outputs, naming).

    ``nodes``: the primitive nodes to output, ``(N, T, size)`` each (default:
    the output nodes).  ``sweeps``: for a Hopfield-style net, the number of
    synchronous updates (default: the spec's ``dynamics.sweeps``, else 100).
    Raises DataError for a network with no input node that is not
    Hopfield-style, or nothing to output."""
    onnx = _onnx()
    nodes = net.output_nodes if nodes is None else list(nodes)
    for n in nodes:
        if n not in net.graph:
            raise DataError(f"ONNX export: unknown node {n!r}")
    g = GraphWriter(onnx, net.dtype)
    data = net.graph.nodes
    settled = _hopfield_state(net)
    g.names.update([settled] if settled else nodes)     # the outputs' names are the nodes'
    inputs, fed = [], {}
    for n in net.input_nodes:
        inputs.append(g.value_info(g.fresh(n), ["N", "T", data[n]["size"]]))
    for n in net.graph.nodes:
        if data[n]["init"].kind == "input":
            fed[n] = g.fresh(f"{n}.init")
            inputs.append(g.value_info(fed[n], ["N", data[n]["size"]]))
    if not net.input_nodes and settled is None:
        raise DataError("ONNX export: this network has no input node, so nothing would give the model its "
                        "sequence length; add an input node (the export's inputs are the input nodes, (N, T, size))")
    if settled is None and not nodes:
        raise DataError("ONNX export: this network has no output node (role: output), so the model would compute "
                        "nothing; mark the nodes to export as outputs")
    if settled is not None and not fed:
        raise DataError(f"ONNX export: this Hopfield-style network has no node with `init: input`, so the model "
                        f"could not take a cue; give {settled!r} `init: input`")
    if settled is not None:
        sweeps = integer("to_onnx: sweeps", net.spec.dynamics.get("sweeps", 100) if sweeps is None else sweeps, 1)
        shapes = Shapes(g, fed.get(settled, next(iter(fed.values()))), sweeps)
    else:
        shapes = Shapes(g, net.input_nodes[0], net.input_nodes[0])
    params = {name: g.constant(name, value) for name, value in net.params.items()}
    m = Exported(net, shapes, params, _weights(g, net, params), InitialStates(g, net, shapes, params, fed))
    values = m.values
    for stage in net.plan.stages:
        if stage.kind == "input":
            n = stage.nodes[0]
            values[n] = g.op("Transpose", [n], f"{n}.v", perm=[1, 0, 2])
        elif stage.kind == "parallel":
            _parallel_stage(g, m, stage.nodes[0])
        else:
            _recurrent_stage(g, m, stage)
    if settled is not None:
        last = g.op("Gather", [values[settled], g.constant("last", -1, np.int64)], settled, reserved=True, axis=0)
        outputs = [g.value_info(last, ["N", data[settled]["size"]])]
    else:
        outputs = [g.value_info(g.op("Transpose", [values[n]], n, reserved=True, perm=[1, 0, 2]),
                                ["N", "T", data[n]["size"]]) for n in nodes]
    graph = g.graph(net.spec.name or "rnngraph", inputs, outputs)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="rnngraph", doc_string=_describe(net, settled, sweeps))
    model.ir_version = min(model.ir_version, 8)     # readable by onnxruntime >= 1.17
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net, spec, out_path) -> list:
    """Write ``to_onnx(net)`` to ``out_path`` atomically (the old file or the new,
    never half); returns notes for the user (a Hopfield spec's asynchronous
    updates exported as synchronous ones).

    Raises DataError when the file cannot be written."""
    model = to_onnx(net)
    notes = []
    update = spec.dynamics.get("update", "sync")
    if _hopfield_state(net) and update != "sync":
        notes.append(f"the model settles by synchronous updates, not the spec's {update} ones (docs/interop.md)")
    payload = model.SerializeToString()
    try:
        atomic_write(out_path, lambda fh: fh.write(payload), binary=True)
    except OSError as exc:
        raise DataError(f"{out_path}: cannot write the ONNX model ({exc.strerror or exc})") from None
    return notes
