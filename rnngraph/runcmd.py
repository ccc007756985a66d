"""``rnngraph run``: train and evaluate a spec, with a progress bar, a summary
table and the result files (SPEC.md section 5).

Ctrl-C or SIGTERM stops after the current step: the epoch in progress is
rolled back, a checkpoint and the metrics so far are written, and
``rnngraph run SPEC --resume DIR`` continues exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import signal

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_sets(items: list[str]) -> dict:
    """``["train.optimizer.lr=0.01"]`` -> ``{"train.optimizer.lr": 0.01}``: values read as
    YAML with the limits of a spec file; each remembers its ``--set`` argument, which
    messages about it name (an ``Overrides``).

    Raises SpecError, naming the argument, for one that is not KEY=VALUE or whose
    value is over those limits."""
    from .errors import SpecError
    from .yamlsource import Overrides, Source, load_value
    out = Overrides()
    for item in items or []:
        key, sep, text = item.partition("=")
        label = "--set " + (item if len(item) <= 60 else item[:57] + "...")
        if not sep or not key.strip():
            raise SpecError("expected KEY=VALUE, such as train.optimizer.lr=0.01", path=label)
        try:
            value, source = load_value(text, label) if text.strip() else ("", Source(path=label))
        except SpecError as exc:   # located at the key set, plus the place inside the value if short
            inner = exc.where if len(exc.where) <= 40 else ""
            raise SpecError(exc.what, path=label, where=key.strip() + ("." if inner[:1].isalnum() else "") + inner
                            ) from None
        out.set(key.strip(), value, source)
    return out


def run_options(args) -> list[str]:
    """The options that change what is computed, as given: recorded in the
    checkpoint so that a resumed run is the same run."""
    options = []
    for item in args.set:
        options += ["--set", item]
    if args.epochs is not None:
        options += ["--epochs", str(args.epochs)]
    if args.seed is not None:
        options += ["--seed", str(args.seed)]
    return options


def _without_epochs(options: list[str]) -> list[str]:
    out = []
    for flag, value in zip(options[::2], options[1::2]):
        if flag != "--epochs":
            out += [flag, value]
    return out


def read_checkpoint(path: str) -> dict:
    """A checkpoint.npz's contents; DataError naming the file when it is
    missing, damaged, or not a checkpoint."""
    import zipfile

    from .errors import DataError
    if not os.path.exists(path):
        raise DataError(f"{path}: no checkpoint to resume from")
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: damaged checkpoint ({exc})") from None
    missing = [k for k in ("epoch", "step", "rng", "history") if k not in state]
    if missing or not any(k.startswith("param::") for k in state):
        raise DataError(f"{path}: not an rnngraph checkpoint (missing {', '.join(missing) or 'parameters'})")
    try:
        json.loads(str(state["rng"]))
        json.loads(str(state["history"]))
    except ValueError:
        raise DataError(f"{path}: damaged checkpoint (its random state or history cannot be read)") from None
    return state


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

    options = run_options(args)
    resume = None
    if args.resume:
        resume = read_checkpoint(os.path.join(args.resume, "checkpoint.npz"))
        recorded = json.loads(str(resume.get("run_options", "[]")))
        if _without_epochs(options) and _without_epochs(options) != _without_epochs(recorded):
            raise DataError(f"{args.resume}: this run was made with {' '.join(recorded) or 'no options'}; "
                            f"resume it with the same --set and --seed (or none, to reuse them)")
        # what was computed stays the same; --epochs may grow, to train for longer
        options = _without_epochs(recorded) + (options[options.index("--epochs"):options.index("--epochs") + 2]
                                               if "--epochs" in options else
                                               recorded[recorded.index("--epochs"):recorded.index("--epochs") + 2]
                                               if "--epochs" in recorded else [])
    overrides = parse_sets([v for k, v in zip(options[::2], options[1::2]) if k == "--set"])
    for flag, key in (("--epochs", "train.epochs"), ("--seed", "seed")):
        if flag in options:
            value = int(options[options.index(flag) + 1])
            if value < 0:
                raise DataError(f"{flag} must be >= 0")
            overrides[key] = value
    spec = load_spec(args.spec, overrides=overrides)
    out_dir = args.out or (args.resume if args.resume else os.path.join("runs", spec.name))
    experiment = Experiment(spec, init=args.init)
    experiment.trainer.run_options = options
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
        files = experiment.write(out_dir, outcome)   # a signal now waits: the results are written first
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    _summary(out, spec, experiment, outcome, files)
    if outcome.status == "interrupted":
        again = shlex.join(["rnngraph", "run", args.spec, "--resume", out_dir])
        console.print(f"[yellow]interrupted[/]: {outcome.message}; checkpoint in {out_dir}. "
                      f"Continue with: {again}", soft_wrap=True)
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
