"""The layouts of the compiled time loops (rnngraph/engine/compile/) on graphs chosen to reach them.

Each recurrent stage compiles into a loop with fast paths that depend on the
graph's shape: packs (the targets of one fused dense group, activated as one
run, sigmoid and tanh mixed through per-column scales), a pack's base taken
straight from the fused input GEMM (``Columns``), gradient aliases (a source
whose one consumer is an identity delay-0 edge into a sum node reads that
node's dL/da buffer), transient nodes (in a training step, one row shared by
every step), derivatives written in place.  The random graphs of
test_executor.py seldom build these shapes on purpose; here each spec is
written to reach one of them (or to sit just outside it), and every network is
checked three ways, in float64:

- against the reference interpreter (values, loss, gradients) and central
  differences (test_executor's ``compare``);
- against the same network with the fast paths switched off: a frozen
  diagonal self-edge of weight zero on every sum node of a loop changes
  nothing in the function, but gives each node another input (no whole-pack
  runs, no forward aliases) and another consumer (no gradient aliases);
- ``backward_trace`` (dL/dv) against central differences of the loss in an
  extra input added to the node's pre-activation.

float32 runs are compared with the float64 reference at a loose tolerance.
The last test checks that the specs here really take the layouts they are
meant to test (it reads the compiled loops' private layout tables).
"""

import re

import numpy as np
import pytest
import yaml

import rnngraph as rg
from rnngraph.engine import autodiff as ad
from rnngraph.activations import ACTIVATIONS
from rnngraph.engine.gradcheck import random_problem
from rnngraph.engine.reference import reference_forward, reference_loss_and_grad, reference_values
from test_executor import compare   # fast == reference (values, loss, gradients) and finite differences
from test_executor import stage_layout  # noqa: F401  (autouse: every test runs in both stage layouts)

# ----------------------------------------------------------------------------- specs

# An LSTM cell written by hand: gates i, f, g, o are one fused dense group from h(t-1)
# (a pack) and one from x (hoisted: the Columns path).  In the loop's step order
# (i, f, fc, g, ig, c, o, tc, h) the gates are not adjacent.  ig and fc feed c by identity
# edges and nothing else (gradient aliases into the same c); c is also read one step
# later (no alias for c); tc reads c by an identity edge (forward alias).  o is an output.
HAND_LSTM = """
rnngraph: 1
name: hand_lstm
dtype: float64
nodes:
  x:  {{role: input, size: 2}}
  i:  {{size: {H}, activation: {i}{i_role}}}
  ig: {{size: {H}, combine: product}}
  f:  {{size: {H}, activation: {f}, bias: false}}
  fc: {{size: {H}, combine: product}}
  g:  {{size: {H}, activation: {g}, bias: false}}
  c:  {{size: {H}}}
  o:  {{size: {H}, activation: {o}, role: output}}
  tc: {{size: {H}, activation: tanh}}
  h:  {{size: {H}, combine: product}}
  y:  {{role: output, size: 1, activation: sigmoid}}
edges:
  - {{from: x, to: [i, f, o, g], init: "uniform(-0.8, 0.8)"}}
  - {{from: h, to: [i, f, o, g], delay: 1, init: "uniform(-0.8, 0.8)"}}
  - {{from: [i, g], to: ig, weight: identity}}
  - {{from: f, to: fc, weight: identity}}
  - {{from: c, to: fc, weight: identity, delay: 1}}
  - {{from: [ig, fc], to: c, weight: identity}}
  - {{from: c, to: tc, weight: identity}}
  - {{from: [o, tc], to: h, weight: identity}}
  - {{from: h, to: y}}
{extra}
train: {{loss: {loss}}}
"""


def hand_lstm(i="sigmoid", f="sigmoid", g="tanh", o="sigmoid", loss="bce", H=2, i_output=False, extra="",
              dtype="float64"):
    text = HAND_LSTM.format(i=i, f=f, g=g, o=o, loss=loss, H=H, extra=extra,
                            i_role=", role: output" if i_output else "")
    return text.replace("dtype: float64", f"dtype: {dtype}")


# A pack of members of unequal sizes and any activations: h(t-1) -> p, q, r, s (one fused
# group) and x -> p, q, r, s (hoisted), each member back into h by its own dense edge.
PACK_ZOO = """
rnngraph: 1
name: pack_zoo
dtype: {dtype}
nodes:
  x: {{role: input, size: 2}}
  p: {{size: {sp}, activation: {ap}}}
  q: {{size: {sq}, activation: {aq}, bias: false}}
  r: {{size: {sr}, activation: {ar}}}
  s: {{size: {ss}, activation: {as_}, bias: false}}
  h: {{size: 2, activation: tanh}}
  y: {{role: output, size: 1}}
edges:
  - {{from: x, to: [p, q, r, s], init: "uniform(-0.8, 0.8)"}}
  - {{from: h, to: [p, q, r, s], delay: 1, init: "uniform(-0.8, 0.8)"}}
  - {{from: [p, q, r, s], to: h, init: "uniform(-0.8, 0.8)"}}
  - {{from: h, to: y}}
"""


def pack_zoo(acts, sizes, dtype="float64"):
    (ap, aq, ar, as_), (sp, sq, sr, ss) = acts, sizes
    return PACK_ZOO.format(ap=ap, aq=aq, ar=ar, as_=as_, sp=sp, sq=sq, sr=sr, ss=ss, dtype=dtype)


