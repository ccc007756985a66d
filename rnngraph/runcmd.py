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
    """``["train.optimizer.lr=0.01"]`` -> ``{"train.optimizer.lr": 0.01}`` (values read as YAML scalars)."""
    from .errors import SpecError
    from .yamlsource import load_scalar
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, such as train.optimizer.lr=0.01")
        out[key.strip()] = load_scalar(text) if text.strip() else ""
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
    """A checkpoint.npz's contents, every field checked; DataError naming the
    file and the field when it is missing, not a regular file, damaged, or not
    a checkpoint.  Array headers are checked before anything is allocated."""
    from .data import read_npz
    from .errors import DataError
    if not os.path.lexists(path):
        raise DataError(f"{path}: no checkpoint to resume from")
    state = read_npz(path, "checkpoint", text=("rng", "history", "run_options"))
    missing = [k for k in ("epoch", "step", "rng", "history") if k not in state]
    if missing or not any(k.startswith("param::") for k in state):
        what = ", ".join(f"field {k!r}" for k in missing) or "parameters ('param::...')"
        raise DataError(f"{path}: not an rnngraph checkpoint (missing {what})")

    def bad(field, problem):
        return DataError(f"{path}: damaged checkpoint: field {field!r} {problem}")

    def text(field):
        value = state[field]
        if value.shape != ():
            raise bad(field, f"has shape {value.shape}; expected one JSON string")
        try:
            return json.loads(str(value))
        except ValueError:
            raise bad(field, "is not valid JSON") from None

    def counter(field):
        value = state[field]
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 0:
            raise bad(field, f"is {value!r}; expected an integer >= 0")
    for field in ("epoch", "step", "optim::steps"):
        if field in state:
            counter(field)
    rng = text("rng")
    try:
        np.random.default_rng().bit_generator.state = rng
    except (TypeError, ValueError, KeyError, OverflowError):
        raise bad("rng", "is not the state of numpy's default random generator") from None
    history = text("history")
    if not isinstance(history, list) or not all(
            isinstance(r, dict) and isinstance(r.get("epoch"), int) and
            all(isinstance(v, (int, float, str)) or v is None for v in r.values()) for r in history):
        raise bad("history", "is not a list of epoch records ({\"epoch\": N, ...})")
    if "run_options" in state:
        options = text("run_options")
        if (not isinstance(options, list) or len(options) % 2 or not all(isinstance(o, str) for o in options)
                or not set(options[::2]) <= {"--set", "--epochs", "--seed"}
                or not all(v.isdigit() for f, v in zip(options[::2], options[1::2]) if f != "--set")):
            raise bad("run_options", "is not a list of --set/--epochs/--seed options")
    for key, value in state.items():
        if key.startswith(("param::", "optim::")) and key != "optim::steps":
            if value.dtype == bool or not np.issubdtype(value.dtype, np.number):
                raise bad(key, f"has dtype {value.dtype}; expected numbers")
            if not np.all(np.isfinite(value)):
                raise bad(key, "holds NaN or infinite values")
        if key.startswith("optim::") and key != "optim::steps":
            name = key[len("optim::"):].rsplit("::", 1)[0]
            param = state.get(f"param::{name}")
            if param is None or param.shape != value.shape:
                raise bad(key, f"has shape {value.shape}; expected the shape of parameter {name!r} "
                               f"{None if param is None else param.shape}")
        elif not key.startswith(("param::", "optim::")) and key not in ("epoch", "step", "rng", "history",
                                                                         "run_options"):
            raise bad(key, "is not a field of an rnngraph checkpoint")
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
