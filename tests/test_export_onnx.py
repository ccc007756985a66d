"""ONNX export (rnngraph/export/onnx.py, ``rnngraph export --format onnx``) against ``net.forward``.

Every spec in specs/ and random valid graphs are exported and run in
onnxruntime on random inputs, at batch sizes and lengths the export never
saw (it sees none: the model's N and T are symbolic): float64 agrees to
1e-10, float32 to 1e-5, absolutely for values up to 1 and relatively above
(a random graph's values can grow exponentially with T, and a float32 of
size 100 carries an error of 1e-5 by itself).  Hopfield nets export their
synchronous settling.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import rnngraph as rg                                  # noqa: E402
from rnngraph.activations import ACTIVATIONS           # noqa: E402
from rnngraph.cli import main                          # noqa: E402
from rnngraph.errors import DataError                  # noqa: E402
from rnngraph.export.onnx import ACTIVATION_OPS, to_onnx      # noqa: E402
from rnngraph.engine.hopfield import state_node        # noqa: E402
from rnngraph.engine.plan import make_plan             # noqa: E402
from test_executor import random_specs                 # noqa: E402  hypothesis strategy: random valid specs

SPECS = sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
SHAPES = [(1, 1), (4, 9), (2, 0), (0, 3)]          # (N, T) pairs the comparisons run at


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_model(model, feeds: dict) -> dict:
    s = session(model)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def init_input_nodes(net) -> list:
    return [n for n, init in net.graph.nodes(data="init") if init.kind == "input"]


def random_feeds(net, N: int, T: int, seed: int):
    """(ONNX feeds, the same as forward's inputs and initial)."""
    rng = np.random.default_rng(seed)
    inputs = {n: rng.normal(size=(N, T, net.size(n))).astype(net.dtype) for n in net.input_nodes}
    initial = {n: rng.normal(size=(N, net.size(n))).astype(net.dtype) for n in init_input_nodes(net)}
    return {**inputs, **{f"{n}.init": v for n, v in initial.items()}}, inputs, initial


def perturb(net, seed: int) -> None:
    """Move every parameter off its init (biases off zero, constrained weights
    off their constraint set: the engine applies the constraints itself)."""
    rng = np.random.default_rng(seed)
    for value in net.params.values():
        value += rng.uniform(-0.3, 0.3, size=value.shape).astype(value.dtype)


def largest_difference(net, model, N: int, T: int, seed: int, nodes=None) -> float:
    """The largest |onnxruntime - net.forward| / max(1, |net.forward|) over ``nodes``
    (default: the output nodes)."""
    nodes = net.output_nodes if nodes is None else nodes
    feeds, inputs, initial = random_feeds(net, N, T, seed)
    got = run_model(model, feeds)
    want = net.forward(inputs, initial=initial)
    assert sorted(got) == sorted(nodes)
    worst = 0.0
    for n in nodes:
        assert got[n].shape == want[n].shape == (N, T, net.size(n)), n
        assert got[n].dtype == net.dtype, n
        if want[n].size:
            scale = np.maximum(1.0, np.abs(want[n].astype(np.float64)))
            worst = max(worst, float(np.max(np.abs(got[n] - want[n]) / scale)))
    return worst


def is_hopfield(path) -> bool:
    return path.stem.startswith("hopfield")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", [p for p in SPECS if not is_hopfield(p)], ids=lambda p: p.stem)
def test_every_spec_matches_forward(path, dtype):
    net = rg.build(rg.load_spec(path), dtype=dtype)
    perturb(net, 1)
    model = to_onnx(net)
    for N, T in SHAPES:
        worst = largest_difference(net, model, N, T, seed=N * 100 + T)
        assert worst <= TOLERANCE[dtype], f"{path.stem} {dtype} N={N} T={T}: {worst:.3g}"


def test_model_inputs_and_outputs_are_the_nodes_with_symbolic_batch_and_length():
    net = rg.build(rg.load_spec(next(p for p in SPECS if p.stem == "primitives")))
    model = to_onnx(net)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    assert dims == {"x": ["N", "T", 1], "freq.init": ["N", 1]}
    outs = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output}
    assert outs == {"y": ["N", "T", 1]}
    initializers = {t.name for t in model.graph.initializer}
    assert set(net.params) <= initializers           # parameters keep their names
    # one Scan per recurrent component, each inside an If (T > 0), named after its nodes
    branches = [n.attribute for n in model.graph.node if n.op_type == "If"]
    scans = [node for attrs in branches for a in attrs if a.name == "then_branch"
             for node in a.g.node if node.op_type == "Scan"]
    loops = [stage.nodes for stage in net.plan.stages if stage.kind == "recurrent"]
    assert [n.name for n in scans] == ["loop:" + ",".join(nodes) for nodes in loops] and len(loops) >= 3