# ----------------------------------------------------------------------------- checks

def build(text, dtype=None, seed=0):
    return rg.build(rg.parse_spec(text), seed=seed, dtype=dtype)


def _expanded(text) -> dict:
    return yaml.safe_load(rg.parse_spec(text).expanded().to_yaml())


def without_fast_paths(text) -> str:
    """The same function with frozen zero diagonal edges of delay 1: a self-edge on every
    sum node of a recurrent loop, and one from every node of a loop to each sum node of
    its size that it feeds in the loop.  Each node gets a second input (sum nodes) or a
    second consumer: no whole-pack runs, no forward aliases, no gradient aliases."""
    net = build(text)
    graph = net.graph
    looped = {n for s in net.plan.stages if s.kind == "recurrent" for n in s.nodes}

    def zero(u, v):
        return {"from": u, "to": v, "delay": 1, "weight": "diagonal", "init": "zeros", "trainable": False,
                "name": f"zero_{u}_{v}".replace("/", "_")}
    data = _expanded(text)
    is_sum = {n: graph.nodes[n]["combine"] == "sum" for n in graph.nodes}
    for n in sorted(looped):
        if is_sum[n]:
            data["edges"].append(zero(n, n))
        size = graph.nodes[n]["size"]
        data["edges"] += [zero(n, t) for t in sorted(set(graph.successors(n)))
                          if t in looped and t != n and is_sum[t] and graph.nodes[t]["size"] == size]
    return yaml.safe_dump(data, sort_keys=False)


def check_equivalent(text, T=4, B=3, seed=0):
    """The network and its copy without fast paths: same values, gradients and dL/dv."""
    a, b = build(text), build(without_fast_paths(text))
    for name in a.params:
        b.params[name][...] = a.params[name]
    inputs, targets, initial, loss = random_problem(a, T=T, B=B, seed=seed)
    fa, fb = a.forward(inputs, initial=initial, steps=T), b.forward(inputs, initial=initial, steps=T)
    for n in fb:      # primitive nodes (a block's name is in fa alone)
        np.testing.assert_allclose(fa[n], fb[n], rtol=1e-12, atol=1e-14, err_msg=f"values of {n}")
    la, ga = a.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
    lb, gb = b.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
    assert la == pytest.approx(lb, rel=1e-12)
    for name in ga:
        np.testing.assert_allclose(ga[name], gb[name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"gradient of {name} ({loss}), fast paths on vs off")
    ta = a.backward_trace(inputs, targets, loss=loss, initial=initial, steps=T)
    tb = b.backward_trace(inputs, targets, loss=loss, initial=initial, steps=T)
    for n in tb:
        np.testing.assert_allclose(ta[n], tb[n], rtol=1e-9, atol=1e-12,
                                   err_msg=f"backward_trace of {n} ({loss}), fast paths on vs off")


def check(text, T=4, B=3, fd_entries=4):
    """``compare`` (fast executor == reference interpreter, and central differences) and
    ``check_equivalent``."""
    compare(build(text), T=T, B=B, fd_entries=fd_entries)
    check_equivalent(text, T=T, B=B)


def check_trace(text, nodes, T=4, B=2, seed=0, entries=3, eps=1e-6):
    """``backward_trace`` dL/dv_n(t) times f'(a_n(t)) equals central differences of the
    loss in an extra input p added to a_n (an identity edge p -> n), for sum nodes n."""
    net = build(text)
    inputs, targets, initial, loss = random_problem(net, T=T, B=B, seed=seed)
    trace = net.backward_trace(inputs, targets, loss=loss, initial=initial, steps=T)
    values, _ = reference_values(net, inputs, initial, T)
    rng = np.random.default_rng(seed)
    for n in nodes:
        attrs = net.graph.nodes[n]
        assert attrs["combine"] == "sum" and attrs["activation"] != "softmax", n
        a, v = values[n][0].value, values[n][1].value                         # (T, B, size)
        fprime = ACTIVATIONS[attrs["activation"]].vjp(np.ones_like(a), a, v)
        data = _expanded(text)
        data["nodes"] = {"probe": {"role": "input", "size": attrs["size"]}, **data["nodes"]}
        data["edges"].append({"from": "probe", "to": n, "weight": "identity"})
        probed = build(yaml.safe_dump(data, sort_keys=False))
        for name in net.params:
            probed.params[name][...] = net.params[name]

        def loss_at(p):
            return probed.eval_loss({**inputs, "probe": p}, targets, loss=loss, initial=initial, steps=T).loss
        for _ in range(entries):
            b, t, u = rng.integers(B), rng.integers(T), rng.integers(attrs["size"])
            p = np.zeros((B, T, attrs["size"]))
            p[b, t, u] = eps
            numeric = (loss_at(p) - loss_at(-p)) / (2 * eps)
            analytic = trace[n][b, t, u] * fprime[t, b, u]
            assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9), \
                f"dL/da of {n} at batch {b}, step {t}, unit {u}: trace gives {analytic:.6e}, " \
                f"finite differences {numeric:.6e}"
    return trace, values


