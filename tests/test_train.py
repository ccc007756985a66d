"""Optimizers, the BPTT trainer, loss masks and resuming."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.data import Dataset
from rnngraph.training.optim import SGD, Adagrad, Adam, RMSprop, clip_grad_norm
from rnngraph.training.train import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


# --------------------------------------------------------------------------- optimizers by hand

def two_steps(opt):
    p = {"w": np.array([1.0, -2.0])}
    opt.step(p, {"w": np.array([0.5, 0.25])})
    opt.step(p, {"w": np.array([-1.0, 0.5])})
    return p["w"]


def test_sgd_plain_momentum_and_nesterov_by_hand():
    np.testing.assert_allclose(two_steps(SGD(lr=0.1)), [1 - 0.05 + 0.1, -2 - 0.025 - 0.05])
    # v1 = g1; p1 = p0 - lr v1; v2 = mu v1 + g2; p2 = p1 - lr v2
    v1 = np.array([0.5, 0.25])
    v2 = 0.9 * v1 + np.array([-1.0, 0.5])
    np.testing.assert_allclose(two_steps(SGD(lr=0.1, momentum=0.9)), np.array([1.0, -2.0]) - 0.1 * v1 - 0.1 * v2)
    # nesterov: p -= lr (g + mu v)
    g1, g2 = np.array([0.5, 0.25]), np.array([-1.0, 0.5])
    expected = np.array([1.0, -2.0]) - 0.1 * (g1 + 0.9 * v1) - 0.1 * (g2 + 0.9 * v2)
    np.testing.assert_allclose(two_steps(SGD(lr=0.1, momentum=0.9, nesterov=True)), expected)


def test_adam_by_hand():
    b1, b2, lr, eps = 0.9, 0.999, 0.01, 1e-8
    p = np.array([1.0, -2.0])
    m = s = np.zeros(2)
    for k, g in enumerate([np.array([0.5, 0.25]), np.array([-1.0, 0.5])], start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** k)) / (np.sqrt(s / (1 - b2 ** k)) + eps)
    np.testing.assert_allclose(two_steps(Adam(lr=lr)), p)


def test_rmsprop_and_adagrad_by_hand():
    p, s = np.array([1.0, -2.0]), np.zeros(2)
    for g in [np.array([0.5, 0.25]), np.array([-1.0, 0.5])]:
        s = 0.99 * s + 0.01 * g * g
        p = p - 0.01 * g / (np.sqrt(s) + 1e-8)
    np.testing.assert_allclose(two_steps(RMSprop(lr=0.01)), p)
    p, s = np.array([1.0, -2.0]), np.zeros(2)
    for g in [np.array([0.5, 0.25]), np.array([-1.0, 0.5])]:
        s = s + g * g
        p = p - 0.1 * g / (np.sqrt(s) + 1e-10)
    np.testing.assert_allclose(two_steps(Adagrad(lr=0.1)), p)


def test_optimizers_match_torch_where_installed():
    torch = pytest.importorskip("torch", reason="torch is an optional cross-check")
    cases = [(SGD(lr=0.1, momentum=0.9, nesterov=True), lambda w: torch.optim.SGD(w, lr=0.1, momentum=0.9, nesterov=True)),
             (Adam(lr=0.01), lambda w: torch.optim.Adam(w, lr=0.01)),
             (RMSprop(lr=0.01), lambda w: torch.optim.RMSprop(w, lr=0.01)),
             (Adagrad(lr=0.1), lambda w: torch.optim.Adagrad(w, lr=0.1))]
    for ours, make in cases:
        w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
        opt = make([w])
        for g in ([0.5, 0.25], [-1.0, 0.5]):
            w.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        np.testing.assert_allclose(two_steps(ours), w.detach().numpy(), rtol=1e-12)


OPTIMIZERS_WITH_STATE = [lambda: SGD(lr=0.1, momentum=0.9, weight_decay=0.01), lambda: SGD(lr=0.1, nesterov=True, momentum=0.5),
                         lambda: Adam(lr=0.01, weight_decay=0.1), lambda: RMSprop(lr=0.01, momentum=0.9),
                         lambda: Adagrad(lr=0.1)]


@pytest.mark.parametrize("make", OPTIMIZERS_WITH_STATE)
def test_one_step_over_all_parameters_equals_steps_one_parameter_at_a_time(make):
    """The rule runs once over every parameter laid end to end: the same bits as
    running it on each parameter alone, its buffers are each parameter's, and a
    state saved and loaded between steps (a resumed run) changes nothing."""
    rng = np.random.default_rng(0)
    shapes = {"w": (3, 2), "b": (3,), "s": (), "u": (1, 4)}
    params = {n: rng.normal(size=shape).astype(np.float32) for n, shape in shapes.items()}
    grads = [{n: rng.normal(size=shape).astype(np.float32) for n, shape in shapes.items()} for _ in range(4)]
    together, alone = make(), {n: make() for n in shapes}
    p_together, p_alone = {n: v.copy() for n, v in params.items()}, {n: v.copy() for n, v in params.items()}
    for k, g in enumerate(grads):
        assert together.step(p_together, g)
        for n in shapes:
            alone[n].step(p_alone, {n: g[n]})
        if k == 1:   # save and load, as a resumed run does
            resumed = make()
            resumed.load_state_dict(together.state_dict())
            together = resumed
    for n in shapes:
        assert np.array_equal(p_together[n], p_alone[n]), n
        assert together.state[n].keys() == alone[n].state[n].keys()
        for key, value in alone[n].state[n].items():
            assert np.array_equal(together.state[n][key], value), (n, key)


@pytest.mark.parametrize("make", OPTIMIZERS_WITH_STATE)
def test_parameters_of_mixed_dtypes_and_state_changed_in_place_are_as_one_at_a_time(make):
    """A float64 parameter beside float32 ones is not rounded to float32, and a
    buffer replaced or state cleared from outside is what the next step reads."""
    rng = np.random.default_rng(1)
    params = {"a": rng.normal(size=(2, 3)).astype(np.float32), "b": 1 + rng.normal(size=4) * 1e-9}
    grads = {"a": rng.normal(size=(2, 3)).astype(np.float32), "b": rng.normal(size=4)}
    together, alone = make(), {n: make() for n in params}
    p_together, p_alone = {n: v.copy() for n, v in params.items()}, {n: v.copy() for n, v in params.items()}
    for k in range(4):
        if k == 2:   # from outside: one buffer replaced, then (next step) all of the state cleared
            for opt in [together] + [alone[n] for n in params]:
                for name, buffers in opt.state.items():
                    for key in buffers:
                        buffers[key] = np.full_like(buffers[key], 0.5)
        if k == 3:
            together.state.clear()
            for n in params:
                alone[n].state.clear()
        assert together.step(p_together, grads)
        for n in params:
            alone[n].step(p_alone, {n: grads[n]})
    for n in params:
        assert p_together[n].dtype == params[n].dtype
        assert np.array_equal(p_together[n], p_alone[n]), n
    assert together.state_dict().keys() == {k for n in params for k in alone[n].state_dict()}


def test_an_update_that_is_not_finite_is_not_written_and_is_named():
    params = {"a": np.array([1.0, 2.0]), "b": np.array([3.0])}
    opt = SGD(lr=1e308)
    with np.errstate(over="ignore"):   # as training runs
        assert not opt.step(params, {"a": np.array([0.5, 0.0]), "b": np.array([-1e10])})
    assert opt.nonfinite == {(): "b"}
    np.testing.assert_array_equal(params["a"], [1.0, 2.0])   # neither parameter moved
    np.testing.assert_array_equal(params["b"], [3.0])
    # stacked replicas (lead axis R = 3, options (R, 1)): only the replica that overflowed keeps its values
    stacked = {"a": np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), "b": np.ones((3, 1))}
    rule = SGD()
    rule.options["lr"] = np.array([[0.5], [1e308], [0.25]])
    with np.errstate(over="ignore"):
        finite = rule.apply(stacked, {"a": np.full((3, 2), 1e10), "b": np.ones((3, 1))}, lead=1)
    np.testing.assert_array_equal(finite, [True, False, True])
    assert rule.nonfinite == {1: "a"}
    np.testing.assert_array_equal(stacked["a"], [[1 - 5e9, 2 - 5e9], [1.0, 2.0], [1 - 2.5e9, 2 - 2.5e9]])
    np.testing.assert_array_equal(stacked["b"][:, 0], [0.5, 1.0, 0.75])


def test_clip_grad_norm_scales_jointly():
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([grads["a"][0], grads["b"][0]], [0.6, 0.8])


# --------------------------------------------------------------------------- BPTT variants

ELMAN = """
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activation: tanh, init: 0.2}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
  - {from: x, to: y, delay: 2}
