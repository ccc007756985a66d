"""Negative delays (SPEC.md 6.1): edges that read later steps, loops that run backward.

A net and its mirror (every delay negated) compute the same thing on reversed
sequences: that checks the backward loops of both engines, the look-ahead edges
and the dL/dv trace against the forward machinery, independently of the
reference interpreter (which test_executor and test_loop compare on random
graphs with negative delays).  Bidirectional LSTM and GRU blocks are checked
against PyTorch.  Then the checks: mixed-sign cycles, ``direction``,
``truncate`` and ``rtrl``, and the unrolled DAG.
"""

import json

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.engine.gradcheck import random_problem
from rnngraph.engine.reference import reference_forward, reference_loss_and_grad
from rnngraph.training.data import Dataset
from rnngraph.training.train import TrainConfig, Trainer
from test_executor import random_specs

ENGINES = ("compiled", "simple")


def mirrored(data: dict) -> dict:
    """The spec with every delay negated and every block's direction swapped."""
    out = yaml.safe_load(yaml.safe_dump(data))
    for edge in out.get("edges", []):
        edge["delay"] = -edge.get("delay", 0)
    for body in out["nodes"].values():
        if body.get("type"):
            if body.get("direction") == "backward":
                del body["direction"]
            else:
                body["direction"] = "backward"
    return out


def reverse(arrays: dict) -> dict:
    """(B, T, ...) arrays reversed in time."""
    return {k: np.ascontiguousarray(np.asarray(v)[:, ::-1]) for k, v in arrays.items()}