def check_float32(text, T=4, B=3, seed=0, rtol=2e-4):
    """The float32 run against the float64 reference, the same parameters (rounded)."""
    net64, net32 = build(text, dtype="float64"), build(text, dtype="float32")
    for name in net64.params:
        net32.params[name][...] = net64.params[name]
        net64.params[name][...] = net32.params[name]      # both hold the float32-rounded values
    inputs, targets, initial, loss = random_problem(net64, T=T, B=B, seed=seed)
    ref = reference_forward(net64, inputs, initial=initial, steps=T)
    out = net32.forward(inputs, initial=initial, steps=T)
    for n in ref:
        scale = max(1.0, float(np.abs(ref[n]).max(initial=0.0)))
        np.testing.assert_allclose(out[n], ref[n], rtol=rtol, atol=rtol * scale, err_msg=f"float32 values of {n}")
    loss32, grads32 = net32.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
    loss64, grads64 = reference_loss_and_grad(net64, inputs, targets, loss=loss, initial=initial, steps=T)
    assert loss32 == pytest.approx(loss64, rel=rtol, abs=rtol)
    for name in grads64:
        scale = max(1e-3, float(np.abs(grads64[name]).max(initial=0.0)))
        np.testing.assert_allclose(grads32[name], grads64[name], rtol=10 * rtol, atol=10 * rtol * scale,
                                   err_msg=f"float32 gradient of {name} ({loss}) vs the float64 reference")


# ----------------------------------------------------------------------------- packs

GATES = {   # (i, f, g, o) activations of the hand LSTM, and its loss
    "sigmoid-tanh": ("sigmoid", "sigmoid", "tanh", "sigmoid", "bce"),
    "sigmoid-tanh-identity": ("identity", "sigmoid", "tanh", "sigmoid", "bce"),
    "all-relu": ("relu", "relu", "relu", "relu", "mse"),
    "one_minus": ("sigmoid", "one_minus", "tanh", "sigmoid", "bce"),
    "tanh-outputs-mse": ("sigmoid", "tanh", "tanh", "tanh", "mse"),
}


@pytest.mark.parametrize("gates", GATES, ids=list(GATES))
def test_hand_lstm_packs_of_mixed_activations(gates):
    """Whole-pack runs (sigmoid+tanh through the scale rows; all relu), packs with an
    identity member (no run), gates not adjacent in the step order, biases on some gates
    only (zero columns in the pack's base), the gate o an output (bce: dL/da from outside;
    mse: dL/dv from outside)."""
    i, f, g, o, loss = GATES[gates]
    text = hand_lstm(i=i, f=f, g=g, o=o, loss=loss)
    check(text, T=4, B=3)


def test_pack_run_head_is_an_output():
    """The first gate of the pack in step order (the run's head, which activates and
    differentiates the whole row) is a sigmoid output with bce: its logits' gradient
    and o's are added to the row's dL/da."""
    text = hand_lstm(i_output=True)
    check(text, T=4, B=3)


@pytest.mark.parametrize("acts, sizes, dtype", [
    (("sigmoid", "tanh", "sigmoid", "tanh"), (3, 2, 1, 2), "float64"),
    (("sigmoid", "tanh", "identity", "relu"), (2, 1, 3, 2), "float64"),
    (("tanh", "sigmoid", "one_minus", "tanh"), (3, 2, 1, 3), "float64"),   # width 9
    # width 8: the one_minus column's dL/dv and dL/da are (B, 1) views 64 bytes apart, the
    # stride at which np.negative(x, out=y) of numpy 2.4.6 here reads the wrong elements
    (("tanh", "sigmoid", "one_minus", "tanh"), (3, 2, 1, 2), "float64"),
    (("exp", "exp", "exp", "exp"), (1, 2, 1, 1), "float64"),
    (("square", "square", "square", "square"), (1, 1, 2, 1), "float64"),
], ids=["mixed", "with-identity-and-relu", "one_minus-width9", "one_minus-width8", "exp", "square"])
def test_pack_of_unequal_members(acts, sizes, dtype):
    """A pack whose members differ in size and activation, each fed back by its own edge."""
    text = pack_zoo(acts, sizes, dtype)
    check(text, T=4, B=3)


@pytest.mark.parametrize("gates", ["sigmoid-tanh", "one_minus", "all-relu"])
def test_hand_lstm_float32_matches_float64(gates):
    """Cells of size 1 in float32: each gate is one column of a 4-column pack row (16
    bytes, the float32 stride at which np.negative fails here), and of size 3."""
    i, f, g, o, loss = GATES[gates]
    check_float32(hand_lstm(i=i, f=f, g=g, o=o, loss=loss, H=1, dtype="float32"))
    check_float32(hand_lstm(i=i, f=f, g=g, o=o, loss=loss, H=3, dtype="float32"))


SAME_STEP_PACK = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  k: {size: 2, activation: tanh}
  p: {size: 2, activation: sigmoid, role: output}
  q: {size: 1, activation: tanh, bias: false}
  r: {size: 3, activation: sigmoid}
  s: {size: 2}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: k}
  - {from: s, to: k, delay: 1}
  - {from: k, to: [p, q, r]}
  - {from: x, to: [p, q, r]}
  - {from: [p, q, r], to: s}
  - {from: s, to: y}
train: {loss: bce}
"""


def test_pack_fed_at_the_same_step():
    """A pack whose group reads k at the same step (delay 0): the row is activated after
    k, and its gradient goes to k's dL/dv in the same step; p is an output (bce)."""
    check(SAME_STEP_PACK, T=4, B=3)
    check_trace(SAME_STEP_PACK.replace("bce", "mse"), ["k", "p", "q", "r", "s"], entries=2)
    check_float32(SAME_STEP_PACK.replace("float64", "float32"))


# ----------------------------------------------------------------------------- bases of packs

