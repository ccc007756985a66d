"""Fused parameters (``rnngraph.engine.flat``): a fused group's weights live as row blocks
of one array, ``net.params`` holds views of them, and the executor reads the
array as one leaf for as long as ``net.params`` still holds those views."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.engine import autodiff as ad
from rnngraph.engine.reference import reference_loss_and_grad

LSTM = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 3}
  lstm: {type: lstm, size: 4}
  y: {role: output, size: 2}
edges:
  - {from: x, to: lstm}
  - {from: lstm, to: y}
"""
GATES = ("i", "f", "g", "o")


def problem(net, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((2, 5, 3))}, {"y": rng.standard_normal((2, 5, 2))}


def fused_arrays(net):
    """The fused arrays the last-built tape read as leaves, by their member names."""
    inputs, targets = problem(net)
    _, _, run = net.train_step(inputs, targets, keep_values=True)
    return {flat.names: leaf for leaf, flat in run.fused}


def assert_matches_reference(net, seed=0):
    inputs, targets = problem(net, seed)
    loss, grads = net.loss_and_grad(inputs, targets)
    ref_loss, ref_grads = reference_loss_and_grad(net, inputs, targets)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_an_lstms_gate_weights_and_biases_are_views_of_one_array_each():
    net = rg.build(rg.parse_spec(LSTM))
    for fmt in ("x->lstm/{}", "lstm/h->lstm/{}", "lstm/{}.bias"):
        views = [net.params[fmt.format(g)] for g in GATES]
        base = views[0].base
        assert base is not None and all(v.base is base for v in views), fmt
        assert all(v.flags.c_contiguous for v in views)
    used = fused_arrays(net)
    assert len(used) == 3   # input weights, recurrent weights, biases: no concat op among them
    assert_matches_reference(net)


def test_no_concatenation_is_recorded_for_intact_groups(monkeypatch):
    net = rg.build(rg.parse_spec(LSTM))
    calls = []
    real = ad.concat
    monkeypatch.setattr(ad, "concat", lambda parts, axis: calls.append(len(parts)) or real(parts, axis))
    net.loss_and_grad(*problem(net))
    assert calls == []
    net.params["x->lstm/g"] = net.params["x->lstm/g"].copy()   # no longer a view: concatenated again
    net.loss_and_grad(*problem(net))
    assert calls == [4]


def test_writing_into_a_parameter_changes_the_model():
    net = rg.build(rg.parse_spec(LSTM))
    inputs, targets = problem(net)
    before, _ = net.loss_and_grad(inputs, targets)
    net.params["lstm/h->lstm/f"][...] += 0.5
    net.params["lstm/o.bias"][...] -= 1.0
    after, _ = net.loss_and_grad(inputs, targets)
    assert after != before
    assert_matches_reference(net)


def test_a_parameter_given_a_new_array_is_read_from_it():
    net = rg.build(rg.parse_spec(LSTM))
    old = net.params["x->lstm/i"]
    net.params["x->lstm/i"] = old + 0.25          # a new array: the fused one is stale for it
    net.params["lstm/g.bias"] = np.full(4, 0.5)
    used = fused_arrays(net)
    assert all("x->lstm/i" not in names and "lstm/g.bias" not in names for names in used)
    assert ("lstm/h->lstm/i", "lstm/h->lstm/f", "lstm/h->lstm/g", "lstm/h->lstm/o") in {
        tuple(sorted(n, key=lambda s: GATES.index(s[-1]))) for n in used}
    assert_matches_reference(net, seed=1)
    np.testing.assert_array_equal(old, net.params["x->lstm/i"] - 0.25)   # the old view is untouched


def test_gradients_are_the_callers_and_training_updates_the_views():
    net = rg.build(rg.parse_spec(LSTM.replace("dtype: float64", "dtype: float32")))
    inputs, targets = problem(net)
    _, first = net.loss_and_grad(inputs, targets)
    kept = {k: v.copy() for k, v in first.items()}
    base = net.params["x->lstm/i"].base
    for _ in range(3):
        _, grads = net.loss_and_grad(inputs, targets)
        for name, g in grads.items():
            net.params[name] -= 0.1 * g             # in place, as the optimizers do
    assert net.params["x->lstm/i"].base is base
    for name in kept:
        np.testing.assert_array_equal(first[name], kept[name], err_msg=name)
    assert fused_arrays(net)


def test_frozen_weights_are_fused_as_one_constant():
    """x -> p and x -> q are one fused group that training leaves alone: one array,
    read as a constant; their gradients are not returned."""
    frozen = rg.build(rg.parse_spec(LSTM.replace("  - {from: x, to: lstm}",
                                                 "  - {from: x, to: [p, q], trainable: false}\n"
                                                 "  - {from: p, to: lstm}\n  - {from: q, to: lstm}")
                                     .replace("  y: {role: output, size: 2}",
                                              "  y: {role: output, size: 2}\n  p: {size: 3}\n  q: {size: 3}")))
    assert frozen.params["x->p"].base is frozen.params["x->q"].base     # fused, as one constant
    assert_matches_reference(frozen)
    assert "x->p" not in frozen.loss_and_grad(*problem(frozen))[1]
