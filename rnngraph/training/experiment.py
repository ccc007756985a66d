"""An experiment end to end: a spec's data, training, evaluation and files.

``Experiment(spec)`` prepares the network and data; ``run()`` trains (or
stores patterns, for Hopfield rules), evaluates, checks the spec's
``expect:`` thresholds and returns an ``Outcome``; ``write(out_dir)`` writes
``metrics.json``, ``params.npz``, ``history.csv``, ``checkpoint.npz`` and
the loss curve, each atomically.  Like the trainer, it reports through
callbacks and never prints.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .data import file_splits, task_splits
from ..errors import DataError, RunError, SpecError
from ..io import atomic_write, atomic_write_text
from ..engine.network import build
from ..spec import HOPFIELD_RULES, parse_threshold
from .tasks import get_task
from .metrics import compute as metric_values
from .train import Trainer, loss_masks, meets, resolve_config


@dataclass
class Outcome:
    """What a run produced: final metrics, the per-epoch history, the
    ``expect:`` checks, and how it ended (``ok``, ``failed``, ``interrupted``)."""

    metrics: dict
    history: list
    checks: list = field(default_factory=list)     # (metric, threshold text, value or None, ok)
    status: str = "ok"
    message: str = ""
    report: list = field(default_factory=list)     # extra tables: (title, header, rows)

    @property
    def missed(self) -> list:
        return [c for c in self.checks if not c[3]]


class Experiment:
    """The network, data and trainer of one spec.

    Parameters
    ----------
    spec : Spec
    seed : int, optional
        Overrides the spec's seed (parameters and generated data).
    init : path, optional
        A ``params.npz`` to start from.
    epochs : int, optional
        Overrides ``train.epochs``.
    """

    def __init__(self, spec, seed: int | None = None, init: str | None = None, epochs: int | None = None):
        self.spec = spec
        self.seed = spec.seed if seed is None else seed
        self.net = build(spec, seed=self.seed)
        if init:
            self.net.load(init)
        if spec.task is None:
            raise SpecError("the spec has no `task:` (a generator or a data file), so there is nothing to train "
                            "or evaluate on", path=spec.path)
        if "generator" in spec.task:
            self.train_data, self.eval_data, self.task = task_splits(spec, self.net, self.seed)
        else:
            self.train_data, self.eval_data = file_splits(spec, self.net, seed=self.seed)
            made = self.train_data.task_data      # a Hopfield patterns file comes with the patterns task's cues
            self.task = None if made is None else get_task(made.extra["task"])
        self.config = resolve_config(spec, self.task, epochs=epochs)
        if self.config.method == "rtrl":
            self._check_sensitivities_fit()
        self.trainer = Trainer(self.net, self.config, self.train_data, self.eval_data,
                               metrics=self._metrics, seed=self.seed)
        self.seconds = 0.0

    def _check_sensitivities_fit(self) -> None:
        """SpecError at ``train.method`` when RTRL's sensitivities for one batch
        would not fit in memory (``budget.limit()``), with the estimate."""
        from .. import budget
        from ..engine import rtrl
        batch = max(1, min(self.config.batch_size, self.train_data.n))
        need = rtrl.sensitivity_bytes(self.net, batch)
        if need > self.net.memory_limit:
            _, P = rtrl.parameter_slots(self.net)
            units = sum(d["size"] for d in self.net.program.nodes.values() if d["role"] != "input")
            raise self.spec.error(("train", "method"), f"method rtrl keeps dv/dθ for {units} units x {P} parameters "
                                  f"x batch {batch}: about {budget.gib(need)} of memory (limit "
                                  f"{budget.gib(self.net.memory_limit)}; set {budget.ENV_LIMIT} to change it); "
                                  f"use method bptt, a smaller network or a smaller batch_size")

    # ------------------------------------------------------------------ metrics
    def _output_node(self) -> str | None:
        outputs = self.net.output_nodes
        wanted = self.spec.task.get("output") if self.spec.task else None
        return self.net.blocks.get(wanted, wanted) if wanted else (outputs[0] if outputs else None)

    def _metrics(self, outputs: dict, data) -> dict:
        """The generator's own metrics (on its own data) and the spec's ``task.metrics``
        (on any data with targets); a generator's metric keeps its own meaning where
        both have the name."""
        result = {}
        listed = self.spec.task.get("metrics", [])
        if listed and data.targets:
            masks = loss_masks(self.config, data)
            activations = {n: self.net.program.nodes[n]["activation"] for n in data.targets}
            result.update(metric_values(listed, outputs, data.targets, masks, activations))
        if self.task is not None and data.task_data is not None:
            node = self._output_node()
            result.update({k: float(v) for k, v in self.task.metrics(outputs[node], data.task_data).items()})
        return result

    @property
    def is_hopfield(self) -> bool:
        return self.config.method in HOPFIELD_RULES

    # ------------------------------------------------------------------ running
    def run(self, on_epoch=None, should_stop=None, resume: dict | None = None, trained: bool = False,
            failure: RunError | None = None) -> Outcome:
        """Train and evaluate; ``resume`` is a ``checkpoint.npz``'s contents.
        ``trained``: the trainer has been run already (``replicas.train_together``),
        ending with ``failure`` (its RunError) or None; only the evaluation is left."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return self._run(on_epoch, should_stop, resume, trained, failure)

    def _run(self, on_epoch, should_stop, resume, trained=False, failure=None) -> Outcome:
        start = time.perf_counter()
        status, message = "ok", ""
        report = []
        if self.is_hopfield:
            from ..engine.hopfield import SettleStopped
            try:
                metrics = self._run_hopfield(should_stop)
                history = [dict(metrics, epoch=1)]
                epochs = 1                 # storing the patterns is the one epoch history.csv records
            except SettleStopped:
                metrics, history, epochs = {}, [], 0
                status, message = "interrupted", "stopped while settling the cues (the patterns are stored)"
        else:
            if resume is not None:
                self.trainer.load_state_dict(resume)
            try:
                if failure is not None:
                    raise failure
                if self.config.method in ("bptt", "rtrl") and not trained:
                    self.trainer.run(callback=on_epoch, should_stop=should_stop)
            except RunError as exc:
                status, message = "failed", str(exc)
            if self.trainer.stopped == "interrupted":
                status, message = "interrupted", f"stopped after {self.trainer.epoch} complete epochs"
            history = self.trainer.history
            self.evaluation_failure = None
            metrics = self._final_metrics()
            if status == "ok" and self.evaluation_failure:
                status, message = "failed", self.evaluation_failure
            report = self._reports()
            epochs = self.trainer.epoch
        self.seconds += time.perf_counter() - start
        metrics["epochs"] = epochs
        metrics["seconds"] = round(self.seconds, 3)
        checks = self.check_expectations(metrics) if status == "ok" else []
        if status == "ok" and any(not c[3] for c in checks):
            status = "failed"
            message = "; ".join(f"{m} = {'missing' if v is None else f'{v:.4g}'} misses {t}" for m, t, v, ok in checks
                                if not ok)
        metrics["status"] = status
        return Outcome(metrics=metrics, history=history, checks=checks, status=status, message=message,
                       report=report)

    def _final_metrics(self) -> dict:
        metrics = {}
        history = self.trainer.history
        if history:
            metrics["train_loss"] = history[-1]["train_loss"]
        last = self.trainer.evaluate()
        try:
            self.trainer.check_evaluation(last)
        except RunError as exc:
            self.evaluation_failure = str(exc)
        if "loss" in last:
            metrics["eval_loss" if self.eval_data is not None else "train_loss_final"] = last.pop("loss")
        if "train_loss" not in metrics:   # no epoch ran: report the loss as it stands
            metrics["train_loss"] = self.trainer.evaluate(self.train_data, self.trainer.train_masks).get("loss", 0.0)
        metrics.pop("train_loss_final", None)
        metrics.update(last)
        return metrics

    def _run_hopfield(self, should_stop=None) -> dict:
        data = self.train_data.task_data
        if data is None or "patterns" not in data.extra:
            raise DataError("Hopfield storage rules need the `patterns` task (its memories are what is stored)")
        self.net.store(data.extra["patterns"], rule=self.config.method)
        evald = self.eval_data.task_data
        result, metrics = self.recall(evald.inputs[:, 0, :], evald, should_stop)
        if result.discrete:   # Hopfield's theorem: asynchronous updates never raise the energy
            rises = np.diff(result.energy, axis=1) > 1e-9
            metrics["energy_increases"] = int(rises.sum())
        metrics["converged"] = float(result.converged.mean())
        metrics["cycles"] = float(result.cycle.mean())
        metrics["mean_sweeps"] = float(result.sweeps.mean())
        metrics["train_loss"] = 0.0
        self.settled = result
        return metrics

    def recall(self, cues, task_data=None, should_stop=None):
        """Settle a Hopfield net from ``cues`` (N, size) as the spec's ``dynamics`` say;
        returns ``(SettleResult, metrics)``, the metrics (the task's own and
        ``task.metrics``) when ``task_data`` holds the cues' memories."""
        from ..engine.hopfield import settle, state_node
        dyn = {"update": "async", "sweeps": 100, "until_stable": True, **self.spec.dynamics}
        result = settle(self.net, cues, update=dyn["update"], sweeps=dyn["sweeps"], seed=self.seed,
                        until_stable=dyn["until_stable"], should_stop=should_stop)
        if task_data is None:
            return result, {}
        states = result.states[:, None, :]                     # (N, 1, size)
        listed = self.spec.task.get("metrics", [])
        node = state_node(self.net)
        metrics = metric_values(listed, {node: states}, {node: task_data.targets},
                                activations={node: self.net.program.nodes[node]["activation"]}) if listed else {}
        if self.task is not None:
            metrics.update({k: float(v) for k, v in self.task.metrics(states, task_data).items()})
        return result, metrics

    def _reports(self) -> list:
        """Side-by-side tables some tasks come with (linear: gradient descent
        against the normal equation)."""
        if self.task is None or self.task.name != "linear":
            return []
        from .tasks import normal_equation
        x_node, y_node = self.net.input_nodes[0], self._output_node()
        X = self.train_data.inputs[x_node][:, 0, :]
        Y = self.train_data.targets[y_node][:, 0, :]
        W_ne, b_ne = normal_equation(X, Y)
        edges = [k for _, v, k in self.net.graph.in_edges(y_node, keys=True)]
        W_gd = self.net.params[edges[0]]
        bias = self.net.graph.nodes[y_node]["bias"]
        b_gd = self.net.params[bias] if bias else np.zeros_like(b_ne)
        rows = [(f"theta_{i + 1}", float(W_gd[0, i]), float(W_ne[0, i])) for i in range(W_gd.shape[1])]
        rows.append(("theta_0 (bias)", float(b_gd[0]), float(b_ne[0])))
        gap = max(abs(a - b) for _, a, b in rows)
        self.normal_equation_gap = gap
        return [("gradient descent vs the normal equation", ("parameter", "gradient descent", "normal equation"), rows)]

    def check_expectations(self, metrics: dict) -> list:
        checks = []
        gap = getattr(self, "normal_equation_gap", None)
        if gap is not None:
            metrics["normal_equation_gap"] = gap
        for name, text in self.spec.expect.items():
            op, bound = parse_threshold(text)
            value = metrics.get(name)
            ok = value is not None and meets(float(value), op, bound)
            checks.append((name, str(text), value, ok))
        return checks

    # ------------------------------------------------------------------ files
    def write(self, out_dir: str, outcome: Outcome) -> list[str]:
        """Write every result file atomically; returns their paths."""
        os.makedirs(out_dir, exist_ok=True)
        written = []

        def path(name):
            p = os.path.join(out_dir, name)
            written.append(p)
            return p
        metrics = dict(outcome.metrics)
        if outcome.checks:
            metrics["expect"] = {m: {"threshold": t, "value": v, "ok": ok} for m, t, v, ok in outcome.checks}
        if outcome.message:
            metrics["message"] = outcome.message
        atomic_write_text(path("metrics.json"), json.dumps(_jsonable(metrics), indent=2) + "\n")
        self.net.save(path("params.npz"))
        atomic_write_text(path("history.csv"), history_csv(outcome.history))
        if not self.is_hopfield:
            state = self.trainer.state_dict()
            atomic_write(path("checkpoint.npz"), lambda fh: np.savez(fh, **state), binary=True)
        picture = plot_history(outcome.history, out_dir)
        if picture:
            written.append(picture)
        return written


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def history_csv(history: list) -> str:
    columns = []
    for record in history:
        for key in record:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for record in history:
        writer.writerow({k: record.get(k, "") for k in columns})
    return buf.getvalue()


