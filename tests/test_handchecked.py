"""Numbers worked out by hand for tiny networks (docs/spec-format.md: semantics, losses, parameter names).

Every network here is float64 with its weights written in the spec (edge
``init:`` as numbers or lists) or into ``net.params``; the expected values are
computed in the comments and in plain Python arithmetic, never by asking the
engine.  Arrays are batch-major ``(batch, time, size)``.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import rnngraph as rg


def net_of(text: str, **kw) -> rg.Network:
    return rg.build(rg.parse_spec("rnngraph: 1\ndtype: float64\n" + text), **kw)


def seq(*steps):
    """One sequence (batch 1) from its steps: seq([1, 2], [3, 4]) has shape (1, 2, 2)."""
    return np.array([[np.atleast_1d(np.asarray(s, dtype=float)) for s in steps]])


# ======================================================================== weight kinds

def test_dense_edge_with_bias():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2, bias: 0.25}
edges:
  - {from: x, to: y, init: [[1, 2], [3, 4]]}
""")
    assert net.params["x->y"].shape == (2, 2)           # (to.size, from.size)
    np.testing.assert_array_equal(net.params["y.bias"], [0.25, 0.25])
    out = net.forward({"x": seq([1, -1], [0.5, 2])})
    # t=0: W [1, -1] = [1*1 + 2*(-1), 3*1 + 4*(-1)] = [-1, -1];  + 0.25 -> [-0.75, -0.75]
    # t=1: W [0.5, 2] = [0.5 + 4, 1.5 + 8] = [4.5, 9.5];         + 0.25 -> [4.75, 9.75]
    np.testing.assert_allclose(out["y"], [[[-0.75, -0.75], [4.75, 9.75]]], rtol=0, atol=1e-12)
    assert out["y"].shape == (1, 2, 2)


def test_diagonal_edge():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2}
edges:
  - {from: x, to: y, weight: diagonal, init: [2, -3]}
""")
    assert net.params["x->y"].shape == (2,)
    assert "y.bias" not in net.params                  # no dense incoming edge: no bias by default
    out = net.forward({"x": seq([1, 1], [0.5, -2])})
    # elementwise: [2*1, -3*1] = [2, -3];  [2*0.5, -3*(-2)] = [1, 6]
    np.testing.assert_allclose(out["y"], [[[2, -3], [1, 6]]], atol=1e-12)


def test_scalar_edge():
    net = net_of("""
nodes:
  x: {role: input, size: 3}
  y: {role: output, size: 3}
edges:
  - {from: x, to: y, weight: scalar, init: 0.5}
""")
    assert net.params["x->y"].shape == ()
    out = net.forward({"x": seq([2, -4, 6])})
    # 0.5 * [2, -4, 6] = [1, -2, 3]
    np.testing.assert_allclose(out["y"], [[[1, -2, 3]]], atol=1e-12)


def test_identity_edge_has_no_parameter():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2, activation: tanh}
edges:
  - {from: x, to: y, weight: identity}
""")
    assert net.params == {}                             # no weight, and no bias (no dense edge)
    out = net.forward({"x": seq([0.5, -1.0])})
    # y = tanh(x) = [tanh(0.5), tanh(-1)] = [0.46211715726000974, -0.7615941559557649]
    np.testing.assert_allclose(out["y"], [[[0.46211715726000974, -0.7615941559557649]]], atol=1e-12)
    loss, grads = net.loss_and_grad({"x": seq([0.5, -1.0])}, {"y": seq([0.0, 0.0])})
    assert grads == {}
    # mse = (0.4621171572600097^2 + 0.7615941559557649^2) / 2 = (0.21355226 + 0.58002566) / 2
    assert loss == pytest.approx((0.46211715726000974 ** 2 + 0.7615941559557649 ** 2) / 2, abs=1e-12)


# ======================================================================== time

def test_delay_two_reads_t_minus_two_then_init():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  h: {size: 2, init: [7, 8]}
  y: {role: output, size: 2}
edges:
  - {from: x, to: h, weight: identity}
  - {from: h, to: y, delay: 2, weight: identity}
