"""Train: the spec's experiment in a cancellable worker, with a live loss plot.

Training runs ``rnngraph.training.experiment.Experiment`` (the same code as
``rnngraph run``) in a thread worker.  Each epoch's record comes back as a
``Progress`` message.  The trainer asks ``should_stop`` after every step:
Pause (p) makes it answer yes and keeps the ``Experiment``, whose trainer
rolls the unfinished epoch back; Start (s) then runs the same experiment on
from the next epoch, exactly as if it had never paused.  Stop (x) cancels the
worker (or forgets a paused run), so the next Start begins at epoch 1.  When a
run ends or pauses the trained parameters are copied into the app's network,
so the Step screen shows the trained network.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState, get_current_worker

from rnngraph.training.experiment import Experiment

from ..widgets.mode_bar import ModeBar
from ..plot import loss_plot


class TrainScreen(Screen):
    """s starts (or resumes) training, p pauses it, x stops it; the plot grows as epochs end."""

    TITLE = "Train"
    AUTO_FOCUS = "#train-history"   # not the epochs box: it would swallow s and x
    BINDINGS = [
        Binding("s", "start", "Start/resume", priority=True),
        Binding("p", "pause", "Pause", priority=True),
        Binding("x", "stop", "Stop", priority=True),
    ]

    running: reactive[bool] = reactive(False)
    paused: reactive[bool] = reactive(False)

    class Progress(Message):
        """One finished epoch."""

        def __init__(self, record: dict) -> None:
            super().__init__()
            self.record = record

    class Finished(Message):
        """The run ended (``outcome`` None when it could not start)."""

        def __init__(self, outcome, experiment, text: str, error: str = "") -> None:
            super().__init__()
            self.outcome, self.experiment, self.text, self.error = outcome, experiment, text, error

        @property
        def net(self):
            return self.experiment.net if self.experiment is not None else None

    def __init__(self) -> None:
        super().__init__(id="train-screen")
        self.history: list[dict] = []
        self._paused_run = None       # (experiment, spec text, epochs) of the run a pause left
        self._pause_asked = False     # the trainer stops after this step, keeping its state

    def compose(self) -> ComposeResult:
        yield ModeBar("train", id="mode-bar")
        with Horizontal(id="train-bar", classes="bar"):
            yield Label("epochs =")
            yield Input("", id="train-epochs", type="integer", compact=True)
            yield Button("start (s)", id="train-start", compact=True)
            yield Button("pause (p)", id="train-pause", compact=True, disabled=True)
            yield Button("stop (x)", id="train-stop", compact=True, disabled=True)
            yield Label("", id="train-status", markup=False)
        with Vertical(id="train-body"):
            yield Static("", id="train-plot")
            yield DataTable(id="train-history", zebra_stripes=True)
        yield Footer(compact=True)

    _ready = False

    def on_mount(self) -> None:
        self._ready = True
        self.query_one("#train-history", DataTable).add_columns("epoch", "train_loss", "eval_loss",
                                                                "metrics")
        self.watch(self.app, "analysis", self._analysis_changed)

    def _analysis_changed(self, analysis) -> None:
        if self.running or self.paused:
            return
        box = self.query_one("#train-epochs", Input)
        spec = analysis.spec if analysis is not None else None
        epochs = (getattr(spec, "train", None) or {}).get("epochs")
        if epochs and not box.value:
            box.value = str(epochs)
        if not self.history:   # keep the last run's result on screen
            self._status()

    def _status(self, text: str | None = None) -> None:
        if text is None:
            if self.app.good_analysis is None:
                text = "fix the spec's problems first (F2)"
            elif not getattr(self.app.good_analysis.spec, "task", None):
                text = "the spec has no task: nothing to train on"
            else:
                text = "ready: s starts"
        self.query_one("#train-status", Label).update(f"  {text}")

    # -- running ----------------------------------------------------------------------
    @on(Button.Pressed, "#train-start")
    def action_start(self) -> None:
        """Start a run at epoch 1, or resume the paused one at its next epoch."""
        if self.running:
            return
        analysis = self.app.good_analysis
        if analysis is None or not getattr(analysis.spec, "task", None):
            self._status()
            return
        epochs = self._epochs_box()
        experiment = None
        if self._paused_run is not None:
            paused, text, paused_epochs = self._paused_run
            if text == analysis.text and paused_epochs == epochs:
                experiment = paused
        self._paused_run = None
        self._pause_asked = False
        self.paused = False
        if experiment is None:
            self.history = []
            self.stored = None
            self.query_one("#train-history", DataTable).clear()
            self._plot()
            self._status("training…  p pauses, x stops")
        else:
            self._status(f"resuming at epoch {experiment.trainer.epoch + 1}…  p pauses, x stops")
        self.running = True
        self._train(analysis.spec, epochs, analysis.text, experiment)

    @work(thread=True, exclusive=True, group="train")
    def _train(self, spec, epochs: int | None, text: str, experiment=None) -> None:
        worker = get_current_worker()
        try:
            if experiment is None:
                experiment = Experiment(spec, epochs=epochs)
            outcome = experiment.run(on_epoch=lambda record: self.post_message(self.Progress(dict(record))),
                                     should_stop=lambda: worker.is_cancelled or self._pause_asked)
        except Exception as err:  # a SpecError/DataError/RunError: shown, not raised
            self.post_message(self.Finished(None, None, text, f"{type(err).__name__}: {err}"))
            return
        self.post_message(self.Finished(outcome, experiment, text))

    @on(Button.Pressed, "#train-pause")
    def action_pause(self) -> None:
        if self.running and not self._pause_asked:
            self._pause_asked = True
            self._status("pausing after this step…")

    @on(Input.Submitted, "#train-epochs")
    def _epochs_entered(self) -> None:
        self.query_one("#train-history", DataTable).focus()

    @on(Button.Pressed, "#train-stop")
    def action_stop(self) -> None:
        if self.running:
            self._pause_asked = False
            self.workers.cancel_group(self, "train")
            self._status("stopping after this step…")
        elif self.paused:
            self._paused_run = None
            self.paused = False
            self._status(f"stopped after epoch {self._last_epoch()}: s starts again at epoch 1")

    def _last_epoch(self) -> int:
        return int(self.history[-1].get("epoch", 0)) if self.history else 0

    def on_train_screen_progress(self, message: Progress) -> None:
        record = message.record
        self.history.append(record)
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in record.items()
                            if k not in ("epoch", "step", "train_loss", "eval_loss")
                            and isinstance(v, (int, float)))
        table = self.query_one("#train-history", DataTable)
        table.add_row(str(record.get("epoch")), _num(record.get("train_loss")),
                      _num(record.get("eval_loss")), Text(metrics))
        table.move_cursor(row=table.row_count - 1)      # the latest epoch stays in view
        self._plot_soon()
        self._status(f"training…  epoch {record.get('epoch')}  loss {_num(record.get('train_loss'))}")

    def on_train_screen_finished(self, message: Finished) -> None:
        self.running = False
        self._plot_now()            # the last epochs, without waiting (or once the screen shows)
        if message.outcome is None:
            self._status(f"could not train: {message.error}")
            return
        outcome = message.outcome
        if self._pause_asked and outcome.status == "interrupted":
            self._pause_asked = False
            epochs = message.experiment.config.epochs
            self._paused_run = (message.experiment, message.text, self._epochs_box())
            self.paused = True
            self._status(f"paused after epoch {self._last_epoch()} of {epochs}: s resumes, x stops")
            self._adopt(message.net, message.text)
            return
        if not self.history and outcome.history:
            for record in outcome.history:
                self.on_train_screen_progress(self.Progress(record))
        shown = ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items()
                          if isinstance(v, float))
        self._status(f"{outcome.status}: {shown}" + (f"  ({outcome.message})" if outcome.message else ""))
        experiment = message.experiment
        if experiment.is_hopfield and experiment.train_data.task_data is not None:
            self.stored = (np.asarray(experiment.train_data.task_data.extra["patterns"]), experiment.config.method)
            self._plot()
        self._adopt(message.net, message.text)

    def _adopt(self, trained, text: str) -> None:
        """Copy trained parameters into the app's network (if the spec is unchanged)."""
        analysis = self.app.good_analysis
        if analysis is None or analysis.text != text or trained is None:
            return
        for name, value in trained.params.items():
            if name in analysis.net.params and analysis.net.params[name].shape == value.shape:
                analysis.net.params[name][...] = value
        analysis.weights = "trained weights (from the Train screen)"
        self.app.analysis = analysis   # screens redraw with the trained weights

    def _epochs_box(self) -> int | None:
        try:
            return int(self.query_one("#train-epochs", Input).value or 0) or None
        except ValueError:
            return None

    def watch_running(self, running: bool) -> None:
        self._buttons()

    def watch_paused(self, paused: bool) -> None:
        self._buttons()

    def _buttons(self) -> None:
        if self._ready:
            self.query_one("#train-start", Button).label = "resume (s)" if self.paused else "start (s)"
            self.query_one("#train-start", Button).disabled = self.running
            self.query_one("#train-pause", Button).disabled = not self.running
            self.query_one("#train-stop", Button).disabled = not (self.running or self.paused)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train" and event.state == WorkerState.CANCELLED:
            self.running = False

    stored = None   # a Hopfield run: (patterns (P, N), rule) it stored, shown instead of a loss curve

    PLOT_EVERY = 0.25     # seconds: epochs arriving faster are plotted together
    _plot_timer = None
    _plot_pending = False   # epochs arrived while the screen was hidden: plotted when it shows

    def _plot_soon(self) -> None:
        """Replot for a new epoch, at most every PLOT_EVERY seconds and only while this screen
        shows: a fast run sends hundreds of epochs a second, and each plot holds up the keys."""
        if not self.is_current:
            self._plot_pending = True
        elif self._plot_timer is None:
            self._plot_timer = self.set_timer(self.PLOT_EVERY, self._plot_now)

    def _plot_now(self) -> None:
        self._plot_timer = None
        if not self.is_current:            # switched away since the timer was set
            self._plot_pending = True
            return
        self._plot_pending = False
        self._plot()

    def on_screen_resume(self) -> None:
        if self._plot_pending:
            self._plot_now()

    def _plot(self) -> None:
        if self.stored is not None:
            self.query_one("#train-plot", Static).update(self._stored_picture())
            return
        width = max(20, self.size.width - 12)
        self.query_one("#train-plot", Static).update(loss_plot(self.history, width=width, height=12))

    def _stored_picture(self):
        """The patterns a Hopfield run stored, side by side (as many as fit)."""
        from rich.console import Group
        from rich.table import Table
        from ..widgets.step_view import bitmap
        patterns, rule = self.stored
        side = max(1, int(np.ceil(np.sqrt(patterns.shape[1]))))
        fit = max(1, (self.size.width or 120) // (2 * side + 3))
        shown = patterns[:fit]
        grid = Table.grid(padding=(0, 3))
        grid.add_row(*(Text(f"pattern {p}", "bold") for p in range(len(shown))))
        grid.add_row(*(bitmap(x) for x in shown))
        more = f" (the first {len(shown)} shown)" if len(shown) < len(patterns) else ""
        return Group(Text(f"stored {len(patterns)} patterns of {patterns.shape[1]} units by the {rule} rule"
                          f"{more}; F4 settles cues to them", "bold"), grid)


def _num(value) -> str:
    return "" if value is None else f"{value:.5g}"
