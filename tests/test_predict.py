"""``rnngraph predict`` and ``Network.predict``: a trained network's values on data.

* The arrays are ``net.forward``'s on the same inputs with the same
  parameters, keyed by node name; the outputs by default, every node with
  ``--nodes all``; the targets beside them and the metrics the run reports
  (the same numbers as its metrics.json when the data is the evaluation data).
* ``--data`` runs on a file (without targets: values only); a Hopfield net
  writes its settled states under the state node's name.
* Mistakes (an unknown node, an --out that is a folder) exit 2 with one
  clear message and write nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
rnngraph: 1
name: parity-file
nodes:
  x: {role: input, size: 1}
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: d.npz, eval_split: 0.25, metrics: [mse, accuracy]}
train: {loss: bce, optimizer: {name: adam, lr: 0.05}, epochs: 5, batch_size: 5}
"""


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def load(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, (20, 6, 1)).astype(float)
    np.savez(folder / "d.npz", x=x, y=np.cumsum(x, axis=1) % 2)
    np.savez(folder / "new.npz", x=rng.integers(0, 2, (3, 9, 1)).astype(float))     # inputs only
    (folder / "s.yaml").write_text(SPEC)
    r = cli("run", folder / "s.yaml", "--out", folder / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    return folder


def test_predict_writes_forwards_outputs_targets_and_the_runs_metrics(trained):
    out = trained / "p.npz"
    r = cli("predict", trained / "s.yaml", "--params", trained / "run" / "params.npz", "--out", out)
    assert r.returncode == 0, r.stderr
    arrays = load(out)
    data = load(trained / "d.npz")
    net = rg.build(rg.load_spec(str(trained / "s.yaml"))).load(str(trained / "run" / "params.npz"))
    forward = net.forward({"x": data["x"][15:]})                     # the held-out last quarter
    assert set(arrays) == {"y", "y.target", "metrics.loss", "metrics.mse", "metrics.accuracy"}
    np.testing.assert_array_equal(arrays["y"], forward["y"])
    np.testing.assert_array_equal(arrays["y.target"], data["y"][15:])
    ran = json.loads((trained / "run" / "metrics.json").read_text())
    assert float(arrays["metrics.loss"]) == pytest.approx(ran["eval_loss"], rel=1e-6)
    assert float(arrays["metrics.mse"]) == pytest.approx(ran["mse"], rel=1e-6)
    assert float(arrays["metrics.accuracy"]) == ran["accuracy"]
    assert "y.target" in r.stdout and "(5, 6, 1)" in r.stdout and "accuracy" in r.stdout


def test_nodes_all_dumps_every_node_and_a_list_the_named_ones(trained):
    params = trained / "run" / "params.npz"
    r = cli("predict", trained / "s.yaml", "--params", params, "--nodes", "all", "--out", trained / "all.npz")
    assert r.returncode == 0, r.stderr
    arrays = load(trained / "all.npz")
    net = rg.build(rg.load_spec(str(trained / "s.yaml"))).load(str(params))
    forward = net.forward({"x": load(trained / "d.npz")["x"][15:]})
    for node in ("x", "h", "y"):
        np.testing.assert_array_equal(arrays[node], forward[node])
    r = cli("predict", trained / "s.yaml", "--params", params, "--nodes", "h", "--out", trained / "h.npz")
    assert r.returncode == 0, r.stderr
    assert {k for k in load(trained / "h.npz") if not k.startswith("metrics.")} == {"h", "y.target"}


def test_data_without_targets_gives_values_only(trained):
    r = cli("predict", trained / "s.yaml", "--params", trained / "run" / "params.npz", "--data", trained / "new.npz",
            "--out", trained / "new_p.npz")
    assert r.returncode == 0, r.stderr
    arrays = load(trained / "new_p.npz")
    assert set(arrays) == {"y"} and arrays["y"].shape == (3, 9, 1)


def test_without_out_it_prints_and_writes_nothing(trained, tmp_path):
    r = cli("predict", trained / "s.yaml", "--params", trained / "run" / "params.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "--out" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, phrases", [
    (["--nodes", "y,hh"], ("unknown node 'hh'", "did you mean 'h'")),
    (["--out", "{folder}"], ("is a folder",)),
    (["--data", "{folder}/missing.npz"], ("missing.npz", "not found")),
])
def test_mistakes_exit_2_with_one_message_and_write_nothing(trained, tmp_path, args, phrases):
    args = [a.format(folder=tmp_path) for a in args]
    before = sorted(tmp_path.iterdir())
    r = cli("predict", trained / "s.yaml", "--params", trained / "run" / "params.npz", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert all(p in r.stderr for p in phrases), r.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_network_predict_selects_from_forward():
    net = rg.build(rg.load_spec(str(ROOT / "specs" / "lstm_adding.yaml")))
    x = np.random.default_rng(0).random((2, 4, net.size("x")))
    forward = net.forward({"x": x})
    outputs = net.predict({"x": x})
    assert list(outputs) == [n for n in net.spec.nodes if net.spec.nodes[n].role == "output"]
    for name, value in outputs.items():
        np.testing.assert_array_equal(value, forward[name])
    some = net.predict({"x": x}, nodes=["lstm", "lstm/c"])
    np.testing.assert_array_equal(some["lstm"], forward["lstm"])
    np.testing.assert_array_equal(some["lstm/c"], forward["lstm/c"])
    with pytest.raises(rg.DataError, match="unknown node 'lstn'.*did you mean 'lstm'"):
        net.predict({"x": x}, nodes=["lstn"])


def test_a_hopfield_net_writes_its_settled_states(tmp_path):
    spec = ROOT / "specs" / "hopfield_discrete.yaml"
    r = cli("run", spec, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    r = cli("predict", spec, "--params", tmp_path / "run" / "params.npz", "--out", tmp_path / "p.npz")
    assert r.returncode == 0, r.stderr
    arrays = load(tmp_path / "p.npz")
    node = "s"
    states, target = arrays[node], arrays[f"{node}.target"]
    assert states.shape == target.shape and set(np.unique(states)) <= {-1.0, 1.0}
    ran = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert float(arrays["metrics.recall"]) == ran["recall"] == np.mean(np.all(states == target, axis=1))
    # cues from a file: the stored memories themselves are fixed points
    np.savez(tmp_path / "cues.npz", s=target[:3])
    r = cli("predict", spec, "--params", tmp_path / "run" / "params.npz", "--data", tmp_path / "cues.npz",
            "--out", tmp_path / "c.npz")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(load(tmp_path / "c.npz")[node], target[:3])


def test_elmans_analysis_finds_hidden_states_grouped_by_letter_class(tmp_path):
    """docs/concepts.md section 9: the letters net's hidden states, dumped with --nodes all."""
    spec = ROOT / "specs" / "elman_letters.yaml"
    r = cli("run", spec, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    r = cli("predict", spec, "--params", tmp_path / "run" / "params.npz", "--nodes", "all",
            "--out", tmp_path / "all.npz")
    assert r.returncode == 0, r.stderr
    import importlib.util
    found = importlib.util.spec_from_file_location("elman_clusters", ROOT / "examples" / "elman_clusters.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    labels = module.labels_of(load(tmp_path / "all.npz")["x"][:, 1:])
    assert {"b", "d", "g", "a", "i1", "i2", "u1", "u2", "u3"} == set(labels.ravel())
    figure = tmp_path / "hidden.png"
    assert module.main(str(tmp_path / "all.npz"), str(figure)) > 0.95
    if importlib.util.find_spec("matplotlib") is not None:     # the [plot] extra
        assert figure.exists()


def test_a_spec_without_a_task_predicts_on_given_data(tmp_path):
    text = SPEC.split("task:")[0]
    (tmp_path / "bare.yaml").write_text(text)
    net = rg.build(rg.load_spec(str(tmp_path / "bare.yaml")))
    net.save(str(tmp_path / "params.npz"))
    x = np.random.default_rng(2).random((2, 3, 1))
    np.savez(tmp_path / "d.npz", x=x, y=np.ones((2, 3, 1)))
    r = cli("predict", tmp_path / "bare.yaml", "--params", tmp_path / "params.npz", "--data", tmp_path / "d.npz",
            "--out", tmp_path / "p.npz")
    assert r.returncode == 0, r.stderr
    arrays = load(tmp_path / "p.npz")
    np.testing.assert_array_equal(arrays["y"], net.forward({"x": x})["y"])
    assert float(arrays["metrics.loss"]) == pytest.approx(net.loss_and_grad({"x": x}, {"y": np.ones((2, 3, 1))})[0])
    r = cli("predict", tmp_path / "bare.yaml", "--params", tmp_path / "params.npz")
    assert r.returncode == 2 and "no `task:`" in r.stderr and "--data" in r.stderr and "Traceback" not in r.stderr