""")
    x = seq([1, 10], [2, 20], [3, 30], [4, 40])
    out = net.forward({"x": x})
    # h(t) = x(t); y(t) = h(t - 2), and h(-2) = h(-1) = init = [7, 8]
    # y(0) = h(-2) = [7, 8]; y(1) = h(-1) = [7, 8]; y(2) = h(0) = [1, 10]; y(3) = h(1) = [2, 20]
    np.testing.assert_allclose(out["y"], [[[7, 8], [7, 8], [1, 10], [2, 20]]], atol=1e-12)


def test_init_input_passed_per_sample():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  c: {size: 1, init: input}
  y: {role: output, size: 1}
edges:
  - {from: x, to: c, weight: identity}
  - {from: c, to: y, delay: 1, weight: identity}
""")
    x = np.array([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])      # batch 2, T 3
    out = net.forward({"x": x}, initial={"c": [[5.0], [-1.0]]})
    # y(t) = c(t-1) = x(t-1); y(0) = c(-1) = the sample's initial: 5 and -1
    np.testing.assert_allclose(out["y"][..., 0], [[5, 1, 2], [-1, 4, 5]], atol=1e-12)
    with pytest.raises(rg.DataError, match="init: input"):
        net.forward({"x": x})                       # the initial state is required


def test_initial_overrides_init_value():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  h: {size: 1, init: 3}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h, weight: identity}
  - {from: h, to: y, delay: 1, weight: identity}
""")
    x = seq(1, 2)
    np.testing.assert_allclose(net.forward({"x": x})["y"].ravel(), [3, 1])          # init 3
    np.testing.assert_allclose(net.forward({"x": x}, initial={"h": [[-4.0]]})["y"].ravel(), [-4, 1])


def test_trainable_initial_state_gradient():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  h: {role: output, size: 1, init: {value: 0.5, trainable: true}}
edges:
  - {from: x, to: h, weight: scalar, init: 1, trainable: false}
  - {from: h, to: h, delay: 1, weight: scalar, init: 0.8, trainable: false}
""")
    assert set(net.params) == {"x->h", "h->h", "h.init"}
    np.testing.assert_array_equal(net.params["h.init"], [0.5])
    x, y = seq(1, 2), seq(0, 0)
    loss, grads = net.loss_and_grad({"x": x}, {"h": y})
    # s = h(-1) = 0.5
    # h(0) = 0.8 * s + x(0) = 0.4 + 1 = 1.4
    # h(1) = 0.8 * h(0) + x(1) = 1.12 + 2 = 3.12
    # L = mean((h - 0)^2) = (1.4^2 + 3.12^2) / 2 = (1.96 + 9.7344) / 2 = 5.8472
    assert loss == pytest.approx(5.8472, abs=1e-12)
    # dh(0)/ds = 0.8, dh(1)/ds = 0.8 * 0.8 = 0.64
    # dL/ds = (2 * 1.4 * 0.8 + 2 * 3.12 * 0.64) / 2 = (2.24 + 3.9936) / 2 = 3.1168
    assert set(grads) == {"h.init"}
    assert grads["h.init"].shape == (1,)
    np.testing.assert_allclose(grads["h.init"], [3.1168], atol=1e-12)


def test_trainable_init_read_twice_by_a_delay_two_edge():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  h: {size: 1, init: {value: 2.0, trainable: true}}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h, weight: identity}
  - {from: h, to: y, delay: 2, weight: scalar, init: 3, trainable: false}
""")
    loss, grads = net.loss_and_grad({"x": seq(1, 1, 1)}, {"y": seq(0, 0, 0)})
    # y(t) = 3 h(t-2): y(0) = y(1) = 3 s = 6 (s = 2 read at t = 0 and t = 1), y(2) = 3 x(0) = 3
    # L = (36 + 36 + 9) / 3 = 27
    # dL/ds = (2 * 6 * 3 + 2 * 6 * 3) / 3 = 24   (both reads of the initial state count)
    assert loss == pytest.approx(27.0)
    np.testing.assert_allclose(grads["h.init"], [24.0])


def test_parallel_named_edges_add_up():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1, bias: false}
edges:
  - {from: x, to: y, init: [[2]], name: a}
  - {from: x, to: y, init: [[3]], name: b}
  - {from: y, to: y, delay: 1, init: [[0.5]], name: r1}
  - {from: y, to: y, delay: 1, weight: scalar, init: 0.25, name: r2}
""")
    assert set(net.params) == {"a", "b", "r1", "r2"}
    # y(0) = 2*1 + 3*1 + (0.5 + 0.25) * 0 = 5;  y(1) = 0 + (0.5 + 0.25) * 5 = 3.75
    np.testing.assert_allclose(net.forward({"x": seq(1, 0)})["y"].ravel(), [5, 3.75])
    # one arc per pair in the unrolled DAG, listing both edges
    dag = net.unroll(2)
    assert sorted(dag.edges[("x", 0), ("y", 0)]["edges"]) == ["a", "b"]
    assert sorted(dag.edges[("y", 0), ("y", 1)]["edges"]) == ["r1", "r2"]


