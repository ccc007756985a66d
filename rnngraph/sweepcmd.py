"""``rnngraph sweep``: one run per grid point and seed, in local worker
processes or on a Dask cluster, with a progress bar over the runs, and the
sweep's tables and plots (docs/sweeps.md).

The sweep's folder (``--out DIR``, or a new ``sweeps/<name>``) holds each run
as ``rnngraph run`` writes it, ``DIR/<run id>/``, published whole as the run
ends, and ``sweep.csv``, ``summary.csv`` and ``plots/`` once the runs are
done.  Running the same sweep into the same folder again skips the runs it
already holds, so a sweep stopped by Ctrl-C is continued by repeating the
command.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from .errors import DataError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MARKER = "sweep.json"   # a folder holding it is a sweep's


def register(sub) -> None:
    from .cli import at_least
    p = sub.add_parser("sweep", help="many runs of a spec: a grid of values times seeds; sweep.csv, summary.csv")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--seeds", type=at_least(1), metavar="N", help="run seeds 0..N-1 (default: the spec's seed)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="vary a spec key over these values, e.g. --grid train.optimizer.lr=0.1,0.01 "
                        "(repeatable: the product of all of them)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key in every run (repeatable)")
    p.add_argument("--epochs", type=at_least(0), metavar="N", help="override train.epochs in every run")
    p.add_argument("--workers", type=at_least(1), metavar="K",
                   help="local worker processes (default: the number of cores)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run on the Dask scheduler at ADDRESS (tcp://HOST:PORT) instead of locally")
    p.add_argument("--out", metavar="DIR", help="the sweep's folder (default: a new sweeps/<spec name>)")
    p.add_argument("--no-batch", action="store_true",
                   help="one process per run (the only way runs execute so far: batching replicas is not built)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Plan the sweep, skip the runs its folder holds, run the rest, write the tables."""
    from rich.console import Console

    from .sweep import finished_run, parse_grid, plan_sweep
    if args.cluster is not None and args.workers is not None:
        raise DataError("--workers is for local runs; a cluster's workers are started with `dask worker`")
    grid = parse_grid(args.grid)
    seeds = list(range(args.seeds)) if args.seeds is not None else None
    jobs = plan_sweep(args.spec, grid, seeds, sets=args.set, epochs=args.epochs)
    client = None
    if args.cluster is not None:
        from .sweep import connect_dask
        client = connect_dask(args.cluster)
    try:
        out_dir = _sweep_folder(args, jobs)
        results = {}
        for job in jobs:
            done = finished_run(out_dir, job)
            if done is not None:
                results[job.run_id] = done
    except BaseException:
        if client is not None:
            client.close()
        raise
    pending = [job for job in jobs if job.run_id not in results]
    console, out = Console(stderr=True), Console()
    if len(results):
        console.print(f"{len(results)} of {len(jobs)} runs already in {out_dir}; running the other {len(pending)}")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        interrupted = _run_all(args, pending, results, out_dir, client, console)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if client is not None:
            client.close()
    return _report(args, jobs, results, out_dir, interrupted, console, out)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_all(args, pending, results, out_dir, client, console) -> bool:
    """Run ``pending``, publishing each run's folder as it ends; True when
    stopped by Ctrl-C or SIGTERM."""
    from .sweep import run_dask, run_local, write_run
    best = _Best(_best_metric(pending))
    show = console.is_terminal and not args.quiet and pending

    def on_result(result):
        try:
            write_run(out_dir, result)
        except OSError as exc:
            raise DataError(f"{os.path.join(out_dir, result.run_id)}: cannot write the run's results "
                            f"({exc.strerror or exc})") from None
        results[result.run_id] = result
        best.see(result)
        if progress is not None:
            progress.update(bar, advance=1, best=best.text())
        if result.status == "error":
            console.print(f"[red]run {result.run_id} failed[/]: {result.message}", soft_wrap=True)

    progress = bar = None
    try:
        if show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=console)
            progress.start()
            bar = progress.add_task("runs", total=len(pending), best="")
        if client is not None:
            run_dask(pending, client, on_result)
        else:
            run_local(pending, args.workers or os.cpu_count() or 1, on_result)
    except KeyboardInterrupt:
        return True
    finally:
        if progress is not None:
            progress.stop()
    return False