"""


def make_data(N=4, T=12, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(inputs={"x": rng.normal(size=(N, T, 2))}, targets={"y": rng.normal(size=(N, T, 1))})


def train_once(config, data, spec_text=ELMAN):
    net = rg.build(rg.parse_spec(spec_text))
    Trainer(net, config, data, seed=0).run()
    return net.params


def test_truncation_window_at_least_T_is_full_bptt():
    data = make_data()
    full = train_once(TrainConfig(optimizer={"name": "sgd", "lr": 0.05}, epochs=3, batch_size=4), data)
    long = train_once(TrainConfig(optimizer={"name": "sgd", "lr": 0.05}, epochs=3, batch_size=4, truncate=12), data)
    for name in full:
        np.testing.assert_array_equal(full[name], long[name])


def test_truncated_bptt_steps_per_window_and_carries_state():
    data = make_data(T=12)
    net = rg.build(rg.parse_spec(ELMAN))
    start = {k: v.copy() for k, v in net.params.items()}
    trainer = Trainer(net, TrainConfig(optimizer={"name": "sgd", "lr": 0.05}, epochs=1, batch_size=4, truncate=5), data)
    trainer.run()
    assert trainer.step == 3           # windows of 5, 5 and 2 steps
    # the same by hand: three windows, state carried, a step after each
    ref = rg.build(rg.parse_spec(ELMAN))
    for k in ref.params:
        ref.params[k][...] = start[k]
    carried = None
    for a, b in ((0, 5), (5, 10), (10, 12)):
        _, grads, run = ref.train_step({"x": data.inputs["x"][:, a:b]}, {"y": data.targets["y"][:, a:b]}, carried=carried, keep_values=True)
        carried = run.history
        for k, g in grads.items():
            ref.params[k] -= 0.05 * g
    for k in ref.params:
        np.testing.assert_allclose(net.params[k], ref.params[k], rtol=1e-12)


def test_carried_state_makes_windows_equal_the_whole_forward():
    net = rg.build(rg.parse_spec(ELMAN))
    x = make_data().inputs["x"]
    whole = net.forward({"x": x})["y"]
    carried, parts = None, []
    for a, b in ((0, 4), (4, 9), (9, 12)):
        _, _, run = net.eval_loss({"x": x[:, a:b]}, {"y": np.zeros((4, b - a, 1))}, carried=carried)
        carried = run.history
        parts.append(run.values["y"][1].value.transpose(1, 0, 2))
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12)


def test_loss_on_last_counts_only_the_last_step():
    net = rg.build(rg.parse_spec(ELMAN))
    data = make_data()
    mask = np.zeros((4, 12))
    mask[:, -1] = 1
    loss, grads = net.loss_and_grad(data.inputs, data.targets, mask={"y": mask})
    y = net.forward(data.inputs)["y"]
    assert loss == pytest.approx(np.mean((y[:, -1] - data.targets["y"][:, -1]) ** 2))
    # targets elsewhere do not matter
    other = {"y": data.targets["y"].copy()}
    other["y"][:, :-1] = 123.0
    loss2, grads2 = net.loss_and_grad(data.inputs, other, mask={"y": mask})
    assert loss2 == loss
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads2[k])


def test_masked_gradients_match_finite_differences():
    net = rg.build(rg.parse_spec(ELMAN))
    data = make_data(N=2, T=5)
    mask = {"y": (np.random.default_rng(3).random((2, 5)) > 0.5).astype(float)}
    _, grads = net.loss_and_grad(data.inputs, data.targets, mask=mask)
    w = net.params["h->h"]
    for i in range(3):
        old = w[0, i]
        w[0, i] = old + 1e-6
        up, _ = net.loss_and_grad(data.inputs, data.targets, mask=mask)
        w[0, i] = old - 1e-6
        down, _ = net.loss_and_grad(data.inputs, data.targets, mask=mask)
        w[0, i] = old
        assert grads["h->h"][0, i] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9)


def test_training_is_deterministic_for_a_seed():
    data = make_data(N=8)
    cfg = TrainConfig(optimizer={"name": "adam", "lr": 0.01}, epochs=3, batch_size=3)
    a, b = train_once(cfg, data), train_once(cfg, data)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_divergence_stops_with_epoch_step_and_parameter_named():
    net = rg.build(rg.parse_spec(ELMAN))
    data = make_data()
    trainer = Trainer(net, TrainConfig(optimizer={"name": "sgd", "lr": 1e6}, epochs=50, batch_size=4), data)
    with pytest.raises(rg.RunError) as info:
        trainer.run()
    assert "epoch" in str(info.value) and "step" in str(info.value)
    assert all(np.all(np.isfinite(v)) for v in net.params.values())   # the last good parameters are kept


def test_early_stopping_on_a_threshold():
    net = rg.build(rg.parse_spec(ELMAN))
    trainer = Trainer(net, TrainConfig(optimizer={"name": "adam", "lr": 0.05}, epochs=500, batch_size=4,
                                       early_stopping={"metric": "train_loss", "threshold": "< 0.9"}), make_data())
    trainer.run()
    assert trainer.stopped == "early_stopping" and trainer.epoch < 500
    assert trainer.history[-1]["train_loss"] < 0.9


# --------------------------------------------------------------------------- the run command

def rnngraph(*args, cwd=ROOT, **kw):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, **kw)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_runs_in_short_mode(path, tmp_path):
    out = rnngraph("run", path, "--epochs", "2", "--set", "expect={}", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "train_loss" in metrics and metrics["status"] == "ok"
    assert (tmp_path / "params.npz").exists() and (tmp_path / "history.csv").exists()
    restored = rg.build(rg.load_spec(path)).load(tmp_path / "params.npz")
    assert set(restored.params) == set(np.load(tmp_path / "params.npz").files)


def test_missed_expectation_exits_1_with_a_clear_line(tmp_path):
    out = rnngraph("run", ROOT / "specs/linear_regression.yaml", "--epochs", "1", "--set", "expect={mse: '< 0.000001'}",
                   "--out", tmp_path)
    assert out.returncode == 1
    assert "mse" in out.stderr and "misses < 0.000001" in out.stderr


def test_init_continues_from_saved_parameters(tmp_path):
    spec = ROOT / "specs/linear_regression.yaml"
    assert rnngraph("run", spec, "--epochs", "4", "--out", tmp_path / "a").returncode == 0
    assert rnngraph("run", spec, "--epochs", "0", "--init", tmp_path / "a/params.npz", "--out", tmp_path / "b",
                    "--set", "expect={}").returncode == 0
    a, b = np.load(tmp_path / "a/params.npz"), np.load(tmp_path / "b/params.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    ma = json.loads((tmp_path / "a/metrics.json").read_text())
    mb = json.loads((tmp_path / "b/metrics.json").read_text())
    assert mb["eval_loss"] == pytest.approx(ma["eval_loss"])


def test_init_values_the_dtype_cannot_hold_are_refused(tmp_path):
    """--init of a float64 file with 1e300 into a float32 network: exit 2 naming the
    file and the parameter, before training (not inf weights and a 'diverged' run)."""
    spec = ROOT / "specs/elman_temporal_xor.yaml"
    net = rg.build(rg.load_spec(spec))
    params = {k: np.asarray(v, np.float64) for k, v in net.params.items()}
    params["x->hidden"] = np.full_like(params["x->hidden"], 1e300)
    np.savez(tmp_path / "big.npz", **params)
    out = rnngraph("run", spec, "--init", tmp_path / "big.npz", "--epochs", "1", "--out", tmp_path / "o")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "big.npz" in out.stderr and "'x->hidden'" in out.stderr and "too large for float32" in out.stderr
    assert not (tmp_path / "o").exists()


def test_set_overrides_and_bad_set_is_a_usage_error(tmp_path):
    out = rnngraph("run", ROOT / "specs/linear_regression.yaml", "--epochs", "1", "--set", "nodes.y.size=3",
                   "--out", tmp_path)
    assert out.returncode == 2 and "size" in out.stderr and "Traceback" not in out.stderr
    out = rnngraph("run", ROOT / "specs/linear_regression.yaml", "--set", "oops", "--out", tmp_path)
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr


def test_hopfield_async_energy_never_increases_and_recalls():
    net = rg.build(rg.load_spec(ROOT / "specs/hopfield_discrete.yaml"))
    rng = np.random.default_rng(1)
    patterns = np.where(rng.random((10, 100)) < 0.5, -1.0, 1.0)
    net.store(patterns, "hebbian")
    W = net.params[next(iter(net.params))]
    np.testing.assert_allclose(W, W.T)
    assert np.all(np.diag(W) == 0)
    cues = patterns * np.where(rng.random(patterns.shape) < 0.1, -1, 1)
    r = net.settle(cues, update="async", sweeps=30, seed=0)
    assert np.all(np.diff(r.energy, axis=1) <= 1e-9)
    assert (r.states == patterns).all(axis=1).mean() >= 0.9
    np.testing.assert_allclose(net.energy(r.states), r.energy[:, -1])


def test_sync_updates_recognise_a_two_cycle():
    spec = rg.parse_spec("""
rnngraph: 1
nodes:
  s: {size: 2, activation: sign, init: input}
edges:
  - {from: s, to: s, delay: 1, init: [[0, -1], [-1, 0]], constraint: [symmetric, zero_diagonal]}
""")
    net = rg.build(spec)
    # s = (1, 1) -> (-1, -1) -> (1, 1): a 2-cycle under synchronous updates
    r = net.settle(np.array([[1.0, 1.0]]), update="sync", sweeps=10)
    assert r.cycle[0] and not r.converged[0]
    r = net.settle(np.array([[1.0, 1.0]]), update="async", sweeps=10)
    assert r.converged[0]


def test_gradcheck_says_when_all_zero_gradients_agree_trivially():
    out = rnngraph("gradcheck", ROOT / "specs/hopfield_discrete.yaml")     # s->s sits behind a sign activation
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "ok (all zero)" in text and "exactly zero" in text and "trivially true" in text, text
    out = rnngraph("gradcheck", ROOT / "specs/mlp.yaml")
    assert out.returncode == 0 and "trivially" not in out.stdout and "agree with finite differences" in out.stdout
