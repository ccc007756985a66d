"""``rnngraph sweep`` on one machine (SPEC.md 6.4).

* The runs are the product of ``--grid`` values and ``--seeds``; each run's
  folder is what ``rnngraph run`` writes for the same options, metrics
  bit for bit.
* ``sweep.csv`` has one row per run, ``summary.csv`` one per grid point,
  with the mean, std, min and max of each metric over its seeds and the
  fraction of runs that met ``expect:``.
* Exit 0 when every run ran (a missed ``expect:`` included), 1 when a run
  failed (diverged), 2 for bad usage: a grid key the spec format does not
  have is named with the nearest key.
* A second sweep into the same folder skips the finished runs and writes the
  same sweep.csv; Ctrl-C stops a sweep, and repeating the command finishes it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnngraph.cli import main
from rnngraph.cli.sweep_runs import parse_grid, plan_sweep, split_values

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
LINEAR = str(SPECS / "linear_regression.yaml")
XOR = str(SPECS / "elman_temporal_xor.yaml")


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


# --------------------------------------------------------------------------- planning

def test_split_values_keeps_lists_and_quoted_commas_whole():
    assert split_values("0.1, 0.01") == ["0.1", "0.01"]
    assert split_values("[1,2],[3,4]") == ["[1,2]", "[3,4]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_plan_is_the_product_of_grid_and_seeds_with_readable_run_ids():
    grid = parse_grid(["train.optimizer.lr=0.1,0.01", "train.batch_size=4,8"])
    jobs = plan_sweep(LINEAR, grid, [0, 1])
    assert len(jobs) == 8
    assert [j.run_id for j in jobs[:3]] == ["lr-0.1_batch_size-4_seed-0", "lr-0.1_batch_size-4_seed-1",
                                            "lr-0.1_batch_size-8_seed-0"]
    assert len({j.run_id for j in jobs}) == 8
    job = jobs[3]
    assert job.point == (("train.optimizer.lr", "0.1"), ("train.batch_size", "8")) and job.seed == 1
    assert "lr: 0.1" in job.spec_text and "batch_size: 8" in job.spec_text and "seed: 1" in job.spec_text
    assert job.command[-6:] == ("--set", "train.optimizer.lr=0.1", "--set", "train.batch_size=8", "--seed", "1")


def test_plan_without_seeds_uses_the_spec_seed():
    jobs = plan_sweep(LINEAR, [], None)
    assert [(j.run_id, j.seed) for j in jobs] == [("seed-0", 0)]


@pytest.mark.parametrize("grid, needle", [
    (["train.optimizer.lrr=0.1,0.2"], "did you mean 'lr'"),
    (["train.optimzer.lr=0.1,0.2"], "--grid train.optimzer.lr=0.1: train.optimzer: unknown train key 'optimzer' "
                                     "(did you mean 'optimizer'?)"),
    (["nodes.yy.size=2,3"], "--grid nodes.yy.size=2: nodes.yy: the spec has no node 'yy' (did you mean 'y'?)"),
    (["train.optimizer.lr=0.1,abc"], "--grid train.optimizer.lr=abc"),
    (["lr"], "expected KEY=V1,V2"),
    (["train.optimizer.lr=0.1,,0.2"], "empty value"),
    (["train.optimizer.lr=0.1", "train.optimizer.lr=0.2"], "given twice"),
])
def test_bad_grid_is_usage_error_naming_the_key(tmp_path, capsys, grid, needle):
    args = ["sweep", LINEAR, "--out", str(tmp_path / "s"), "--quiet"]
    for g in grid:
        args += ["--grid", g]
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert needle in err and "Traceback" not in err, err
    assert not (tmp_path / "s").exists()


def test_seed_on_the_grid_and_seeds_together_is_refused(tmp_path, capsys):
    assert main(["sweep", LINEAR, "--seeds", "2", "--grid", "seed=1,2", "--out", str(tmp_path / "s")]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_cluster_address_must_be_a_scheduler_address(tmp_path, capsys):
    assert main(["sweep", LINEAR, "--cluster", "localhost", "--out", str(tmp_path / "s")]) == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err


# --------------------------------------------------------------------------- a local sweep

@pytest.fixture(scope="module")
def xor_sweep(tmp_path_factory):
    """elman_temporal_xor, 2 learning rates x 2 seeds, 2 epochs, 2 worker processes, each run alone
    (batched replicas equal their runs to rounding only: tests/test_sweep_batch.py)."""
    out = tmp_path_factory.mktemp("sweep") / "xor"
    code = main(["sweep", XOR, "--grid", "train.optimizer.lr=0.01,0.05", "--seeds", "2", "--epochs", "2",
                 "--workers", "2", "--out", str(out), "--quiet", "--no-batch"])
    return out, code


def test_sweep_writes_one_run_folder_per_run_and_exits_0_though_expect_is_missed(xor_sweep):
    out, code = xor_sweep
    assert code == 0
    runs = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "plots")
    assert runs == ["lr-0.01_seed-0", "lr-0.01_seed-1", "lr-0.05_seed-0", "lr-0.05_seed-1"]
    for name in runs:
        assert {"metrics.json", "params.npz", "history.csv", "spec.yaml", "run.json"} <= set(os.listdir(out / name))
    rows = read_csv(out / "sweep.csv")
    assert list(rows[0])[:3] == ["run", "train.optimizer.lr", "seed"]
    assert list(rows[0])[-3:] == ["status", "exit_status", "seconds"]
    assert "third_bit_error" in rows[0] and "eval_loss" in rows[0]
    assert [(r["train.optimizer.lr"], r["seed"]) for r in rows] == [("0.01", "0"), ("0.01", "1"), ("0.05", "0"),
                                                                     ("0.05", "1")]
    assert {r["status"] for r in rows} == {"missed"} and {r["exit_status"] for r in rows} == {"1"}
    record = json.loads((out / "lr-0.05_seed-1" / "run.json").read_text())
    assert record["command"][1:] == ["run", XOR, "--epochs", "2", "--set", "train.optimizer.lr=0.05", "--seed", "1"]


def test_each_run_equals_rnngraph_run_with_the_same_options(xor_sweep, tmp_path):
    out, _ = xor_sweep
    single = tmp_path / "single"
    assert main(["run", XOR, "--epochs", "2", "--set", "train.optimizer.lr=0.05", "--seed", "1",
                 "--out", str(single), "--quiet"]) == 1    # 1: third_bit_error misses expect after 2 epochs
    mine = json.loads((out / "lr-0.05_seed-1" / "metrics.json").read_text())
    theirs = json.loads((single / "metrics.json").read_text())
    mine.pop("seconds"), theirs.pop("seconds")
    assert mine == theirs
    assert (out / "lr-0.05_seed-1" / "spec.yaml").read_text() == (single / "spec.yaml").read_text()
    row = next(r for r in read_csv(out / "sweep.csv") if r["run"] == "lr-0.05_seed-1")
    assert float(row["eval_loss"]) == theirs["eval_loss"] and float(row["third_bit_error"]) == theirs["third_bit_error"]


def test_summary_has_mean_std_min_max_per_point_and_the_expect_fraction(xor_sweep):
    out, _ = xor_sweep
    rows = read_csv(out / "sweep.csv")
    summary = read_csv(out / "summary.csv")
    assert [s["train.optimizer.lr"] for s in summary] == ["0.01", "0.05"]
    for s in summary:
        values = [float(r["eval_loss"]) for r in rows if r["train.optimizer.lr"] == s["train.optimizer.lr"]]
        mean = sum(values) / 2
        assert float(s["eval_loss_mean"]) == pytest.approx(mean, rel=1e-15)
        assert float(s["eval_loss_std"]) == pytest.approx(abs(values[0] - values[1]) / 2, rel=1e-12)
        assert float(s["eval_loss_min"]) == min(values) and float(s["eval_loss_max"]) == max(values)
        assert s["runs"] == "2" and float(s["met_expect"]) == 0.0
    assert (out / "plots" / "eval_loss-vs-train.optimizer.lr.png").stat().st_size > 1000
    assert (out / "plots" / "loss.png").stat().st_size > 1000


def test_rerun_into_the_same_folder_skips_finished_runs(xor_sweep, capsys):
    out, _ = xor_sweep
    before = {p.name: p.stat().st_ino for p in out.iterdir() if p.is_dir()}
    table = (out / "sweep.csv").read_text()
    code = main(["sweep", XOR, "--grid", "train.optimizer.lr=0.01,0.05", "--seeds", "2", "--epochs", "2",
                 "--out", str(out), "--quiet", "--no-batch"])
    assert code == 0
    assert "4 of 4 runs already in the sweep's folder" in capsys.readouterr().err
    assert {p.name: p.stat().st_ino for p in out.iterdir() if p.is_dir()} == before
    assert (out / "sweep.csv").read_text() == table


def test_a_run_folder_of_another_spec_is_refused(xor_sweep, tmp_path, capsys):
    out, _ = xor_sweep
    marker = (out / "sweep.json").read_text()
    code = main(["sweep", XOR, "--grid", "train.optimizer.lr=0.01,0.05", "--seeds", "2", "--epochs", "3",
                 "--out", str(out), "--quiet"])
    assert code == 2
    assert "holds a run of a different spec" in capsys.readouterr().err
    assert (out / "sweep.json").read_text() == marker      # a refused sweep leaves the folder as it was


def test_a_sweep_of_another_spec_into_a_sweeps_folder_is_refused(xor_sweep, capsys):
    out, _ = xor_sweep
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert main(["sweep", LINEAR, "--epochs", "1", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "elman_temporal_xor.yaml" in err and "choose another --out" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == runs


def test_a_spec_without_task_is_refused_before_any_run(tmp_path, capsys):
    spec = tmp_path / "notask.yaml"
    spec.write_text("rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  y: {role: output, size: 1}\n"
                    "edges:\n  - {from: x, to: y}\n")
    assert main(["sweep", str(spec), "--seeds", "2", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "notask.yaml" in err and "no `task:`" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_a_folder_of_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["sweep", LINEAR, "--out", str(tmp_path), "--quiet"]) == 2
    assert "not a sweep's" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["mine.txt"]


def test_a_diverging_run_makes_the_sweep_exit_1(tmp_path, capsys):
    out = tmp_path / "s"
    code = main(["sweep", LINEAR, "--grid", "train.optimizer.lr=0.01,1e9", "--epochs", "2", "--set", "expect={}",
                 "--workers", "2", "--out", str(out), "--quiet"])
    assert code == 1
    rows = read_csv(out / "sweep.csv")
    assert [(r["train.optimizer.lr"], r["status"], r["exit_status"]) for r in rows] == [
        ("0.01", "ok", "0"), ("1e9", "failed", "1")]
    assert "diverged" in " ".join(capsys.readouterr().err.split())


def test_python_api_runs_the_same_sweep(tmp_path):
    import rnngraph as rg
    seen = []
    outcome = rg.run_sweep(LINEAR, {"train.optimizer.lr": [0.01, 0.02]}, seeds=2, out=str(tmp_path / "api"),
                           sets=["expect={}"], epochs=2, workers=2, on_result=lambda r: seen.append(r.run_id))
    assert outcome.exit_status == 0 and not outcome.interrupted and outcome.skipped == 0
    assert sorted(seen) == sorted(outcome.results) == ["lr-0.01_seed-0", "lr-0.01_seed-1", "lr-0.02_seed-0",
                                                        "lr-0.02_seed-1"]
    assert {r.status for r in outcome.results.values()} == {"ok"}
    rows = read_csv(tmp_path / "api" / "sweep.csv")
    assert [r["train.optimizer.lr"] for r in rows] == ["0.01", "0.01", "0.02", "0.02"]
    again = rg.run_sweep(LINEAR, ["train.optimizer.lr=0.01,0.02"], seeds=2, out=str(tmp_path / "api"),
                         sets=["expect={}"], epochs=2)
    assert again.skipped == 4 and again.exit_status == 0
    assert (tmp_path / "api" / "sweep.csv").read_text().splitlines()[1:] == \
        [",".join(r.values()) for r in rows]


def test_a_sweep_started_beside_another_rnngraph_trains_with_its_own(tmp_path):
    """Local workers are forked from multiprocessing's fork server, which runs
    with its working directory first on its path: the console script, started in
    a folder that holds another ``rnngraph`` package, must still train with its
    own (the other one here would crash any process that imports it)."""
    script = Path(sys.executable).with_name("rnngraph")
    assert script.exists(), "the console script is installed with the package"
    (tmp_path / "rnngraph").mkdir()
    (tmp_path / "rnngraph" / "__init__.py").write_text("raise RuntimeError('the other rnngraph')\n")
    r = subprocess.run([str(script), "sweep", LINEAR, "--seeds", "2", "--epochs", "1", "--set", "expect={}",
                        "--out", str(tmp_path / "out"), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert [row["status"] for row in read_csv(tmp_path / "out" / "sweep.csv")] == ["ok", "ok"]


# --------------------------------------------------------------------------- Ctrl-C, then the same command again

def _sweep_command(out, *extra):
    """Each run alone: a run is published as it ends (a batch is published whole: test_sweep_batch.py)."""
    return [sys.executable, "-m", "rnngraph.cli", "sweep", XOR, "--seeds", "6", "--epochs", "2",
            "--out", str(out), "--quiet", "--no-batch", *extra]


def interrupt_when_a_run_is_done(command, out, timeout=120):
    """Start ``command``, SIGINT it once one run's folder is published; its
    exit status and stderr.  It starts with SIGINT ignored, as a parent that
    ignores it passes on (a test runner's worker may): the sweep must stop anyway."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any((p / "run.json").exists() for p in out.iterdir() if not p.name.startswith(".")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_interrupted_sweep_continues_to_the_same_sweep_csv(tmp_path):
    whole = tmp_path / "whole"
    r = subprocess.run(_sweep_command(whole, "--workers", "2"), capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    part = tmp_path / "part"
    code, err = interrupt_when_a_run_is_done(_sweep_command(part, "--workers", "1"), part)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    finished = [p for p in part.iterdir() if (p / "run.json").exists()]
    assert 1 <= len(finished) < 6
    assert not [p for p in part.iterdir() if p.name.startswith(".")], "a staging folder was left behind"
    r = subprocess.run(_sweep_command(part, "--workers", "2"), capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(finished)} of 6 runs already in" in r.stderr
    assert without_seconds(read_csv(part / "sweep.csv")) == without_seconds(read_csv(whole / "sweep.csv"))


def test_an_interrupted_sweep_does_not_wait_for_the_plotting_import(tmp_path, monkeypatch):
    """matplotlib is imported in a thread while the runs train.  Ctrl-C can land in
    one of this process's own imports and leave that thread blocked for good; an
    interrupted sweep draws no plots, so it must return without waiting for it."""
    import threading

    import rnngraph as rg
    from rnngraph.cli import sweep_report

    def blocked():   # an import that does not end (30 s, so that a regression fails, not hangs)
        thread = threading.Thread(target=threading.Event().wait, args=(30,), daemon=True)
        thread.start()
        return thread

    def interrupt(result):
        raise KeyboardInterrupt
    monkeypatch.setattr(sweep_report, "load_plotting", blocked)
    start = time.monotonic()
    outcome = rg.run_sweep(LINEAR, seeds=2, out=str(tmp_path / "sweep"), sets=["expect={}"], epochs=1, workers=1,
                           batch=False, on_result=interrupt)
    assert outcome.interrupted and len(outcome.results) == 1
    assert time.monotonic() - start < 20


# --------------------------------------------------------------------------- a worker process that dies

def die_once(marker, job):
    """``execute_run``, but the first run to reach it (``marker`` absent) kills its own worker process."""
    import rnngraph.cli.sweep_runs as sweep
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return sweep.execute_run(job)
    os.kill(os.getpid(), signal.SIGKILL)


def die_always(job):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_local_worker_loses_no_run(tmp_path):
    import functools

    from rnngraph.cli.sweep_runs import run_local
    jobs = plan_sweep(LINEAR, [], [0, 1, 2], sets=["expect={}"], epochs=1)
    results = []
    run_local(jobs, 2, results.append, execute=functools.partial(die_once, tmp_path / "died"))
    assert (tmp_path / "died").exists()
    assert sorted(r.run_id for r in results) == ["seed-0", "seed-1", "seed-2"]
    assert {r.status for r in results} == {"ok"}


def test_a_run_that_always_kills_its_worker_is_given_up(tmp_path):
    from rnngraph.cli.sweep_runs import ATTEMPTS, run_local
    jobs = plan_sweep(LINEAR, [], [0], epochs=1)
    results = []
    run_local(jobs, 1, results.append, execute=die_always)
    assert [(r.run_id, r.status) for r in results] == [("seed-0", "error")]
    assert f"died {ATTEMPTS} times" in results[0].message
