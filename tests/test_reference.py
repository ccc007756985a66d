"""The reference interpreter against numbers worked out by hand.

The reference (rnngraph/engine/reference.py) is what the fast executor is compared
with (tests/test_executor.py); these tests pin the reference itself, so that
the comparison means something.  Each network is small and float64 with its
weights in the spec or written into ``net.params``; the expected values and
gradients are computed here with plain numpy (a loop over time, and backward
through time written out), never by asking the engine.  Arrays given to and
returned by the API are batch-major ``(batch, time, size)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.engine.reference import reference_forward, reference_loss_and_grad, reference_values


def net_of(text: str) -> rg.Network:
    return rg.build(rg.parse_spec("rnngraph: 1\ndtype: float64\n" + text))


RNG = np.random.default_rng(7)


# =========================================================================== initial states

DELAY_TWO = """
nodes:
  x: {role: input, size: 2}
  h: {role: output, size: 2, activation: tanh, init: [0.5, -1.0], bias: 0.1}
edges:
  - {from: x, to: h, init: [[1.0, -2.0], [0.5, 0.25]]}
  - {from: h, to: h, delay: 2, init: [[0.3, -0.7], [0.9, 0.4]]}
"""


def test_delay_two_reads_the_init_at_both_times_before_zero():
    """h(t) = tanh(W x(t) + U h(t-2) + b): at t = 0 and t = 1 the delayed edge reads
    h's init [0.5, -1] (h(-2) and h(-1) are both the init)."""
    net = net_of(DELAY_TWO)
    W, U, b, init = net.params["x->h"], net.params["h->h"], net.params["h.bias"], np.array([0.5, -1.0])
    x = RNG.normal(size=(3, 5, 2))
    got = reference_forward(net, {"x": x})["h"]
    h = {-2: np.tile(init, (3, 1)), -1: np.tile(init, (3, 1))}
    for t in range(5):
        h[t] = np.tanh(x[:, t] @ W.T + h[t - 2] @ U.T + b)
    np.testing.assert_allclose(got, np.stack([h[t] for t in range(5)], axis=1), rtol=1e-13, atol=1e-15)
    # the first two steps by the numbers: b + U init = [0.1 + 0.15 + 0.7, 0.1 + 0.45 - 0.4] = [0.95, 0.15]
    np.testing.assert_allclose(got[:, 0] - np.tanh(x[:, 0] @ W.T + [0.95, 0.15]), 0, atol=1e-15)
    np.testing.assert_allclose(got[:, 1] - np.tanh(x[:, 1] @ W.T + [0.95, 0.15]), 0, atol=1e-15)


def test_init_input_is_each_samples_own_state_before_zero():
    """``init: input``: each sequence brings h(-1) in ``initial``; an ``initial`` also
    overrides a fixed init (k's 3.0)."""
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  h: {role: output, size: 2, init: input}
  k: {role: output, size: 2, init: 3.0}
edges:
  - {from: x, to: h, weight: identity}
  - {from: x, to: k, weight: identity}
  - {from: h, to: h, delay: 1, weight: scalar, init: 0.5}
  - {from: k, to: k, delay: 1, weight: scalar, init: 0.5}
""")
    x = RNG.normal(size=(2, 3, 2))
    h0 = np.array([[1.0, -2.0], [4.0, 8.0]])
    out = reference_forward(net, {"x": x}, initial={"h": h0})
    # h(t) = x(t) + 0.5 h(t-1):  h(0) = x(0) + 0.5 h0,  h(1) = x(1) + 0.5 x(0) + 0.25 h0, ...
    np.testing.assert_allclose(out["h"][:, 0], x[:, 0] + 0.5 * h0, atol=1e-15)
    np.testing.assert_allclose(out["h"][:, 2], x[:, 2] + 0.5 * x[:, 1] + 0.25 * x[:, 0] + 0.125 * h0, atol=1e-15)
    np.testing.assert_allclose(out["k"][:, 0], x[:, 0] + 1.5, atol=1e-15)
    out = reference_forward(net, {"x": x}, initial={"h": h0, "k": -h0})
    np.testing.assert_allclose(out["k"][:, 0], x[:, 0] - 0.5 * h0, atol=1e-15)
    with pytest.raises(rg.DataError, match=r"node 'h' has `init: input`.*initial=\{'h'"):
        reference_forward(net, {"x": x})


def test_a_blocks_initial_state_sets_its_h_and_c():
    """``initial={block: s}`` is the initial value of both the block's h and c (its init)."""
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  B: {type: lstm, size: 3, role: output}
edges:
  - {from: x, to: B}
