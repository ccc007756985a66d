"""Batched replicas for local sweeps: the runs of a sweep that differ only in
seed and in per-replica options (``training.replicas.PER_REPLICA_TRAIN``,
edge initialisers, ``expect:``) are one program, trained together as
replicas in one worker process (docs/sweeps.md, "Batched replicas").

``plan_units(jobs)`` groups the jobs: ``Batch``es of the runs of each
program that batches (a lone run is a batch of one) and the others alone.
``execute_unit`` carries out either and returns a list of
``RunResult``s, each the same as ``sweep_job.execute_run`` would return for
its job (to rounding; ``seconds`` is the batch's wall time shared out).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .sweep_job import RunJob, RunResult, execute_run, run_result

# the most runs in one batch: enough to amortise a step's Python work over the replicas, few enough
# that a 32-seed sweep is a batch for each of two cores
REPLICAS_PER_BATCH = 16


@dataclass(frozen=True)
class Batch:
    """Runs of one program, trained together."""

    jobs: tuple

    @property
    def run_id(self) -> str:
        return "+".join(job.run_id for job in self.jobs)


def program_key(spec_text: str, spec_path: str, verdicts: dict | None = None) -> str | None:
    """What runs of one program share: the spec without its seed and per-replica
    options, as text; None for a spec whose runs do not batch (another method
    than BPTT, teacher forcing, or what ``engine.replicas.unsupported`` names).
    ``verdicts`` (key -> whether it batches) spares building the network again
    for another run of the same program."""
    import json

    import yaml

    from ..engine.network import build
    from ..engine.replicas import unsupported
    from ..spec import parse_spec
    from ..training.replicas import PER_REPLICA_TRAIN
    data = yaml.safe_load(spec_text)
    for key in ("seed", "expect", "description"):
        data.pop(key, None)
    train = data.get("train") or {}
    for key in PER_REPLICA_TRAIN:
        if key == "optimizer" and isinstance(train.get(key), dict):
            train[key] = {k: v for k, v in train[key].items() if k in ("name", "nesterov")}
        else:
            train.pop(key, None)
    for edge in data.get("edges") or []:
        if isinstance(edge, dict):
            edge.pop("init", None)
    key = json.dumps(data, sort_keys=True, default=str)
    verdicts = {} if verdicts is None else verdicts
    if key not in verdicts:
        spec = parse_spec(spec_text, path=spec_path)
        verdicts[key] = not (spec.train.get("method", "bptt") != "bptt" or spec.train.get("teacher_forcing")
                             or (spec.task is not None and spec.task.get("generator") == "patterns")  # Hopfield
                             or unsupported(build(spec)) is not None)
    return key if verdicts[key] else None


def plan_units(jobs: list) -> list:
    """``jobs`` (a whole sweep's, in its order) as units of work: ``Batch``es
    of the runs that share a program (``program_key``), each group cut into
    near-equal batches of at most REPLICAS_PER_BATCH, and every job whose
    program does not batch alone.

    A replica's last bits can depend on which runs share its batch (float32
    reductions are ordered by the stacked arrays' shape), so a run's batch is
    decided by the sweep alone: not by the workers, the cluster, or which
    runs an interrupted sweep left to do."""
    groups: dict = {}
    keys: dict = {}
    verdicts: dict = {}
    for job in jobs:
        if job.spec_text not in keys:
            try:
                keys[job.spec_text] = program_key(job.spec_text, job.spec_path, verdicts)
            except Exception:   # noqa: BLE001 - a spec that does not build runs alone, and says why there
                keys[job.spec_text] = None
        key = keys[job.spec_text]
        groups.setdefault(job.run_id if key is None else key, []).append(job)
    units = []
    for key, group in groups.items():
        if keys[group[0].spec_text] is None:   # a run that does not batch
            units.append(group[0])
            continue
        count = math.ceil(len(group) / REPLICAS_PER_BATCH)
        sizes = [len(group) // count + (i < len(group) % count) for i in range(count)]
        cuts = [sum(sizes[:i]) for i in range(count + 1)]
        units += [Batch(tuple(group[a:b])) for a, b in zip(cuts, cuts[1:])]
    return units


def execute_unit(unit) -> list:
    """Carry out a ``RunJob`` or a ``Batch``; a list of their ``RunResult``s."""
    if isinstance(unit, RunJob):
        return [execute_run(unit)]
    return execute_batch(unit.jobs)


def execute_batch(jobs) -> list:
    """Train ``jobs`` together as replicas (``training.replicas``) and return
    each one's RunResult.  A run whose spec or data cannot be made is an
    ``error`` result, as alone; runs that turn out not to be replicas of one
    program (``batch_problem``: their data differ in shape) run one after
    another, each exactly as alone."""
    from .run import EXIT_FAILED
    from ..spec import parse_spec
    from ..training.experiment import Experiment
    from ..training.replicas import batch_problem, train_together

    started, start = time.time(), time.perf_counter()
    results: dict = {}
    made = []
    for job in jobs:
        try:
            spec = parse_spec(job.spec_text, path=job.spec_path)
            made.append((job, spec, Experiment(spec)))
        except Exception as exc:   # noqa: BLE001 - any failure is this run's result; the others go on
            results[job.run_id] = RunResult(job.run_id, "error", EXIT_FAILED, 0.0,
                                            message=f"{type(exc).__name__}: {exc}")
    if not made or batch_problem([e for _, _, e in made]) is not None:
        for job, _, _ in made:
            results[job.run_id] = execute_run(job)
        return [results[job.run_id] for job in jobs]
    failures = train_together([e.trainer for _, _, e in made])
    share = (time.perf_counter() - start) / len(made)
    for (job, spec, experiment), failure in zip(made, failures):
        begun = time.perf_counter()
        experiment.seconds += share
        try:
            outcome = experiment.run(trained=True, failure=failure)
            results[job.run_id] = run_result(job, spec, experiment, outcome, started,
                                             share + time.perf_counter() - begun)
        except Exception as exc:   # noqa: BLE001 - this run's result; the batch's others are not lost
            results[job.run_id] = RunResult(job.run_id, "error", EXIT_FAILED, share,
                                            message=f"{type(exc).__name__}: {exc}")
    return [results[job.run_id] for job in jobs]
