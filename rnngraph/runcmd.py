"""``rnngraph run``: train and evaluate a spec, with a progress bar, a summary
table and the result files (SPEC.md section 5).

Ctrl-C or SIGTERM stops after the current step: the epoch in progress is
rolled back, a checkpoint and the metrics so far are written, and
``rnngraph run SPEC --resume DIR`` continues exactly where it stopped.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import yaml

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_sets(items: list[str]) -> dict:
    """``["train.optimizer.lr=0.01"]`` -> ``{"train.optimizer.lr": 0.01}`` (values read as YAML scalars)."""
    from .errors import SpecError
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, such as train.optimizer.lr=0.01")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out[key.strip()] = value
    return out


def register(sub) -> None:
    p = sub.add_parser("run", help="train and evaluate a spec; write metrics.json, params.npz, history.csv")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--out", metavar="DIR", help="where to write results (default runs/<spec name>)")
    p.add_argument("--epochs", type=int, metavar="N", help="override train.epochs")
    p.add_argument("--seed", type=int, metavar="S", help="override the spec's seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any spec key, e.g. --set train.optimizer.lr=0.01 (repeatable)")
    p.add_argument("--init", metavar="PARAMS", help="start from these parameters (a params.npz)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run saved in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


class _StopFlag:
    """Set by SIGINT/SIGTERM; a second Ctrl-C stops at once."""

    def __init__(self):
        self.signal = None

    def __call__(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def is_set(self) -> bool:
        return self.signal is not None


def cmd_run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .errors import DataError
    from .experiment import Experiment
    from .spec import load_spec

    overrides = parse_sets(args.set)
    if args.epochs is not None:
        if args.epochs < 0:
            raise DataError("--epochs must be >= 0")
        overrides["train.epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    spec = load_spec(args.spec, overrides=overrides)
    out_dir = args.out or os.path.join("runs", spec.name)
    resume = None
    init = args.init
    if args.resume:
        checkpoint = os.path.join(args.resume, "checkpoint.npz")
        if not os.path.exists(checkpoint):
            raise DataError(f"{args.resume}: no checkpoint.npz to resume from")
        with np.load(checkpoint, allow_pickle=False) as data:
            resume = {k: data[k] for k in data.files}
        init = os.path.join(args.resume, "params.npz")
        if args.out is None:
            out_dir = args.resume
    experiment = Experiment(spec, init=init)
    console = Console(stderr=True)
    out = Console()
    stop = _StopFlag()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    show = console.is_terminal and not args.quiet and not experiment.is_hopfield
    try:
        if show:
            outcome = _run_with_progress(experiment, console, stop, resume)
        else:
            outcome = experiment.run(should_stop=stop.is_set, resume=resume)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    files = experiment.write(out_dir, outcome)
    _summary(out, spec, experiment, outcome, files)
    if outcome.status == "interrupted":
        console.print(f"[yellow]interrupted[/]: {outcome.message}; checkpoint in {out_dir}. "
                      f"Continue with: rnngraph run {args.spec} --resume {out_dir}")
        return EXIT_INTERRUPTED
    if outcome.status == "failed":
        console.print(f"[red]failed[/]: {outcome.message}")
        return EXIT_FAILED
    return EXIT_OK


def _run_with_progress(experiment, console, stop, resume):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    metric_names = list(experiment.spec.expect) or []
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[metric]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        done = int(resume["epoch"]) if resume is not None else 0
        bar = progress.add_task(experiment.spec.name, total=experiment.config.epochs, completed=done,
                                loss="-", metric="")

        def on_epoch(record):
            shown = [f"{m} {record[m]:.4g}" for m in metric_names if m in record]
            update = {"loss": f"{record['train_loss']:.4g}"}
            if shown:
                update["metric"] = "  ".join(shown)
            progress.update(bar, completed=record["epoch"], **update)
        return experiment.run(on_epoch=on_epoch, should_stop=stop.is_set, resume=resume)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _summary(out, spec, experiment, outcome, files) -> None:
    from rich.table import Table
    table = Table(title=f"{spec.name}: {outcome.status}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("expected")
    expected = {m: (t, ok) for m, t, v, ok in outcome.checks}
    for key, value in outcome.metrics.items():
        if key == "status":
            continue
        t, ok = expected.get(key, ("", None))
        mark = "" if ok is None else (" [green]ok[/]" if ok else " [red]missed[/]")
        table.add_row(key, _fmt(value), f"{t}{mark}")
    for m, t, v, ok in outcome.checks:
        if m not in outcome.metrics:
            table.add_row(m, "not computed", f"{t} [red]missed[/]")
    out.print(table)
    for title, header, rows in outcome.report:
        extra = Table(title=title)
        for h in header:
            extra.add_column(h)
        for row in rows:
            extra.add_row(*[_fmt(c) for c in row])
        out.print(extra)
    out.print("wrote " + ", ".join(files))