# ======================================================================== product, bias, frozen

def test_product_node():
    net = net_of("""
nodes:
  a: {role: input, size: 2}
  b: {role: input, size: 2}
  p: {role: output, size: 2, combine: product}
edges:
  - {from: a, to: p, weight: diagonal, init: [2, 3]}
  - {from: b, to: p, weight: scalar, init: 0.5}
""")
    assert "p.bias" not in net.params
    out = net.forward({"a": seq([1, 2]), "b": seq([4, -6])})
    # c_a = [2*1, 3*2] = [2, 6]; c_b = 0.5 * [4, -6] = [2, -3]; p = c_a * c_b = [4, -18]
    np.testing.assert_allclose(out["p"], [[[4, -18]]], atol=1e-12)


def test_product_node_gradient():
    net = net_of("""
nodes:
  a: {role: input, size: 1}
  b: {role: input, size: 1}
  p: {role: output, size: 1, combine: product}
edges:
  - {from: a, to: p, weight: scalar, init: 2}
  - {from: b, to: p, weight: scalar, init: 3}
""")
    loss, grads = net.loss_and_grad({"a": seq(1.0), "b": seq(2.0)}, {"p": seq(10.0)})
    # p = (2*1) * (3*2) = 12;  L = (12 - 10)^2 = 4
    # dL/dp = 2 * 2 = 4;  dp/du = a * (v b) = 1 * 6 = 6 -> 24;  dp/dv = b * (u a) = 2 * 2 = 4 -> 16
    assert loss == pytest.approx(4.0)
    assert grads["a->p"] == pytest.approx(24.0)
    assert grads["b->p"] == pytest.approx(16.0)


def test_bias_defaults():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  dense_in: {size: 2}                        # sum with a dense incoming edge: bias
  diag_in: {size: 2}                         # only diagonal / scalar / identity incoming: none
  mixed: {size: 2}                           # identity and dense incoming: bias
  nob: {size: 2, bias: false}                # dense incoming but switched off
  yesb: {size: 2, bias: true}                # only identity incoming but asked for
  prod: {size: 2, combine: product}          # product nodes never have one
  y: {role: output, size: 2}                 # dense incoming: bias
edges:
  - {from: x, to: dense_in}
  - {from: x, to: diag_in, weight: diagonal}
  - {from: x, to: diag_in, weight: scalar, name: s}
  - {from: x, to: mixed, weight: identity}
  - {from: dense_in, to: mixed}
  - {from: x, to: nob}
  - {from: x, to: yesb, weight: identity}
  - {from: x, to: prod}
  - {from: diag_in, to: prod, weight: identity}
  - {from: prod, to: y}
""")
    biases = {k for k in net.params if k.endswith(".bias")}
    assert biases == {"dense_in.bias", "mixed.bias", "yesb.bias", "y.bias"}
    for name in biases:
        assert net.params[name].shape == (2,)
        np.testing.assert_array_equal(net.params[name], 0.0)      # `true` starts at 0
    assert "x.bias" not in net.params


def test_frozen_edge_and_bias_in_params_not_in_grads():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1, bias: {init: 0.5, trainable: false}}
edges:
  - {from: x, to: y, weight: scalar, init: 2, trainable: false}
  - {from: x, to: y, weight: scalar, init: 1, name: free}
""")
    assert set(net.params) == {"x->y", "free", "y.bias"}
    assert set(net.trainable) == {"free"}
    loss, grads = net.loss_and_grad({"x": seq(1.0)}, {"y": seq(0.0)})
    # y = 2*1 + 1*1 + 0.5 = 3.5;  L = 12.25;  dL/dfree = 2 * 3.5 * x = 7
    # (x->y and y.bias would get 7 too if they trained)
    assert loss == pytest.approx(12.25)
    assert set(grads) == {"free"}
    assert grads["free"] == pytest.approx(7.0)
    np.testing.assert_array_equal(net.params["x->y"], 2.0)
    np.testing.assert_array_equal(net.params["y.bias"], [0.5])


def test_jordan_mu_set_through_params():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1}
  state: {size: 1}