def assert_mirror(data: dict, T: int, seed: int, engine: str):
    net = rg.build(rg.parse_spec(yaml.safe_dump(data, sort_keys=False)), seed=seed, dtype="float64", engine=engine)
    mirror = rg.build(rg.parse_spec(yaml.safe_dump(mirrored(data), sort_keys=False)), seed=seed, dtype="float64",
                      engine=engine)
    assert net.params.keys() == mirror.params.keys()
    for name in net.params:
        mirror.params[name][...] = net.params[name]
    inputs, targets, initial, loss = random_problem(net, T=T, B=2, seed=seed)
    want = net.forward(inputs, initial=initial, steps=T)
    got = mirror.forward(reverse(inputs), initial=initial, steps=T)
    for n in want:
        np.testing.assert_allclose(got[n][:, ::-1], want[n], rtol=1e-10, atol=1e-12, err_msg=f"values of {n}")
    if not net.output_nodes:
        return
    kw = dict(loss=loss, initial=initial, steps=T)
    loss_want, grads_want = net.loss_and_grad(inputs, targets, **kw)
    loss_got, grads_got = mirror.loss_and_grad(reverse(inputs), reverse(targets), **kw)
    assert loss_got == pytest.approx(loss_want, rel=1e-10, abs=1e-12)
    for name in grads_want:
        np.testing.assert_allclose(grads_got[name], grads_want[name], rtol=1e-8, atol=1e-10, err_msg=name)
    trace_want = net.backward_trace(inputs, targets, **kw)
    trace_got = mirror.backward_trace(reverse(inputs), reverse(targets), **kw)
    for n in trace_want:
        np.testing.assert_allclose(trace_got[n][:, ::-1], trace_want[n], rtol=1e-8, atol=1e-12,
                                   err_msg=f"dL/dv of {n}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 5), st.integers(0, 2 ** 16), st.sampled_from(ENGINES))
def test_a_random_net_and_its_mirror_agree_on_reversed_sequences(data, T, seed, engine):
    assert_mirror(data, T, seed, engine)


BI = """
rnngraph: 1
dtype: float64
nodes:
  x:  {role: input, size: 3}
  fw: {type: %(kind)s, size: 4}
  bw: {type: %(kind)s, size: 4, direction: backward}
  y:  {role: output, size: 2}
edges:
  - {from: x, to: [fw, bw]}
  - {from: [fw, bw], to: y}
"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_bidirectional_block_pair_mirrors_a_forward_one(kind, engine):
    assert_mirror(yaml.safe_load(BI % {"kind": kind}), T=5, seed=1, engine=engine)


def _torch_weights(P, kind, block):
    """(weight_ih, weight_hh, bias_ih, bias_hh) of torch's layout from block ``block``'s parameters."""
    H = P[f"{block}/h->{block}/{'i' if kind == 'lstm' else 'r'}"].shape[0]
    if kind == "lstm":
        order = "ifgo"
        return (np.concatenate([P[f"x->{block}/{g}"] for g in order]),
                np.concatenate([P[f"{block}/h->{block}/{g}"] for g in order]),
                np.concatenate([P[f"{block}/{g}.bias"] for g in order]), np.zeros(4 * H))
    return (np.concatenate([P[f"x->{block}/{g}"] for g in "rzn"]),
            np.concatenate([P[f"{block}/h->{block}/r"], P[f"{block}/h->{block}/z"], P[f"{block}/h->{block}/hn"]]),
            np.concatenate([P[f"{block}/r.bias"], P[f"{block}/z.bias"], P[f"{block}/n.bias"]]),
            np.concatenate([np.zeros(2 * H), P[f"{block}/hn.bias"]]))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fw_and_bw_blocks_are_torch_bidirectional(kind, engine):
    """Values of fw and bw, the loss and every gradient equal nn.LSTM / nn.GRU(bidirectional=True)
    followed by a linear readout of [fw, bw]."""
    torch = pytest.importorskip("torch", reason="torch is an optional cross-check (pip install torch==2.13.0)")
    net = rg.build(rg.parse_spec(BI % {"kind": kind}), seed=3, engine=engine)
    P, H = net.params, 4
    rnn = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(3, H, batch_first=True, bidirectional=True).double()
    head = torch.nn.Linear(2 * H, 2).double()
    with torch.no_grad():
        for block, suffix in (("fw", ""), ("bw", "_reverse")):
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), _torch_weights(P, kind, block)):
                getattr(rnn, f"{name}_l0{suffix}").copy_(torch.tensor(value))
        head.weight.copy_(torch.tensor(np.concatenate([P["fw/h->y"], P["bw/h->y"]], axis=1)))
        head.bias.copy_(torch.tensor(P["y.bias"]))
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 2))
    out, _ = rnn(torch.tensor(x))
    values = net.forward({"x": x})
    np.testing.assert_allclose(values["fw"], out[..., :H].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(values["bw"], out[..., H:].detach().numpy(), atol=1e-12)
    loss_t = ((head(out) - torch.tensor(y)) ** 2).mean()
    loss_t.backward()
    loss, grads = net.loss_and_grad({"x": x}, {"y": y}, loss="mse")
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    for block, suffix in (("fw", ""), ("bw", "_reverse")):
        gih = getattr(rnn, f"weight_ih_l0{suffix}").grad.numpy()
        ghh = getattr(rnn, f"weight_hh_l0{suffix}").grad.numpy()
        gbi = getattr(rnn, f"bias_ih_l0{suffix}").grad.numpy()
        gbh = getattr(rnn, f"bias_hh_l0{suffix}").grad.numpy()
        if kind == "lstm":
            for k, g in enumerate("ifgo"):
                rows = slice(k * H, (k + 1) * H)
                np.testing.assert_allclose(grads[f"x->{block}/{g}"], gih[rows], atol=1e-12)
                np.testing.assert_allclose(grads[f"{block}/h->{block}/{g}"], ghh[rows], atol=1e-12)
                # torch's two biases are added together: each has the gradient of rnngraph's one
                np.testing.assert_allclose(grads[f"{block}/{g}.bias"], gbi[rows], atol=1e-12)
                np.testing.assert_allclose(grads[f"{block}/{g}.bias"], gbh[rows], atol=1e-12)
        else:
            for k, (g, hh) in enumerate(zip("rzn", ("r", "z", "hn"))):
                rows = slice(k * H, (k + 1) * H)
                np.testing.assert_allclose(grads[f"x->{block}/{g}"], gih[rows], atol=1e-12)
                np.testing.assert_allclose(grads[f"{block}/h->{block}/{hh}"], ghh[rows], atol=1e-12)
                np.testing.assert_allclose(grads[f"{block}/{g}.bias"], gbi[rows], atol=1e-12)
            np.testing.assert_allclose(grads[f"{block}/hn.bias"], gbh[2 * H:], atol=1e-12)
    np.testing.assert_allclose(np.concatenate([grads["fw/h->y"], grads["bw/h->y"]], axis=1),
                               head.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["y.bias"], head.bias.grad.numpy(), atol=1e-12)


AHEAD = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 1}
  h: {size: 1, init: 0.5}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h, weight: scalar, init: 1.0}
  - {from: h, to: h, delay: -1, weight: scalar, init: 0.5}
  - {from: x, to: y, delay: -2, weight: scalar, init: 1.0, name: ahead}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_backward_loop_and_a_look_ahead_by_hand(engine):
    """h(t) = x(t) + 0.5 h(t+1), h(T) = 0.5;  y(t) = x(t+2), x(T), x(T+1) = 0 (an input's init)."""
    net = rg.build(rg.parse_spec(AHEAD), engine=engine)
    x = np.array([[1.0, 2.0, 3.0, 4.0]])[..., None]
    out = net.forward({"x": x})
    h3 = 4 + 0.5 * 0.5
    h2 = 3 + 0.5 * h3
    h1 = 2 + 0.5 * h2
    h0 = 1 + 0.5 * h1
    np.testing.assert_allclose(out["h"][0, :, 0], [h0, h1, h2, h3])
    np.testing.assert_allclose(out["y"][0, :, 0], [3.0, 4.0, 0.0, 0.0])
    np.testing.assert_allclose(reference_forward(net, {"x": x})["h"], out["h"])
    assert "time loop over h (backward: from T-1 down to 0)" in net.plan.describe()
    assert "delay -1" in net.plan.describe()


def test_trainable_and_per_sample_inits_serve_the_end_of_the_sequence():
    spec = rg.parse_spec(AHEAD.replace("init: 0.5}", "init: {value: 0.5, trainable: true}}", 1) +
                         "  - {from: h, to: y}\n")
    net = rg.build(spec, dtype="float64")
    inputs, targets, _, _ = random_problem(net, T=4, B=2)
    loss, grads = net.loss_and_grad(inputs, targets)
    want_loss, want = reference_loss_and_grad(net, inputs, targets)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert abs(grads["h.init"]).sum() > 0
    np.testing.assert_allclose(grads["h.init"], want["h.init"], rtol=1e-10)
    initial = {"h": np.array([[1.0], [-2.0]])}
    np.testing.assert_allclose(net.forward(inputs, initial=initial)["h"],
                               reference_forward(net, inputs, initial=initial)["h"], rtol=1e-12)


def test_a_bidirectional_net_trains(tmp_path):
    net = rg.build(rg.parse_spec(BI % {"kind": "gru"}), seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 3))
    y = np.repeat(x[:, -1:, :2], 6, axis=1)      # every step's target is the last input: only bw can see it
    data = Dataset(inputs={"x": x}, targets={"y": y})
    trainer = Trainer(net, TrainConfig(optimizer={"name": "adam", "lr": 0.05}, epochs=60, batch_size=16), data)
    history = trainer.run()
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]


