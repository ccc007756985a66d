"""Learning-rate schedules (``train.schedule``): the rate of each epoch, as
history.csv records it, spec mistakes at their line, and resuming exactly."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.experiment import Experiment
from rnngraph.training.schedules import Schedule

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

SPEC = """\
rnngraph: 1
seed: 0
nodes:
  x: {role: input, size: 1}
  h: {size: 3, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {generator: temporal_xor, length: 60}
train:
  loss: bce
  epochs: 7
  batch_size: 8
  optimizer: {name: OPT, lr: 0.05}
  schedule: SCHEDULE
"""


def spec_with(schedule: str, optimizer: str = "adam", **overrides):
    text = SPEC.replace("SCHEDULE", schedule).replace("OPT", optimizer)
    return rg.parse_spec(text, path="s.yaml", overrides=overrides or None)


def lrs(history):
    return [r["lr"] for r in history]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad"])
def test_step_schedule_on_every_optimizer(optimizer):
    exp = Experiment(spec_with("{name: step, every: 3, gamma: 0.5}", optimizer))
    outcome = exp.run()
    assert outcome.status == "ok"
    assert lrs(outcome.history) == pytest.approx([0.05] * 3 + [0.025] * 3 + [0.0125])


def test_the_schedule_changes_training():
    plain = Experiment(rg.parse_spec(SPEC.replace("  schedule: SCHEDULE\n", "").replace("OPT", "sgd"), path="s.yaml"))
    stepped = Experiment(spec_with("{name: step, every: 1, gamma: 0.5}", "sgd"))
    plain.run()
    stepped.run()
    assert lrs(plain.trainer.history) == [0.05] * 7
    diff = max(float(np.max(np.abs(plain.net.params[k] - stepped.net.params[k]))) for k in plain.net.params)
    assert diff > 1e-4


def test_cosine_warms_up_then_ends_at_min_lr():
    exp = Experiment(spec_with("{name: cosine, warmup: 2, min_lr: 0.001}"))
    got = lrs(exp.run().history)
    assert got[:3] == pytest.approx([0.025, 0.05, 0.05])
    assert got[-1] == pytest.approx(0.001)
    middle = 0.001 + (0.05 - 0.001) * (1 + math.cos(math.pi * 2 / 4)) / 2   # epoch 4 of warm-up 2, 7 epochs
    assert got[4] == pytest.approx(middle)
    assert all(a >= b for a, b in zip(got[1:], got[2:]))


def test_plateau_cuts_the_rate_after_patience_evaluations_without_improvement():
    s = Schedule({"name": "plateau", "patience": 2, "factor": 0.5, "min_lr": 0.3}, base=1.0, epochs=10)
    seen = []
    for value in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        seen.append(s.lr(len(seen)))
        s.observe({"eval_loss": value})
    # best 0.9 at the 2nd; the 3rd bad evaluation (the 5th) cuts to 0.5, three more to 0.3 (min_lr)
    assert seen == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3]
    s.observe({"train_loss": 5.0})   # an epoch without evaluation changes nothing
    assert s.lr(9) == 0.3


def test_plateau_on_a_metric_where_higher_is_better():
    s = Schedule({"name": "plateau", "metric": "accuracy", "patience": 1, "factor": 0.1}, base=1.0, epochs=5)
    for value in [0.5, 0.6, 0.7]:
        s.observe({"accuracy": value})
    assert s.lr(3) == 1.0
    s.observe({"accuracy": 0.6})
    s.observe({"accuracy": 0.6})
    assert s.lr(5) == pytest.approx(0.1)


def test_plateau_in_training_reads_the_evaluation_loss():
    spec = spec_with("{name: plateau, patience: 1, factor: 0.5}", "sgd", **{"train.optimizer.lr": 1e-9,
                                                                         "train.log_every": 1})
    history = Experiment(spec).run().history
    # with lr 1e-9 the loss barely moves: each cut comes after two evaluations without a new best
    assert history[0]["lr"] == 1e-9 and history[-1]["lr"] < 1e-9
    assert all(r["lr"] in (1e-9, 5e-10, 2.5e-10, 1.25e-10) for r in history)


@pytest.mark.parametrize("schedule, where, says", [
    ("{name: stepp, every: 2}", "train.schedule.name", "did you mean 'step'"),
    ("{name: step}", "train.schedule", "needs `every:`"),
    ("{name: step, every: 0}", "train.schedule.every", "integer >= 1"),
    ("{name: step, every: 2, gamma: 2}", "train.schedule.gamma", "(0, 1]"),
    ("{name: cosine, warmup: -1}", "train.schedule.warmup", "integer >= 0"),
    ("{name: cosine, every: 3}", "train.schedule.every", "takes warmup, min_lr"),
    ("{name: plateau, min_lr: -1}", "train.schedule.min_lr", ">= 0"),
    ("{name: plateau, metric: accuracy}", "train.schedule.metric", "not computed"),
    ("[step]", "train.schedule", "must be a mapping"),
])
def test_schedule_mistakes_are_spec_errors_at_their_line(schedule, where, says):
    with pytest.raises(rg.SpecError) as info:
        spec_with(schedule)
    err = info.value
    assert err.where == where and says in str(err)
    assert err.line == SPEC.splitlines().index("  schedule: SCHEDULE") + 1
    assert str(err).startswith(f"s.yaml:{err.line}:")


def test_plateau_on_a_task_metric_is_accepted():
    spec = spec_with("{name: plateau, metric: third_bit_error}")
    assert spec.train["schedule"]["metric"] == "third_bit_error"


@pytest.mark.parametrize("schedule", ["{name: cosine, warmup: 2}", "{name: plateau, patience: 1, factor: 0.5}",
                                      "{name: step, every: 2, gamma: 0.5}"])
@pytest.mark.parametrize("stop_after", [2, 5])
def test_stop_and_resume_is_exact(schedule, stop_after):
    """A run stopped mid-way and resumed from its checkpoint ends with the same
    parameters, optimizer state, rates and history as one that ran straight."""
    spec = spec_with(schedule, **{"train.log_every": 1})
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
    ref_state, got_state = reference.trainer.state_dict(), second.trainer.state_dict()
    assert str(got_state["schedule"]) == str(ref_state["schedule"])


def test_cli_history_has_the_rate_and_resume_continues_it(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC.replace("SCHEDULE", "{name: step, every: 2, gamma: 0.5}")
                                     .replace("OPT", "adam"), encoding="utf-8")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "rnngraph.cli", "run", "s.yaml", "--quiet", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
    r = run("--out", "straight")
    assert r.returncode == 0, r.stderr
    r = run("--out", "split", "--epochs", "3")
    assert r.returncode == 0, r.stderr
    r = run("--resume", "split", "--epochs", "7")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "straight" / "history.csv") as fh:
        straight = list(csv.DictReader(fh))
    with open(tmp_path / "split" / "history.csv") as fh:
        split = list(csv.DictReader(fh))
    assert [float(r["lr"]) for r in straight] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625])
    assert split == straight
    with np.load(tmp_path / "straight" / "params.npz") as a, np.load(tmp_path / "split" / "params.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_a_damaged_schedule_state_is_refused_on_resume(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC.replace("SCHEDULE", "{name: plateau}").replace("OPT", "adam"),
                                     encoding="utf-8")
    cmd = [sys.executable, "-m", "rnngraph.cli", "run", "s.yaml", "--quiet"]
    r = subprocess.run(cmd + ["--out", "o", "--epochs", "2"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "o" / "checkpoint.npz"
    with np.load(path) as ck:
        state = {k: ck[k] for k in ck.files}
    state["schedule"] = np.asarray('{"current": "fast"}')
    np.savez(path, **state)
    r = subprocess.run(cmd + ["--resume", "o"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "checkpoint.npz" in r.stderr and "'schedule'" in r.stderr and "Traceback" not in r.stderr