edges:
  - {from: x, to: y, weight: identity}
  - {from: y, to: state, delay: 1, weight: identity}
  - {from: state, to: state, delay: 1, weight: scalar, init: 0.5, trainable: false}
""")
    x = seq(1, 2, 3, 4)
    # state(t) = mu * state(t-1) + y(t-1), with y = x and everything 0 before t = 0:
    # mu = 0.5: state = [0, 1, 0.5*1 + 2 = 2.5, 0.5*2.5 + 3 = 4.25]
    np.testing.assert_allclose(net.forward({"x": x})["state"].ravel(), [0, 1, 2.5, 4.25], atol=1e-12)
    assert "state->state" not in net.trainable                     # frozen, yet in net.params
    net.params["state->state"][...] = 0.9
    # mu = 0.9: state = [0, 1, 0.9 + 2 = 2.9, 0.9*2.9 + 3 = 5.61]
    np.testing.assert_allclose(net.forward({"x": x})["state"].ravel(), [0, 1, 2.9, 5.61], atol=1e-12)


def test_jordan_mu_assigned_as_a_float():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1}
  state: {size: 1}
edges:
  - {from: x, to: y, weight: identity}
  - {from: y, to: state, delay: 1, weight: identity}
  - {from: state, to: state, delay: 1, weight: scalar, init: 0.5, trainable: false, name: mu}
""")
    net.params["mu"] = 0.9
    try:
        out = net.forward({"x": seq(1, 2, 3, 4)})
    except rg.DataError:
        return          # refusing with a clear message is fine too
    np.testing.assert_allclose(out["state"].ravel(), [0, 1, 2.9, 5.61], atol=1e-12)


# ======================================================================== activations, losses

def test_sign_and_step():
    net = net_of("""
nodes:
  x: {role: input, size: 4}
  s: {role: output, size: 4, activation: sign}
  u: {role: output, size: 4, activation: step}
edges:
  - {from: x, to: s, weight: diagonal, init: 1}
  - {from: x, to: u, weight: identity}
""")
    out = net.forward({"x": seq([-2, -0.5, 0.5, 3])})
    np.testing.assert_array_equal(out["s"], [[[-1, -1, 1, 1]]])
    np.testing.assert_array_equal(out["u"], [[[0, 0, 1, 1]]])
    # piecewise constant: no gradient flows through sign
    _, grads = net.loss_and_grad({"x": seq([-2, -0.5, 0.5, 3])}, {"s": seq([0, 0, 0, 0]), "u": seq([0, 0, 0, 0])})
    np.testing.assert_array_equal(grads["x->s"], 0.0)


def test_other_activations():
    net = net_of("""
nodes:
  x: {role: input, size: 3}
  r: {role: output, size: 3, activation: relu}
  l: {role: output, size: 3, activation: leaky_relu}
  p: {role: output, size: 3, activation: softplus}
  g: {role: output, size: 3, activation: sigmoid}
edges:
  - {from: x, to: r, weight: identity}
  - {from: x, to: l, weight: identity}
  - {from: x, to: p, weight: identity}
  - {from: x, to: g, weight: identity}
""")
    out = net.forward({"x": seq([-2, 0.5, 3])})
    np.testing.assert_allclose(out["r"], [[[0, 0.5, 3]]])
    # leaky_relu: slope 0.01 below zero (activations.LEAKY_SLOPE, the project's documented choice)
    np.testing.assert_allclose(out["l"], [[[-0.02, 0.5, 3]]])
    # softplus(a) = log(1 + e^a)
    np.testing.assert_allclose(out["p"], [[[math.log1p(math.exp(v)) for v in (-2, 0.5, 3)]]], atol=1e-12)
    np.testing.assert_allclose(out["g"], [[[1 / (1 + math.exp(-v)) for v in (-2, 0.5, 3)]]], atol=1e-12)


def test_cross_entropy_with_mask_is_a_mean_over_counted_positions():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2, activation: softmax}
edges:
  - {from: x, to: y, weight: identity}