def test_input_group_feeding_a_pack_and_a_node_outside_it():
    """x -> i, f, o, g, k is one GEMM whose columns do not line up with the pack (k is
    not a member): the pack's base is assembled from the pieces.  k sits in the same
    loop in one network and outside any loop in the other."""
    inside = hand_lstm(extra="""
  - {from: x, to: k}
  - {from: k, to: c, weight: identity}
  - {from: c, to: k, delay: 1}
""").replace("  y:  {role", "  k:  {size: 2, activation: tanh}\n  y:  {role")
    outside = hand_lstm(extra="""
  - {from: x, to: k}
  - {from: k, to: y}
""").replace("  y:  {role", "  k:  {size: 3, activation: tanh}\n  y:  {role")
    for text in (inside, outside):
        check(text, T=4, B=3)


@pytest.mark.parametrize("peepholes", [False, True])
def test_input_group_spanning_two_lstm_blocks(peepholes):
    """x -> A and x -> B fuse into one 8-target GEMM across two loops (B also reads A)."""
    text = f"""
rnngraph: 1
dtype: float64
nodes:
  x: {{role: input, size: 2}}
  A: {{type: lstm, size: 2}}
  B: {{type: lstm, size: 3, peepholes: {str(peepholes).lower()}}}
  y: {{role: output, size: 1, activation: sigmoid}}
edges:
  - {{from: x, to: [A, B]}}
  - {{from: A, to: B}}
  - {{from: [A, B], to: y}}
train: {{loss: bce}}
"""
    assert sum(s.kind == "recurrent" for s in build(text).plan.stages) == 2
    check(text, T=4, B=2, fd_entries=3)


@pytest.mark.parametrize("biases", ["all", "some"])
def test_pack_without_hoisted_input(biases):
    """Gates fed only from inside the loop: the pack's base is the gates' biases alone
    (with biases on some gates only, the gates are no pack: their bases differ in kind)."""
    text = hand_lstm().replace('  - {from: x, to: [i, f, o, g], init: "uniform(-0.8, 0.8)"}\n',
                               "  - {from: x, to: c}\n")
    if biases == "all":
        text = text.replace(", bias: false", "")
    check(text, T=4, B=3)


# ----------------------------------------------------------------------------- extra contributions

@pytest.mark.parametrize("variant", ["standard", "cifg", "fgr", "niaf"])
def test_lstm_block_with_peepholes(variant):
    """Peepholes give i, f, o a second input: the pack is not one run."""
    text = f"""
rnngraph: 1
dtype: float64
nodes:
  x: {{role: input, size: 2}}
  B: {{type: lstm, size: 3, variant: {variant}, peepholes: true}}
  y: {{role: output, size: 1}}
edges:
  - {{from: x, to: B}}
  - {{from: B, to: y}}
"""
    check(text, T=4, B=2, fd_entries=3)


def test_hand_lstm_with_a_diagonal_edge_into_a_gate():
    """A diagonal edge c(t-1) -> g (the tanh member) and c -> o at the same step."""
    text = hand_lstm(extra="""
  - {from: c, to: g, delay: 1, weight: diagonal}
  - {from: c, to: o, weight: diagonal}
""")
    check(text, T=4, B=3)
    check_trace(text, ["i", "g", "o", "c"])


# ----------------------------------------------------------------------------- gradient aliases

ALIASES = """
rnngraph: 1
dtype: float64
nodes:
  x: {{role: input, size: 2}}
  u: {{size: 3, activation: tanh{u_role}}}
  w: {{size: 3, activation: sigmoid}}
  s: {{size: 3, activation: {s_act}}}
  y: {{role: output, size: 1}}
edges:
  - {{from: x, to: [u, w, s]}}
  - {{from: s, to: u, delay: 1}}
  - {{from: s, to: w, delay: 1, weight: diagonal}}
  - {{from: u, to: s, weight: identity}}
  - {{from: w, to: s, weight: identity}}
  - {{from: s, to: y}}
{extra}
"""


@pytest.mark.parametrize("case", ["plain", "target-tanh", "source-delayed-too", "source-is-output",
                                  "source-feeds-product-too"])
def test_identity_sources_into_a_sum_with_other_inputs(case):
    """u and w feed s = u + w + W x by identity edges at the same step (gradient aliases:
    both read s's dL/da).  Variants where u must not alias: u also read one step later,
    u an output (dL/dv from outside), u also a factor of a product node m = u * w in the
    loop (m itself feeds s alone, and aliases)."""
    u_role, s_act, extra = "", "identity", ""
    if case == "target-tanh":
        s_act = "tanh"
    elif case == "source-delayed-too":
        extra = "  - {from: u, to: w, delay: 1, weight: diagonal}"
    elif case == "source-is-output":
        u_role = ", role: output"
    elif case == "source-feeds-product-too":
        extra = "  - {from: [u, w], to: m, weight: identity}\n  - {from: m, to: s, weight: identity}"
    text = ALIASES.format(u_role=u_role, s_act=s_act, extra=extra)
    if case == "source-feeds-product-too":
        text = text.replace("  y: {role", "  m: {size: 3, combine: product}\n  y: {role")
    check(text, T=5, B=3)
    check_trace(text, ["u", "w", "s"])