""")
    x, s = RNG.normal(size=(2, 4, 2)), RNG.normal(size=(2, 3))
    by_block = reference_forward(net, {"x": x}, initial={"B": s})
    by_parts = reference_forward(net, {"x": x}, initial={"B/h": s, "B/c": s})
    assert by_block.keys() == by_parts.keys() and "B" in by_block
    for n in by_parts:
        np.testing.assert_array_equal(by_block[n], by_parts[n], err_msg=n)
    np.testing.assert_array_equal(by_block["B"], by_block["B/h"])
    # c(0) = f(0) * c(-1) + i(0) * g(0): the block's c reads s at t = -1
    f, i, g = (by_block[f"B/{p}"][:, 0] for p in "fig")
    np.testing.assert_allclose(by_block["B/c"][:, 0], f * s + i * g, rtol=1e-13)


def test_trainable_init_gradient():
    """h(t) = u h(t-1) + x(t), h(-1) = h0 the parameter "h.init":
    h(t) = u^(t+1) h0 + ..., so dL/dh0 = sum over (b, t) of dL/dh(t) u^(t+1)."""
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  h: {role: output, size: 2, init: {value: [0.3, -0.6], trainable: true}}
edges:
  - {from: x, to: h, weight: identity}
  - {from: h, to: h, delay: 1, weight: scalar, init: 0.8}
""")
    B, T, u, h0 = 3, 4, 0.8, np.array([0.3, -0.6])
    x, y = RNG.normal(size=(B, T, 2)), RNG.normal(size=(B, T, 2))
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"h": y})
    assert set(grads) == {"h->h", "h.init"}                 # identity edges have no parameter
    h, prev = np.empty((B, T, 2)), np.tile(h0, (B, 1))
    for t in range(T):
        h[:, t] = prev = u * prev + x[:, t]
    dh = 2 * (h - y) / h.size                               # mse = mean((h - y)^2)
    assert loss == pytest.approx(np.mean((h - y) ** 2), rel=1e-13)
    powers = u ** np.arange(1, T + 1)                       # dh(t)/dh0 = u^(t+1)
    np.testing.assert_allclose(grads["h.init"], np.einsum("btk,t->k", dh, powers), rtol=1e-12)
    # and dL/du by backward through time: g(t) = dh(t) + u g(t+1), dL/du = sum g(t) h(t-1)
    g, du = np.zeros((B, 2)), 0.0
    for t in reversed(range(T)):
        g = dh[:, t] + u * g
        du += np.sum(g * (h[:, t - 1] if t else np.tile(h0, (B, 1))))
    assert grads["h->h"] == pytest.approx(du, rel=1e-12)


# =========================================================================== constraints

HOPFIELD_LIKE = """
nodes:
  x: {role: input, size: 3}
  s: {role: output, size: 3, init: [0.5, -0.25, 1.0], bias: false}
edges:
  - {from: x, to: s, weight: identity}
  - {from: s, to: s, delay: 1, constraint: [symmetric, zero_diagonal]}
"""