""")
    x = np.array([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [3.0, 3.0]]])
    y = np.array([[[1, 0], [1, 0]], [[1, 0], [0, 1]]], dtype=float)
    mask = np.array([[1, 0], [1, 1]])
    # counted: (0,0): a = [0, 0], class 0 -> log 2
    #          (1,0): a = [0, 2], class 0 -> -log(1 / (1 + e^2)) = log(1 + e^2)
    #          (1,1): a = [3, 3], class 1 -> log 2
    expected = (2 * math.log(2) + math.log(1 + math.exp(2))) / 3
    loss, _ = net.loss_and_grad({"x": x}, {"y": y}, loss="cross_entropy", mask={"y": mask})
    assert loss == pytest.approx(expected, abs=1e-12)


def test_softmax_cross_entropy_by_hand():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 3, activation: softmax, bias: false}
edges:
  - {from: x, to: y, init: [[1], [0], [-1]]}
train: {loss: cross_entropy}
""")
    x = seq(1.0, 0.0)
    targets = seq([1, 0, 0], [0, 0, 1])
    # t=0: a = [1, 0, -1]; Z = e + 1 + 1/e; v = [e, 1, 1/e] / Z
    e = math.e
    Z = e + 1 + 1 / e
    # t=1: a = [0, 0, 0]; v = [1/3, 1/3, 1/3]
    out = net.forward({"x": x})
    np.testing.assert_allclose(out["y"], [[[e / Z, 1 / Z, 1 / e / Z], [1 / 3, 1 / 3, 1 / 3]]], atol=1e-12)
    # cross_entropy = mean over (batch, time) positions of -sum(y log v):
    # t=0: -log(e / Z) = log Z - 1;  t=1: -log(1/3) = log 3;  mean over 2 positions
    expected = ((math.log(Z) - 1) + math.log(3)) / 2           # = 0.9576...
    loss, grads = net.loss_and_grad({"x": x}, {"y": targets})     # the spec's train.loss
    assert loss == pytest.approx(expected, abs=1e-12)
    # dL/da = (v - y) / positions; dL/dW = sum_t dL/da(t) x(t)^T (x(1) = 0 adds nothing)
    # = ([e/Z - 1, 1/Z, 1/(e Z)] * 1) / 2
    np.testing.assert_allclose(grads["x->y"][:, 0], [(e / Z - 1) / 2, (1 / Z) / 2, (1 / e / Z) / 2], atol=1e-12)
    assert net.loss_and_grad({"x": x}, {"y": targets}, loss="cross_entropy")[0] == pytest.approx(expected)


def test_bce_by_hand():
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2, activation: sigmoid}
edges:
  - {from: x, to: y, weight: diagonal, init: [1, -2]}
train: {loss: bce}
""")
    x = seq([0, 1], [2, 0])
    y = seq([1, 0], [0, 1])
    # t=0: a = [0, -2]: v = [0.5, s(-2)]; targets [1, 0]:
    #   -log 0.5 = log 2;  -log(1 - s(-2)) = -log s(2) = log(1 + e^-2)
    # t=1: a = [2, 0]: v = [s(2), 0.5]; targets [0, 1]:
    #   -log(1 - s(2)) = log(1 + e^2);  -log 0.5 = log 2
    # bce = mean over the 4 elements
    expected = (2 * math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 4
    loss, _ = net.loss_and_grad({"x": x}, {"y": y})      # default loss: the spec's train.loss (bce)
    assert loss == pytest.approx(expected, abs=1e-12)
    # and mse of the same outputs, asked for explicitly, differs:
    # ((0.5-1)^2 + s(-2)^2 + s(2)^2 + (0.5-1)^2) / 4
    s2 = 1 / (1 + math.exp(-2))
    mse = (0.25 + (1 - s2) ** 2 + s2 ** 2 + 0.25) / 4
    assert net.loss_and_grad({"x": x}, {"y": y}, loss="mse")[0] == pytest.approx(mse, abs=1e-12)


def test_mask_excludes_positions():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1}
edges:
  - {from: x, to: y, weight: scalar, init: 1}
""")
    x = np.array([[[1.0], [2.0], [3.0], [4.0]], [[5.0], [6.0], [7.0], [8.0]]])
    y = np.zeros_like(x)
    mask = np.array([[1, 0, 1, 0], [0, 0, 0, 1]])
    loss, grads = net.loss_and_grad({"x": x}, {"y": y}, mask={"y": mask})
    # y = w x with w = 1; counted positions: x = 1, 3 (first sequence) and 8 (second)
    # mse = (1^2 + 3^2 + 8^2) / 3 = 74 / 3
    assert loss == pytest.approx(74 / 3, abs=1e-12)
    # dL/dw = sum 2 (w x - 0) x / 3 = 2 (1 + 9 + 64) / 3 = 148 / 3
    assert grads["x->y"] == pytest.approx(148 / 3, abs=1e-12)
    # without the mask every position counts: (1+4+9+16+25+36+49+64) / 8 = 204 / 8
    assert net.loss_and_grad({"x": x}, {"y": y})[0] == pytest.approx(204 / 8)


