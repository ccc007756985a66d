"""The fast executor against the reference interpreter and finite differences.

On every spec in specs/ and on random valid graphs (hypothesis): the planned
executor (SCC schedule, hoisted and fused edges, scan loops) gives the same
values and gradients as the vertex-by-vertex interpreter of the unrolled DAG,
and both agree with central differences.
"""

import os
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.activations import ACTIVATIONS
from rnngraph.engine.gradcheck import gradcheck, random_problem
from rnngraph.engine.reference import reference_forward, reference_loss_and_grad

SPECS = sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True, params=["small-stage", "large-stage"])
def stage_layout(request):
    """Every test here runs twice: with the small stages' loop layout (activation
    derivatives for the whole sequence before the backward loop) and with the one of
    stages above runtime.LARGE_STAGE_BYTES (derivatives per step inside it; in a training
    step, packs seeded by their hoisted input).  test_scan_layouts imports it too."""
    from rnngraph.engine.compile import runtime as scan
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "large-stage":
            mp.setattr(scan, "LARGE_STAGE_BYTES", 0)
        yield request.param


def compare(net, T=4, B=2, seed=0, fd_entries=4, every_initial=False):
    """``every_initial``: pass an initial state for every node, so that ``initial``
    overrides fixed and trainable inits too (not only supplies ``init: input``)."""
    inputs, targets, initial, loss = random_problem(net, T=T, B=B, seed=seed)
    if every_initial:
        rng = np.random.default_rng(seed + 3)
        initial = {n: rng.normal(size=(B, net.size(n))) for n in net.graph.nodes}
    any_node = not net.output_nodes
    fast = net.forward(inputs, initial=initial, steps=T)
    ref = reference_forward(net, inputs, initial=initial, steps=T)
    assert fast.keys() == ref.keys()
    for n in fast:
        np.testing.assert_allclose(fast[n], ref[n], rtol=1e-10, atol=1e-12, err_msg=f"values of {n}")
    loss_fast, grads_fast, _ = net.train_step(inputs, targets, loss=loss, initial=initial, steps=T,
                                              keep_values=True, any_node=any_node)
    loss_ref, grads_ref = reference_loss_and_grad(net, inputs, targets, loss=loss, initial=initial, steps=T,
                                                  any_node=any_node)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-10, abs=1e-12)
    assert grads_fast.keys() == grads_ref.keys() == set(net.trainable)
    for name in grads_fast:
        np.testing.assert_allclose(grads_fast[name], grads_ref[name], rtol=1e-8, atol=1e-10,
                                   err_msg=f"gradient of {name}")
    check_training_path(net, inputs, targets, initial, loss, T, B, seed, loss_ref, grads_ref)
    if fd_entries:
        for check in gradcheck(net, T=T, B=B, seed=seed, max_entries=fd_entries):
            assert check.ok, f"{check.name}: finite differences disagree (abs {check.max_abs:.2e})"