def test_symmetric_zero_diagonal_edge_and_its_gradient():
    """A constrained edge applies E = (P + P^T)/2 with its diagonal zeroed, whatever
    P (the parameter) holds; dL/dP = ((G + G^T)/2) * (1 - I) where G = dL/dE."""
    net = net_of(HOPFIELD_LIKE)
    P = np.array([[0.7, 0.2, -0.4], [0.6, -0.3, 0.1], [0.0, 0.5, 0.9]])   # off the constraint set
    net.params["s->s"][...] = P
    E = np.array([[0.0, 0.4, -0.2], [0.4, 0.0, 0.3], [-0.2, 0.3, 0.0]])   # worked out from P
    np.testing.assert_allclose(E, (P + P.T) / 2 * (1 - np.eye(3)), atol=1e-15)
    B, T, s0 = 2, 4, np.array([0.5, -0.25, 1.0])
    x, y = RNG.normal(size=(B, T, 3)), RNG.normal(size=(B, T, 3))
    s = {-1: np.tile(s0, (B, 1))}
    for t in range(T):
        s[t] = s[t - 1] @ E.T + x[:, t]                     # s(t) = E s(t-1) + x(t)
    np.testing.assert_allclose(reference_forward(net, {"x": x})["s"], np.stack([s[t] for t in range(T)], 1),
                               atol=1e-14)
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"s": y})
    # backward through time: g(t) = dL/ds(t) + E^T g(t+1);  G = sum_t g(t)^T s(t-1) over the batch
    g, G = np.zeros((B, 3)), np.zeros((3, 3))
    for t in reversed(range(T)):
        g = 2 * (s[t] - y[:, t]) / (B * T * 3) + g @ E
        G += g.T @ s[t - 1]
    np.testing.assert_allclose(grads["s->s"], (G + G.T) / 2 * (1 - np.eye(3)), rtol=1e-12, atol=1e-15)
    assert np.all(np.diag(grads["s->s"]) == 0)


# =========================================================================== product nodes

def test_product_node_values_and_gradient():
    """q(t) = x(t) * (d * q(t-1)), q(-1) = 2 (combine: product, no bias):
    q(t) = 2 d^(t+1) x(0) ... x(t), so dq(t)/dd = (t+1) q(t) / d."""
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  q: {role: output, size: 2, combine: product, init: 2.0}
edges:
  - {from: x, to: q, weight: identity}
  - {from: q, to: q, delay: 1, weight: diagonal, init: [0.5, -1.5]}
""")
    B, T, d = 2, 3, np.array([0.5, -1.5])
    x, y = RNG.normal(size=(B, T, 2)), RNG.normal(size=(B, T, 2))
    q = 2 * d ** np.arange(1, T + 1)[None, :, None] * np.cumprod(x, axis=1)
    np.testing.assert_allclose(reference_forward(net, {"x": x})["q"], q, rtol=1e-13)
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"q": y})
    assert set(grads) == {"q->q"}                           # product nodes have no bias
    dq = 2 * (q - y) / q.size
    expected = np.einsum("btk,btk->k", dq, np.arange(1, T + 1)[None, :, None] * q / d)
    np.testing.assert_allclose(grads["q->q"], expected, rtol=1e-12)


# =========================================================================== losses and masks

READOUT = """
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 3, activation: ACT, bias: false}
edges:
  - {from: x, to: y, init: [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5]]}