def test_two_outputs_loss_is_the_sum():
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  y1: {role: output, size: 1}
  y2: {role: output, size: 2, bias: false}
edges:
  - {from: x, to: y1, weight: identity}
  - {from: x, to: y2, init: [[1], [2]], trainable: false}
""")
    x = seq(1, 3)
    zeros1, zeros2 = np.zeros((1, 2, 1)), np.zeros((1, 2, 2))
    # y1 = x = [1, 3]: mse = (1 + 9) / 2 = 5
    # y2 = [x, 2x] = [[1, 2], [3, 6]]: mse = (1 + 4 + 9 + 36) / 4 = 12.5
    # loss = 5 + 12.5 = 17.5  (one mean over all 6 numbers would be 60 / 6 = 10)
    loss, _ = net.loss_and_grad({"x": x}, {"y1": zeros1, "y2": zeros2})
    assert loss == pytest.approx(17.5, abs=1e-12)
    assert net.loss_and_grad({"x": x}, {"y1": zeros1})[0] == pytest.approx(5.0)
    assert net.loss_and_grad({"x": x}, {"y2": zeros2})[0] == pytest.approx(12.5)


# ======================================================================== parameters

LINEAR = """
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 1}
edges:
  - {from: x, to: y, init: [[1, 1]]}
"""


def test_params_are_live():
    net = net_of(LINEAR)
    x = seq([1, 2])
    assert net.forward({"x": x})["y"].item() == pytest.approx(3.0)          # 1 + 2 + bias 0
    net.params["x->y"][...] = [[2, -1]]                                       # in place
    assert net.forward({"x": x})["y"].item() == pytest.approx(0.0)          # 2 - 2
    net.params["x->y"] = np.array([[10.0, 0.0]])                              # a new array, same shape
    net.params["y.bias"][...] = 0.5
    assert net.forward({"x": x})["y"].item() == pytest.approx(10.5)
    loss, grads = net.loss_and_grad({"x": x}, {"y": seq(0.0)})
    # L = 10.5^2; dL/dW = 2 * 10.5 * [1, 2] = [21, 42]; dL/db = 21
    assert loss == pytest.approx(110.25)
    np.testing.assert_allclose(grads["x->y"], [[21, 42]])
    np.testing.assert_allclose(grads["y.bias"], [21])


def test_save_load_round_trip(tmp_path):
    net = net_of(LINEAR)
    net.params["x->y"][...] = [[0.25, -4]]
    net.params["y.bias"][...] = 1.5
    path = tmp_path / "params.npz"
    net.save(path)
    with np.load(path) as data:
        assert set(data.files) == {"x->y", "y.bias"}
    other = net_of(LINEAR, seed=7)
    other.params["x->y"][...] = 0.0
    assert other.load(path) is other
    np.testing.assert_array_equal(other.params["x->y"], [[0.25, -4]])
    np.testing.assert_array_equal(other.params["y.bias"], [1.5])
    # 0.25 * 2 - 4 * 1 + 1.5 = -2
    assert other.forward({"x": seq([2, 1])})["y"].item() == pytest.approx(-2.0)


def test_load_missing_parameter(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, **{"x->y": np.ones((1, 2))})
    net = net_of(LINEAR)
    with pytest.raises(rg.DataError) as info:
        net.load(path)
    assert str(path) in str(info.value) and "y.bias" in str(info.value)


def test_load_wrong_shape(tmp_path):
    path = tmp_path / "shape.npz"
    np.savez(path, **{"x->y": np.ones((2, 1)), "y.bias": np.zeros(1)})
    net = net_of(LINEAR)
    before = net.params["x->y"].copy()
    with pytest.raises(rg.DataError) as info:
        net.load(path)
    message = str(info.value)
    assert str(path) in message and "x->y" in message and "(2, 1)" in message
    np.testing.assert_array_equal(net.params["x->y"], before)                # nothing half-loaded


def test_load_unknown_parameter(tmp_path):
    path = tmp_path / "extra.npz"
    np.savez(path, **{"x->y": np.ones((1, 2)), "y.bias": np.zeros(1), "x->z": np.ones((1, 2))})
    with pytest.raises(rg.DataError) as info:
        net_of(LINEAR).load(path)
    assert str(path) in str(info.value) and "x->z" in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(rg.DataError, match="nope.npz"):
        net_of(LINEAR).load(tmp_path / "nope.npz")


# ======================================================================== unrolling

ELMAN = """
nodes:
  x: {role: input, size: 2}
  hidden: {size: 4, activation: tanh}
  context: {size: 4}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: hidden}
  - {from: context, to: hidden, delay: 1}
  - {from: hidden, to: context, weight: identity}
  - {from: hidden, to: y}
  - {from: y, to: hidden, delay: 2}
