"""Real-time recurrent learning and teacher forcing (SPEC 6.2).

RTRL's gradient equals BPTT's on every spec and on random graphs; online
learning steps after every time step with the weights it has then; teacher
forcing feeds the targets to the delayed edges leaving outputs while training,
and its gradient agrees with finite differences of the forced loss.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.training.experiment import Experiment
from rnngraph.engine.gradcheck import random_problem
from rnngraph.engine.reference import reference_loss_and_grad
from rnngraph.training.train import TrainConfig, Trainer
from rnngraph.training.data import Dataset
from test_executor import random_specs   # hypothesis strategy: random valid specs (float64)

# the specs with an output node (a Hopfield net stores patterns: no loss for a gradient to follow)
SPECS = [p for p in sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))
         if rg.load_spec(p).outputs]


def assert_same_gradient(net, T, B, seed=0, mask=None):
    inputs, targets, initial, loss = random_problem(net, T=T, B=B, seed=seed)
    want_loss, want = net.loss_and_grad(inputs, targets, loss=loss, initial=initial, mask=mask, steps=T)
    got_loss, got = net.loss_and_grad(inputs, targets, loss=loss, initial=initial, mask=mask, steps=T,
                                      method="rtrl")
    assert got.keys() == want.keys()
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-10, atol=1e-13)
    for name in want:
        assert got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], rtol=1e-8, atol=1e-12, err_msg=name)
    return want


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_rtrl_gradient_equals_bptt_on_every_spec(path):
    net = rg.build(rg.load_spec(path), dtype="float64")
    if any(e.delay < 0 for e in net.primitive.edges):   # an edge reading the future: refused, not computed
        inputs, targets, initial, loss = random_problem(net, T=3, B=1)
        with pytest.raises(rg.DataError, match="needs delays >= 0"):
            net.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=3, method="rtrl")
        return
    big = sum(net.size(n) for n in net.graph.nodes) > 150
    want = assert_same_gradient(net, T=3 if big else 4, B=1 if big else 2)
    assert any(np.any(g != 0) for g in want.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_rtrl_gradient_equals_bptt_and_the_reference_on_random_graphs(data, T, seed):
    assume(any(body.get("role") == "output" for body in data["nodes"].values()))
    assume(all(edge.get("delay", 0) >= 0 for edge in data["edges"]))   # rtrl refuses look-ahead (tested above)
    spec = rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    net = rg.build(spec, seed=seed)
    rng = np.random.default_rng(seed)
    for name, info in net.param_info.items():
        if info.constraints:   # off the constraint set: the effective weight is what is differentiated
            net.params[name] += rng.uniform(-0.3, 0.3, size=info.shape)
    assert_same_gradient(net, T=T, B=2, seed=seed)
    inputs, targets, initial, loss = random_problem(net, T=T, B=2, seed=seed)
    _, ref = reference_loss_and_grad(net, inputs, targets, loss=loss, initial=initial, steps=T)
    _, got = net.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T, method="rtrl")
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-8, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["parity_many_to_one", "lstm_adding", "elman_temporal_xor"])
def test_rtrl_with_a_mask_equals_bptt(name):
    net = rg.build(rg.load_spec(SPECS[0].parent / f"{name}.yaml"), dtype="float64")
    rng = np.random.default_rng(3)
    mask = {n: (rng.uniform(size=(2, 5)) < 0.4).astype(float) for n in net.output_nodes}
    for m in mask.values():
        m[:, 0] = 0.0           # a first step where nothing counts
        m[0, -1] = 1.0
    assert_same_gradient(net, T=5, B=2, mask=mask)


def test_rtrl_refuses_bad_arguments_like_bptt():
    net = rg.build(rg.load_spec(SPECS[0].parent / "elman_temporal_xor.yaml"))
    inputs, targets, _, _ = random_problem(net, T=3, B=1)
    with pytest.raises(rg.DataError, match="method"):
        net.loss_and_grad(inputs, targets, method="rtlr")
    with pytest.raises(rg.DataError, match="targets"):
        net.loss_and_grad(inputs, {"nope": targets["y"]}, method="rtrl")


# --------------------------------------------------------------------------- online

def test_online_steps_add_up_to_the_batch_gradient_while_the_weights_stay():
    net = rg.build(rg.load_spec(SPECS[0].parent / "fully_recurrent.yaml"), dtype="float64")
    T, B = 6, 3
    inputs, targets, _, loss = random_problem(net, T=T, B=B)
    _, want = net.loss_and_grad(inputs, targets, loss=loss)
    total = {k: np.zeros_like(v) for k, v in want.items()}
    seen = []
    for t, loss_t, grads_t in net.rtrl_online(inputs, targets, loss=loss):
        seen.append(t)
        for k in total:
            total[k] += grads_t[k] / T     # each step's own mean: 1/T of the sequence's
    assert seen == list(range(T))
    for k in want:
        np.testing.assert_allclose(total[k], want[k], rtol=1e-9, atol=1e-13, err_msg=k)


def test_online_steps_read_the_weights_changed_after_the_previous_step():
    net = rg.build(rg.load_spec(SPECS[0].parent / "fully_recurrent.yaml"), dtype="float64")
    inputs, targets, _, loss = random_problem(net, T=4, B=1)
    fixed = [g for _, _, g in net.rtrl_online(inputs, targets, loss=loss)]
    before = {k: v.copy() for k, v in net.params.items()}
    steps = net.rtrl_online(inputs, targets, loss=loss)
    for t in range(2):
        _, _, grads = next(steps)
        np.testing.assert_allclose(grads["x->hidden"], fixed[t]["x->hidden"])
    net.params["hidden->hidden"] += 0.3          # what an optimizer step between two steps does
    _, _, third = next(steps)        # y(2) reads hidden(1), made before the change
    np.testing.assert_allclose(third["hidden->hidden"], fixed[2]["hidden->hidden"])
    _, _, fourth = next(steps)       # y(3) reads hidden(2), made with the changed weight
    assert not np.allclose(fourth["hidden->hidden"], fixed[3]["hidden->hidden"])
    for k, v in before.items():
        net.params[k][...] = v


def test_the_trainer_steps_after_every_time_step_online():
    spec = rg.load_spec(SPECS[0].parent / "fully_recurrent.yaml")
    net = rg.build(spec, dtype="float64")
    rng = np.random.default_rng(0)
    data = Dataset(inputs={"x": rng.normal(size=(4, 7, 1))}, targets={"y": rng.uniform(-0.5, 0.5, size=(4, 7, 1))})
    online = Trainer(net, TrainConfig(method="rtrl", online=True, epochs=1, batch_size=2,
                                      optimizer={"name": "sgd", "lr": 0.01}), data)
    online.run()
    assert online.step == 2 * 7      # two batches of seven steps
    offline = Trainer(rg.build(spec, dtype="float64"), TrainConfig(method="rtrl", epochs=1, batch_size=2), data)
    offline.run()
    assert offline.step == 2


def test_the_online_spec_learns_in_one_pass_what_offline_does_not():
    spec = rg.load_spec(SPECS[0].parent / "rtrl_online.yaml")
    online = Experiment(spec).run()
    assert online.status == "ok", online.message
    offline = Experiment(spec.with_values(train={**spec.train, "online": False})).run()
    assert online.metrics["mse"] < 0.05 < offline.metrics["mse"]


def test_rtrl_in_a_run_trains_as_bptt_does():
    path, options = SPECS[0].parent / "elman_temporal_xor.yaml", {"train.epochs": 3, "task.length": 60,
                                                                    "train.truncate": 0}
    bptt = Experiment(rg.load_spec(path, overrides=options)).run()
    rtrl = Experiment(rg.load_spec(path, overrides={**options, "train.method": "rtrl"})).run()
    assert rtrl.status == bptt.status and rtrl.history and "diverged" not in rtrl.message
    for key in ("train_loss", "eval_loss", "third_bit_error"):
        np.testing.assert_allclose(rtrl.metrics[key], bptt.metrics[key], rtol=1e-4, err_msg=key)


# --------------------------------------------------------------------------- spec keys and memory

BASE = """
rnngraph: 1
nodes:
  x: {role: input, size: 1}
  h: {size: 3, activation: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {generator: sine, length: 10}
"""


@pytest.mark.parametrize("train, where, words", [
    ("{method: rtrl, truncate: 5}", "train.truncate", "no windows"),
    ("{online: true}", "train.online", "method: rtrl"),
    ("{method: rtrl, online: 1}", "train.online", "true or false"),
    ("{teacher_forcing: yes please}", "train.teacher_forcing", "true or false"),
    ("{teacher_forcing: true}", "train.teacher_forcing", "changes nothing"),
    ("{method: rtlr}", "train.method", "rtrl"),
])
def test_bad_training_options_are_spec_errors_at_their_key(train, where, words):
    text = BASE + f"train: {train}\n"
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="net.yaml")
    assert info.value.where == where and info.value.line == text.splitlines().index(f"train: {train}") + 1
    assert words in str(info.value)


def test_run_refuses_sensitivities_that_would_not_fit_with_the_estimate(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text(BASE.replace("size: 3", "size: 600") + "train: {method: rtrl, batch_size: 32}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "train.method" in err and "GiB of memory" in err and "601 units x 361801 parameters" in err
    assert not (tmp_path / "run" / "params.npz").exists()


# --------------------------------------------------------------------------- teacher forcing

FED_BACK = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activation: tanh}
  y: {role: output, size: 2, activation: sigmoid, init: [0.25, 0.75]}
edges:
  - {from: x, to: h}
  - {from: y, to: h, delay: 1}
  - {from: y, to: h, delay: 2, name: older}
  - {from: h, to: y}
"""


def test_forced_edges_read_the_target_and_the_init_before_zero():
    net = rg.build(rg.parse_spec(FED_BACK))
    forced = net.teacher_forced()
    assert forced.shadows == {"y": "y_target"}
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 4, 2)), rng.uniform(size=(2, 4, 2))
    step = forced.train_step({"x": x}, {"y": y}, loss="bce", keep_values=True)
    h = step.run.values["h"][1].value.transpose(1, 0, 2)          # (B, T, 3)
    p = net.params
    init = np.broadcast_to([0.25, 0.75], (2, 2))
    for t in range(4):
        y1 = y[:, t - 1] if t >= 1 else init
        y2 = y[:, t - 2] if t >= 2 else init
        want = np.tanh(x[:, t] @ p["x->h"].T + y1 @ p["y->h"].T + y2 @ p["older"].T + p["h.bias"])
        np.testing.assert_allclose(h[:, t], want, rtol=1e-12)
    free = net.forward({"x": x})                                   # prediction reads the net's own output
    assert not np.allclose(free["h"][:, 1:], h[:, 1:])