# --------------------------------------------------------------------------- what is refused

def test_a_cycle_mixing_signs_is_named(tmp_path):
    text = """rnngraph: 1
nodes:
  x: {role: input, size: 1}
  a: {size: 2}
  b: {size: 2}
edges:
  - {from: x, to: a}
  - {from: a, to: b, delay: 1}
  - {from: b, to: a, delay: -1}
"""
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="mixed.yaml")
    message = str(info.value)
    assert info.value.line == 9
    assert message.startswith("mixed.yaml:9")
    assert "cycle a -> b -> a mixes delays 1 (a -> b) and -1 (b -> a)" in message


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.data())
def test_any_cycle_with_both_signs_is_refused_with_a_line(data, draw):
    """Two nodes joined both ways, one way ahead and the other behind, make a mixed cycle."""
    hidden = [n for n, body in data["nodes"].items() if body.get("role") != "input"]
    a, b = draw.draw(st.sampled_from(hidden)), draw.draw(st.sampled_from(hidden))
    d1, d2 = draw.draw(st.integers(1, 3)), draw.draw(st.integers(1, 3))
    data["edges"] += [{"from": a, "to": b, "delay": d1, "name": "forth"},
                      {"from": b, "to": a, "delay": -d2, "name": "back"}]
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(yaml.safe_dump(data, sort_keys=False), path="random.yaml")
    assert info.value.line is not None
    assert "mixes delays" in str(info.value) and f" -> {a}" in str(info.value)