"""


@pytest.mark.parametrize("T", [0, 1, 2, 5])
def test_unroll_counts(T):
    net = net_of(ELMAN)
    dag = net.unroll(T)
    # vertices: (n, t) for the 4 nodes and 0 <= t < T
    assert set(dag.nodes) == {(n, t) for n in ("x", "hidden", "context", "y") for t in range(T)}
    # arcs (s, t-d) -> (n, t) where t - d >= 0: three delay-0 edges give T each,
    # the delay-1 edge max(T-1, 0), the delay-2 edge max(T-2, 0)
    expected = set()
    for s, n, d in [("x", "hidden", 0), ("context", "hidden", 1), ("hidden", "context", 0),
                    ("hidden", "y", 0), ("y", "hidden", 2)]:
        expected |= {((s, t - d), (n, t)) for t in range(d, T)}
    assert set(dag.edges) == expected
    assert dag.number_of_edges() == 3 * T + max(T - 1, 0) + max(T - 2, 0)
    assert dag.number_of_nodes() == 4 * T
    assert nx.is_directed_acyclic_graph(dag)


def test_unroll_five_steps_numbers():
    dag = net_of(ELMAN).unroll(5)
    # 4 nodes * 5 steps = 20 vertices; 3*5 + 4 + 3 = 22 arcs
    assert (dag.number_of_nodes(), dag.number_of_edges()) == (20, 22)


# ======================================================================== BPTT

def test_long_elman_sequence_no_recursion_error():
    net = rg.build(rg.parse_spec("rnngraph: 1\n" + ELMAN.replace("  - {from: y, to: hidden, delay: 2}\n", "")
                                 .replace("size: 2}", "size: 4}")), dtype="float64")
    rng = np.random.default_rng(0)
    T = 10_000
    x = rng.normal(size=(1, T, 4))
    y = (rng.uniform(size=(1, T, 1)) > 0.5).astype(float)
    loss, grads = net.loss_and_grad({"x": x}, {"y": y}, loss="bce")
    assert math.isfinite(loss)
    assert set(grads) == set(net.trainable)
    for name, g in grads.items():
        assert g.shape == net.params[name].shape
        assert np.all(np.isfinite(g)), name
    assert np.any(grads["context->hidden"] != 0)


def test_shared_scalar_weight_gets_sum_of_step_gradients():
    """h(t) = tanh(u x(t) + w h(t-1)), h(-1) = 0, over 3 steps, mse against targets."""
    net = net_of("""
nodes:
  x: {role: input, size: 1}
  h: {role: output, size: 1, activation: tanh}
edges:
  - {from: x, to: h, weight: scalar, init: 0.7}
  - {from: h, to: h, delay: 1, weight: scalar, init: -0.4}
""")
    u, w = 0.7, -0.4
    xs, ys = [1.0, -2.0, 0.5], [0.2, -0.1, 0.3]
    # forward, step by step
    h_prev, hs, As = 0.0, [], []
    for t in range(3):
        a = u * xs[t] + w * h_prev
        h_prev = math.tanh(a)
        As.append(a)
        hs.append(h_prev)
    # L = sum_t (h(t) - y(t))^2 / 3
    loss_hand = sum((h - y) ** 2 for h, y in zip(hs, ys)) / 3
    # backward: dL/dh(t) = 2 (h(t) - y(t)) / 3 + dL/da(t+1) * w;  dL/da(t) = dL/dh(t) (1 - h(t)^2)
    da = [0.0, 0.0, 0.0]
    carry = 0.0
    for t in (2, 1, 0):
        dh = 2 * (hs[t] - ys[t]) / 3 + carry
        da[t] = dh * (1 - hs[t] ** 2)
        carry = da[t] * w
    # the copy of w used at step t gets dL/da(t) * h(t-1); w's gradient is their sum
    per_step_w = [da[0] * 0.0, da[1] * hs[0], da[2] * hs[1]]
    per_step_u = [da[t] * xs[t] for t in range(3)]
    loss, grads = net.loss_and_grad({"x": seq(*xs)}, {"h": seq(*ys)})
    np.testing.assert_allclose(net.forward({"x": seq(*xs)})["h"].ravel(), hs, atol=1e-12)
    assert loss == pytest.approx(loss_hand, abs=1e-12)
    assert grads["h->h"] == pytest.approx(sum(per_step_w), abs=1e-12)
    assert grads["x->h"] == pytest.approx(sum(per_step_u), abs=1e-12)
    # more than one step contributes: the sum is not any single step's share
    assert sum(abs(g) > 1e-6 for g in per_step_w) == 2


def test_shared_dense_weight_gets_sum_of_step_gradients():
    """The same for a 2-unit dense recurrence, unrolled explicitly as three copies of W."""
    W = np.array([[0.5, -0.3], [0.2, 0.1]])
    U = np.array([[1.0], [-0.5]])
    net = net_of(f"""