def _best_metric(jobs) -> tuple[str, bool] | None:
    """The metric the progress bar follows and whether lower is better: the
    first ``expect:`` metric with a ``<`` or ``>`` threshold, else the
    evaluation loss (the training loss where there is no evaluation data)."""
    if not jobs:
        return None
    from .spec import parse_spec, parse_threshold
    spec = parse_spec(jobs[0].spec_text, path=jobs[0].spec_path)
    for name, text in spec.expect.items():
        threshold = parse_threshold(text)
        if threshold and threshold[0] != "==":
            return name, threshold[0].startswith("<")
    return "eval_loss", True


class _Best:
    """The best value of one metric over the runs seen so far."""

    def __init__(self, metric):
        self.metric = metric
        self.value = self.run = None

    def see(self, result) -> None:
        if self.metric is None:
            return
        name, lower = self.metric
        value = result.metrics.get(name, result.metrics.get("train_loss") if name == "eval_loss" else None)
        if not isinstance(value, (int, float)) or value != value:
            return
        if self.value is None or (value < self.value if lower else value > self.value):
            self.value, self.run = value, result.run_id

    def text(self) -> str:
        return "" if self.value is None else f"best {self.metric[0]} {self.value:.4g} ({self.run})"


def _sweep_folder(args, jobs) -> str:
    """The sweep's folder, checked and marked (``sweep.json``): ``--out``, or
    a new ``sweeps/<name>``.  DataError for a folder that holds other files."""
    from .io import atomic_write_text
    from .runcmd import safe_name
    from .spec import parse_spec
    if args.out is None:
        name = safe_name(parse_spec(jobs[0].spec_text, path=jobs[0].spec_path).name)
        for i in range(1, 100_000):
            folder = os.path.join("sweeps", name if i == 1 else f"{name}-{i}")
            if not os.path.lexists(folder):
                break
    else:
        folder = args.out
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise DataError(f"--out {folder}: exists and is not a folder")
        if os.path.isdir(folder) and os.listdir(folder) and not os.path.exists(os.path.join(folder, MARKER)):
            raise DataError(f"--out {folder}: a folder of other files, not a sweep's; give a new or empty folder "
                            f"(or the folder of the same sweep, to continue it)")
    try:
        os.makedirs(folder, exist_ok=True)
        atomic_write_text(os.path.join(folder, MARKER), json.dumps(
            {"spec": args.spec, "grid": args.grid, "seeds": args.seeds, "set": args.set, "epochs": args.epochs,
             "runs": [job.run_id for job in jobs]}, indent=2) + "\n")
    except OSError as exc:
        raise DataError(f"{folder}: cannot write the sweep's folder ({exc.strerror or exc})") from None
    return folder


def _report(args, jobs, results, out_dir, interrupted, console, out) -> int:
    from .sweepreport import summary_table, write_plots, write_tables
    files = write_tables(out_dir, jobs, results)
    if interrupted:
        console.print(f"[yellow]interrupted[/]: {len(results)} of {len(jobs)} runs are in {out_dir}; run the same "
                      f"command again to run the others", soft_wrap=True)
        return EXIT_INTERRUPTED
    files += write_plots(out_dir, jobs, results)
    failed = [r for r in results.values() if r.status in ("failed", "error")]
    name = os.path.basename(os.path.normpath(out_dir))
    out.print(summary_table(jobs, results, f"sweep {name}: {len(jobs)} runs, {len(failed)} failed"))
    out.print(f"wrote {len(jobs)} run folders in {out_dir}, " + ", ".join(files), soft_wrap=True)
    for result in failed:
        console.print(f"[red]{result.run_id}[/]: {result.status}: {result.message}", soft_wrap=True)
    return EXIT_FAILED if failed else EXIT_OK