CHAIN = """
rnngraph: 1
dtype: float64
nodes:
  x:  {role: input, size: 2}
  h:  {size: 3, activation: tanh}
  m1: {size: 3}
  m2: {size: 3, activation: sigmoid, role: output}
  m3: {size: 3}
  k:  {size: 3, activation: tanh}
  y:  {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: m1, weight: identity}
  - {from: m1, to: m2, weight: identity}
  - {from: m2, to: m3, weight: identity}
  - {from: m3, to: k, weight: identity}
  - {from: x, to: k}
  - {from: k, to: h, delay: 1}
  - {from: k, to: y}
train: {loss: bce}
"""


def test_chain_of_identity_edges_through_an_output():
    """h -> m1 -> m2 -> m3 -> k by identity edges, m2 a sigmoid output with bce (its dL/da
    comes from outside, its dL/dv is read by m1 as m1's gradient alias)."""
    check(CHAIN, T=5, B=3)
    mse = CHAIN.replace("train: {loss: bce}", "train: {loss: mse}")
    trace, values = check_trace(mse, ["h", "m1", "m2", "m3", "k"])
    # m3 feeds only k, by an identity edge: dL/dv of m3 is k's dL/da
    k = values["k"][1].value.transpose(1, 0, 2)
    np.testing.assert_allclose(trace["m3"], trace["k"] * (1 - k * k), rtol=1e-10, atol=1e-14)


def test_hand_lstm_trace_of_aliased_and_packed_nodes():
    """dL/dv of the gates (a mixed whole-pack run), of c (the gradient aliases ig and fc
    read its buffer) and of tc (a forward alias of c) by finite differences; ig and fc
    feed only c by identity edges, so their dL/dv is c's."""
    text = hand_lstm()
    trace, _ = check_trace(text, ["i", "f", "g", "o", "c", "tc"], entries=2)
    np.testing.assert_allclose(trace["ig"], trace["c"], rtol=1e-12)
    np.testing.assert_allclose(trace["fc"], trace["c"], rtol=1e-12)


# ----------------------------------------------------------------------------- derivatives

LOOP_ACTS = ["relu", "leaky_relu", "softplus", "exp", "square", "sigmoid", "tanh"]

ACT_LOOP = """
rnngraph: 1
dtype: {dtype}
nodes:
  x:  {{role: input, size: 2}}
  x3: {{role: input, size: 1}}
  h1: {{size: 2, activation: {act}}}
  h2: {{size: 3, activation: {act}}}
  h3: {{size: 2, activation: {act}}}
  k:  {{size: 2, activation: tanh}}
  y:  {{role: output, size: 2}}
edges:
  - {{from: x, to: [h1, h2], init: "uniform(-0.5, 0.5)"}}
  - {{from: x3, to: h3, init: "uniform(-0.5, 0.5)"}}
  - {{from: k, to: [h1, h2], delay: 1, init: "uniform(-0.5, 0.5)"}}
  - {{from: [h1, h2], to: k, init: "uniform(-0.5, 0.5)"}}
  - {{from: h3, to: h3, delay: 1, weight: diagonal, init: "uniform(-0.5, 0.5)"}}
  - {{from: [k, h3], to: y, init: "uniform(-0.5, 0.5)"}}
"""


@pytest.mark.parametrize("act", LOOP_ACTS)
def test_loop_derivatives_float64(act):
    """Every activation of the derivative table inside a loop: as pack members (h1, h2,
    one run where the activation is an in-place one) and as a lone node (h3)."""
    text = ACT_LOOP.format(act=act, dtype="float64")
    check(text, T=4, B=3)
    check_trace(text, ["h1", "h3"], entries=2)


@pytest.mark.parametrize("act", LOOP_ACTS)
def test_loop_derivatives_float32(act):
    check_float32(ACT_LOOP.format(act=act, dtype="float32"))


# m = (W x) * s(t-1) feeds s = tanh(m + U s(t-1)) alone, by an identity edge at the same step:
# in a training step m is transient (one (B, 2) row for all steps).  Variants where it must
# keep its sequence: m a factor of another product (q = m * V x, read at its step by q's
# backward), m read one step later inside the loop (k = m(t-1) feeds s), m read by a node
# outside the loop (y), m an output.
TRANSIENT = """
rnngraph: 1
dtype: float64
nodes:
  x: {{role: input, size: 2}}
  s: {{size: 2, activation: tanh}}
  m: {{size: 2, combine: product{m_role}}}
  y: {{role: output, size: 1, activation: sigmoid}}
{nodes}
edges:
  - {{from: x, to: [s, m], init: "uniform(-0.8, 0.8)"}}
  - {{from: s, to: m, delay: 1, weight: identity}}
  - {{from: s, to: s, delay: 1, init: "uniform(-0.8, 0.8)"}}
  - {{from: s, to: y}}
{edges}
train: {{loss: bce}}
"""
TRANSIENT_CASES = {
    "transient": ("", "", "  - {from: m, to: s, weight: identity}"),
    "factor-of-a-product": ("", "  q: {size: 2, combine: product}",
                            "  - {from: m, to: q, weight: identity}\n  - {from: x, to: q}\n"
                            "  - {from: q, to: s, weight: identity}"),
    "read-one-step-later": ("", "  k: {size: 2}", "  - {from: m, to: s, weight: identity}\n"
                            "  - {from: m, to: k, delay: 1, weight: identity}\n  - {from: k, to: s, weight: identity}"),
    "read-outside-the-loop": ("", "", "  - {from: m, to: s, weight: identity}\n  - {from: m, to: y}"),
    "an-output": (", role: output", "", "  - {from: m, to: s, weight: identity}"),
}


