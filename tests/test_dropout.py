"""Edge dropout (``dropout: p``): what the masks are, that the engine's
gradient of a masked loss is exact (reference interpreter, finite
differences), that training draws masks deterministically and resumes
exactly, and that evaluation and forward never drop anything."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import DataError
from rnngraph.training.experiment import Experiment
from rnngraph.engine.reference import reference_loss_and_grad

NET = """\
rnngraph: 1
seed: 3
dtype: float64
nodes:
  x: {role: input, size: 3}
  h: {size: 4, activation: tanh}
  c: {size: 4}
  g: {type: lstm, size: 3}
  y: {role: output, size: 2, activation: sigmoid}
edges:
  - {from: x, to: h, dropout: 0.3}
  - {from: x, to: g, dropout: 0.2}
  - {from: h, to: h, delay: 1, dropout: 0.5}
  - {from: h, to: c, weight: identity, dropout: 0.25}
  - {from: c, to: h, delay: 2, weight: diagonal}
  - {from: g, to: g, delay: 1, dropout: 0.3, name: gg}   # a second recurrence: a fused group, all masked
  - {from: g, to: y, dropout: 0.4}
  - {from: h, to: y}
"""


def problem(B=3, T=5, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(B, T, 3))}, {"y": rng.uniform(size=(B, T, 2))}


def without_dropout(text: str) -> str:
    import re
    return re.sub(r", dropout: [0-9.]+", "", text)


# --------------------------------------------------------------------------- the spec key

@pytest.mark.parametrize("value, says", [("1", "0 <= p < 1"), ("1.5", "0 <= p < 1"), ("-0.1", "0 <= p < 1"),
                                         ("high", "got 'high'"), ("true", "got True"), (".nan", "0 <= p < 1")])
def test_a_bad_dropout_is_a_spec_error_at_its_line(value, says):
    text = NET.replace("{from: h, to: h, delay: 1, dropout: 0.5}", f"{{from: h, to: h, delay: 1, dropout: {value}}}")
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="d.yaml")
    err = info.value
    assert err.where == "edges[2].dropout" and says in str(err)
    line = 1 + next(i for i, t in enumerate(NET.splitlines()) if "from: h, to: h, delay: 1" in t)
    assert err.line == line and str(err).startswith(f"d.yaml:{line}:")


def test_dropout_survives_printing_and_block_expansion():
    spec = rg.parse_spec(NET)
    again = rg.parse_spec(spec.to_yaml())
    assert [e.dropout for e in again.edges] == [e.dropout for e in spec.edges]
    expanded = {e.name: e.dropout for e in spec.expanded().edges}
    assert expanded["x->g/i"] == expanded["x->g/o"] == 0.2
    assert expanded["gg/f"] == 0.3 and expanded["g/h->y"] == 0.4
    assert expanded["g/h->g/i"] == 0.0          # the block's own recurrence has none


# --------------------------------------------------------------------------- the masks

def test_masks_per_step_on_delay_0_edges_and_per_sequence_on_delayed_edges():
    net = rg.build(rg.parse_spec(NET))
    masks = net.dropout_masks(200, 7, seed=5)
    assert masks["x->h"].shape == (200, 7, 3)           # delay 0: one mask per step
    assert masks["h->h"].shape == (200, 4)              # delay 1: one per sequence
    assert masks["gg/i"].shape == (200, 3)
    assert "c->h" not in masks
    for name, p in (("x->h", 0.3), ("h->h", 0.5), ("g/h->y", 0.4)):
        m = masks[name]
        assert set(np.unique(m)) <= {0.0, 1.0 / (1.0 - p)}
        assert abs(float(np.mean(m == 0)) - p) < 0.05
        assert abs(float(m.mean()) - 1.0) < 0.08        # inverted dropout keeps the expected value
    same = net.dropout_masks(200, 7, seed=5)
    assert all(np.array_equal(masks[k], same[k]) for k in masks)
    other = net.dropout_masks(200, 7, seed=6)
    assert not np.array_equal(masks["x->h"], other["x->h"])


def test_a_delayed_edge_mask_drops_the_same_units_at_every_step():
    """Dropping unit j of h on the delay-1 edge h -> h for a whole sequence is the
    network whose recurrent weight has column j zeroed and the others scaled."""
    text = without_dropout(NET).replace("{from: h, to: h, delay: 1}", "{from: h, to: h, delay: 1, dropout: 0.5}")
    net = rg.build(rg.parse_spec(text))
    x, y = problem(B=2, T=6)
    keep = np.array([0.0, 2.0, 2.0, 0.0])
    loss, _ = net.loss_and_grad(x, y, loss="bce", dropout_masks={"h->h": np.tile(keep, (2, 1))})
    plain = rg.build(rg.parse_spec(without_dropout(NET)))
    plain.params["h->h"][...] = net.params["h->h"] * keep
    loss_plain, _ = plain.loss_and_grad(x, y, loss="bce")
    assert loss == pytest.approx(loss_plain, rel=1e-12)


# --------------------------------------------------------------------------- exact gradients

@pytest.mark.parametrize("engine", ["compiled", "simple"])
def test_masked_loss_and_gradient_equal_the_reference_interpreter(engine):
    net = rg.build(rg.parse_spec(NET), engine=engine)
    x, y = problem()
    masks = net.dropout_masks(3, 5, seed=1)
    loss, grads = net.loss_and_grad(x, y, loss="bce", dropout_masks=masks)
    ref_loss, ref_grads = reference_loss_and_grad(net, x, y, loss="bce", dropout_masks=masks)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-9, atol=1e-12, err_msg=k)
    plain, _ = net.loss_and_grad(x, y, loss="bce")
    assert abs(plain - loss) > 1e-3                      # the masks did change the loss


def test_masked_gradient_matches_finite_differences():
    net = rg.build(rg.parse_spec(NET))
    x, y = problem(B=2, T=4)
    masks = net.dropout_masks(2, 4, seed=2)
    _, grads = net.loss_and_grad(x, y, loss="bce", dropout_masks=masks)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in ("x->h", "h->h", "x->g/f", "gg/i", "g/h->g/i", "g/h->y", "c->h", "h.bias"):
        p = net.params[name]
        for _ in range(3):
            i = tuple(rng.integers(0, s) for s in p.shape)
            old = p[i]
            p[i] = old + eps
            up, _ = net.loss_and_grad(x, y, loss="bce", dropout_masks=masks)
            p[i] = old - eps
            down, _ = net.loss_and_grad(x, y, loss="bce", dropout_masks=masks)
            p[i] = old
            assert grads[name][i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), (name, i)


def test_gradcheck_checks_a_dropout_network_with_masks(tmp_path):
    """``rnngraph gradcheck`` on a spec with dropout checks the training step's
    gradient: masks drawn once, the same for the gradient and the differences."""
    import subprocess
    import sys

    from rnngraph.engine.gradcheck import gradcheck, summary
    net = rg.build(rg.parse_spec(NET))
    results = gradcheck(net, T=4, B=2)
    assert all(r.ok for r in results) and len(results) == len(net.trainable), summary(results)
    (tmp_path / "d.yaml").write_text(NET, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "rnngraph.cli", "gradcheck", "d.yaml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agree with finite differences" in r.stdout


def test_without_masks_nothing_is_dropped():
    net = rg.build(rg.parse_spec(NET))
    plain = rg.build(rg.parse_spec(without_dropout(NET)))
    x, y = problem()
    out, out_plain = net.forward(x), plain.forward(x)
    for k in out_plain:
        np.testing.assert_array_equal(out[k], out_plain[k])
    assert net.loss_and_grad(x, y, loss="bce")[0] == plain.loss_and_grad(x, y, loss="bce")[0]


def test_bad_masks_are_refused_naming_the_edge():
    net = rg.build(rg.parse_spec(NET))
    x, y = problem()
    with pytest.raises(DataError, match=r"dropout_masks\['h->h'\]: expected shape \(3, 4\)"):
        net.loss_and_grad(x, y, dropout_masks={"h->h": np.ones((3, 5, 4))})
    with pytest.raises(DataError, match="'c->h' is not an edge with dropout"):
        net.loss_and_grad(x, y, dropout_masks={"c->h": np.ones((3, 4))})
    with pytest.raises(DataError, match="NaN"):
        net.loss_and_grad(x, y, dropout_masks={"x->h": np.full((3, 5, 3), np.nan)})


# --------------------------------------------------------------------------- training

TRAINED = """\
rnngraph: 1
seed: 0
nodes:
  x: {role: input, size: 1}
  h: {size: 8, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1, dropout: 0.25}
  - {from: h, to: y, dropout: 0.1}
