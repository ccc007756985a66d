"""``rnngraph run``: train and evaluate a spec, with a progress bar, a summary
table and the result files (docs/spec-format.md).

The results of a run are one folder: ``--out DIR``, or a new ``runs/<name>``
(``runs/<name>-2``, ...).  Its files (metrics.json, params.npz,
history.csv, checkpoint.npz, the loss plot, spec.yaml and run.json) are
published together: written into a staging folder and swapped in whole.
The folder is checked before training and locked while the run uses it.

Ctrl-C or SIGTERM stops after the current step: the epoch in progress is
rolled back, a checkpoint and the metrics so far are written, and
``rnngraph run SPEC --resume DIR`` continues exactly where it stopped, if
the spec is the same one (the checkpoint holds it).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time

import numpy as np

from ..errors import Interrupted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_sets(items: list[str], flag: str = "--set") -> dict:
    """``["train.optimizer.lr=0.01"]`` -> ``{"train.optimizer.lr": 0.01}``: values read as
    YAML with the limits of a spec file; each remembers its ``--set`` argument (``flag``
    names the option it came from), which messages about it name (an ``Overrides``).

    Raises SpecError, naming the argument, for one that is not KEY=VALUE or whose
    value is over those limits."""
    from ..errors import SpecError
    from ..spec.source import Overrides, Source, load_value
    out = Overrides()
    for item in items or []:
        key, sep, text = item.partition("=")
        label = flag + " " + (item if len(item) <= 60 else item[:57] + "...")
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
    """A checkpoint.npz's contents, every field checked; DataError naming the
    file and the field when it is missing, not a regular file, damaged, or not
    a checkpoint.  Array headers are checked before anything is allocated."""
    from ..npz import read_npz
    from ..errors import DataError
    if not os.path.lexists(path):
        raise DataError(f"{path}: no checkpoint to resume from")
    state = read_npz(path, "checkpoint", text=("rng", "history", "run_options", "spec", "schedule"))
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
    if "spec" in state and (state["spec"].shape != () or state["spec"].dtype.kind != "U"):
        raise bad("spec", f"has shape {state['spec'].shape} and dtype {state['spec'].dtype}; expected the "
                          f"spec's YAML text")
    if "schedule" in state:
        schedule = text("schedule")
        if not (isinstance(schedule, dict) and set(schedule) == {"current", "best", "bad"}
                and isinstance(schedule["current"], (int, float)) and schedule["current"] >= 0
                and (schedule["best"] is None or isinstance(schedule["best"], (int, float)))
                and isinstance(schedule["bad"], int) and schedule["bad"] >= 0):
            raise bad("schedule", "is not a learning-rate schedule's state ({\"current\": lr, \"best\": value, "
                                  "\"bad\": N})")
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
                                                                         "run_options", "spec", "schedule"):
            raise bad(key, "is not a field of an rnngraph checkpoint")
    return state


def register(sub) -> None:
    p = sub.add_parser("run", help="train and evaluate a spec; write metrics.json, params.npz, history.csv")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--out", metavar="DIR",
                   help="where to write results (default: a new folder runs/<spec name>, runs/<name>-2, ...)")
    p.add_argument("--epochs", type=int, metavar="N", help="override train.epochs")
    p.add_argument("--seed", type=int, metavar="S", help="override the spec's seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any spec key, e.g. --set train.optimizer.lr=0.01 (repeatable)")
    p.add_argument("--init", metavar="PARAMS", help="start from these parameters (a params.npz)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run saved in DIR")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue although keys that do not change the computation "
                        f"({', '.join(SAFE_TO_CHANGE)}) differ from the checkpoint's spec")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


# what a result folder holds; a folder with any of them holds a run
RESULT_FILES = ("metrics.json", "params.npz", "history.csv", "checkpoint.npz", "spec.yaml", "run.json",
                "loss.png", "loss.txt")
# spec keys a resumed run may change with --force: they do not change what is computed
# (train.epochs may always change: a run can be continued for longer)
SAFE_TO_CHANGE = ("name", "description", "expect", "train.early_stopping", "train.log_every")


class _Signals:
    """SIGINT and SIGTERM during ``rnngraph run``, by phase.

    ``startup``: raise Interrupted at once (nothing is trained yet, so
    nothing is lost; raised inside an extension module's import it can
    surface as an ImportError, which ``signal`` being set tells apart).
    ``training``: set the flag, which the trainer and the Hopfield settle
    poll (they stop after the current step or update); a second Ctrl-C
    raises Interrupted, which the trainer treats the same way, without
    waiting for the step.  ``publishing``: set the flag only,
    so the result files are completed before the run ends.
    """

    def __init__(self):
        self.signal = None
        self.phase = "startup"

    def __call__(self, signum, frame):
        if self.phase == "startup":
            self.signal = signum
            raise Interrupted
        again = self.signal is not None
        self.signal = self.signal or signum
        if again and self.phase == "training" and signum == signal.SIGINT:
            raise Interrupted

    def is_set(self) -> bool:
        return self.signal is not None


def cmd_run(args) -> int:
    """Train and evaluate ``args.spec``; publish the results into one folder.

    The folder is ``--out``, ``--resume``'s, or a new ``runs/<name>``
    (``runs/<name>-2``, ...).  It is checked and locked before training and
    receives every result file at once (see ``rnngraph.io.publish_dir``).
    """
    stop = _Signals()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            return _run(args, stop)
        except ImportError:
            if stop.phase == "startup" and stop.signal is not None:
                raise Interrupted from None
            raise
    except KeyboardInterrupt:
        print("interrupted before training started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args, stop) -> int:
    from rich.console import Console

    from ..errors import DataError
    from ..training.experiment import Experiment
    from ..io import FolderInUse, FolderLock
    from ..spec import load_spec

    started = time.time()
    options = run_options(args)
    resume = None
    if args.resume:
        checkpoint = os.path.join(args.resume, "checkpoint.npz")
        resume = read_checkpoint(checkpoint)
        resume_stamp = _stamp(checkpoint)
        recorded = json.loads(str(resume.get("run_options", "[]")))
        if "spec" not in resume and _without_epochs(options) and \
                _without_epochs(options) != _without_epochs(recorded):
            raise DataError(f"{args.resume}: this run was made with {' '.join(recorded) or 'no options'}; "
                            f"resume it with the same --set and --seed (or none, to reuse them)")
        # given --set/--seed (checked against the checkpoint's spec below), else the recorded ones;
        # --epochs may grow, to train for longer
        options = (_without_epochs(options) or _without_epochs(recorded)) + (
            options[options.index("--epochs"):options.index("--epochs") + 2] if "--epochs" in options else
            recorded[recorded.index("--epochs"):recorded.index("--epochs") + 2] if "--epochs" in recorded else [])
    overrides = parse_sets([v for k, v in zip(options[::2], options[1::2]) if k == "--set"])
    for flag, key in (("--epochs", "train.epochs"), ("--seed", "seed")):
        if flag in options:
            value = int(options[options.index(flag) + 1])
            if value < 0:
                raise DataError(f"{flag} must be >= 0")
            overrides[key] = value
    spec = load_spec(args.spec, overrides=overrides)
    spec_text = resolved_spec_text(args.spec, overrides, spec)
    if resume is not None and "spec" in resume:
        _check_same_spec(str(resume["spec"]), spec_text, args.resume, args.force)

    out_dir, reserved = _choose_folder(args, spec)
    try:
        experiment = Experiment(spec, init=args.init)
        experiment.trainer.run_options = options
        experiment.trainer.run_spec = spec_text
        try:
            lock = FolderLock(out_dir)
        except FolderInUse as exc:
            raise DataError(f"{exc}; wait for it to end or choose another --out") from None
        except OSError as exc:
            raise DataError(f"{out_dir}: cannot lock the folder ({exc.strerror})") from None
        try:
            if resume is not None and _stamp(os.path.join(args.resume, "checkpoint.npz")) != resume_stamp:
                raise DataError(f"{args.resume}: another run wrote this folder while this one started; "
                                f"run the command again")
            return _train_and_publish(args, stop, spec, spec_text, experiment, resume, out_dir, started,
                                      Console(stderr=True), Console())
        finally:
            lock.release()
    finally:
        if reserved:   # a new folder that received nothing (the run stopped before publishing)
            try:
                os.rmdir(out_dir)
            except OSError:
                pass


def _train_and_publish(args, stop, spec, spec_text, experiment, resume, out_dir, started, console, out) -> int:
    show = console.is_terminal and not args.quiet and not experiment.is_hopfield
    stop.phase = "training"
    try:
        if show:
            outcome = _run_with_progress(experiment, console, stop, resume)
        else:
            outcome = experiment.run(should_stop=stop.is_set, resume=resume)
    except KeyboardInterrupt:   # outside a training step (an evaluation): what was there is kept
        console.print(f"[yellow]interrupted[/]: nothing was written; {out_dir} is as it was")
        return EXIT_INTERRUPTED
    stop.phase = "publishing"   # a signal now waits: the results are written first
    code = {"interrupted": EXIT_INTERRUPTED, "failed": EXIT_FAILED}.get(outcome.status, EXIT_OK)
    record = run_record(args, spec, experiment, outcome, started, code)
    try:
        files = publish_results(out_dir, experiment, outcome, spec_text, record)
    except OSError as exc:
        console.print(f"[red]failed[/]: could not write the results to {out_dir}: "
                      f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}", soft_wrap=True)
        saved = _save_elsewhere(experiment, outcome, spec_text, record)
        if saved:
            console.print(f"the trained parameters are saved in {os.path.join(saved, 'params.npz')} "
                          f"(with the other result files)", soft_wrap=True)
        else:
            console.print("[red]the trained parameters could not be saved anywhere[/]")
        return EXIT_FAILED
    _summary(out, spec, experiment, outcome, files)
    if outcome.status == "interrupted":
        if experiment.is_hopfield:
            console.print(f"[yellow]interrupted[/]: {outcome.message}; results in {out_dir}", soft_wrap=True)
        else:
            again = shlex.join(["rnngraph", "run", args.spec, "--resume", out_dir])
            console.print(f"[yellow]interrupted[/]: {outcome.message}; checkpoint in {out_dir}. "
                          f"Continue with: {again}", soft_wrap=True)
    elif outcome.status == "failed":
        console.print(f"[red]failed[/]: {outcome.message}")
    return code


def _stamp(path: str):
    """What identifies one version of a file (a publish replaces the inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


# --------------------------------------------------------------------------- the run's folder

def safe_name(name: str) -> str:
    """``name`` as one folder name: letters, digits, ``.``, ``_`` and ``-``
    kept, anything else (separators included) replaced by ``_``; no leading
    dot, never empty, at most 100 characters."""
    import re
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")[:100]
    return safe or "run"


def _holds_run(folder: str) -> bool:
    return any(os.path.lexists(os.path.join(folder, f)) for f in RESULT_FILES)


def _choose_folder(args, spec) -> tuple[str, bool]:
    """The folder this run publishes into, checked before training, and
    whether it was made here (as a reservation, removed if nothing is
    published).  DataError when it cannot be used."""
    from ..errors import DataError
    if args.out is None and args.resume is None:
        runs = "runs"
        _check_parent(os.path.join(runs, "x"), "runs")
        base = safe_name(spec.name)
        for i in range(1, 100_000):
            candidate = os.path.join(runs, base if i == 1 else f"{base}-{i}")
            try:
                os.mkdir(candidate)
            except FileExistsError:
                continue
            except OSError as exc:
                raise DataError(f"{candidate}: cannot make the run's folder ({exc.strerror})") from None
            return candidate, True
        raise DataError(f"{runs}: no free folder name for {base}")
    folder = args.out if args.out is not None else args.resume
    label = "--out " + folder if args.out is not None else folder
    if os.path.lexists(folder):
        if os.path.islink(folder):
            raise DataError(f"{label}: is a symbolic link (the results replace the folder whole); "
                            f"give the folder it points to")
        if not os.path.isdir(folder):
            raise DataError(f"{label}: exists and is not a folder; give a folder for the results")
        if args.resume is None and not args.overwrite:
            if _holds_run(folder):
                raise DataError(f"{label}: already holds a run; use --overwrite to replace it "
                                f"(or --resume {folder} to continue it)")
        if os.listdir(folder) and not _holds_run(folder):
            raise DataError(f"{label}: a folder of other files (the results replace the folder whole); "
                            f"give a new or empty folder")
    _check_parent(folder, label)
    return folder, False


def _check_parent(folder: str, label: str) -> None:
    """The results can be published at ``folder``: its parent exists (made
    if need be) and takes a new folder.  DataError saying why not."""
    from ..errors import DataError
    from ..io import staging_dir
    parent = os.path.dirname(os.path.abspath(folder))
    ancestor = parent
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise DataError(f"{label}: {ancestor} is a file, not a folder")
    try:
        probe = staging_dir(folder)
    except OSError as exc:
        raise DataError(f"{label}: cannot write in {parent} ({exc.strerror or exc})") from None
    os.rmdir(probe)


def publish_results(out_dir: str, experiment, outcome, spec_text: str, record: dict) -> list[str]:
    """Write every result file into a staging folder beside ``out_dir`` and
    swap it in: ``out_dir`` holds the previous set or this one, whole.
    Returns the published paths.  OSError when writing fails (``out_dir`` is
    then unchanged)."""
    import shutil

    from ..io import atomic_write_text, publish_dir, staging_dir
    staging = staging_dir(out_dir)
    try:
        written = experiment.write(staging, outcome)
        atomic_write_text(os.path.join(staging, "spec.yaml"), spec_text)
        written.append(os.path.join(staging, "spec.yaml"))
        record = dict(record, ended=_iso(time.time()))
        atomic_write_text(os.path.join(staging, "run.json"), json.dumps(record, indent=2) + "\n")
        written.append(os.path.join(staging, "run.json"))
        publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [os.path.join(out_dir, os.path.basename(p)) for p in written]


def _save_elsewhere(experiment, outcome, spec_text, record) -> str | None:
    """The results in a new folder where writing works (the temp folder, else
    the current one); its path, or None."""
    import tempfile
    for parent in (tempfile.gettempdir(), os.getcwd(), os.path.expanduser("~")):
        try:
            folder = tempfile.mkdtemp(prefix=f"rnngraph-{safe_name(experiment.spec.name)}-", dir=parent)
        except OSError:
            continue
        try:
            publish_results(folder, experiment, outcome, spec_text, record)
            return folder
        except OSError:
            try:
                os.rmdir(folder)
            except OSError:
                pass
    return None


def resolved_spec_text(path: str, overrides: dict, spec) -> str:
    """The spec file with every override applied, as YAML that is itself a
    valid spec: running it repeats the run.  The name is written out (the
    default, the file's stem, would change with the file) and data file
    paths are made absolute (they are relative to the spec's folder)."""
    import yaml

    from ..spec import apply_overrides
    from ..spec.source import load_yaml
    with open(path, encoding="utf-8") as fh:
        data, source = load_yaml(fh.read(), path)
    data = apply_overrides(data, dict(overrides), source) if overrides else data
    data = _plain(data)
    data["name"] = spec.name
    task = data.get("task")
    if isinstance(task, dict):
        base = os.path.dirname(os.path.abspath(path))
        for key in ("file", "eval_file"):
            if isinstance(task.get(key), str) and not os.path.isabs(task[key]):
                task[key] = os.path.normpath(os.path.join(base, task[key]))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


def _check_same_spec(recorded: str, current: str, folder: str, force: bool) -> None:
    """Refuse to resume a run whose spec differs from the checkpoint's, naming
    each differing key; ``force`` lets the keys in SAFE_TO_CHANGE differ."""
    from ..errors import DataError
    old, new = _flatten(_normalized(recorded)), _flatten(_normalized(current))
    keys = [k for k in list(old) + [k for k in new if k not in old] if old.get(k, _MISSING) != new.get(k, _MISSING)]
    keys = [k for k in keys if k != "train.epochs"]
    if not keys:
        return
    safe = [k for k in keys if any(k == s or k.startswith(s + ".") for s in SAFE_TO_CHANGE)]
    unsafe = [k for k in keys if k not in safe]
    if force and not unsafe:
        return

    def show(k):
        return f"{k} ({_shown(old.get(k, _MISSING))} -> {_shown(new.get(k, _MISSING))})"
    if unsafe:
        raise DataError(f"{folder}: the spec differs from the one this run was made with: "
                        f"{', '.join(show(k) for k in unsafe + safe)}; resume with the same spec and --set "
                        f"options (only train.epochs may change)")
    raise DataError(f"{folder}: the spec differs from the one this run was made with: "
                    f"{', '.join(show(k) for k in safe)}; add --force to continue with these changes")


_MISSING = object()


def _normalized(text: str) -> dict:
    """A spec text as the validated spec's dict (defaults filled in, so that
    writing a default out is no difference); the raw YAML if it is no longer
    a valid spec."""
    import yaml

    from ..errors import SpecError
    from ..spec import parse_spec
    try:
        return parse_spec(text).to_dict()
    except SpecError:
        return yaml.safe_load(text)


def _shown(value) -> str:
    return "unset" if value is _MISSING else json.dumps(value)


def _iso(seconds: float) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def run_record(args, spec, experiment, outcome, started: float, code: int) -> dict:
    """``run.json``: how the run was made and how it ended."""
    import platform
    from importlib import metadata
    versions = {"python": platform.python_version()}
    for package in ("rnngraph", "numpy", "networkx", "pyyaml"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"command": ["rnngraph", *getattr(args, "argv", ["run", args.spec])], "cwd": os.getcwd(),
            "seed": experiment.seed, "init": args.init, "resumed_from": args.resume,
            "versions": versions, "started": _iso(started), "ended": None,
            "status": outcome.status, "exit_status": code}


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