READ_ONLY = """
rnngraph: 1
dtype: {dtype}
nodes:
  x: {{role: input, size: 2}}
  h: {{size: 3, activation: tanh}}
  y: {{role: output, size: 3, activation: {act}}}
edges:
  - {{from: x, to: h}}
  - {{from: h, to: h, delay: 1}}
  - {{from: h, to: y}}
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss, act", [("mse", "identity"), ("bce", "sigmoid"), ("bce", "tanh"),
                                       ("cross_entropy", "softmax"), ("cross_entropy", "sigmoid")])
@pytest.mark.parametrize("masked", [False, True])
def test_the_callers_arrays_are_read_never_written(loss, act, masked, dtype):
    """The losses read the targets through a time-major view of the caller's array
    (no copy): a training step, an evaluation and a trace leave every array as it was."""
    net = rg.build(rg.parse_spec(READ_ONLY.format(dtype=dtype, act=act)))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 2)).astype(dtype)
    y = (np.eye(3)[rng.integers(0, 3, size=(4, 6))] if loss == "cross_entropy"
         else rng.uniform(0.05, 0.95, size=(4, 6, 3))).astype(dtype)
    mask = {"y": (rng.random((4, 6)) < 0.5).astype(dtype)} if masked else None
    before = (x.copy(), y.copy(), None if mask is None else mask["y"].copy())
    first = net.loss_and_grad({"x": x}, {"y": y}, loss=loss, mask=mask)
    net.eval_loss({"x": x}, {"y": y}, loss=loss, mask=mask)
    net.backward_trace({"x": x}, {"y": y}, loss=loss, mask=mask)
    again = net.loss_and_grad({"x": x}, {"y": y}, loss=loss, mask=mask)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])
    if mask is not None:
        np.testing.assert_array_equal(mask["y"], before[2])
    assert first[0] == again[0]
    for name in first[1]:
        np.testing.assert_array_equal(first[1][name], again[1][name])


def test_specs_exist():
    assert len(SPECS) >= 10


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_fast_equals_reference_and_finite_differences(path):
    net = rg.build(rg.load_spec(path), dtype="float64")
    if sum(net.size(n) for n in net.graph.nodes) > 150:
        # large Hopfield nets: shrink the batch and time, the check is the same
        compare(net, T=3, B=1, fd_entries=3)
    else:
        compare(net, T=4, B=2, fd_entries=6)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_with_initial_states_for_every_node_fast_equals_reference(path):
    net = rg.build(rg.load_spec(path), dtype="float64")
    compare(net, T=3, B=2, fd_entries=0, every_initial=True)


def check_training_path(net, inputs, targets, initial, loss, T, B, seed, loss_ref, grads_ref):
    """``keep_values=False`` (loss_and_grad, training): the loops reuse their buffers
    between calls and pre-activations no loss reads share their values' buffers.
    Calls on another problem and on another batch size in between must leave
    no trace: every call equals the reference, and earlier gradients stay put."""
    any_node = not net.output_nodes
    other = random_problem(net, T=T, B=B + 1, seed=seed + 1)
    again = random_problem(net, T=T, B=B, seed=seed + 2)

    def step(problem, keep_values=False):
        i, t, init, _ = problem
        return net.train_step(i, t, loss=loss, initial=init, steps=T, any_node=any_node,
                              keep_values=keep_values)
    first_loss, first, _ = step((inputs, targets, initial, loss))
    kept = {k: v.copy() for k, v in first.items()}
    for problem in (other, again):   # the path that keeps no buffers (checked above) is the reference
        got_loss, got, _ = step(problem)
        want_loss, want, _ = step(problem, keep_values=True)
        assert got_loss == pytest.approx(want_loss, rel=1e-10, abs=1e-12)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-8, atol=1e-10,
                                       err_msg=f"gradient of {name}, reused buffers, another problem")
    second_loss, second, _ = step((inputs, targets, initial, loss))
    for got_loss, got in ((first_loss, first), (second_loss, second)):
        assert got_loss == pytest.approx(loss_ref, rel=1e-10, abs=1e-12)
        for name in grads_ref:
            np.testing.assert_allclose(got[name], grads_ref[name], rtol=1e-8, atol=1e-10,
                                       err_msg=f"gradient of {name}, reused buffers")
    for name in kept:
        np.testing.assert_array_equal(first[name], kept[name], err_msg=f"{name}: returned gradient changed later")


# --------------------------------------------------------------------------- random graphs

# no `square` or `exp` (in a loop they overflow: finite differences of a 1e60 loss mean nothing) and no
# relu (finite differences across its kink are wrong); their VJPs are checked alone in test_autodiff
ACTS = ["identity", "sigmoid", "tanh", "softplus", "softmax", "one_minus"]


@st.composite
def random_specs(draw):
    """Random valid specs.  Delays may be negative (look-ahead edges, and recurrent
    components that run backward in time); within a strongly connected component
    every nonzero delay then takes the sign of its first, so that one graph holds
    forward and backward loops but no component mixes them (a SpecError)."""
    signed = draw(st.booleans())
    n_inputs = draw(st.integers(0, 2))
    n_other = draw(st.integers(1, 5))
    names = [f"x{i}" for i in range(n_inputs)] + [f"n{i}" for i in range(n_other)]
    # one size for every node half the time: identity, diagonal and scalar edges (and chains of
    # them, which the loop compiler aliases) are then possible between any two nodes
    common = draw(st.one_of(st.none(), st.integers(1, 3)))
    sizes = {n: common or draw(st.integers(1, 3)) for n in names}
    nodes, edges = {}, []
    for n in names[:n_inputs]:
        nodes[n] = {"role": "input", "size": sizes[n]}
        if draw(st.booleans()):
            nodes[n]["init"] = draw(st.floats(-1, 1))
    order = names[n_inputs:]          # delay-0 edges only go forward in this order: no instant cycle
    for i, n in enumerate(order):
        body = {"size": sizes[n], "role": draw(st.sampled_from(["hidden", "output"])),
                "activation": draw(st.sampled_from(ACTS)),
                "combine": draw(st.sampled_from(["sum", "sum", "product"]))}
        init = draw(st.sampled_from(["zero", "value", "input", "trainable"]))
        if init == "value":
            body["init"] = draw(st.floats(-1, 1))
        elif init == "input":
            body["init"] = "input"
        elif init == "trainable":
            body["init"] = {"value": draw(st.floats(-1, 1)), "trainable": True}
        if body["combine"] == "sum" and draw(st.booleans()):
            body["bias"] = draw(st.sampled_from([True, False, 0.3]))
        nodes[n] = body
    seen = set()
    for i, n in enumerate(order):
        k = draw(st.integers(1 if nodes[n]["combine"] == "product" else 0, 3))
        for _ in range(k):
            src = draw(st.sampled_from(names))
            delay = draw(st.integers(-3 if signed else 0, 3))
            if delay == 0 and src in order and order.index(src) >= i:
                delay = draw(st.integers(1, 3)) * draw(st.sampled_from([1, -1] if signed else [1]))
            kinds = ["dense"] + (["diagonal", "scalar", "identity"] if sizes[src] == sizes[n] else [])
            kind = draw(st.sampled_from(kinds))
            edge = {"from": src, "to": n, "delay": delay, "weight": kind}
            if kind == "dense" and sizes[src] == sizes[n] and draw(st.integers(0, 3)) == 0:
                edge["constraint"] = draw(st.sampled_from(["symmetric", "zero_diagonal",
                                                           ["symmetric", "zero_diagonal"]]))
            if kind != "identity":
                edge["init"] = "uniform(-0.9, 0.9)"
                if draw(st.integers(0, 4)) == 0:
                    edge["trainable"] = False
            if (src, n) in seen:
                edge["name"] = f"e{len(edges)}"
            seen.add((src, n))
            edges.append(edge)
    one_sign_per_component(edges)
    return {"rnngraph": 1, "name": "random", "nodes": nodes, "edges": edges, "dtype": "float64"}


def one_sign_per_component(edges: list) -> None:
    """Give every nonzero delay inside a strongly connected component the sign of the
    component's first one (in place): a component that mixes signs is refused."""
    graph = nx.MultiDiGraph()
    graph.add_edges_from((e["from"], e["to"]) for e in edges)
    component = {n: i for i, members in enumerate(nx.strongly_connected_components(graph)) for n in members}
    sign = {}
    for e in edges:
        c = component[e["from"]]
        if e["delay"] and c == component[e["to"]]:
            e["delay"] = abs(e["delay"]) * sign.setdefault(c, 1 if e["delay"] > 0 else -1)