def transient_spec(case):
    m_role, nodes, edges = TRANSIENT_CASES[case]
    return TRANSIENT.format(m_role=m_role, nodes=nodes, edges=edges)


@pytest.mark.parametrize("extra", ["", "  - {from: x, to: ig}"], ids=["plain", "product-with-a-base"])
def test_large_lstm_gradients_written_over_the_gate_values(extra, monkeypatch):
    """A large stage writes each step's dL/da of the gates over their values, unless a
    gate's value is read after the loop: here i and g are factors of ig = i * g * (W x),
    whose base's gradient needs them once the loop is done."""
    from rnngraph.engine.compile import runtime as scan
    monkeypatch.setattr(scan, "LARGE_STAGE_BYTES", 0)
    text = hand_lstm(extra=extra)
    check(text, T=5, B=3)
    for layout in _layouts(build(text)):
        assert [p.recycled for p in layout.packs] == [not extra] or not any(p.seeded for p in layout.packs)


@pytest.mark.parametrize("case", list(TRANSIENT_CASES))
def test_transient_nodes_keep_no_sequence_only_where_nothing_reads_it(case):
    """compare's training-path check runs the loops with a workspace, where transient
    nodes get a stride-0 buffer: every gradient must still equal the reference's."""
    check(transient_spec(case), T=5, B=3)


def test_large_stages_take_their_packs_buffer_from_the_hoisted_input(monkeypatch):
    """In a training step of a large stage the fused input GEMM's output is the pack's
    pre-activation buffer (the loop adds h(t-1) W^T to it), and the gates' dL/da is then
    written over it (recycled); a small stage keeps a buffer of its own between steps."""
    from rnngraph.engine.compile import runtime as scan
    monkeypatch.setattr(scan, "LARGE_STAGE_BYTES", 0)
    check(hand_lstm(), T=3, B=2)
    (layout,) = _layouts(build(hand_lstm()), T=3)
    assert layout.large and layout.packs[0].seeded and layout.packs[0].recycled
    assert "its hoisted input array is its pre-activation buffer" in str(layout)
    monkeypatch.setattr(scan, "LARGE_STAGE_BYTES", 1 << 60)
    (layout,) = _layouts(build(hand_lstm()), T=3)
    assert not layout.large and not layout.packs[0].seeded and not layout.packs[0].recycled


# h = tanh(base + U h(t-1)), its base made three ways: a dense edge from m with a bias
# (a new array: a large stage's training step writes h's pre-activations into it), an
# identity edge from the input x (x's own array, which y reads again after the loop), an
# identity edge from m, a node outside the loop that is itself an output.
OWNED_BASE = """
rnngraph: 1
dtype: float64
nodes:
  x: {{role: input, size: 2}}
  m: {{size: 2, activation: sigmoid, role: output}}
  h: {{size: 2, activation: tanh{h_bias}}}
  y: {{role: output, size: 1, activation: sigmoid}}
edges:
  - {{from: x, to: m}}
  - {{from: {source}, to: h{weight}}}
  - {{from: h, to: h, delay: 1, init: "uniform(-0.8, 0.8)"}}
  - {{from: [x, h], to: y}}
train: {{loss: bce}}
"""
OWNED_CASES = {"dense-edge-and-bias": ("", "m", ""), "identity-from-the-input": (", bias: false", "x", ", weight: identity"),
               "identity-from-an-output": (", bias: false", "m", ", weight: identity")}


@pytest.mark.parametrize("case", list(OWNED_CASES))
def test_only_a_base_array_of_the_nodes_own_becomes_its_buffer(case, monkeypatch):
    from rnngraph.engine.compile import runtime as scan
    monkeypatch.setattr(scan, "LARGE_STAGE_BYTES", 0)
    h_bias, source, weight = OWNED_CASES[case]
    text = OWNED_BASE.format(h_bias=h_bias, source=source, weight=weight)
    check(text, T=5, B=3)
    net = build(text)
    inputs, targets, initial, loss = random_problem(net, T=5, B=3)
    before = {k: v.copy() for k, v in inputs.items()}
    net.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=5)
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], before[k])       # the caller's data untouched
    seeded = {n.name for layout in _layouts(net, T=5, B=3) for n in layout.nodes if n.seeded}
    assert seeded == ({"h"} if case == "dense-edge-and-bias" else set())


# m = W x + U n(t-1) feeds k = m, which feeds n = tanh(k), each by one identity edge at the
# same step: gradient aliases m -> k -> n, so dL/dv of m and k is n's dL/da buffer.  Nothing
# reads n's dL/da after the loop itself, but m's base and m's direct group do, through the
# aliases: that buffer must hold every step, not one row.
ALIAS_CHAIN_TO_A_ROW = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  m: {size: 2}
  k: {size: 2}
  n: {size: 2, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: m}
  - {from: n, to: m, delay: 1, init: "uniform(-0.8, 0.8)"}
  - {from: m, to: k, weight: identity}
  - {from: k, to: n, weight: identity}
  - {from: n, to: y}
