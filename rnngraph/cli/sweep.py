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

import math
import os
import signal

from ..errors import DataError, Interrupted


def register(sub) -> None:
    from . import at_least
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
                   help="train every run on its own; by default local runs that differ only in seed and "
                        "numeric training options train together as replicas of one program")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Run the sweep (``rnngraph.cli.sweep_runs.run_sweep``) with a progress bar; print its summary."""
    from rich.console import Console

    from .sweep_runs import run_sweep
    if args.cluster is not None and args.workers is not None:
        raise DataError("--workers is for local runs; a cluster's workers are started with `dask worker`")
    console, out = Console(stderr=True), Console()
    progress = _Progress(console, enabled=console.is_terminal and not args.quiet)
    # Ctrl-C and SIGTERM stop the sweep as they stop `run`, whatever the disposition the process
    # started with (a parent that ignores SIGINT passes that on, and Python then leaves it ignored)
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = run_sweep(args.spec, args.grid, args.seeds, args.out, sets=args.set, epochs=args.epochs,
                            workers=args.workers, cluster=args.cluster, batch=not args.no_batch,
                            on_start=progress.start,
                            on_result=progress.advance)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        progress.stop()
    return _report(outcome, console, out)


def _interrupt(signum, frame):
    raise Interrupted


class _Progress:
    """A bar over the runs to do, with the best value so far; says first how
    many runs the folder already held."""

    def __init__(self, console, enabled: bool):
        self.console, self.enabled = console, enabled
        self.bar = self.progress = self.best = None

    def start(self, pending, finished: int) -> None:
        if finished:
            self.console.print(f"{finished} of {finished + len(pending)} runs already in the sweep's folder; "
                               f"running the other {len(pending)}")
        self.best = _Best(_best_metric(pending))
        if not self.enabled or not pending:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=self.console)
        self.progress.start()
        self.bar = self.progress.add_task("runs", total=len(pending), best="")

    def advance(self, result) -> None:
        self.best.see(result)
        if self.progress is not None:
            self.progress.update(self.bar, advance=1, best=self.best.text())
        if result.status == "error":
            self.console.print(f"[red]run {result.run_id} failed[/]: {result.message}", soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _best_metric(jobs) -> tuple[str, bool] | None:
    """The metric the progress bar follows and whether lower is better: the
    first ``expect:`` metric with a ``<`` or ``>`` threshold, else the
    evaluation loss (the training loss where there is no evaluation data)."""
    if not jobs:
        return None
    from ..spec import parse_spec, parse_threshold
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
        if not isinstance(value, (int, float)) or math.isnan(value):
            return
        if self.value is None or (value < self.value if lower else value > self.value):
            self.value, self.run = value, result.run_id

    def text(self) -> str:
        return "" if self.value is None else f"best {self.metric[0]} {self.value:.4g} ({self.run})"


def _report(outcome, console, out) -> int:
    from .sweep_report import summary_table
    jobs, results, out_dir = outcome.jobs, outcome.results, outcome.out_dir
    if outcome.interrupted:
        console.print(f"[yellow]interrupted[/]: {len(results)} of {len(jobs)} runs are in {out_dir}; run the same "
                      f"command again to run the others", soft_wrap=True)
        return outcome.exit_status
    failed = outcome.failed
    name = os.path.basename(os.path.normpath(out_dir))
    out.print(summary_table(jobs, results, f"sweep {name}: {len(jobs)} runs, {len(failed)} failed"))
    out.print(f"wrote {len(jobs)} run folders in {out_dir}, " + ", ".join(outcome.files), soft_wrap=True)
    for result in failed:
        console.print(f"[red]{result.run_id}[/]: {result.status}: {result.message}", soft_wrap=True)
    return outcome.exit_status
