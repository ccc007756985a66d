"""The simple engine (``build(spec, engine="simple")``, engine/loop.py) against the reference
interpreter, the compiled engine and finite differences.

The three definitions of a network (vertex by vertex, a plain loop per recurrent
component, generated loops) must give the same values, loss and gradients on every
spec in specs/ and on random valid graphs, and the same training run.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.training.data import Dataset
from rnngraph.engine.gradcheck import gradcheck, random_problem
from rnngraph.engine.reference import reference_forward, reference_loss_and_grad
from rnngraph.training.train import TrainConfig, Trainer
from test_executor import random_specs   # hypothesis strategy: random valid specs (float64)

SPECS = sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))


def both_engines(spec, seed=None):
    """(compiled, simple) networks with the same parameters, float64."""
    return (rg.build(spec, seed=seed, dtype="float64"),
            rg.build(spec, seed=seed, dtype="float64", engine="simple"))


def compare_engines(spec, T=4, B=2, seed=0, fd_entries=4):
    compiled, simple = both_engines(spec, seed)
    assert simple.engine == "simple" and compiled.engine == "compiled"
    inputs, targets, initial, loss = random_problem(simple, T=T, B=B, seed=seed)
    any_node = not simple.output_nodes
    got = simple.forward(inputs, initial=initial, steps=T)
    ref = reference_forward(simple, inputs, initial=initial, steps=T)
    fast = compiled.forward(inputs, initial=initial, steps=T)
    assert got.keys() == ref.keys() == fast.keys()
    for n in got:
        np.testing.assert_allclose(got[n], ref[n], rtol=1e-10, atol=1e-12, err_msg=f"values of {n} (reference)")
        np.testing.assert_allclose(got[n], fast[n], rtol=1e-10, atol=1e-12, err_msg=f"values of {n} (compiled)")
    kw = dict(loss=loss, initial=initial, steps=T, any_node=any_node)
    loss_ref, grads_ref = reference_loss_and_grad(simple, inputs, targets, **kw)
    for keep_values in (True, False):    # False: the training path (the compiled loops reuse buffers)
        loss_got, grads_got, _ = simple.train_step(inputs, targets, keep_values=keep_values, **kw)
        loss_fast, grads_fast, _ = compiled.train_step(inputs, targets, keep_values=keep_values, **kw)
        assert loss_got == pytest.approx(loss_ref, rel=1e-10, abs=1e-12)
        assert loss_got == pytest.approx(loss_fast, rel=1e-10, abs=1e-12)
        assert grads_got.keys() == grads_ref.keys() == grads_fast.keys() == set(simple.trainable)
        for name in grads_got:
            np.testing.assert_allclose(grads_got[name], grads_ref[name], rtol=1e-8, atol=1e-10,
                                       err_msg=f"gradient of {name} (reference)")
            np.testing.assert_allclose(grads_got[name], grads_fast[name], rtol=1e-8, atol=1e-10,
                                       err_msg=f"gradient of {name} (compiled)")
    if simple.output_nodes:    # dL/dv(t) of every node (a tracing tape)
        want = compiled.backward_trace(inputs, targets, loss=loss, initial=initial, steps=T)
        got = simple.backward_trace(inputs, targets, loss=loss, initial=initial, steps=T)
        for n in got:
            np.testing.assert_allclose(got[n], want[n], rtol=1e-8, atol=1e-12, err_msg=f"dL/dv of {n}")
    if fd_entries:
        for check in gradcheck(simple, T=T, B=B, seed=seed, max_entries=fd_entries):
            assert check.ok, f"{check.name}: finite differences disagree (abs {check.max_abs:.2e})"


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_simple_equals_reference_compiled_and_finite_differences(path):
    spec = rg.load_spec(path)
    net = rg.build(spec)
    if sum(net.size(n) for n in net.graph.nodes) > 150:
        compare_engines(spec, T=3, B=1, fd_entries=2)    # large Hopfield nets: the same check, smaller
    else:
        compare_engines(spec, T=4, B=2, fd_entries=4)


@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 60)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_random_graphs_simple_equals_reference_compiled_and_finite_differences(data, T, seed):
    spec = rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    compare_engines(spec, T=T, B=2, seed=seed, fd_entries=2)


@pytest.mark.parametrize("name", ["jordan", "elman_temporal_xor", "lstm_reber", "gru_adding"])
def test_backward_trace_is_the_same_in_both_engines(name):
    """dL/dv(t) of every node, the loops' own nodes included: jordan's state at t = 0
    depends on constants alone, elman's context is its hidden layer passed through."""
    compiled, simple = both_engines(rg.load_spec(SPECS[0].parent / f"{name}.yaml"))
    inputs, targets, initial, loss = random_problem(simple, T=4, B=2)
    want = compiled.backward_trace(inputs, targets, loss=loss, initial=initial, steps=4)
    got = simple.backward_trace(inputs, targets, loss=loss, initial=initial, steps=4)
    assert got.keys() == want.keys()
    for n in got:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-9, atol=1e-14, err_msg=n)