train: {loss: bce}
"""


def test_a_gradient_read_after_the_loop_through_aliases_keeps_every_step():
    check(ALIAS_CHAIN_TO_A_ROW, T=5, B=3)
    for layout in _layouts(build(ALIAS_CHAIN_TO_A_ROW)):
        assert gradient_aliases(layout) == {"m": "k", "k": "n"}
        assert [n.gradient_read_after for n in layout.nodes] == [True, True, True]


# Dense readouts of loop nodes hand the loop their dL/dv as g @ W (ad.Deferred), which the
# backward loop computes into the node's dL/dv buffer (small stages) or a row at a time
# (large stages, where h's dL/dv is two rows).  h -> y reaches a node of its own; i -> y a
# pack member, whose dL/dv is a column slice of the pack's; with i an output, i's dL/dv
# also gets the loss's gradient, which must be added to the deferred one.
DEFERRED_CASES = {"node": {}, "pack-member": {"extra": "  - {from: i, to: y}"},
                  "added-to-the-loss-gradient": {"extra": "  - {from: i, to: y}", "i_output": True}}


@pytest.mark.parametrize("case", list(DEFERRED_CASES))
def test_dense_readouts_give_the_loop_their_gradient_deferred(case):
    text = hand_lstm(**DEFERRED_CASES[case])
    check(text, T=5, B=3)
    check_float32(text, T=5, B=3)
    deferred = set()
    for layout in _layouts(build(text)):
        deferred |= {n.name for n in layout.nodes if n.outside_gradient == "deferred"}
    assert deferred == ({"h"} if case == "node" else {"h", "i"})


def test_a_deferred_gradient_is_added_to_another_as_an_array():
    """Two dense readouts of one StepVar each hand over g @ W deferred; the tape adds them."""
    tape = ad.Tape()
    x = ad.StepVar(np.arange(6.0).reshape(3, 2), tape)
    w, u = tape.param(np.array([[1.0, 2.0]])), tape.param(np.array([[0.5, -2.0]]))
    y = ad.total([ad.linear(x, w), ad.linear(x, u)])       # (3, 1)
    g = np.array([[1.0], [-1.0], [3.0]])
    assert isinstance(tape.records[0][2](g)[0], ad.Deferred)
    tape.backward(y, seed=g)
    np.testing.assert_allclose(x.grad, g @ w.value + g @ u.value)
    assert isinstance(x.grad, np.ndarray)


# ----------------------------------------------------------------------------- folds

# A node whose one consumer is an identity edge into a product takes the product's other
# factors into its derivative before the backward loop (layout.Layout._find_folds).
# Here a's product p has three other factors: its hoisted input (a base), a kept dense
# group output (h -> p, fused with h -> a and h -> b) and b one step earlier (a delayed
# identity edge: the history at t = 0).  p has an activation of its own, so its dL/da
# is not its dL/dv.  (h starts at 0.5: from 0, p and all after it would stay 0.)  b is
# read one step later only: its dL/dv(t - 1) is written outright by step t
# (codegen.LoopWriter._first_writer), not added to a zeroed row.
FOLDS = """
rnngraph: 1
name: folds
dtype: float64
nodes:
  x: {role: input, size: 2}
  a: {size: 2, activation: sigmoid}
  b: {size: 2, activation: tanh, init: 0.3}
  p: {size: 2, combine: product, activation: tanh}
  h: {size: 2, activation: tanh, init: 0.5}
  y: {role: output, size: 1}
edges:
  - {from: x, to: [a, p], init: "uniform(-0.8, 0.8)"}
  - {from: h, to: [a, p, b], delay: 1, init: "uniform(-0.8, 0.8)"}
  - {from: a, to: p, weight: identity}
  - {from: b, to: p, weight: identity, delay: 1}
  - {from: p, to: h, init: "uniform(-0.8, 0.8)"}
  - {from: h, to: y}
"""

# The LSTM block: its gates i, f, g, o (a pack) and tanh(c) all fold into their products
LSTM_BLOCK = """
rnngraph: 1
name: lstm_block
dtype: float64
nodes:
  x: {role: input, size: 2}
  lstm: {type: lstm, size: 3}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: lstm}
  - {from: lstm, to: y}