def test_forced_gradient_agrees_with_finite_differences_and_rtrl():
    net = rg.build(rg.parse_spec(FED_BACK))
    forced = net.teacher_forced()
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 5, 2)), rng.uniform(0.1, 0.9, size=(3, 5, 2))
    loss, grads = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce")
    _, by_rtrl = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce", method="rtrl")
    assert set(grads) == set(net.trainable)
    h = 1e-6
    for name in grads:
        np.testing.assert_allclose(by_rtrl[name], grads[name], rtol=1e-9, atol=1e-13)
        p = net.params[name]
        for idx in list(np.ndindex(p.shape))[:4]:
            old = p[idx]
            p[idx] = old + h
            up, _ = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce")
            p[idx] = old - h
            down, _ = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce")
            p[idx] = old
            np.testing.assert_allclose(grads[name][idx], (up - down) / (2 * h), rtol=1e-5, atol=1e-8,
                                       err_msg=f"{name}{idx}")
    free_loss, _ = net.loss_and_grad({"x": x}, {"y": y}, loss="bce")
    assert free_loss != pytest.approx(loss)


def test_forcing_an_lstm_output_and_an_initial_state_given_per_sample():
    text = FED_BACK.replace("init: [0.25, 0.75]", "init: input").replace("h: {size: 3, activation: tanh}",
                                                                         "h: {type: lstm, size: 3}")
    net = rg.build(rg.parse_spec(text))
    forced = net.teacher_forced()
    rng = np.random.default_rng(4)
    x, y, y0 = rng.normal(size=(2, 3, 2)), rng.uniform(size=(2, 3, 2)), rng.uniform(size=(2, 2))
    with pytest.raises(rg.DataError, match="init: input"):
        forced.loss_and_grad({"x": x}, {"y": y}, loss="bce")
    bptt = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce", initial={"y": y0})
    rtrl = forced.loss_and_grad({"x": x}, {"y": y}, loss="bce", initial={"y": y0}, method="rtrl")
    np.testing.assert_allclose(rtrl[0], bptt[0], rtol=1e-12)
    for name in bptt[1]:
        np.testing.assert_allclose(rtrl[1][name], bptt[1][name], rtol=1e-8, atol=1e-13, err_msg=name)