# RG_RANDOM_GRAPHS=1500 python -m pytest tests/test_executor.py -k random_graphs: a longer hunt
@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 60)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 5), st.integers(0, 2 ** 16), st.booleans())
def test_random_graphs_fast_equals_reference_and_finite_differences(data, T, seed, every_initial):
    spec = rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    net = rg.build(spec, seed=seed)
    rng = np.random.default_rng(seed)
    for name, info in net.param_info.items():
        if info.constraints:   # off the constraint set: a run applies the constraints itself
            net.params[name] += rng.uniform(-0.3, 0.3, size=info.shape)
    compare(net, T=T, B=2, seed=seed, fd_entries=3, every_initial=every_initial)


@settings(max_examples=25, deadline=None)
@given(random_specs())
def test_expand_round_trips(data):
    spec = rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    again = rg.parse_spec(spec.expanded().to_yaml())
    a, b = rg.build(spec), rg.build(again)
    assert set(a.params) == set(b.params)
    assert sorted(a.graph.edges(keys=True)) == sorted(b.graph.edges(keys=True))


@pytest.mark.parametrize("path", [p for p in SPECS if "lstm" in p.stem or "gru" in p.stem or "primitives" in p.stem],
                         ids=lambda p: p.stem)
def test_expanded_spec_builds_the_same_network(path):
    spec = rg.load_spec(path)
    expanded = rg.parse_spec(spec.expanded().to_yaml())
    a, b = rg.build(spec, dtype="float64"), rg.build(expanded, dtype="float64")
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    inputs, targets, initial, _ = random_problem(a, T=3, B=2)
    fa, fb = a.forward(inputs, initial=initial, steps=3), b.forward(inputs, initial=initial, steps=3)
    for n in fb:
        np.testing.assert_array_equal(fa[n], fb[n])


