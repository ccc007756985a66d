"""PyTorch out: the exported module computes rnngraph's outputs and gradients.

Each spec in specs/ and random graphs (the executor tests' hypothesis strategy)
are exported with ``rnngraph export --format torch`` (or ``torch_source``), the
file is imported as a module, ``load_npz`` reads the network's params.npz, and
the module's outputs and autograd gradients of the mse loss are compared with
``net.forward`` and ``net.loss_and_grad`` in float64.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.activations import ACTIVATIONS
from rnngraph.cli import main
from rnngraph.export.torch import TORCH_ACTIVATIONS, torch_source
from rnngraph.engine.gradcheck import random_problem
from rnngraph.engine.reference import reference_loss_and_grad

torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[torch]'")

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_executor import random_specs  # noqa: E402

SPECS = sorted(pathlib.Path(__file__).parent.parent.glob("specs/*.yaml"))


def load_module(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported_model(net, tmp_path: pathlib.Path):
    """The exported module's instance with the network's parameters, via params.npz."""
    code = tmp_path / "model.py"
    code.write_text(torch_source(net))
    net.save(tmp_path / "params.npz")
    module = load_module(code)
    classes = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)
               and c.__module__ == module.__name__]
    assert len(classes) == 1
    return module, classes[0]().load_npz(tmp_path / "params.npz")


def compare(net, tmp_path, T=5, B=3, seed=0, tol=1e-10):
    """Outputs and gradients of the exported module against rnngraph's; returns the
    largest differences (outputs, gradients)."""
    module, model = exported_model(net, tmp_path)
    if not net.input_nodes and not any(net.graph.nodes[n]["init"].kind == "input" for n in net.graph.nodes):
        B = 1      # net.forward's batch when nothing gives one
    inputs, targets, initial, _ = random_problem(net, T=T, B=B, seed=seed)
    want = net.forward(inputs, initial=initial, steps=T)
    names = module.PARAMETERS
    kwargs = {name: torch.tensor(x) for name, x in inputs.items()}
    init_t = {n: torch.tensor(v) for n, v in initial.items()}
    if net.input_nodes:
        got = model(*[kwargs[n] for n in net.input_nodes], initial=init_t)
    else:
        got = model(T, batch_size=B, initial=init_t)
    assert set(got) == set(net.output_nodes or targets)
    worst_out = 0.0
    for n, v in got.items():
        assert v.shape == (B, T, net.size(n))
        np.testing.assert_allclose(v.detach().numpy(), want[n], rtol=tol, atol=tol, err_msg=n)
        worst_out = max(worst_out, float(np.abs(v.detach().numpy() - want[n]).max()))
    if net.output_nodes:
        loss, grads = net.loss_and_grad(inputs or None, targets, loss="mse", initial=initial, steps=T)
    else:   # a net without outputs (Hopfield): the module returns every node; the reference takes any targets
        loss, grads = reference_loss_and_grad(net, inputs or None, targets, loss="mse", initial=initial,
                                              steps=T, any_node=True)
    loss_t = sum(((got[n] - torch.tensor(y)) ** 2).mean() for n, y in targets.items())
    assert float(loss_t.detach()) == pytest.approx(loss, rel=tol, abs=tol)
    model.zero_grad()
    if loss_t.requires_grad:
        loss_t.backward()
    worst_grad = 0.0
    for name, g in grads.items():
        param = getattr(model, names[name])
        assert param.requires_grad
        got_g = np.zeros(g.shape) if param.grad is None else param.grad.numpy()
        np.testing.assert_allclose(got_g, g, rtol=tol, atol=tol, err_msg=name)
        worst_grad = max(worst_grad, float(np.abs(got_g - g).max()) if g.size else 0.0)
    frozen = set(net.params) - set(grads)
    assert all(not getattr(model, names[p]).requires_grad for p in frozen)
    return worst_out, worst_grad


def test_every_activation_has_a_torch_form():
    assert set(ACTIVATIONS) <= set(TORCH_ACTIVATIONS)


def test_specs_exist():
    assert len(SPECS) >= 10


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_exports_the_same_outputs_and_gradients(path, tmp_path):
    net = rg.build(rg.load_spec(path), dtype="float64")
    rng = np.random.default_rng(5)
    for name in net.params:            # away from zero biases and symmetric inits: every entry matters
        net.params[name] += rng.uniform(-0.2, 0.2, size=net.params[name].shape)
    net.project_constraints()
    compare(net, tmp_path)


@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 40)), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=random_specs(), T=st.integers(1, 5), seed=st.integers(0, 2 ** 16))
def test_random_graphs_export_the_same_outputs_and_gradients(data, T, seed, tmp_path_factory):
    net = rg.build(rg.parse_spec(yaml.safe_dump(data, sort_keys=False)), seed=seed)
    rng = np.random.default_rng(seed)
    for name, info in net.param_info.items():
        if info.constraints:   # off the constraint set: the export applies the constraints itself
            net.params[name] += rng.uniform(-0.3, 0.3, size=info.shape)
    compare(net, tmp_path_factory.mktemp("random"), T=T, B=2, seed=seed)


def test_export_command_writes_a_module_that_loads_the_params(tmp_path, capsys):
    """The command as a user runs it: a spec, its params.npz, -o model.py."""
    spec = SPECS[0]
    net = rg.build(rg.load_spec(spec))
    net.params["x->hidden"][...] = 0.25 if "x->hidden" in net.params else 0
    net.save(tmp_path / "params.npz")
    out = tmp_path / "model.py"
    assert main(["export", str(spec), "--params", str(tmp_path / "params.npz"), "--format", "torch",
                 "-o", str(out)]) == 0
    module = load_module(out)
    model = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)
             and c.__module__ == module.__name__][0]().load_npz(tmp_path / "params.npz")
    for name, attribute in module.PARAMETERS.items():
        np.testing.assert_array_equal(getattr(model, attribute).detach().numpy(), net.params[name])
    assert "def forward" in out.read_text() and "class " in out.read_text()


def test_export_command_refuses_a_missing_params_file(tmp_path, capsys):
    assert main(["export", str(SPECS[0]), "--params", str(tmp_path / "nope.npz"), "--format", "torch",
                 "-o", str(tmp_path / "m.py")]) == 2
    assert "nope.npz: parameter file not found" in capsys.readouterr().err
    assert not (tmp_path / "m.py").exists()


def test_init_input_node_needs_its_state(tmp_path):
    net = rg.build(rg.parse_spec("""
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {role: output, size: 2, init: input, activation: tanh}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 2}
"""))
    _, model = exported_model(net, tmp_path)
    with pytest.raises(ValueError, match=r"node 'h' has `init: input`: pass initial="):
        model(torch.zeros(1, 3, 2, dtype=torch.float64))
    compare(net, tmp_path, T=4)


@pytest.mark.parametrize("name", ["lstm_adding", "gru_adding", "elman_temporal_xor"])
def test_float32_spec_exports_a_float32_module(name, tmp_path):
    net = rg.build(rg.load_spec(pathlib.Path(__file__).parent.parent / "specs" / f"{name}.yaml"))
    assert net.dtype == np.float32
    _, model = exported_model(net, tmp_path)
    x = np.random.default_rng(0).normal(size=(3, 20, net.size("x"))).astype(np.float32)
    got = model(torch.tensor(x))
    for n, v in got.items():
        assert v.dtype == torch.float32
        np.testing.assert_allclose(v.detach().numpy(), net.forward({"x": x})[n], rtol=1e-5, atol=1e-5)


def test_every_activation_exports_with_its_gradient(tmp_path):
    """One node per activation, each fed by x and by its own value a step ago."""
    nodes = "\n".join(f"  {a}: {{role: output, size: 3, activation: {a}}}" for a in ACTIVATIONS)
    edges = "\n".join(f"  - {{from: x, to: {a}, init: 'uniform(-0.5, 0.5)'}}\n"
                      f"  - {{from: {a}, to: {a}, delay: 1, init: 'uniform(-0.5, 0.5)'}}" for a in ACTIVATIONS)
    net = rg.build(rg.parse_spec(f"rnngraph: 1\ndtype: float64\nnodes:\n  x: {{role: input, size: 2}}\n"
                                 f"{nodes}\nedges:\n{edges}\n"))
    compare(net, tmp_path, T=4)


def test_awkward_names_make_valid_python(tmp_path):
    """A keyword as a node name, names that differ only by '/' or '_', quotes and backslashes in
    the name and description: the file compiles without warnings and computes the same."""
    import warnings
    text = r'''rnngraph: 1
name: a"b\c
dtype: float64
description: "ends in a quote \" and holds \"\"\" and \\d"
nodes:
  if: {role: input, size: 2}
  a_b: {size: 2, activation: tanh}
  B: {type: gru, size: 2}
  B_h: {role: output, size: 2}
edges:
  - {from: if, to: [a_b, B]}
  - {from: B, to: B_h}
  - {from: a_b, to: B_h, delay: 1}
'''
    net = rg.build(rg.parse_spec(text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(torch_source(net), "model.py", "exec")
    compare(net, tmp_path)


def test_parameters_never_shadow_module_attributes(tmp_path):
    """Edges named like nn.Module's methods (cuda, _parameters, ...) still become parameters."""
    from rnngraph.export.torch import NN_MODULE_ATTRIBUTES
    assert {n for n in dir(torch.nn.Module) if not n.startswith("__")} <= NN_MODULE_ATTRIBUTES
    net = rg.build(rg.parse_spec("""
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 2}
  _save: {size: 2, activation: tanh}
  state_dict: {role: output, size: 2}
edges:
  - {from: x, to: _save, name: cuda}
  - {from: x, to: _save, name: _parameters, weight: diagonal}
  - {from: _save, to: state_dict}
  - {from: state_dict, to: state_dict, delay: 1, name: to}
"""))
    module, model = exported_model(net, tmp_path)
    assert set(module.PARAMETERS.values()).isdisjoint(NN_MODULE_ATTRIBUTES)
    compare(net, tmp_path)