@pytest.mark.parametrize("path", [p for p in SPECS if is_hopfield(p)], ids=lambda p: p.stem)
def test_hopfield_exports_its_synchronous_settling(path):
    spec = rg.load_spec(path)
    net = rg.build(spec)
    state = net.graph.nodes
    rng = np.random.default_rng(0)
    size = next(state[n]["size"] for n in init_input_nodes(net))
    patterns = rng.choice([-1.0, 1.0], size=(3, size))
    net.store(patterns, rule="hebbian")
    cues = patterns[rng.integers(0, 3, size=5)] * rng.choice([1.0, -1.0], p=[0.85, 0.15], size=(5, size))
    model = to_onnx(net)
    (name, got), = run_model(model, {f"{n}.init": cues.astype(net.dtype) for n in init_input_nodes(net)}).items()
    sweeps = spec.dynamics["sweeps"]
    want = net.settle(cues, update="sync", sweeps=sweeps, until_stable=False).states
    assert got.shape == (5, size)
    np.testing.assert_allclose(got, want, atol=TOLERANCE[spec.dtype])
    assert name == state_node(net)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation(activation, dtype):
    assert set(ACTIVATION_OPS) == set(ACTIVATIONS)
    text = f"""
rnngraph: 1
dtype: {dtype}
nodes:
  x: {{role: input, size: 3}}
  h: {{size: 3, activation: tanh}}
  g: {{size: 3, activation: {activation}}}
  y: {{role: output, size: 3, activation: {activation}}}
edges:
  - {{from: x, to: h}}
  - {{from: g, to: h, delay: 1}}
  - {{from: h, to: g}}
  - {{from: x, to: y, weight: diagonal}}
"""
    net = rg.build(rg.parse_spec(text))
    perturb(net, 2)
    model = to_onnx(net)
    feeds, inputs, _ = random_feeds(net, 3, 6, 3)
    feeds["x"][0, 0] = inputs["x"][0, 0] = 0.0       # sign(0) = +1, step(0) = 0 (y reads x alone)
    want = net.forward(inputs)
    np.testing.assert_allclose(run_model(model, feeds)["y"], want["y"], atol=TOLERANCE[dtype], rtol=0)


# RG_RANDOM_GRAPHS=500 python -m pytest tests/test_export_onnx.py -k random: a longer hunt
@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 40)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.sampled_from(["float64", "float32"]), st.integers(0, 2 ** 16))
def test_random_graphs_match_forward(data, dtype, seed):
    assume(any(node.get("role") == "input" for node in data["nodes"].values()))
    data = {**data, "dtype": dtype}
    net = rg.build(rg.parse_spec(yaml.safe_dump(data, sort_keys=False)), seed=seed)
    perturb(net, seed)
    every = [n for n in net.graph.nodes if n not in net.input_nodes]      # every node's values, not only outputs
    model = to_onnx(net, nodes=every)
    for N, T in SHAPES:
        worst = largest_difference(net, model, N, T, seed, nodes=every)
        assert worst <= TOLERANCE[dtype], f"N={N} T={T}: {worst:.3g}"


def mirrored_model(spec, params, nodes):
    """The ONNX model of ``spec``'s network with every delay negated (it reads the
    future where the original reads the past), exported from a network whose graph
    and plan were rewritten so (the spec format will say this with negative delays).
    On a sequence, it computes what the original computes on the reversed sequence."""
    net = rg.build(spec)
    for name, value in params.items():
        net.params[name][...] = value
    for _, _, data in net.graph.edges(data=True):
        data["delay"] = -data["delay"]
    net.plan = make_plan(net.graph)
    return to_onnx(net, nodes=nodes)