def terminal_plot(values: list, width: int = 60, height: int = 12, title: str = "train loss") -> str:
    """A small text plot of a series (used where matplotlib is absent)."""
    vals = np.asarray(values, dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return f"{title}: no data\n"
    if vals.size > width:   # one column per bucket, its mean
        edges = np.linspace(0, vals.size, width + 1).astype(int)
        vals = np.array([vals[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo or 1.0
    rows = [[" "] * len(vals) for _ in range(height)]
    for x, v in enumerate(vals):
        y = int(round((v - lo) / span * (height - 1)))
        rows[height - 1 - y][x] = "*"
    lines = [f"{title} (epochs along, {lo:.4g} .. {hi:.4g} up)"]
    for i, row in enumerate(rows):
        label = f"{hi:10.4g} |" if i == 0 else f"{lo:10.4g} |" if i == height - 1 else " " * 10 + " |"
        lines.append(label + "".join(row))
    lines.append(" " * 11 + "+" + "-" * len(vals))
    return "\n".join(lines) + "\n"


def plot_history(history: list, out_dir: str) -> str | None:
    """``loss.png`` with matplotlib where installed, else ``loss.txt`` (a text plot).

    Non-finite losses are left out.  Positive losses go on a log axis, or as
    their log10 on a linear one when they span more than matplotlib's log
    axis can label (a diverged run's 1e300)."""
    losses = [r["train_loss"] for r in history if "train_loss" in r]
    if len(losses) < 2:
        return None
    try:
        from ..plotting import save_loss_plot
        import matplotlib  # noqa: F401 - whether it is installed
    except ImportError:
        p = os.path.join(out_dir, "loss.txt")
        atomic_write_text(p, terminal_plot(losses))
        return p
    curves = {label: [(r["epoch"], r[key]) for r in history if key in r and np.isfinite(r[key])]
              for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss"))}
    values = np.array([v for points in curves.values() for _, v in points])
    positive = values.size > 0 and values.min() > 0
    wide = positive and (values.min() < 1e-100 or values.max() > 1e100)
    scale = "log10" if wide else "log" if positive else "linear"
    drawn = {}
    for label, points in curves.items():
        epochs, ys = zip(*points) if points else ((), ())
        drawn[label] = (epochs, np.log10(ys) if wide and points else ys)
    p = os.path.join(out_dir, "loss.png")
    atomic_write(p, lambda fh: save_loss_plot(drawn, fh, scale), binary=True)
    return p