def test_chains_of_identity_edges_in_a_loop():
    """h -> m -> n -> k by identity edges, k -> h delayed: each of h, m, n reads the next
    node's gradient buffer (gradient aliases), which must be resolved targets first."""
    spec = """
rnngraph: 1
name: chain
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activation: tanh}
  m: {size: 3, activation: identity}
  n: {size: 3, activation: identity}
  k: {size: 3, activation: tanh, bias: true}
  y: {role: output, size: 1, activation: identity}
edges:
  - {from: x, to: h}
  - {from: h, to: m, weight: identity}
  - {from: m, to: n, weight: identity}
  - {from: n, to: k, weight: identity}
  - {from: k, to: h, delay: 1}
  - {from: k, to: y}
"""
    compare(rg.build(rg.parse_spec(spec)), T=5, B=2, fd_entries=6)


PASSED_THROUGH = """
rnngraph: 1
name: passed-through
dtype: float64
nodes:
  x: {role: input, size: 2}
  z: {role: input, size: 3}
  p: {size: 2, activation: identity, bias: false}
  q: {size: 2, activation: identity, combine: product}
  r: {size: 2, activation: identity, bias: 0.5}
  s: {size: 2, activation: identity, bias: -0.25}
  h: {size: 2, activation: tanh}
  y: {role: output, size: 2, activation: identity}
edges:
  - {from: x, to: p}
  - {from: z, to: q}
  - {from: p, to: r, weight: identity}
  - {from: q, to: s, weight: identity}
  - {from: s, to: h, weight: identity}
  - {from: h, to: h, delay: 1}
  - {from: p, to: y}
  - {from: q, to: y}
  - {from: r, to: y}
  - {from: h, to: y}
"""


