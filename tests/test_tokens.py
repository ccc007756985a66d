"""Integer data: ``encoding: one_hot`` inputs and class targets.

An input node with ``encoding: one_hot`` reads ``(N, T)`` integers from a data
file (made one-hot where the data is read, so the engine sees floats); a
softmax output trained with ``cross_entropy`` reads ``(N, T)`` class indices.
Training on tokens is training on the same one-hot arrays, and a bad token
(negative, too large, a float, NaN) is refused naming the file, the array
and the (sequence, step)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.data import dataset_from_arrays
from rnngraph.errors import DataError
from rnngraph.training.experiment import Experiment

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
rnngraph: 1
seed: 0
nodes:
  x: {role: input, size: 5, encoding: one_hot}
  h: {size: 6, activation: tanh}
  y: {role: output, size: 4, activation: softmax}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: train.npz}
train: {loss: cross_entropy, epochs: 3, batch_size: 4, optimizer: {name: adam, lr: 0.01}}
"""


def tokens(seed=0, n=10, t=7):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, size=(n, t)), rng.integers(0, 4, size=(n, t))


def write_spec(tmp_path, text=SPEC, **arrays):
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    np.savez(tmp_path / "train.npz", **arrays)
    return rg.load_spec(tmp_path / "s.yaml")


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


# --------------------------------------------------------------------------- the spec key

@pytest.mark.parametrize("node, says", [
    ("x: {role: input, size: 5, encoding: onehot}", "did you mean 'one_hot'"),
    ("x: {role: input, size: 5, encoding: [one_hot]}", "encoding must be 'one_hot'"),
    ("x: {role: input, size: 5, encoding: one_hot}\n  z: {size: 2, encoding: one_hot}", "is for input nodes"),
])
def test_a_bad_encoding_is_a_spec_error_at_its_line(node, says):
    text = SPEC.replace("x: {role: input, size: 5, encoding: one_hot}", node)
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text.replace("task: {file: train.npz}\n", ""), path="t.yaml")
    err = info.value
    assert err.where.endswith(".encoding") and says in str(err)
    wrong = "z:" if "z:" in node else "x:"
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if t.strip().startswith(wrong))
    assert err.line == line and str(err).startswith(f"t.yaml:{line}:")


def test_encoding_survives_printing():
    spec = rg.parse_spec(SPEC.replace("task: {file: train.npz}\n", ""))
    assert rg.parse_spec(spec.to_yaml()).nodes["x"].encoding == "one_hot"


# --------------------------------------------------------------------------- reading tokens

def test_tokens_are_read_as_one_hot_rows(tmp_path):
    x, y = tokens()
    spec = write_spec(tmp_path, x=x, y=y)
    ds = dataset_from_arrays({"x": x, "y": y}, rg.build(spec), "train.npz")
    assert ds.inputs["x"].shape == (10, 7, 5) and ds.targets["y"].shape == (10, 7, 4)
    assert ds.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(ds.inputs["x"].argmax(-1), x)
    np.testing.assert_array_equal(ds.inputs["x"].sum(-1), 1)
    np.testing.assert_array_equal(ds.targets["y"].argmax(-1), y)


def test_training_on_tokens_equals_training_on_their_one_hot_arrays(tmp_path):
    x, y = tokens()
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    on_tokens = Experiment(write_spec(a, x=x, y=y))
    plain = SPEC.replace(", encoding: one_hot", "")
    on_floats = Experiment(write_spec(b, plain, x=np.eye(5)[x], y=np.eye(4)[y]))
    assert on_tokens.run().status == "ok" and on_floats.run().status == "ok"
    for k, v in on_floats.net.params.items():
        np.testing.assert_array_equal(on_tokens.net.params[k], v, err_msg=k)
    assert on_tokens.trainer.history == on_floats.trainer.history


def test_a_one_hot_input_still_reads_one_hot_arrays(tmp_path):
    x, y = tokens()
    ds = dataset_from_arrays({"x": np.eye(5)[x], "y": y}, rg.build(write_spec(tmp_path, x=x, y=y)), "train.npz")
    np.testing.assert_array_equal(ds.inputs["x"].argmax(-1), x)


def test_forward_takes_tokens_for_a_one_hot_input(tmp_path):
    x, _ = tokens()
    net = rg.build(rg.parse_spec(SPEC.replace("task: {file: train.npz}\n", "")))
    a, b = net.forward({"x": x}), net.forward({"x": np.eye(5)[x]})
    np.testing.assert_array_equal(a["y"], b["y"])
    with pytest.raises(DataError, match=r"inputs: array 'x' holds 5 at \(sequence, step\) = \(0, 0\)"):
        net.forward({"x": np.full((2, 3), 5)})


@pytest.mark.parametrize("key, bad, says", [
    ("x", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 9, -1, x),
     "array 'x' holds -1 at (sequence, step) = (1, 2); node 'x' has size 5, so its tokens are integers 0 .. 4"),
    ("x", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, 5, x), "array 'x' holds 5 at (sequence, step) = (0, 3)"),
    ("y", lambda y: np.where(np.arange(y.size).reshape(y.shape) == 8, 4, y), "array 'y' holds 4 at (sequence, step) = (1, 1)"),
    ("x", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 2, 1.5, x), "array 'x' holds 1.5 at (sequence, step) = (0, 2)"),
    ("x", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 4, np.nan, x), "array 'x' holds nan at (sequence, step) = (0, 4)"),
    ("x", lambda x: x.astype(np.float64), "has dtype float64; tokens are integers 0 .. 4"),
    ("x", lambda x: x > 2, "has dtype bool"),
])
def test_bad_tokens_are_refused_with_the_file_the_array_and_the_position(tmp_path, key, bad, says):
    x, y = tokens()
    arrays = {"x": x, "y": y}
    arrays[key] = bad(arrays[key])
    write_spec(tmp_path, **arrays)
    r = cli("check", "s.yaml", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "train.npz" in out and says in out and "Traceback" not in out
    r = cli("run", "s.yaml", "--out", "o", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_tokens_for_a_node_that_does_not_read_them_say_how_it_could(tmp_path):
    x, y = tokens()
    plain = SPEC.replace(", encoding: one_hot", "")
    spec = write_spec(tmp_path, plain, x=x, y=y)
    with pytest.raises(DataError, match="give node 'x' `encoding: one_hot`"):
        dataset_from_arrays({"x": x, "y": y}, rg.build(spec), "train.npz")
    sigmoid = SPEC.replace("activation: softmax", "activation: sigmoid").replace("cross_entropy", "bce")
    spec = write_spec(tmp_path, sigmoid, x=x, y=y)
    with pytest.raises(DataError, match="integer class targets need a softmax output trained with train.loss: "
                                        "cross_entropy"):
        dataset_from_arrays({"x": x, "y": y}, rg.build(spec), "train.npz")


def test_the_letters_spec_reads_tokens():
    spec = rg.load_spec(ROOT / "specs" / "elman_letters_tokens.yaml")
    assert spec.nodes["x"].encoding == "one_hot"
    exp = Experiment(spec, epochs=1)
    assert exp.train_data.inputs["x"].shape == (50, 60, 6)
    assert set(np.unique(exp.train_data.inputs["x"])) == {0.0, 1.0}
    assert exp.train_data.targets["y"].sum(-1).min() == 1