def test_a_run_with_teacher_forcing_trains_the_shared_parameters(tmp_path):
    spec = rg.load_spec(SPECS[0].parent / "jordan.yaml", overrides={"train.epochs": 20})
    assert spec.train.get("teacher_forcing") is True
    ex = Experiment(spec)
    before = {k: v.copy() for k, v in ex.net.params.items()}
    outcome = ex.run()
    assert outcome.status in ("ok", "failed") and outcome.history
    assert not np.allclose(ex.net.params["hidden->y"], before["hidden->y"])
    # the evaluation reads the network's own outputs: it is the free-running loss
    d = ex.eval_data
    free, _ = ex.net.loss_and_grad(d.inputs, d.targets, loss="bce")
    np.testing.assert_allclose(outcome.metrics["eval_loss"], free, rtol=1e-5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 4), st.integers(0, 2 ** 16))
def test_forced_random_graphs_agree_with_finite_differences_and_rtrl(data, T, seed):
    spec = rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    primitive = spec.expanded()
    assume(any(e.delay > 0 and primitive.nodes[e.source].role == "output" for e in primitive.edges))
    assume(all(e.delay >= 0 for e in primitive.edges))   # rtrl (compared with here) refuses look-ahead
    net = rg.build(spec, seed=seed)
    forced = net.teacher_forced()
    inputs, targets, initial, loss = random_problem(net, T=T, B=2, seed=seed)
    loss_value, grads = forced.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
    _, by_rtrl = forced.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T, method="rtrl")
    assert set(grads) == set(by_rtrl) == set(net.trainable)
    rng = np.random.default_rng(seed)
    h = 1e-6
    for name in grads:
        np.testing.assert_allclose(by_rtrl[name], grads[name], rtol=1e-8, atol=1e-12, err_msg=name)
        p = net.params[name]
        idx = tuple(int(rng.integers(0, k)) for k in p.shape)
        old = p[idx]
        p[idx] = old + h
        up, _ = forced.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
        p[idx] = old - h
        down, _ = forced.loss_and_grad(inputs, targets, loss=loss, initial=initial, steps=T)
        p[idx] = old
        np.testing.assert_allclose(grads[name][idx], (up - down) / (2 * h), rtol=1e-4, atol=1e-7,
                                   err_msg=f"{name}{idx}")


def test_online_learning_with_teacher_forcing_steps_every_time_step():
    spec = rg.parse_spec(FED_BACK)
    net = rg.build(spec)
    rng = np.random.default_rng(5)
    data = Dataset(inputs={"x": rng.normal(size=(3, 6, 2))}, targets={"y": rng.uniform(size=(3, 6, 2))})
    trainer = Trainer(net, TrainConfig(method="rtrl", online=True, teacher_forcing=True, loss="bce", epochs=1,
                                       batch_size=3, optimizer={"name": "sgd", "lr": 0.1}), data)
    before = net.params["older"].copy()
    trainer.run()
    assert trainer.step == 6 and not np.allclose(net.params["older"], before)