def assert_mirror_reverses_time(spec, seed):
    net = rg.build(spec, seed=seed)
    perturb(net, seed)
    every = [n for n in net.graph.nodes if n not in net.input_nodes]
    model = mirrored_model(spec, net.params, every)
    for N, T in SHAPES:
        feeds, inputs, initial = random_feeds(net, N, T, seed)
        got = run_model(model, feeds)
        want = net.forward({n: x[:, ::-1] for n, x in inputs.items()}, initial=initial)
        for n in every:
            scale = np.maximum(1.0, np.abs(want[n]))
            assert np.max(np.abs(got[n] - want[n][:, ::-1]) / scale, initial=0.0) <= TOLERANCE[spec.dtype], n


@pytest.mark.parametrize("name", ["lstm_reber", "primitives", "fully_recurrent"])
def test_negative_delays_scan_backwards(name):
    spec = rg.load_spec(next(p for p in SPECS if p.stem == name))
    assert_mirror_reverses_time(spec, 5)


@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 40)) // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(0, 2 ** 16))
def test_random_graphs_with_negative_delays_scan_backwards(data, seed):
    assume(any(node.get("role") == "input" for node in data["nodes"].values()))
    assert_mirror_reverses_time(rg.parse_spec(yaml.safe_dump(data, sort_keys=False)), seed)


def test_node_names_that_the_exporter_also_uses_stay_the_models_names():
    text = """
rnngraph: 1
dtype: float64
nodes:
  T: {role: input, size: 2}
  t: {size: 3, activation: tanh}
  zero: {size: 3, init: 0.5}
  N: {role: output, size: 2}
  one: {role: output, size: 3, activation: sign}
edges:
  - {from: T, to: t}
  - {from: zero, to: t, delay: 2}
  - {from: t, to: zero, weight: diagonal}
  - {from: t, to: N}
  - {from: T, to: one, weight: dense, delay: 1}
"""
    net = rg.build(rg.parse_spec(text))
    perturb(net, 6)
    model = to_onnx(net)
    assert [v.name for v in model.graph.input] == ["T"]
    assert [v.name for v in model.graph.output] == ["N", "one"]
    assert largest_difference(net, model, 3, 4, 6) <= TOLERANCE["float64"]


def test_hopfield_sweeps_can_be_chosen_and_must_be_positive():
    net = rg.build(rg.load_spec(next(p for p in SPECS if p.stem == "hopfield_continuous")))
    cues = np.random.default_rng(0).choice([-1.0, 1.0], size=(2, net.size("v")))
    (got,) = run_model(to_onnx(net, sweeps=3), {"v.init": cues.astype(net.dtype)}).values()
    np.testing.assert_allclose(got, net.forward({}, initial={"v": cues}, steps=3)["v"][:, -1], atol=1e-5)
    with pytest.raises(DataError, match="sweeps: expected an integer >= 1"):
        to_onnx(net, sweeps=0)


def test_a_network_without_inputs_is_refused_with_a_reason():
    net = rg.build(rg.parse_spec("rnngraph: 1\nnodes:\n  h: {size: 2, init: 0.5}\nedges:\n"
                                 "  - {from: h, to: h, delay: 1}\n"))
    with pytest.raises(DataError, match="no input node"):
        to_onnx(net)


# --------------------------------------------------------------------------- the command

@pytest.fixture
def trained(tmp_path):
    """(spec path, params path) of a network whose parameters are off their init."""
    path = next(p for p in SPECS if p.stem == "lstm_adding")
    net = rg.build(rg.load_spec(path))
    perturb(net, 4)
    params = tmp_path / "params.npz"
    net.save(params)
    return path, params, net


def test_cli_writes_a_model_that_computes_the_network(trained, tmp_path, capsys):
    spec, params, net = trained
    out = tmp_path / "model.onnx"
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    import onnx
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert largest_difference(net, model, 3, 5, 0) <= TOLERANCE["float32"]
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []      # no temporary left behind