task: {generator: parity, length: 4, n_train: 48, n_eval: 16}
train: {loss: bce, loss_on: last, epochs: 4, batch_size: 8, log_every: 1, optimizer: {name: adam, lr: 0.01}}
"""


def test_training_with_dropout_is_deterministic_for_a_seed_and_differs_from_none():
    runs = [Experiment(rg.parse_spec(TRAINED)) for _ in range(2)]
    for r in runs:
        assert r.run().status == "ok"
    for k, v in runs[0].net.params.items():
        np.testing.assert_array_equal(v, runs[1].net.params[k])
    plain = Experiment(rg.parse_spec(without_dropout(TRAINED)))
    plain.run()
    assert max(float(np.max(np.abs(plain.net.params[k] - v))) for k, v in runs[0].net.params.items()) > 1e-4


def test_evaluation_does_not_drop():
    exp = Experiment(rg.parse_spec(TRAINED))
    exp.run()
    data = exp.eval_data
    result = exp.trainer.evaluate()
    masks = {n: m for n, m in exp.trainer.eval_masks.items()}
    loss, _ = exp.net.loss_and_grad(data.inputs, data.targets, loss="bce", mask=masks or None)
    assert result["loss"] == pytest.approx(loss, rel=1e-6)
    assert exp.trainer.evaluate()["loss"] == result["loss"]      # no randomness in evaluation


def test_truncated_bptt_with_dropout_runs_and_is_deterministic():
    text = TRAINED.replace("loss_on: last, ", "truncate: 2, ")
    a, b = Experiment(rg.parse_spec(text)), Experiment(rg.parse_spec(text))
    assert a.run().status == "ok" and b.run().status == "ok"
    for k, v in a.net.params.items():
        np.testing.assert_array_equal(v, b.net.params[k])


@pytest.mark.parametrize("stop_after", [3, 10])
def test_stop_and_resume_with_dropout_is_exact(stop_after):
    spec = rg.parse_spec(TRAINED)
    reference = Experiment(spec)
    reference.run()
    first = Experiment(spec)
    calls = [0]

    def should_stop():
        calls[0] += 1
        return calls[0] == stop_after
    assert first.run(should_stop=should_stop).status == "interrupted"
    checkpoint = {k: np.array(v) for k, v in first.trainer.state_dict().items()}
    second = Experiment(spec)
    assert second.run(resume=checkpoint).status == "ok"
    for k, v in reference.net.params.items():
        np.testing.assert_array_equal(second.net.params[k], v, err_msg=k)
    assert second.trainer.history == reference.trainer.history
