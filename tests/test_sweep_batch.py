"""Batched replicas in local sweeps (docs/sweeps.md, "Batched replicas").

* Runs of one program (differing in seed and per-replica options) train
  together; every run's folder equals the one it gets alone (``--no-batch``)
  to rounding: float64, metrics, history, parameters and checkpoint within
  1e-9 relative, the same status, epochs and steps.  Each replica has its own
  data order, optimizer state, learning rate, early stopping and divergence.
* Which runs batch: the same program (``plan_units``); other methods than
  BPTT, dropout and the like run alone.
* A batch's runs are published when it ends; an interrupted batch's
  unpublished runs are redone (a lone run of a batching program is a batch of
  one), and the sweep ends with the same sweep.csv as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from rnngraph.cli import main
from rnngraph.cli.sweep_batch import Batch, plan_units
from rnngraph.cli.sweep_runs import RunJob, parse_grid, plan_sweep
from test_sweep import (ROOT, SPECS, XOR, interrupt_when_a_run_is_done, read_csv,
                        without_seconds)

PARITY = str(SPECS / "parity_many_to_one.yaml")
REBER = str(SPECS / "lstm_reber.yaml")
LINEAR = str(SPECS / "linear_regression.yaml")
F64 = ["--set", "dtype=float64"]

CASES = {
    "elman_temporal_xor": [XOR, "--seeds", "3", "--epochs", "2", "--set", "task.length=600", *F64],
    # 300 evaluation samples: evaluated in two chunks (of 256 and 44), put together per replica
    "parity_lr_grid": [PARITY, "--seeds", "2", "--grid", "train.optimizer.lr=0.01,0.05", "--epochs", "3",
                       "--set", "task.n_train=300", "--set", "task.n_eval=300", *F64],
    "lstm_reber": [REBER, "--seeds", "3", "--epochs", "2", "--set", "task.n_train=60", "--set", "task.n_eval=30",
                   *F64],
    "early_stopping": [PARITY, "--seeds", "4", "--epochs", "8", "--set", "task.n_train=200",
                       "--set", "task.n_eval=100", "--set", "train.early_stopping={metric: eval_loss, patience: 1}",
                       "--set", "train.optimizer.lr=0.05", *F64],
    # clip 0.001 scales every step's gradients, 1 some: each replica clipped by its own norm
    "clip_grid": [PARITY, "--seeds", "2", "--grid", "train.clip=0.001,1", "--epochs", "3",
                  "--set", "task.n_train=200", "--set", "task.n_eval=100", *F64],
    # nothing trainable: every step is a forward pass and no update
    "frozen": [LINEAR, "--seeds", "2", "--epochs", "2", "--set", "edges=[{from: x, to: y, trainable: false}]",
               "--set", "nodes.y.bias=false", "--set", "expect={}", *F64],
    "sgd_momentum_schedule_diverging": [
        LINEAR, "--grid", "train.optimizer.momentum=0,0.9", "--grid", "train.optimizer.lr=0.01,1e30",
        "--set", "train.schedule={name: step, every: 1, gamma: 0.5}", "--set", "expect={}", "--epochs", "2", *F64],
}


def _numbers_close(a, b, where):
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _numbers_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (int, float)) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


def _history(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _compare_runs(batched, alone):
    """Every run folder of ``batched`` equals ``alone``'s to rounding."""
    runs = sorted(p.name for p in alone.iterdir() if (p / "run.json").exists())
    assert runs and runs == sorted(p.name for p in batched.iterdir() if (p / "run.json").exists())
    for name in runs:
        mine, theirs = batched / name, alone / name
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir())
        m, t = (json.loads((f / "metrics.json").read_text()) for f in (mine, theirs))
        m.pop("seconds"), t.pop("seconds")
        _numbers_close(t, m, f"{name}/metrics.json")
        assert (mine / "spec.yaml").read_text() == (theirs / "spec.yaml").read_text()
        hm, ht = _history(mine / "history.csv"), _history(theirs / "history.csv")
        assert len(hm) == len(ht) and all(r.keys() == s.keys() for r, s in zip(hm, ht)), name
        for r, s in zip(hm, ht):
            _numbers_close({k: float(v) for k, v in s.items()}, {k: float(v) for k, v in r.items()}, name)
        for file in ("params.npz", "checkpoint.npz"):
            with np.load(mine / file) as a, np.load(theirs / file) as b:
                assert sorted(a.files) == sorted(b.files), (name, file)
                for k in b.files:
                    if b[k].dtype.kind in "fc":
                        scale = max(1.0, float(np.max(np.abs(b[k]))) if b[k].size else 1.0)
                        assert np.allclose(a[k], b[k], rtol=1e-9, atol=1e-9 * scale), (name, file, k)
                    elif k == "history":
                        assert len(json.loads(str(a[k]))) == len(json.loads(str(b[k])))
                    else:
                        assert np.array_equal(a[k], b[k]), (name, file, k)
        assert json.loads((mine / "run.json").read_text())["exit_status"] == \
            json.loads((theirs / "run.json").read_text())["exit_status"]