@pytest.mark.parametrize("direction", ["sideways", 1, True])
def test_direction_must_be_forward_or_backward(direction):
    text = (BI % {"kind": "lstm"}).replace("direction: backward", f"direction: {json.dumps(direction)}")
    with pytest.raises(rg.SpecError, match="direction must be") as info:
        rg.parse_spec(text, path="bi.yaml")
    assert info.value.line == 7


def test_direction_is_printed_only_when_backward():
    spec = rg.parse_spec(BI % {"kind": "lstm"})
    printed = yaml.safe_load(spec.to_yaml())["nodes"]
    assert printed["bw"]["direction"] == "backward" and "direction" not in printed["fw"]
    assert rg.parse_spec(spec.to_yaml()).nodes["bw"].option("direction") == "backward"


def test_truncate_refuses_a_net_that_reads_ahead():
    text = AHEAD + "train:\n  truncate: 3\n"
    with pytest.raises(rg.SpecError, match=r"truncate needs every delay >= 0, but edge h -> h has delay -1") as info:
        rg.parse_spec(text, path="ahead.yaml")
    assert info.value.line == 13
    rg.parse_spec(AHEAD + "train:\n  truncate: 0\n")     # 0 is full BPTT
    net = rg.build(rg.parse_spec(AHEAD))
    data = Dataset(inputs={"x": np.zeros((2, 4, 1))}, targets={"y": np.zeros((2, 4, 1))})
    with pytest.raises(rg.DataError, match="truncate: 2 needs every delay >= 0"):
        Trainer(net, TrainConfig(truncate=2), data)


def test_rtrl_refuses_a_net_that_reads_ahead():
    with pytest.raises(rg.SpecError, match=r"method rtrl needs delays >= 0, but edge 'h->h' reads the future") \
            as info:
        rg.parse_spec(AHEAD + "train:\n  method: rtrl\n", path="ahead.yaml")
    assert info.value.line == 13


def test_a_delay_beyond_the_limit_either_way_is_refused():
    with pytest.raises(rg.SpecError, match="larger than 100,000 in magnitude"):
        rg.parse_spec(AHEAD.replace("delay: -2", "delay: -100001"))


# --------------------------------------------------------------------------- the unrolled DAG

def test_unroll_has_an_arc_for_every_step_inside_the_sequence():
    net = rg.build(rg.parse_spec(AHEAD))
    dag = net.unroll(4)
    assert {(u, v) for u, v, d in dag.edges(data=True) if d["delay"] == -1} == \
        {(("h", t + 1), ("h", t)) for t in range(3)}
    assert {(u, v) for u, v, d in dag.edges(data=True) if d["delay"] == -2} == \
        {(("x", t + 2), ("y", t)) for t in range(2)}
    full = net.unroll(4, initial=True)
    assert {v for v, initial in full.nodes(data="initial") if initial} == {("h", 4), ("x", 4), ("x", 5)}
    assert full.has_edge(("x", 5), ("y", 3)) and full.has_edge(("h", 4), ("h", 3))


def test_rnngraph_unroll_prints_the_states_past_the_end(tmp_path, capsys):
    path = tmp_path / "ahead.yaml"
    path.write_text(AHEAD)
    assert main(["unroll", str(path), "-T", "3"]) in (0, None)
    text = capsys.readouterr().out
    assert "h@2 = w[x->h] * x@2 + w[h->h] * h@3" in text
    assert "y@1 = w[ahead] * x@3" in text
    assert "t=3 (initial states): x@3, h@3" in text
    assert "t=4 (initial states): x@4" in text
    assert main(["unroll", str(path), "-T", "3", "--format", "json"]) in (0, None)
    arcs = json.loads(capsys.readouterr().out)["arcs"]
    assert {"from": "h@3", "to": "h@2", "edges": ["h->h"], "delay": -1} in arcs