"""


@pytest.mark.parametrize("kind, act", [("mse", "identity"), ("bce", "sigmoid"), ("cross_entropy", "softmax")])
def test_masked_losses_and_their_gradients(kind, act):
    """A mask (B, T) counts only the positions where it is nonzero (weighted by it):
    mse and bce are means over the counted elements, cross_entropy over the counted
    positions.  y = act(W x): dL/da is (v - y) times the weight over the count (twice
    that for mse), and dL/dW = sum over positions of dL/da x^T."""
    net = net_of(READOUT.replace("ACT", act))
    W = net.params["x->y"]
    B, T = 3, 4
    x = RNG.normal(size=(B, T, 2))
    target = np.eye(3)[RNG.integers(0, 3, size=(B, T))] if kind == "cross_entropy" else \
        RNG.uniform(0.1, 0.9, size=(B, T, 3))
    mask = np.array([[1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 0, 0]], dtype=float)
    a = x @ W.T
    v = {"identity": a, "sigmoid": 1 / (1 + np.exp(-a)),
         "softmax": np.exp(a) / np.exp(a).sum(-1, keepdims=True)}[act]
    w = mask[..., None]
    if kind == "mse":
        count = mask.sum() * 3
        expected, dlda = np.sum(w * (v - target) ** 2) / count, 2 * w * (v - target) / count
    elif kind == "bce":
        count = mask.sum() * 3
        expected = np.sum(w * -(target * np.log(v) + (1 - target) * np.log(1 - v))) / count
        dlda = w * (v - target) / count
    else:
        count = mask.sum()
        expected, dlda = np.sum(w * -(target * np.log(v))) / count, w * (v - target) / count
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"y": target}, loss=kind, mask={"y": mask})
    assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grads["x->y"], np.einsum("btj,btk->jk", dlda, x), rtol=1e-11, atol=1e-15)
    # nothing counted: no loss, no gradient
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"y": target}, loss=kind, mask={"y": 0 * mask})
    assert loss == 0.0 and not grads["x->y"].any()


def test_several_outputs_add_their_losses():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2}
  z: {role: output, size: 1}
edges:
  - {from: x, to: y, weight: identity}
  - {from: x, to: z, init: [[1.0, 2.0]], trainable: false}
""")
    x = RNG.normal(size=(2, 3, 2))
    ty, tz = RNG.normal(size=(2, 3, 2)), RNG.normal(size=(2, 3, 1))
    mask = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    z = x @ np.array([[1.0], [2.0]]) + 0.0               # z's default bias starts at 0
    loss, grads = reference_loss_and_grad(net, {"x": x}, {"y": ty, "z": tz}, mask={"z": mask})
    expected = np.mean((x - ty) ** 2) + np.sum(mask[..., None] * (z - tz) ** 2) / mask.sum()
    assert loss == pytest.approx(expected, rel=1e-12)
    assert set(grads) == {"z.bias"}                      # the frozen edge has no gradient entry
    assert grads["z.bias"][0] == pytest.approx(np.sum(mask[..., None] * 2 * (z - tz)) / mask.sum(), rel=1e-12)


# =========================================================================== what the caller passes

def test_the_reference_reports_bad_arrays_as_data_errors():
    net = net_of(DELAY_TWO)
    with pytest.raises(rg.DataError, match=r"inputs\['x'\]: expected shape \(batch, time, 2\), got \(1, 4, 3\)"):
        reference_forward(net, {"x": np.zeros((1, 4, 3))})
    with pytest.raises(rg.DataError, match=r"inputs: expected a dict with exactly the input nodes \['x'\]"):
        reference_forward(net, {"q": np.zeros((1, 4, 2))})
    with pytest.raises(rg.DataError, match=r"targets\['h'\]: expected shape \(1, 4, 2\), got \(1, 3, 2\)"):
        reference_loss_and_grad(net, {"x": np.zeros((1, 4, 2))}, {"h": np.zeros((1, 3, 2))})
    net.params["h->h"] = np.zeros(3)
    with pytest.raises(rg.DataError, match=r"net.params\['h->h'\] has shape \(3,\)"):
        reference_forward(net, {"x": np.zeros((1, 4, 2))})


def test_values_are_time_major_and_steps_without_inputs():
    """``reference_values`` gives (A, V) Vars (T, B, size); a network with no inputs
    runs for ``steps`` from its init alone."""
    net = net_of("""
nodes:
  c: {role: output, size: 1, init: 1.0}
edges:
  - {from: c, to: c, delay: 1, weight: scalar, init: 3.0}
""")
    values, _ = reference_values(net, steps=4)
    assert values["c"][1].shape == (4, 1, 1)
    np.testing.assert_allclose(values["c"][1].value[:, 0, 0], [3.0, 9.0, 27.0, 81.0])
    assert reference_forward(net, steps=0)["c"].shape == (1, 0, 1)
