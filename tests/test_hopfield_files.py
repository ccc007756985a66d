"""A Hopfield spec reads the patterns it stores from a data file.

docs/spec-format.md: for a Hopfield network a data file holds the patterns
under the state node's name, ``(P, size)`` of +-1, and ``train.method`` picks
the storage rule.  ``rnngraph run`` stores them, makes noisy cues from them as
the ``patterns`` generator does and reports recall; a file that does not fit
exits 2 with one line naming the file, the array and what was expected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
rnngraph: 1
name: stored
seed: 0
nodes:
  s: {size: 50, activation: sign, bias: false, init: input}
edges:
  - {from: s, to: s, delay: 1, constraint: [symmetric, zero_diagonal]}
task: {file: patterns.npz, n_eval: 40}
train: {method: METHOD}
dynamics: {update: async, sweeps: 20}
expect: {recall: ">= 0.9"}
"""

CONTINUOUS = """\
rnngraph: 1
seed: 0
nodes:
  u: {size: 32, bias: false}
  v: {size: 32, activation: tanh, init: input}
edges:
  - {from: u, to: u, delay: 1, weight: scalar, init: 0.9, trainable: false}
  - {from: v, to: u, delay: 1, constraint: [symmetric, zero_diagonal]}
  - {from: u, to: v, weight: scalar, init: 0.3, trainable: false}
task: {file: patterns.npz}
train: {method: hebbian}
dynamics: {update: sync, sweeps: 60, until_stable: false}
expect: {recall: ">= 0.9"}
"""


def rnngraph(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def patterns(P, size, seed=0):
    return np.where(np.random.default_rng(seed).random((P, size)) < 0.5, -1.0, 1.0)


def write(tmp_path, spec=SPEC, method="hebbian", **arrays):
    (tmp_path / "net.yaml").write_text(spec.replace("METHOD", method), encoding="utf-8")
    np.savez(tmp_path / "patterns.npz", **arrays)


@pytest.mark.parametrize("method", ["hebbian", "storkey", "pseudoinverse"])
def test_patterns_from_a_file_are_stored_and_recalled(tmp_path, method):
    write(tmp_path, method=method, s=patterns(4, 50))
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["recall"] >= 0.9 and metrics["energy_increases"] == 0
    W = np.load(tmp_path / "out" / "params.npz")["s->s"]
    np.testing.assert_allclose(W, W.T, atol=1e-6)
    assert np.abs(W).sum() > 0, "the patterns were not stored"


def test_a_continuous_net_reads_its_patterns_under_the_output_node(tmp_path):
    write(tmp_path, spec=CONTINUOUS, v=patterns(3, 32, seed=1))
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["recall"] >= 0.9


def test_the_shipped_spec_runs_and_check_accepts_it(tmp_path):
    r = rnngraph("run", ROOT / "specs/hopfield_file.yaml", "--out", tmp_path / "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = rnngraph("check", ROOT / "specs/hopfield_file.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_the_cues_are_noisy_copies_of_the_file_patterns_drawn_from_the_seed(tmp_path):
    import rnngraph as rg
    from rnngraph.training.data import file_splits
    X = patterns(4, 50)
    write(tmp_path, s=X)
    spec = rg.load_spec(tmp_path / "net.yaml")
    net = rg.build(spec)
    train, evald = file_splits(spec, net, seed=0)
    np.testing.assert_array_equal(train.task_data.extra["patterns"], X)
    cues, targets = evald.task_data.inputs[:, 0], evald.task_data.targets[:, 0]
    assert cues.shape == (40, 50)
    np.testing.assert_array_equal(targets, X[np.arange(40) % 4])
    assert np.all((cues != targets).sum(axis=1) == 5)            # 10% of 50 units flipped
    again = file_splits(spec, net, seed=0)[1].task_data.inputs
    other = file_splits(spec, net, seed=1)[1].task_data.inputs
    np.testing.assert_array_equal(again, evald.task_data.inputs)
    assert not np.array_equal(other, evald.task_data.inputs)


@pytest.mark.parametrize("arrays, phrases", [
    ({"x": patterns(3, 50)}, ["missing array 's'", "(P, 50)", "the file holds 'x'"]),
    ({"s": np.zeros((3, 50))}, ["array 's'", "-1 and +1", "(0, 0)"]),
    ({"s": patterns(3, 50)[:, None, :]}, ["array 's'", "(3, 1, 50)", "(P, 50)"]),
    ({"s": patterns(3, 40)}, ["array 's'", "(3, 40)", "(P, 50)"]),
    ({"s": np.ones((0, 50))}, ["array 's'", "(0, 50)"]),
    ({"s": patterns(3, 50), "y": patterns(3, 50)}, ["array 'y'", "only the patterns"]),
    ({"s": np.where(patterns(3, 50) > 0, np.nan, -1.0)}, ["'s'", "holds nan", "-1 and +1"]),
])
def test_a_patterns_file_that_does_not_fit_is_refused(tmp_path, arrays, phrases):
    write(tmp_path, **arrays)
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "patterns.npz" in r.stderr
    for phrase in phrases:
        assert phrase in r.stderr, f"{phrase!r} not in {r.stderr!r}"
    assert not (tmp_path / "out" / "params.npz").exists()


def test_an_eval_file_is_refused(tmp_path):
    write(tmp_path, s=patterns(3, 50))
    spec = (tmp_path / "net.yaml").read_text().replace("n_eval: 40", "eval_file: patterns.npz")
    (tmp_path / "net.yaml").write_text(spec)
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "a Hopfield network reads only `file`" in r.stderr and "eval_file" in r.stderr, r.stderr


def test_patterns_with_gradient_training_point_at_the_storage_rules(tmp_path):
    write(tmp_path, method="bptt", s=patterns(3, 50))
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    # the spec's own n_eval (cues from stored patterns) is refused at its key, naming the storage rules
    assert "net.yaml:" in r.stderr and "task.n_eval" in r.stderr and "train.method: hebbian" in r.stderr


def test_a_storage_rule_on_a_network_without_a_memory_is_refused(tmp_path):
    spec = SPEC.replace(", constraint: [symmetric, zero_diagonal]", "")
    write(tmp_path, spec=spec, s=patterns(3, 50))
    r = rnngraph("run", "net.yaml", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "patterns.npz" in r.stderr and "not a Hopfield-style network" in r.stderr and "symmetric" in r.stderr