def test_cli_default_output_is_the_spec_stem_in_the_current_folder(trained, tmp_path, monkeypatch):
    spec, params, _ = trained
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx"]) == 0
    assert (tmp_path / f"{spec.stem}.onnx").is_file()


@pytest.mark.parametrize("case", ["missing", "not_npz", "wrong_network"])
def test_cli_bad_params_exit_2_and_write_nothing(trained, tmp_path, capsys, case):
    spec, params, _ = trained
    bad = tmp_path / "bad.npz"
    if case == "not_npz":
        bad.write_text("hello")
    elif case == "wrong_network":
        rg.build(rg.load_spec(next(p for p in SPECS if p.stem == "mlp"))).save(bad)
    out = tmp_path / "model.onnx"
    assert main(["export", str(spec), "--params", str(bad), "--format", "onnx", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_unwritable_output_exits_2_and_keeps_no_half_file(trained, tmp_path, capsys):
    spec, params, _ = trained
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "model.onnx"                       # a folder that is a file: nothing can be written
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "model.onnx" in err and "cannot write" in err
    assert sorted(os.listdir(tmp_path)) == ["a_file", "params.npz"]


def test_cli_output_that_is_a_folder_exits_2(trained, tmp_path, capsys):
    spec, params, _ = trained
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx", "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_a_failed_export_leaves_the_previous_file(trained, tmp_path):
    spec, params, _ = trained
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    assert main(["export", str(spec), "--params", str(tmp_path / "nope.npz"), "--format", "onnx",
                 "-o", str(out)]) == 2
    assert out.read_bytes() == b"previous"


def test_cli_exports_a_hopfield_net_and_says_it_settles_synchronously(tmp_path, capsys):
    spec = next(p for p in SPECS if p.stem == "hopfield_discrete")
    net = rg.build(rg.load_spec(spec))
    net.store(np.random.default_rng(0).choice([-1.0, 1.0], size=(2, net.size("s"))))
    net.save(tmp_path / "p.npz")
    out = tmp_path / "h.onnx"
    assert main(["export", str(spec), "--params", str(tmp_path / "p.npz"), "--format", "onnx", "-o", str(out)]) == 0
    assert "note: the model settles by synchronous updates, not the spec's async ones" in capsys.readouterr().err
    import onnx
    assert [v.name for v in onnx.load(out).graph.output] == ["s"]


def test_cli_refuses_a_network_it_cannot_export(tmp_path, capsys):
    spec = tmp_path / "noinput.yaml"
    spec.write_text("rnngraph: 1\nnodes:\n  h: {size: 2}\nedges:\n  - {from: h, to: h, delay: 1}\n")
    params = tmp_path / "p.npz"
    rg.build(rg.load_spec(spec)).save(params)
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx",
                 "-o", str(tmp_path / "m.onnx")]) == 2
    assert "no input node" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("argv", [["--format", "onnx"], ["--params", "p.npz"], ["--params", "p.npz", "--format", "tf"]])
def test_cli_usage_errors_exit_2(trained, argv):
    spec, _, _ = trained
    with pytest.raises(SystemExit) as exc:
        main(["export", str(spec), *argv])
    assert exc.value.code == 2


def test_cli_invalid_spec_exits_2_with_its_line(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("rnngraph: 1\nnodes:\n  x: {role: input, size: 0}\nedges: []\n")
    assert main(["export", str(spec), "--params", "p.npz", "--format", "onnx"]) == 2
    assert "bad.yaml:3:" in capsys.readouterr().err


def test_without_the_onnx_package_the_command_says_what_to_install(trained, tmp_path, capsys, monkeypatch):
    spec, params, _ = trained
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)      # import onnx raises ImportError
    out = tmp_path / "model.onnx"
    assert main(["export", str(spec), "--params", str(params), "--format", "onnx", "-o", str(out)]) == 2
    assert "pip install 'rnngraph[onnx]'" in capsys.readouterr().err
    assert not out.exists()


def test_the_command_line_does_not_import_onnx_until_an_export_runs():
    import subprocess
    import sys
    code = ("import sys, rnngraph.cli\nrnngraph.cli.make_parser()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