@pytest.mark.parametrize("case", list(CASES))
def test_batched_runs_equal_their_runs_alone(case, tmp_path):
    args = CASES[case]
    code_b = main(["sweep", *args, "--workers", "1", "--out", str(tmp_path / "b"), "--quiet"])
    code_a = main(["sweep", *args, "--workers", "2", "--out", str(tmp_path / "a"), "--quiet", "--no-batch"])
    assert code_b == code_a
    _compare_runs(tmp_path / "b", tmp_path / "a")
    rows_b, rows_a = read_csv(tmp_path / "b" / "sweep.csv"), read_csv(tmp_path / "a" / "sweep.csv")
    assert [(r["run"], r["status"], r["epochs"]) for r in rows_b] == [(r["run"], r["status"], r["epochs"])
                                                                      for r in rows_a]
    if case == "early_stopping":   # replicas stopped at different epochs, and the batch went on
        assert len({r["epochs"] for r in rows_a}) > 1
    if case == "sgd_momentum_schedule_diverging":   # a replica diverged; the others trained on
        assert {r["status"] for r in rows_a} == {"ok", "failed"} and code_b == 1


# --------------------------------------------------------------------------- which runs batch

def _jobs(spec, grid=(), seeds=(0, 1), sets=()):
    return plan_sweep(spec, parse_grid(list(grid)), list(seeds), sets=list(sets), epochs=1)


def test_runs_of_one_program_batch_and_other_programs_do_not_mix():
    jobs = _jobs(PARITY, ["train.optimizer.lr=0.01,0.1", "nodes.hidden.size=4,8"])
    units = plan_units(jobs)
    assert all(isinstance(u, Batch) for u in units) and len(units) == 2
    sizes = {u.jobs[0].spec_text.count("size: 8") for u in units}
    assert len(sizes) == 2
    assert sorted(j.run_id for u in units for j in u.jobs) == sorted(j.run_id for j in jobs)
    for unit in units:   # one hidden size per batch, both learning rates and both seeds in it
        assert len(unit.jobs) == 4 and len({j.spec_text.split("hidden:")[1][:40] for j in unit.jobs}) == 1


def test_batches_are_cut_by_the_sweep_alone_into_near_equal_parts():
    jobs = _jobs(PARITY, seeds=range(40))
    units = plan_units(jobs)
    assert [len(u.jobs) for u in units] == [14, 13, 13]            # at most REPLICAS_PER_BATCH each
    assert [j.run_id for u in units for j in u.jobs] == [j.run_id for j in jobs]   # in the sweep's order
    assert [len(u.jobs) for u in plan_units(_jobs(PARITY, seeds=range(5)))] == [5]
    assert [len(u.jobs) for u in plan_units(_jobs(PARITY, seeds=[0]))] == [1]   # a batch of one


