"""Built-in metrics (``task.metrics``) and held-out evaluation data (``task.eval_split``).

* Each metric is checked on small arrays against its definition written out
  by hand (docs/spec-format.md, "Metrics"): masks weight positions, softmax
  outputs decide by argmax, tanh/sign by sign, other outputs by 0.5.
* A data-file task lists metrics and holds out its last sequences; the run
  reports them in metrics.json and history.csv, ``expect:`` and
  ``early_stopping`` read them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.metrics import METRICS, compute, lower_is_better

ROOT = Path(__file__).resolve().parent.parent


def test_each_metric_matches_its_definition_on_unmasked_data():
    y = np.array([[[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])          # (1, 3, 2)
    v = np.array([[[0.2, 0.9], [0.4, 0.7], [0.6, 0.1]]])
    m = compute(METRICS, {"y": v}, {"y": y}, activations={"y": "sigmoid"})
    err = v - y
    assert m["mse"] == pytest.approx(np.mean(err ** 2))
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)))
    # thresholded at 0.5: unit (1, 0) 0.4 vs 1 and unit (2, 0) 0.6 vs 0 are wrong: 2 of 6
    assert m["bit_error"] == pytest.approx(2 / 6)
    assert m["accuracy"] == pytest.approx(4 / 6)
    ss_tot = np.sum((y - y.mean(axis=(0, 1))) ** 2)
    assert m["r2"] == pytest.approx(1 - np.sum(err ** 2) / ss_tot)


def test_a_mask_counts_only_its_positions():
    y = np.array([[[1.0], [0.0], [1.0]]])
    v = np.array([[[0.0], [0.0], [0.75]]])
    mask = np.array([[0.0, 1.0, 1.0]])                              # the first position does not count
    m = compute(["mse", "mae", "accuracy", "bit_error"], {"y": v}, {"y": y}, {"y": mask})
    assert m == pytest.approx({"mse": (0 + 0.25 ** 2) / 2, "mae": 0.25 / 2, "accuracy": 1.0, "bit_error": 0.0})
    nothing = compute(["mse", "accuracy"], {"y": v}, {"y": y}, {"y": np.zeros((1, 3))})
    assert all(np.isnan(x) for x in nothing.values())


def test_accuracy_reads_softmax_by_argmax_and_tanh_by_sign():
    y = np.array([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]])
    v = np.array([[[0.3, 0.4, 0.3], [0.2, 0.5, 0.3]]])              # argmax right, then wrong; no unit > 0.5
    soft = compute(["accuracy", "bit_error"], {"y": v}, {"y": y}, activations={"y": "softmax"})
    assert soft["accuracy"] == 0.5                                   # one decision per position
    assert soft["bit_error"] == pytest.approx(2 / 6)                 # the two targets' 1s are missed
    t = np.array([[[1.0, -1.0]]])
    s = np.array([[[0.2, -0.3]]])
    assert compute(["accuracy"], {"y": s}, {"y": t}, activations={"y": "tanh"})["accuracy"] == 1.0
    assert compute(["accuracy"], {"y": s}, {"y": t}, activations={"y": "sigmoid"})["accuracy"] == 0.5


def test_several_outputs_are_pooled():
    a_y, a_v = np.ones((2, 1, 1)), np.zeros((2, 1, 1))               # 2 elements, error 1 each
    b_y, b_v = np.zeros((2, 1, 3)), np.zeros((2, 1, 3))              # 6 elements, error 0
    m = compute(["mse"], {"a": a_v, "b": b_v}, {"a": a_y, "b": b_y})
    assert m["mse"] == pytest.approx(2 / 8)


def test_r2_is_nan_for_constant_targets_and_one_for_a_perfect_fit():
    y = np.full((2, 3, 1), 0.5)
    assert np.isnan(compute(["r2"], {"y": y}, {"y": y})["r2"])
    y = np.arange(6.0).reshape(2, 3, 1)
    assert compute(["r2"], {"y": y}, {"y": y})["r2"] == 1.0


def test_which_metrics_are_better_lower():
    assert lower_is_better("mse") and lower_is_better("mae") and lower_is_better("bit_error")
    assert lower_is_better("eval_loss") and not lower_is_better("accuracy") and not lower_is_better("r2")


# --------------------------------------------------------------------------- in a run

SPEC = """\
rnngraph: 1
name: listed
nodes:
  x: {role: input, size: 1}
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: d.npz, eval_split: 0.25, metrics: [mse, accuracy, bit_error, r2, mae]}
train: {loss: bce, optimizer: {name: adam, lr: 0.05}, epochs: 6, batch_size: 5, log_every: 1, loss_on: last}
"""


def _data(path: Path) -> dict:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (20, 5, 1)).astype(float)
    y = np.cumsum(x, axis=1) % 2                                      # running parity
    np.savez(path, x=x, y=y)
    return {"x": x, "y": y}


def test_a_file_task_reports_its_listed_metrics_on_its_last_sequences(tmp_path):
    arrays = _data(tmp_path / "d.npz")
    (tmp_path / "s.yaml").write_text(SPEC)
    from rnngraph.training.experiment import Experiment
    experiment = Experiment(rg.load_spec(str(tmp_path / "s.yaml")))
    assert experiment.train_data.n == 15 and experiment.eval_data.n == 5
    assert np.array_equal(experiment.eval_data.inputs["x"], arrays["x"][15:])   # the last quarter is held out
    outcome = experiment.run()
    assert outcome.status == "ok"
    # the metrics equal their definition on the evaluation data, at the last step only (loss_on: last)
    v = experiment.net.forward({"x": experiment.eval_data.inputs["x"]})["y"][:, -1, 0]
    y = arrays["y"][15:, -1, 0]
    assert outcome.metrics["mse"] == pytest.approx(np.mean((v - y) ** 2), rel=1e-5)
    assert outcome.metrics["mae"] == pytest.approx(np.mean(np.abs(v - y)), rel=1e-5)
    assert outcome.metrics["accuracy"] == pytest.approx(np.mean((v > 0.5) == (y > 0.5)))
    assert outcome.metrics["bit_error"] == pytest.approx(1 - outcome.metrics["accuracy"])
    assert all(set(METRICS) <= set(record) for record in outcome.history)   # every evaluation has them


def test_expect_and_early_stopping_read_listed_metrics(tmp_path):
    _data(tmp_path / "d.npz")
    text = SPEC.replace("log_every: 1,", "log_every: 1, early_stopping: {metric: accuracy, threshold: \">= 0\"},")
    (tmp_path / "s.yaml").write_text(text + "expect: {mae: \"< 0\"}\n")
    r = subprocess.run([sys.executable, "-m", "rnngraph.cli", "run", str(tmp_path / "s.yaml"), "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr                     # mae < 0 cannot hold
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["epochs"] == 1                                     # accuracy >= 0 stopped it at once
    assert metrics["expect"]["mae"]["ok"] is False and metrics["expect"]["mae"]["value"] == metrics["mae"]


def test_a_generator_keeps_its_own_metrics_beside_the_listed_ones():
    spec = rg.load_spec(str(ROOT / "specs" / "elman_temporal_xor.yaml"),
                        overrides={"task.metrics": ["mae"], "task.length": 300, "train.epochs": 1, "expect": {}})
    from rnngraph.training.experiment import Experiment
    outcome = Experiment(spec).run()
    assert {"third_bit_error", "other_bit_error", "rms_error", "mae"} <= set(outcome.metrics)
