"""Train: the spec's experiment in a cancellable worker, with a live loss plot.

Training runs ``rnngraph.training.experiment.Experiment`` (the same code as
``rnngraph run``) in a thread worker.  Each epoch's record comes back as a
``Progress`` message; Stop cancels the worker, and the trainer checks
``worker.is_cancelled`` between steps, so it stops within one step.  When a
run ends the trained parameters are copied into the app's network, so the
Step screen shows the trained network.
"""

from __future__ import annotations

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

from ..widgets.mode_bar import ModeBar
from ..plot import loss_plot

try:
    from rnngraph.training.experiment import Experiment
except Exception:  # pragma: no cover - only while the engine lacks training
    Experiment = None


class TrainScreen(Screen):
    """s starts training, x stops it; the plot grows as epochs end."""

    TITLE = "Train"
    AUTO_FOCUS = "#train-history"   # not the epochs box: it would swallow s and x
    BINDINGS = [
        Binding("s", "start", "Start", priority=True),
        Binding("x", "stop", "Stop", priority=True),
    ]

    running: reactive[bool] = reactive(False)

    class Progress(Message):
        """One finished epoch."""

        def __init__(self, record: dict) -> None:
            super().__init__()
            self.record = record

    class Finished(Message):
        """The run ended (``outcome`` None when it could not start)."""

        def __init__(self, outcome, net, text: str, error: str = "") -> None:
            super().__init__()
            self.outcome, self.net, self.text, self.error = outcome, net, text, error

    def __init__(self) -> None:
        super().__init__(id="train-screen")
        self.history: list[dict] = []

    def compose(self) -> ComposeResult:
        yield ModeBar("train", id="mode-bar")
        with Horizontal(id="train-bar", classes="bar"):
            yield Label("epochs =")
            yield Input("", id="train-epochs", type="integer", compact=True)
            yield Button("start (s)", id="train-start", compact=True)
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
        if self.running:
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
            if Experiment is None:
                text = "training needs rnngraph.training.experiment (the engine's training API)"
            elif self.app.good_analysis is None:
                text = "fix the spec's problems first (F2)"
            elif not getattr(self.app.good_analysis.spec, "task", None):
                text = "the spec has no task: nothing to train on"
            else:
                text = "ready: s starts"
        self.query_one("#train-status", Label).update(f"  {text}")

    # -- running ----------------------------------------------------------------------
    @on(Button.Pressed, "#train-start")
    def action_start(self) -> None:
        if self.running or Experiment is None:
            return
        analysis = self.app.good_analysis
        if analysis is None or not getattr(analysis.spec, "task", None):
            self._status()
            return
        try:
            epochs = int(self.query_one("#train-epochs", Input).value or 0) or None
        except ValueError:
            epochs = None
        self.history = []
        self.query_one("#train-history", DataTable).clear()
        self._plot()
        self.running = True
        self._status("training…  x stops")
        self._train(analysis.spec, epochs, analysis.text)

    @work(thread=True, exclusive=True, group="train")
    def _train(self, spec, epochs: int | None, text: str) -> None:
        worker = get_current_worker()
        try:
            experiment = Experiment(spec, epochs=epochs)
            outcome = experiment.run(on_epoch=lambda record: self.post_message(self.Progress(dict(record))),
                                     should_stop=lambda: worker.is_cancelled)
        except Exception as err:  # a SpecError/DataError/RunError: shown, not raised
            self.post_message(self.Finished(None, None, text, f"{type(err).__name__}: {err}"))
            return
        self.post_message(self.Finished(outcome, experiment.net, text))

    @on(Input.Submitted, "#train-epochs")
    def _epochs_entered(self) -> None:
        self.query_one("#train-history", DataTable).focus()

    @on(Button.Pressed, "#train-stop")
    def action_stop(self) -> None:
        if self.running:
            self.workers.cancel_group(self, "train")
            self._status("stopping after this step…")

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
        self._plot()
        self._status(f"training…  epoch {record.get('epoch')}  loss {_num(record.get('train_loss'))}")

    def on_train_screen_finished(self, message: Finished) -> None:
        self.running = False
        if message.outcome is None:
            self._status(f"could not train: {message.error}")
            return
        outcome = message.outcome
        if not self.history and outcome.history:
            for record in outcome.history:
                self.on_train_screen_progress(self.Progress(record))
        shown = ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items()
                          if isinstance(v, float))
        self._status(f"{outcome.status}: {shown}" + (f"  ({outcome.message})" if outcome.message else ""))
        self._adopt(message.net, message.text)

    def _adopt(self, trained, text: str) -> None:
        """Copy trained parameters into the app's network (if the spec is unchanged)."""
        analysis = self.app.good_analysis
        if analysis is None or analysis.text != text or trained is None:
            return
        for name, value in trained.params.items():
            if name in analysis.net.params and analysis.net.params[name].shape == value.shape:
                analysis.net.params[name][...] = value
        self.app.analysis = analysis   # screens redraw with the trained weights

    def watch_running(self, running: bool) -> None:
        if self._ready:
            self.query_one("#train-start", Button).disabled = running
            self.query_one("#train-stop", Button).disabled = not running

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train" and event.state == WorkerState.CANCELLED:
            self.running = False

    def _plot(self) -> None:
        width = max(20, self.size.width - 12)
        self.query_one("#train-plot", Static).update(loss_plot(self.history, width=width, height=12))


def _num(value) -> str:
    return "" if value is None else f"{value:.5g}"
