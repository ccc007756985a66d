"""Many runs of one spec: the product of a grid of overrides and a list of
seeds (``rnngraph sweep``, SPEC.md section 6.4).

A sweep is a list of ``RunJob``s (``plan_sweep``).  ``sweep_job.execute_run``
carries one out wherever it is called (this process, a local worker process, a
Dask worker) and returns a ``RunResult`` that holds the run's folder as bytes, the
files ``rnngraph run`` writes; ``sweep_batch`` carries out batches of them.  The process that drives the sweep writes every
folder (``write_run``), so workers need no shared file system.  The runners
(``run_local``, ``run_dask``) only decide where jobs execute; a run's results
do not depend on it.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ..errors import DataError, SpecError
from .sweep_job import RunJob, RunResult, execute_run, result_from_files


# --------------------------------------------------------------------------- planning

def split_values(text: str) -> list[str]:
    """``"0.1,0.01"`` -> ``["0.1", "0.01"]``; commas inside ``[]``, ``{}`` or
    quotes do not split (``"[1,2],[3,4]"`` is two values)."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["train.optimizer.lr=0.1,0.01"]`` -> ``[("train.optimizer.lr", ["0.1", "0.01"])]``.

    Raises SpecError, naming the ``--grid`` argument, for one that is not
    ``KEY=V1,V2,...``, has an empty value, or repeats a key."""
    grid, seen = [], set()
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        label = "--grid " + (item if len(item) <= 60 else item[:57] + "...")
        if not sep or not key:
            raise SpecError("expected KEY=V1,V2,..., such as train.optimizer.lr=0.1,0.01", path=label)
        values = split_values(text)
        if any(not v for v in values):
            raise SpecError(f"an empty value in {text!r}; give the values separated by commas", path=label)
        if key in seen:
            raise SpecError(f"{key} is given twice; give all its values in one --grid", path=label)
        seen.add(key)
        grid.append((key, values))
    return grid


def plan_sweep(spec_path: str, grid: list[tuple[str, list[str]]], seeds: list[int] | None,
               sets: list[str] = (), epochs: int | None = None) -> list[RunJob]:
    """The runs of a sweep, grid points in ``--grid`` order (the last key
    varying fastest), each with every seed (``None``: the spec's own seed).

    Every grid point is validated here, before anything runs: a key the spec
    format does not have, or a value it refuses, is a SpecError that names the
    ``--grid`` argument (with the nearest key, as ``--set`` does)."""
    from .run import parse_sets, resolved_spec_text
    from ..spec import load_spec
    base = parse_sets(list(sets))
    if epochs is not None:
        base["train.epochs"] = epochs
    if seeds is not None and any(key == "seed" for key, _ in grid):
        raise SpecError("seed is varied by --seeds; give either --seeds or --grid seed=...",
                        path="--grid seed")
    parsed = [(key, [(text, parse_sets([f"{key}={text}"], flag="--grid")) for text in values])
              for key, values in grid]
    _check_nodes_exist(spec_path, [(key, values[0]) for key, values in grid], list(base))
    jobs = []
    names = _run_names([key for key, _ in grid])
    used: set = set()
    for combo in itertools.product(*[values for _, values in parsed]):
        overrides = _merged(base, *[one for _, one in combo])
        point = tuple((key, text) for (key, _), (text, _) in zip(parsed, combo))
        try:
            spec = load_spec(spec_path, overrides=overrides)
        except SpecError as exc:
            raise _at_grid(exc, point) from None
        if spec.task is None:       # `run` refuses it too: refuse before any run starts
            raise SpecError("the spec has no `task:` (a generator or a data file), so there is nothing to "
                            "train or evaluate on", path=spec_path)
        for seed in (seeds if seeds is not None else [None]):
            run_overrides = _merged(overrides)
            if seed is not None:
                run_overrides["seed"] = seed
            spec_text = resolved_spec_text(spec_path, run_overrides, spec)
            seed = spec.seed if seed is None else seed
            run_id = _unique(_run_id(names, point, seed), used)
            command = ["run", spec_path]
            for item in sets:
                command += ["--set", item]
            if epochs is not None:
                command += ["--epochs", str(epochs)]
            for key, text in point:
                command += ["--set", f"{key}={text}"]
            command += ["--seed", str(seed)]
            jobs.append(RunJob(run_id, point, seed, spec_text, spec_path, tuple(command)))
    return jobs


def _check_nodes_exist(spec_path: str, grid: list[tuple[str, str]], set_keys: list[str]) -> None:
    """A grid key under ``nodes.<name>`` must name a node the spec has: an
    override would otherwise add a new, unconnected node (a valid spec) and
    the sweep would vary nothing.  SpecError at the ``--grid`` argument, with
    the nearest node name."""
    from ..errors import suggest
    from ..spec.source import load_yaml
    keys = [key for key, _ in grid if key.startswith("nodes.") and key.count(".") >= 2]
    if not keys:
        return
    try:
        with open(spec_path, encoding="utf-8") as fh:
            data, _ = load_yaml(fh.read(), spec_path)
    except (OSError, UnicodeDecodeError, SpecError):
        return   # load_spec says what is wrong with the file
    nodes = data.get("nodes") if isinstance(data, dict) else None
    names = list(nodes) if isinstance(nodes, dict) else []
    names += [k.split(".")[1] for k in set_keys if k.startswith("nodes.") and k.count(".") >= 1]
    for key, text in grid:
        if key in keys and key.split(".")[1] not in names:
            name = key.split(".")[1]
            raise SpecError(f"the spec has no node {name!r}{suggest(name, names)}",
                            path=f"--grid {key}={text}", where=f"nodes.{name}")


def _at_grid(exc: SpecError, point: tuple) -> SpecError:
    """A spec error about a key the grid sets (``train.optimzer`` for
    ``--grid train.optimzer.lr=...``, which the validator finds in the spec's
    ``train:`` mapping) is reported at that ``--grid`` argument."""
    for key, text in point:
        if exc.where and (key == exc.where or key.startswith(exc.where + ".")) and \
                not str(exc.path or "").startswith("--"):
            return SpecError(exc.what, path=f"--grid {key}={text}", where=exc.where)
    return exc


def _merged(*parts):
    """One ``Overrides`` holding each of ``parts`` in turn (later ones win)."""
    from ..spec.source import Overrides
    out = Overrides()
    for part in parts:
        out.update(part)
        out.sources.update(getattr(part, "sources", {}))
    return out


def _run_names(keys: list[str]) -> dict:
    """Each grid key's name in run ids: its last part, or the whole key where
    two keys share their last part."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last)}


def _run_id(names: dict, point: tuple, seed: int) -> str:
    from .run import safe_name
    parts = [f"{names[key]}-{text}" for key, text in point] + [f"seed-{seed}"]
    return safe_name("_".join(parts))


def _unique(run_id: str, used: set) -> str:
    candidate, i = run_id, 2
    while candidate in used:
        candidate, i = f"{run_id}-{i}", i + 1
    used.add(candidate)
    return candidate


# --------------------------------------------------------------------------- the whole sweep

@dataclass
class SweepOutcome:
    """A sweep's runs and how it ended: ``results`` maps run id -> RunResult
    for every finished run (``skipped`` of them found in the folder)."""

    out_dir: str
    jobs: list
    results: dict
    skipped: int = 0
    interrupted: bool = False
    files: list = field(default_factory=list)    # the tables and plots written

    @property
    def failed(self) -> list:
        return [self.results[j.run_id] for j in self.jobs
                if j.run_id in self.results and self.results[j.run_id].status in ("failed", "error")]

    @property
    def exit_status(self) -> int:
        """130 interrupted, 1 when a run failed (diverged or raised), else 0."""
        return 130 if self.interrupted else 1 if self.failed else 0


def run_sweep(spec: str, grid=None, seeds: int | None = None, out: str | None = None, *, sets=(),
              epochs: int | None = None, workers: int | None = None, cluster: str | None = None,
              batch: bool = True, on_start=None, on_result=None) -> SweepOutcome:
    """``rnngraph sweep`` from Python: run every grid point with every seed
    and write the sweep's folder (docs/sweeps.md).

    Parameters
    ----------
    spec : path of the spec file
    grid : ``{"train.optimizer.lr": [0.1, 0.01], ...}``, or ``--grid`` strings
        (``["train.optimizer.lr=0.1,0.01"]``)
    seeds : run seeds ``0 .. seeds-1``; None: the spec's seed
    out : the sweep's folder (None: a new ``sweeps/<name>``)
    sets, epochs : ``--set`` strings and ``train.epochs`` for every run
    workers : local worker processes (default: the number of cores)
    cluster : a Dask scheduler's address, ``tcp://HOST:PORT``, instead of local processes
    batch : local runs of one program train together as replicas (``sweep_batch``);
        False: every run in a process of its own (``--no-batch``)
    on_start : ``on_start(pending, finished)`` once the runs to do are known
    on_result : ``on_result(RunResult)`` after each run's folder is written

    Ctrl-C (KeyboardInterrupt) stops it: the outcome says ``interrupted``, and
    the same call again continues.  Raises SpecError for a bad grid or spec,
    DataError for a folder that cannot be used or an unreachable scheduler.
    """
    if isinstance(grid, dict):
        grid = [f"{key}={','.join(_value_text(v) for v in values)}" for key, values in grid.items()]
    jobs = plan_sweep(spec, parse_grid(list(grid or [])), None if seeds is None else list(range(seeds)),
                      sets=list(sets), epochs=epochs)
    client = connect_dask(cluster) if cluster is not None else None
    try:
        out_dir = prepare_folder(out, jobs, {"spec": spec, "grid": list(grid or []), "seeds": seeds,
                                             "set": list(sets), "epochs": epochs})
        outcome = SweepOutcome(out_dir, jobs, {})
        for job in jobs:
            done = finished_run(out_dir, job)
            if done is not None:
                outcome.results[job.run_id] = done
        outcome.skipped = len(outcome.results)
        pending = [job for job in jobs if job.run_id not in outcome.results]
        if on_start is not None:
            on_start(pending, outcome.skipped)

        def finished(result):
            if result.run_id in outcome.results:   # a finished run its batch did again
                return
            try:
                write_run(out_dir, result)
            except OSError as exc:
                raise DataError(f"{os.path.join(out_dir, result.run_id)}: cannot write the run's results "
                                f"({exc.strerror or exc})") from None
            outcome.results[result.run_id] = result
            if on_result is not None:
                on_result(result)
        plotting = None
        try:
            units, execute = pending, execute_run
            if batch:
                # batches planned over the whole sweep: a batch with a run left to do is done
                # whole (its finished runs are not written again), so every run's results are
                # the same wherever and whenever it executes
                from .sweep_batch import execute_unit, plan_units
                units = [unit for unit in plan_units(jobs)
                         if any(job.run_id not in outcome.results for job in getattr(unit, "jobs", (unit,)))]
                execute = execute_unit
            if units:   # (not before the planning above, whose Python it would slow)
                from .sweep_report import load_plotting
                plotting = load_plotting()
            if client is not None:
                run_dask(units, client, finished, execute)
            else:
                run_local(units, workers or os.cpu_count() or 1, finished, execute)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            # an interrupted sweep draws no plots, so it does not wait for that import (an
            # interrupt that lands in an import of this thread's can leave it blocked for good)
            if plotting is not None and not outcome.interrupted:
                plotting.join()
    finally:
        if client is not None:
            client.close()
    from .sweep_report import write_plots, write_tables
    outcome.files = write_tables(out_dir, jobs, outcome.results)
    if not outcome.interrupted:
        outcome.files += write_plots(out_dir, jobs, outcome.results)
    return outcome


def _value_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --------------------------------------------------------------------------- the sweep's folder

MARKER = "sweep.json"   # a folder holding it is a sweep's


def prepare_folder(out: str | None, jobs: list, description: dict) -> str:
    """The sweep's folder, checked and marked with ``sweep.json`` (the
    ``description`` and the run ids): ``out``, or a new ``sweeps/<name>``.
    DataError for a folder that holds other files or cannot be written."""
    from .run import safe_name
    from ..io import atomic_write_text
    from ..spec import parse_spec
    if out is None:
        name = safe_name(parse_spec(jobs[0].spec_text, path=jobs[0].spec_path).name)
        for i in range(1, 100_000):
            folder = os.path.join("sweeps", name if i == 1 else f"{name}-{i}")
            if not os.path.lexists(folder):
                break
    else:
        folder = out
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise DataError(f"--out {folder}: exists and is not a folder")
        if os.path.isdir(folder) and os.listdir(folder) and not os.path.exists(os.path.join(folder, MARKER)):
            raise DataError(f"--out {folder}: a folder of other files, not a sweep's; give a new or empty folder "
                            f"(or the folder of the same sweep, to continue it)")
        _check_same_sweep(folder, jobs, description)
    try:
        os.makedirs(folder, exist_ok=True)
        atomic_write_text(os.path.join(folder, MARKER), json.dumps(
            dict(description, runs=[job.run_id for job in jobs]), indent=2) + "\n")
    except OSError as exc:
        raise DataError(f"{folder}: cannot write the sweep's folder ({exc.strerror or exc})") from None
    return folder


def _check_same_sweep(folder: str, jobs: list, description: dict) -> None:
    """DataError, before anything in ``folder`` changes, when it holds a sweep of
    another spec file or a run that this sweep would have to replace."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as fh:
            theirs = json.load(fh).get("spec")
    except FileNotFoundError:
        return
    except (OSError, ValueError, AttributeError):
        raise DataError(f"--out {folder}: its {MARKER} is damaged; choose another --out") from None
    mine = description["spec"]
    same = (os.path.samefile(theirs, mine) if isinstance(theirs, str) and os.path.exists(theirs)
            and os.path.exists(mine) else theirs == mine)
    if not same:
        raise DataError(f"--out {folder}: holds a sweep of {theirs}, not of {mine}; choose another --out")
    for job in jobs:
        finished_run(folder, job)


def finished_run(out_dir: str, job: RunJob) -> RunResult | None:
    """The result of ``job`` already in ``out_dir`` (a previous sweep into the
    same folder), or None when its folder is absent or empty.  DataError when
    the folder holds something else: another run (a different spec.yaml) or
    files that are no run (writing the run would replace them)."""
    folder = os.path.join(out_dir, job.run_id)
    if not os.path.lexists(folder):
        return None
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise DataError(f"{folder}: exists and is not a folder; move it away or choose another --out")
    names = os.listdir(folder)
    if not names:
        return None
    files = {}
    for name in ("metrics.json", "run.json", "spec.yaml"):
        try:
            with open(os.path.join(folder, name), "rb") as fh:
                files[name] = fh.read()
        except OSError:
            raise DataError(f"{folder}: holds files that are not a finished run (no {name}); move them away "
                            f"or choose another --out") from None
    if files["spec.yaml"].decode("utf-8", "replace") != job.spec_text:
        raise DataError(f"{folder}: holds a run of a different spec (its spec.yaml differs from this sweep's "
                        f"run {job.run_id}); choose another --out")
    try:
        return result_from_files(job.run_id, files)
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{folder}: its metrics.json or run.json is damaged; remove the folder to redo the "
                        f"run") from None


def write_run(out_dir: str, result: RunResult) -> None:
    """Publish a run's files as ``out_dir/<run id>/``, whole (``rnngraph.io.publish_dir``).
    A run that raised has no files and leaves no folder."""
    if not result.files:
        return
    import shutil

    from ..io import publish_dir, staging_dir
    target = os.path.join(out_dir, result.run_id)
    staging = staging_dir(target)
    try:
        for name, data in result.files.items():
            with open(os.path.join(staging, name), "wb") as fh:
                fh.write(data)
        publish_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- where runs execute

def _ignore_interrupts() -> None:
    """Worker processes leave Ctrl-C to the sweep, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


ATTEMPTS = 3   # a run whose worker dies this many times is given up (Dask's allowed-failures is alike)


def run_local(jobs: list[RunJob], workers: int, on_result, execute=None) -> None:
    """Run ``jobs`` in ``workers`` local processes; ``on_result(RunResult)``
    is called in this process as each ends.  A worker that dies (killed, out
    of memory) loses nothing: the pool is started again and the runs it had
    are redone, each up to ATTEMPTS times (every run the pool held is
    charged: which one killed it is unknown).  KeyboardInterrupt stops the
    workers at once (their runs are lost, the finished ones kept).
    ``execute`` replaces ``execute_run`` (a module-level function).

    A job may also be a ``sweep_batch.Batch`` of runs trained together: it is
    given to ``execute`` whole, which returns the list of their results
    (``sweep_batch.execute_unit``), and it is redone or given up whole."""
    execute = execute or execute_run
    context = multiprocessing.get_context("forkserver")
    attempts = {job.run_id: 0 for job in jobs}
    pending = list(jobs)
    while pending:
        pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                      initializer=_ignore_interrupts)
        lost = []
        try:
            futures = {pool.submit(execute, job): job for job in pending}
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:   # a worker died: every run not yet returned is lost with the pool
                    attempts[job.run_id] += 1
                    if attempts[job.run_id] < ATTEMPTS:
                        lost.append(job)
                        continue
                    result = _errors(job, f"its worker process died {ATTEMPTS} times (killed, or out of memory)")
                except Exception as exc:   # the job or its result could not be sent between processes
                    result = _errors(job, f"{type(exc).__name__}: {exc}")
                for one in (result if isinstance(result, list) else [result]):
                    on_result(one)
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            # joined, so that no pool thread is left for the interpreter's exit to wake
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        pending = [job for job in jobs if job in lost]