TRAINED = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  B: {type: lstm, size: 3}
  h: {size: 2, activation: tanh, init: {value: 0.1, trainable: true}}
  y: {role: output, size: 1}
edges:
  - {from: x, to: [B, h]}
  - {from: h, to: h, delay: 2, weight: diagonal}
  - {from: B, to: h, delay: 1}
  - {from: [B, h], to: y}
"""


@pytest.mark.parametrize("truncate", [0, 4])
def test_training_with_the_simple_engine_follows_the_compiled_one(truncate):
    """The same loss curve and parameters; with truncation the state carried from one
    window to the next (``Run.history``, a delay-2 edge among it) is the same too."""
    rng = np.random.default_rng(0)
    data = Dataset(inputs={"x": rng.normal(size=(6, 10, 2))}, targets={"y": rng.normal(size=(6, 10, 1))})
    config = dict(optimizer={"name": "adam", "lr": 0.05}, epochs=4, batch_size=3, truncate=truncate)
    runs = {}
    for engine in ("compiled", "simple"):
        net = rg.build(rg.parse_spec(TRAINED), engine=engine)
        trainer = Trainer(net, TrainConfig(**config), data, seed=0)
        history = trainer.run()
        runs[engine] = ([record["train_loss"] for record in history], net.params, trainer.step)
    (want, want_params, want_steps), (got, got_params, got_steps) = runs["compiled"], runs["simple"]
    assert got_steps == want_steps == 4 * 2 * (3 if truncate else 1)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    for name in want_params:
        np.testing.assert_allclose(got_params[name], want_params[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_carried_state_is_the_same_in_both_engines():
    """``Run.history`` after a window, and after a second one started from it."""
    compiled, simple = both_engines(rg.parse_spec(TRAINED))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 5, 1))
    carried = {}
    for engine, net in (("compiled", compiled), ("simple", simple)):
        _, _, first = net.train_step({"x": x[:, :3]}, {"y": y[:, :3]})
        _, _, second = net.train_step({"x": x[:, 3:]}, {"y": y[:, 3:]}, carried=first.history)
        carried[engine] = (first.history, second.history)
    for want, got in zip(*carried.values()):
        assert got.keys() == want.keys() == {"B/c", "B/h", "h"}
        for n in want:
            np.testing.assert_allclose(got[n], want[n], rtol=1e-12, err_msg=n)


def test_zero_steps():
    spec = rg.parse_spec("""
rnngraph: 1
dtype: float64
nodes:
  h: {size: 2, activation: tanh, init: 0.5}
  y: {role: output, size: 1}
edges:
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
""")
    compiled, simple = both_engines(spec)
    got, want = simple.forward(steps=0), compiled.forward(steps=0)
    assert {n: v.shape for n, v in got.items()} == {n: v.shape for n, v in want.items()} == {"h": (1, 0, 2),
                                                                                            "y": (1, 0, 1)}
    np.testing.assert_allclose(simple.forward(steps=3)["y"], compiled.forward(steps=3)["y"], rtol=1e-12)


@pytest.mark.parametrize("engine", ["fast", "Simple", None, 3])
def test_an_unknown_engine_is_a_data_error_naming_the_known_ones(engine):
    spec = rg.load_spec(SPECS[0])
    with pytest.raises(rg.DataError, match=r"engine: unknown engine .*; known: compiled, simple"):
        rg.build(spec, engine=engine)