@pytest.mark.parametrize("spec, sets", [
    (str(SPECS / "rtrl_online.yaml"), []),
    (str(SPECS / "elman_letters_regularized.yaml"), []),      # dropout
    (PARITY, ["train.method=rtrl"]),
    (str(SPECS / "hopfield_discrete.yaml"), []),
])
def test_runs_the_batched_path_cannot_do_run_alone(spec, sets):
    units = plan_units(_jobs(spec, sets=sets))
    assert len(units) == 2 and all(isinstance(u, RunJob) for u in units)


# --------------------------------------------------------------------------- Ctrl-C, then the same command again

def _batched_command(out, *extra):
    import sys
    return [sys.executable, "-m", "rnngraph.cli", "sweep", PARITY, "--seeds", "3", "--grid", "nodes.hidden.size=4,6",
            "--epochs", "3", "--workers", "1", "--out", str(out), "--quiet", *extra]


def test_an_interrupted_batch_is_redone_and_the_sweep_ends_the_same(tmp_path):
    import subprocess
    whole = tmp_path / "whole"
    r = subprocess.run(_batched_command(whole), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    part = tmp_path / "part"
    code, err = interrupt_when_a_run_is_done(_batched_command(part), part)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    finished = sorted(p.name for p in part.iterdir() if (p / "run.json").exists())
    # the first batch's runs (Ctrl-C may land while they are being published); none of the second
    assert finished and set(finished) <= {"size-4_seed-0", "size-4_seed-1", "size-4_seed-2"}
    r = subprocess.run(_batched_command(part), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(finished)} of 6 runs already in" in r.stderr
    assert without_seconds(read_csv(part / "sweep.csv")) == without_seconds(read_csv(whole / "sweep.csv"))


def test_runs_whose_data_differ_in_shape_run_one_after_another_each_as_alone():
    """lstm_reber's strings differ in length from seed to seed: with the loss on every step (not masked)
    they cannot be padded, so the batch's runs train alone, each exactly as execute_run trains it."""
    from rnngraph.cli.sweep_batch import execute_batch
    from rnngraph.cli.sweep_runs import execute_run
    jobs = _jobs(REBER, seeds=(0, 1), sets=["train.loss_on=all", "task.n_train=20", "task.n_eval=10"])
    units = plan_units(jobs)
    assert len(units) == 1 and isinstance(units[0], Batch)    # one program, as far as the spec says
    from rnngraph.spec import parse_spec
    from rnngraph.training.experiment import Experiment
    from rnngraph.training.replicas import batch_problem
    made = [Experiment(parse_spec(job.spec_text, path=job.spec_path)) for job in jobs]
    assert "different lengths" in batch_problem(made)
    together = execute_batch(units[0].jobs)
    for job, result in zip(jobs, together):
        alone = execute_run(job)
        assert result.run_id == job.run_id and result.status == alone.status
        assert {k: v for k, v in result.metrics.items() if k != "seconds"} == \
            {k: v for k, v in alone.metrics.items() if k != "seconds"}


def test_a_batch_left_part_done_is_trained_again_whole_and_only_its_missing_runs_written(tmp_path):
    """Ctrl-C while a batch's runs were being published: the next sweep trains that batch again (as
    a smaller batch, elman_temporal_xor's float32 runs differ in their last bits) and writes only the
    runs it lacked."""
    import shutil
    import subprocess
    import sys
    out = tmp_path / "s"
    command = [sys.executable, "-m", "rnngraph.cli", "sweep", str(SPECS / "elman_temporal_xor.yaml"),
               "--seeds", "4", "--epochs", "1", "--workers", "1", "--out", str(out), "--quiet"]
    r = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    whole = without_seconds(read_csv(out / "sweep.csv"))
    kept = out / "seed-0" / "metrics.json"
    stamp = kept.stat().st_mtime_ns
    shutil.rmtree(out / "seed-3")
    r = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "3 of 4 runs already in" in r.stderr
    assert without_seconds(read_csv(out / "sweep.csv")) == whole
    assert kept.stat().st_mtime_ns == stamp