@pytest.mark.parametrize("keep_values", [True, False])
def test_a_contribution_passed_through_as_a_value_is_not_written_into(keep_values):
    """p's value is its GEMM's output as it is (identity, no bias), and so is q's (a
    product of one factor): a node reading either through an identity edge must add its
    bias into a new array (it once wrote into p's, which y then read), and a recurrent
    stage must not take it as its own buffer (the large layout's seeded nodes did)."""
    net = rg.build(rg.parse_spec(PASSED_THROUGH))
    inputs, targets, initial, loss = random_problem(net, T=3, B=2, seed=1)
    ref = reference_forward(net, inputs, steps=3)
    _, _, run = net.train_step(inputs, targets, loss=loss, steps=3, keep_values=keep_values)
    for n in ("p", "q", "r", "s"):
        np.testing.assert_allclose(run.values[n][1].value.transpose(1, 0, 2), ref[n], rtol=1e-12, err_msg=n)
    compare(net, T=3, B=2)


def test_plan_hoists_and_fuses_lstm_projections():
    spec = rg.parse_spec("""
rnngraph: 1
nodes:
  x: {role: input, size: 3}
  B: {type: lstm, size: 4}
  y: {role: output, size: 1}
edges:
  - {from: x, to: B}
  - {from: B, to: y}
""")
    plan = rg.build(spec).plan
    loops = [s for s in plan.stages if s.kind == "recurrent"]
    assert len(loops) == 1
    inner = {g.source: g for g in loops[0].inner if g.weight == "dense"}
    # h(t-1) -> i, f, o, g is one GEMM per step
    assert sorted(e.target for e in inner["B/h"].edges) == ["B/f", "B/g", "B/i", "B/o"]
    # x -> i, f, o, g runs once over the whole sequence, outside the loop
    hoisted = [g for g in plan.sequence_groups if g.source == "x"]
    assert len(hoisted) == 1 and len(hoisted[0].edges) == 4
    # the readout is time-parallel
    assert any(s.kind == "parallel" and s.nodes == ["y"] for s in plan.stages)


def test_ten_thousand_step_elman_trains_without_recursion_error():
    spec = rg.parse_spec("""
rnngraph: 1
nodes:
  x: {role: input, size: 1}
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
""")
    net = rg.build(spec)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 10_000, 1)).astype(np.float32)
    y = np.roll(x, 1, axis=1)
    first, _ = net.loss_and_grad({"x": x}, {"y": y})
    for _ in range(3):
        loss, grads = net.loss_and_grad({"x": x}, {"y": y})
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        for name, g in grads.items():
            net.params[name] -= 0.05 * g
    last, _ = net.loss_and_grad({"x": x}, {"y": y})
    assert last < first


def test_backward_trace_is_the_gradient_of_each_value():
    spec = rg.parse_spec("""
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activation: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
""")
    net = rg.build(spec)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 1))
    trace = net.backward_trace({"x": x}, {"y": y})
    assert trace["h"].shape == (2, 4, 3) and trace["y"].shape == (2, 4, 1)
    # dL/dh(t) by finite differences: perturb h at one step through an extra input on h
    pnet = rg.build(rg.parse_spec(spec.to_yaml().replace("edges:\n", "edges:\n- {from: p, to: h, weight: identity}\n")
                                  .replace("nodes:\n", "nodes:\n  p: {role: input, size: 3}\n")))
    for k in net.params:
        pnet.params[k][...] = net.params[k]
    # h is tanh(a): a perturbation e of a at (b, t, u) moves v by tanh'(a) e, so dL/da = dL/dv * (1 - v^2)
    v = net.forward({"x": x})["h"]
    for (b, t, u) in [(0, 3, 1), (1, 0, 2), (0, 1, 0)]:
        p = np.zeros((2, 4, 3))
        p[b, t, u] = 1e-6
        up, _ = pnet.loss_and_grad({"x": x, "p": p}, {"y": y})
        down, _ = pnet.loss_and_grad({"x": x, "p": -p}, {"y": y})
        dlda = (up - down) / 2e-6
        assert trace["h"][b, t, u] * (1 - v[b, t, u] ** 2) == pytest.approx(dlda, rel=1e-5, abs=1e-10)