def _errors(unit, message: str) -> list:
    """An ``error`` result for every run of ``unit`` (a RunJob, or a Batch of them)."""
    return [RunResult(job.run_id, "error", 1, 0.0, message=message) for job in getattr(unit, "jobs", (unit,))]


def connect_dask(address: str, timeout: float = 5.0):
    """A ``distributed.Client`` of the scheduler at ``address``.  DataError,
    within about ``timeout`` seconds, when Dask is not installed or the
    scheduler cannot be reached."""
    import re
    if not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d{1,5}|(tcp|tls)://\[[0-9A-Fa-f:]+\]:\d{1,5}", address):
        raise DataError(f"--cluster {address}: expected a scheduler address such as tcp://HOST:PORT "
                        f"(what `dask scheduler` prints)")
    try:
        from distributed import Client
    except ImportError:
        raise DataError("--cluster needs Dask distributed: pip install 'rnngraph[cluster]'") from None
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"--cluster {address}: cannot reach a Dask scheduler there ({reason})") from None


def run_dask(jobs: list, client, on_result, execute=None) -> None:
    """Run ``jobs`` on the Dask cluster of ``client``; each result comes
    back here and ``on_result(RunResult)`` is called in this process.  A worker
    that dies has its runs redone elsewhere (Dask reschedules them).
    KeyboardInterrupt cancels the runs not yet finished.  ``execute`` and
    jobs that are ``Batch``es: as ``run_local``."""
    from distributed import as_completed

    if not jobs:
        return
    execute = execute or execute_run
    futures = {}
    for job in jobs:
        # pure=False: a run is never taken from another client's identical task
        future = client.submit(execute, job, pure=False, key=f"rnngraph-run-{job.run_id}-{os.urandom(6).hex()}")
        futures[future] = job
    try:
        for future in as_completed(list(futures), loop=client.loop):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:   # the scheduler gave up on it (workers kept dying while running it)
                result = _errors(job, f"the cluster could not run it: {exc}")
            for one in (result if isinstance(result, list) else [result]):
                on_result(one)
    except BaseException:
        client.cancel(list(futures))
        raise