nodes:
  x: {{role: input, size: 1}}
  h: {{role: output, size: 2, activation: tanh, bias: false}}
edges:
  - {{from: x, to: h, init: {U.tolist()}}}
  - {{from: h, to: h, delay: 1, init: {W.tolist()}}}
""")
    xs = [0.3, -1.2, 0.8]
    ys = [np.array([0.1, 0.0]), np.array([-0.2, 0.4]), np.array([0.0, -0.3])]

    def loss_with_copies(W0, W1, W2):
        """The unrolled computation with a separate W at every step."""
        h = np.zeros(2)
        total = 0.0
        for t, Wt in enumerate((W0, W1, W2)):
            h = np.tanh(U[:, 0] * xs[t] + Wt @ h)
            total += np.sum((h - ys[t]) ** 2)
        return total / 6                      # mean over 3 steps * 2 units

    # the gradient for each copy, by central differences on the by-hand unrolled function
    eps = 1e-6
    per_step = []
    for k in range(3):
        g = np.zeros_like(W)
        for i in range(2):
            for j in range(2):
                plus = [W.copy() for _ in range(3)]
                minus = [W.copy() for _ in range(3)]
                plus[k][i, j] += eps
                minus[k][i, j] -= eps
                g[i, j] = (loss_with_copies(*plus) - loss_with_copies(*minus)) / (2 * eps)
        per_step.append(g)
    np.testing.assert_allclose(per_step[0], 0.0, atol=1e-9)   # W at t=0 multiplies h(-1) = 0
    loss, grads = net.loss_and_grad({"x": seq(*xs)}, {"h": np.array([ys])})
    assert loss == pytest.approx(loss_with_copies(W, W, W), abs=1e-12)
    np.testing.assert_allclose(grads["h->h"], per_step[0] + per_step[1] + per_step[2], atol=1e-8)
    assert not np.allclose(grads["h->h"], per_step[2], atol=1e-6)


# ======================================================================== bad numbers

@pytest.mark.parametrize("batch", [2, 2 ** 20 // 4 + 1], ids=["small", "above-the-elementwise-limit"])
def test_nan_and_infinity_in_data_are_refused_and_huge_finite_values_are_not(batch):
    """Inputs and targets are checked for NaN and infinity (elementwise up to 2**20
    numbers, by a sum above); a sum that overflows on finite data is no error."""
    net = net_of("""
nodes:
  x: {role: input, size: 2}
  y: {role: output, size: 2}
edges:
  - {from: x, to: y, weight: identity}
""", dtype="float32")
    x = np.zeros((batch, 2, 2), np.float32)
    y = np.zeros_like(x)
    bad = x.copy()
    bad[batch - 1, 1, 0] = np.nan
    with pytest.raises(rg.DataError, match=r"inputs\['x'\]: NaN or infinite value at \(batch, time, unit\) = "
                                           rf"\({batch - 1}, 1, 0\)"):
        net.loss_and_grad({"x": bad}, {"y": y})
    bad_y = y.copy()
    bad_y[0, 0, 1] = -np.inf
    with pytest.raises(rg.DataError, match=r"targets\['y'\]: NaN or infinite value at .* = \(0, 0, 1\)"):
        net.loss_and_grad({"x": x}, {"y": bad_y})
    huge = np.full_like(x, 3e38)          # finite, but their sum overflows float32
    loss, _ = net.loss_and_grad({"x": huge}, {"y": huge})
    assert loss == 0.0