def test_backward_trace_reaches_outputs_whose_loss_uses_logits():
    spec = rg.parse_spec("""
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 1}
  h: {size: 2, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
""")
    net = rg.build(spec)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 3, 1)), rng.uniform(size=(2, 3, 1))
    trace = net.backward_trace({"x": x}, {"y": y}, loss="bce")
    v = net.forward({"x": x})["y"]
    # bce = mean(-(y log v + (1 - y) log(1 - v))): dL/dv = (v - y) / (v (1 - v)) / count
    np.testing.assert_allclose(trace["y"], (v - y) / (v * (1 - v)) / y.size, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_form_of_an_activation_agrees_with_its_vjp(name, dtype):
    """Each activation is defined once, in the forms the engine runs: the time loops'
    in-place forward, its whole-sequence derivative written in place and its per-step
    derivative from the value alone (relu's kink included: a = 0 has derivative 0) must
    each equal ``forward`` and ``vjp`` (for activations the random graphs leave out too)."""
    f = ACTIVATIONS[name]
    a = np.random.default_rng(0).normal(scale=2.0, size=(3, 4, 5)).astype(dtype)
    a[0, 0, :2] = 0.0
    v = f.forward(a).astype(dtype)
    expected = f.vjp(np.ones_like(a), a, v)
    HALF, ONE, ZERO = (np.array(c, dtype) for c in (0.5, 1.0, 0.0))
    ufuncs = {k: getattr(np, k) for k in ("multiply", "subtract", "add", "tanh", "exp", "maximum", "sign")}

    def run(lines, **arrays):
        for line in lines:
            eval(line, {**ufuncs, "HALF": HALF, "ONE": ONE, "ZERO": ZERO, **arrays})
    if f.in_place:
        out = np.full_like(a, np.nan)
        run(f.in_place, a=a.copy(), v=out)
        np.testing.assert_allclose(out, v, rtol=1e-6, atol=1e-7, err_msg=f"{name} in place")
    if f.derivative is not None:
        out = np.full_like(a, np.nan)
        f.derivative(a, v, out)
        np.testing.assert_allclose(out, expected, rtol=1e-6, err_msg=f"{name} derivative")
    if f.from_value is not None:
        d = np.full_like(a, np.nan)
        lines, factor = f.step_derivative("v", "d")
        run(lines, v=v, d=d)
        np.testing.assert_allclose({"v": v, "d": d}[factor], expected, rtol=1e-6, err_msg=f"{name} from value")
    if f.zero_derivative:
        assert not expected.any()


RECYCLED_AND_CARRIED = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activation: tanh}
  a: {size: 3, activation: sigmoid}
  b: {size: 3, activation: sigmoid}
  y: {role: output, size: 2}
  z: {role: output, size: 2}
edges:
  - {from: x, to: [a, b]}
  - {from: h, to: [a, b], delay: 1}
  - {from: a, to: h, weight: identity}
  - {from: b, to: h, weight: identity}
  - {from: a, to: y, delay: 2}
  - {from: h, to: z}
"""


def test_the_state_a_training_step_carries_is_taken_before_its_backward_pass():
    """a and b are a pack that, in the large layout, a training step's backward pass
    writes its gradients over (no loss reads y, so nothing else sends a gradient to
    a): the last two values of a, which a next window needs for a -> y, are taken
    before that (``Run.history`` is otherwise made when first read)."""
    net = rg.build(rg.parse_spec(RECYCLED_AND_CARRIED))
    rng = np.random.default_rng(0)
    x, z = rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 2))
    _, _, kept = net.train_step({"x": x}, {"z": z}, keep_values=True)
    want = {n: h.copy() for n, h in kept.history.items()}
    assert set(want) == {"a", "h"} and want["a"].shape == (2, 2, 3)
    for _ in range(2):   # the second call reuses the first's buffers
        _, _, reused = net.train_step({"x": x}, {"z": z})
        for n in want:
            np.testing.assert_array_equal(reused.history[n], want[n], err_msg=n)
