"""One run of a sweep: the job a worker is given (``RunJob``), what it sends
back (``RunResult``: the run's folder as bytes, the files ``rnngraph run``
writes), and ``execute_run``, which carries a job out wherever it is called
(this process, a local worker process, a Dask worker).  ``sweep_runs`` plans
and drives the sweep; ``sweep_batch`` carries out batches of jobs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field

# keys of metrics.json that describe the run rather than measure it
NOT_METRICS = ("status", "seconds", "expect", "message")


@dataclass(frozen=True)
class RunJob:
    """One run of a sweep: everything a worker needs, nothing from the disk."""

    run_id: str          # the run's folder name inside the sweep's folder
    point: tuple         # ((key, value text), ...): this run's grid values, in --grid order
    seed: int
    spec_text: str       # the spec with every override applied: the run folder's spec.yaml
    spec_path: str       # the spec file; names the run in messages and in run.json's command
    command: tuple       # the equivalent `rnngraph run` arguments


@dataclass
class RunResult:
    """What one run produced.  ``status``: ``ok``; ``missed`` (it ran, a
    metric missed its ``expect:`` threshold); ``failed`` (it diverged or its
    evaluation failed); ``error`` (it raised: ``message`` says what, and
    ``files`` is empty)."""

    run_id: str
    status: str
    exit_status: int
    seconds: float
    metrics: dict = field(default_factory=dict)
    met_expect: bool | None = None       # None when the spec has no `expect:`
    files: dict = field(default_factory=dict)    # file name -> bytes
    message: str = ""


# --------------------------------------------------------------------------- one run

def execute_run(job: RunJob) -> RunResult:
    """Train and evaluate one run as ``rnngraph run`` does and return its
    files.  Reads nothing but the job (data files named in the spec excepted)
    and writes only a temporary folder, removed before returning."""
    from .run import EXIT_FAILED
    from ..spec import parse_spec
    from ..training.experiment import Experiment

    started, start = time.time(), time.perf_counter()
    try:
        spec = parse_spec(job.spec_text, path=job.spec_path)
        experiment = Experiment(spec)
        outcome = experiment.run()
    except Exception as exc:   # any failure is this run's result; the sweep goes on
        return RunResult(job.run_id, "error", EXIT_FAILED, time.perf_counter() - start,
                         message=f"{type(exc).__name__}: {exc}")
    return run_result(job, spec, experiment, outcome, started, time.perf_counter() - start)


def run_result(job: RunJob, spec, experiment, outcome, started: float, seconds: float) -> RunResult:
    """The RunResult of a run that ended (its files made as ``rnngraph run`` makes them);
    ``started`` its start (epoch seconds), ``seconds`` its wall time."""
    from .run import EXIT_FAILED, EXIT_OK, publish_results, run_record
    code = EXIT_FAILED if outcome.status == "failed" else EXIT_OK
    args = _RunArgs(list(job.command), job.spec_path)
    record = run_record(args, spec, experiment, outcome, started, code)
    record["sweep"] = {"run": job.run_id, "point": dict(job.point), "seed": job.seed}
    record["seconds"] = round(seconds, 3)
    with tempfile.TemporaryDirectory(prefix="rnngraph-sweep-") as tmp:
        folder = os.path.join(tmp, "run")
        publish_results(folder, experiment, outcome, job.spec_text, record)
        files = {}
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as fh:
                files[name] = fh.read()
    return result_from_files(job.run_id, files)


class _RunArgs:
    """The arguments ``cli.run.run_record`` reads, for a run made by a sweep."""

    def __init__(self, argv: list, spec: str):
        self.argv, self.spec, self.init, self.resume = argv, spec, None, None


def result_from_files(run_id: str, files: dict) -> RunResult:
    """A run's result as its metrics.json and run.json say (the same whether
    the run just finished or was read back from the sweep's folder)."""
    metrics = json.loads(files["metrics.json"])
    record = json.loads(files["run.json"])
    expect = metrics.get("expect") or {}
    missed = any(not check.get("ok") for check in expect.values())
    status = metrics.get("status", record.get("status", "ok"))
    if status == "failed":
        status = "missed" if missed else "failed"
    return RunResult(run_id, status, int(record.get("exit_status", 0)), float(record.get("seconds", 0.0)),
                     metrics={k: v for k, v in metrics.items() if k not in NOT_METRICS},
                     met_expect=(not missed) if expect else None, files=files,
                     message=metrics.get("message", ""))