train: {loss: bce}
"""


def _folded(net) -> dict:
    """Folded node -> its product, in the loops that fold (the backward loop of a
    training step; none in large stages, whose derivatives are taken per step)."""
    return {n.name: n.folded_into for layout in _layouts(net) for n in layout.nodes if n.folded_into}


def test_a_folded_node_takes_its_products_other_factors(stage_layout):
    check(FOLDS)
    check_float32(FOLDS)
    check_trace(FOLDS, ["a", "h"])
    assert _folded(build(FOLDS)) == ({"a": "p"} if stage_layout == "small-stage" else {})


def test_an_lstm_block_steps_back_in_seven_calls(stage_layout):
    """i, f, g all take dL/dc: the three fold into one broadcast multiply over the
    adjacent columns that the planner gives them (o then takes dL/dh, tc its own)."""
    check(LSTM_BLOCK)
    check_float32(LSTM_BLOCK)
    net = build(LSTM_BLOCK)
    if stage_layout == "large-stage":
        assert _folded(net) == {}
        ((_, loop),) = _programs(net)
        calls = [line.strip() for line in loop.backward.source.split(":\n")[-1].splitlines()
                 if re.match(r"\s+\w+\(", line)]
        # the gates' derivative, sigmoid and tanh columns alike, in one pass of three calls
        assert [c.split("(")[0] for c in calls if "dscale_lstm" in c or "dshift_lstm" in c] == ["subtract", "add"], calls
        return
    assert _folded(net) == {"lstm/i": "lstm/ig", "lstm/g": "lstm/ig", "lstm/f": "lstm/fc", "lstm/o": "lstm/h",
                            "lstm/tc": "lstm/h"}
    ((_, loop),) = _programs(net)
    body = loop.backward.source.split(" in kept_views:\n")[1].splitlines()
    calls = [line.strip() for line in body if re.match(r"\s+\w+\(", line)]
    assert len(calls) == 7, calls
    views = loop.backward.cached_views.source
    assert views.count("[:, None]") == 1 and views.count(".reshape(-1, 3, 3)") == 2, views


def test_a_prescaled_pack_gives_the_same_numbers_exactly(stage_layout):
    """In a training step no one reads the gates' pre-activations: their weights' and
    base's columns come scaled by 1/2 where sigmoid (a power of two: exact), so the loop
    skips a call.  The loss and gradients equal, bit for bit, those of a step that
    keeps every value (and so scales in the loop)."""
    net = build(LSTM_BLOCK, dtype="float32")
    inputs, targets, initial, loss = random_problem(net, T=5, B=3)
    kept = net.train_step(inputs, targets, loss=loss, initial=initial, steps=5, keep_values=True)
    (recurrent,) = [s for s in net.plan.stages if s.kind == "recurrent"]
    assert not any(forward.prescaled for forward, _ in net.program.loops(recurrent))
    lean = net.train_step(inputs, targets, loss=loss, initial=initial, steps=5)
    assert any(forward.prescaled for forward, _ in net.program.loops(recurrent))
    assert lean[0] == kept[0]
    for name in kept[1]:
        np.testing.assert_array_equal(lean[1][name], kept[1][name], err_msg=name)


def test_fused_columns_follow_where_their_targets_are_first_used():
    net = build(LSTM_BLOCK)
    (stage,) = [s for s in net.plan.stages if s.kind == "recurrent"]
    order = ["lstm/i", "lstm/g", "lstm/f", "lstm/o"]     # i and g feed i*g, f feeds f*c, o feeds h
    for group in [g for g in stage.inner if len(g.edges) > 1] + \
                 [g for g in net.plan.sequence_groups if len(g.edges) > 1]:
        assert [e.target for e in group.edges] == order and group.offsets == [0, 3, 6, 9, 12]


def gradient_aliases(layout) -> dict:
    return {n.name: n.gradient_alias_of for n in layout.nodes if n.gradient_alias_of}


# ----------------------------------------------------------------------------- preconditions

def _programs(net, T=2, B=2):
    """The (forward, backward) compiled loops of each time loop after one loss_and_grad."""
    inputs, targets, initial, loss = random_problem(net, T=T, B=B)
    net.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
    return [pair for s in net.plan.stages if s.kind == "recurrent" for pair in net.program.loops(s)]


def _layouts(net, T=2, B=2):
    """What the loop compiler decided for each time loop (the layout ``rnngraph plan --source`` prints)."""
    return [backward.report(forward) for forward, backward in _programs(net, T, B)]


def test_the_specs_here_take_the_layouts_they_test():
    def run_members(layout):
        return {n.name for n in layout.nodes if n.activated_with}

    for layout in _layouts(build(hand_lstm())):
        assert [p.mixed for p in layout.packs] == [True]          # one pack, sigmoid/tanh mixed, one run
        assert set(layout.packs[0].members) == {"i", "f", "g", "o"}
        assert run_members(layout) == {"i", "f", "g", "o"}
        assert gradient_aliases(layout) == {"ig": "c", "fc": "c"}   # c itself is read at t + 1
        assert {n.name: n.alias_of for n in layout.nodes if n.alias_of} == {"tc": "c"}
        assert {n.name for n in layout.nodes if n.transient} == {"ig", "fc"}
    for layout in _layouts(build(hand_lstm(i="identity"))):
        assert not run_members(layout)                             # identity breaks the run
    for layout in _layouts(build(hand_lstm(extra="  - {from: c, to: g, delay: 1, weight: diagonal}"))):
        assert not layout.node("g").activated_with                 # g has a second input
    for layout in _layouts(build(ALIASES.format(u_role="", s_act="identity", extra=""))):
        assert gradient_aliases(layout) == {"u": "s", "w": "s"}
    for layout in _layouts(build(ALIASES.format(u_role=", role: output", s_act="identity", extra=""))):
        assert "u" not in gradient_aliases(layout)                 # its dL/dv also comes from the loss
    for layout in _layouts(build(ALIASES.format(u_role="", s_act="identity",
                                                extra="  - {from: u, to: w, delay: 1, weight: diagonal}"))):
        assert gradient_aliases(layout) == {"w": "s"}
    for layout in _layouts(build(CHAIN)):
        assert (gradient_aliases(layout) == {"h": "m1", "m1": "m2", "m2": "m3", "m3": "k"}
                or layout.node("m2").outside_gradient)
    for layout in _layouts(build(SAME_STEP_PACK)):
        assert [p.mixed for p in layout.packs] == [True] and run_members(layout) == {"p", "q", "r"}
    for case, expected in (("transient", {"m"}), ("factor-of-a-product", {"q"}), ("read-one-step-later", {"k"}),
                           ("read-outside-the-loop", {"m"}), ("an-output", {"m"})):
        for layout in _layouts(build(transient_spec(case))):
            assert {n.name for n in layout.nodes if n.transient} == expected, case
    for layout in _layouts(build(without_fast_paths(hand_lstm()))):
        assert not run_members(layout) and not gradient_aliases(layout)
        assert not any(n.alias_of for n in layout.nodes)
