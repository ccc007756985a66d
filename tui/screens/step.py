"""Step: values flowing through the network one time step at a time."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label

from ..model import Analysis, has_engine
from ..stepping import Trace
from ..widgets.step_view import StepView


class StepScreen(Screen):
    """→ and ← move in time; b switches to the backward pass."""

    TITLE = "Step"
    BINDINGS = [
        Binding("right", "step(1)", "Step →"),
        Binding("left", "step(-1)", "← Step"),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("b", "toggle_backward", "Fwd/Bwd"),
        Binding("n", "new_sample", "New sample"),
    ]

    t: reactive[int] = reactive(0)
    backward: reactive[bool] = reactive(False)
    steps: reactive[int] = reactive(10)
    seed: reactive[int] = reactive(0)

    def __init__(self) -> None:
        super().__init__(id="step-screen")
        self.trace: Trace | None = None
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="step-bar", classes="bar"):
            yield Label("T =")
            yield Input(str(self.steps), id="step-steps", type="integer", compact=True)
            yield Button("← step", id="step-back", compact=True)
            yield Button("step →", id="step-forward", compact=True)
            yield Button("forward/backward (b)", id="step-mode", compact=True)
            yield Button("new sample (n)", id="step-sample", compact=True)
            yield Label("", id="step-status")
        with VerticalScroll(id="step-body"):
            yield StepView(id="step-view")
        yield Footer()

    _ready = False   # set once mounted: watchers fire before that

    def on_mount(self) -> None:
        self._ready = True
        self.watch(self.app, "analysis", self._analysis_changed)
        self.query_one(StepView).focus()

    def on_screen_resume(self) -> None:
        self.query_one(StepView).focus()

    def _analysis_changed(self, analysis: Analysis | None) -> None:
        self._rerun()

    def _rerun(self) -> None:
        if not self._ready:
            return
        analysis = self.app.good_analysis
        if analysis is None:
            if not has_engine("build"):
                why = "stepping needs the engine (rnngraph.build / Network.forward)"
            else:
                why = "the spec has problems: fix them on the Edit screen (F2)"
            self.trace = None
            self.message = why
            self._draw()
            return
        self._run(analysis, self.steps, self.seed)

    @work(thread=True, exclusive=True, group="step-run")
    def _run(self, analysis: Analysis, steps: int, seed: int) -> None:
        try:
            trace = Trace.run(analysis, steps, seed)
            message = ""
        except Exception as err:  # shown, never a crash
            trace, message = None, f"forward failed: {type(err).__name__}: {err}"
        self.app.call_from_thread(self._ran, trace, message)

    def _ran(self, trace: Trace | None, message: str) -> None:
        self.trace, self.message = trace, message
        if trace is not None:
            if trace.steps != self.steps:   # the spec's data is shorter than asked
                self.set_reactive(StepScreen.steps, trace.steps)
                self.query_one("#step-steps", Input).value = str(trace.steps)
            self.t = min(self.t, trace.steps - 1)
        self._draw()

    def _draw(self) -> None:
        if not self._ready:
            return
        view = self.query_one(StepView)
        view.show(self.trace, self.t, self.backward, self.message)
        mode = "backward" if self.backward else "forward"
        note = self.trace.note if self.trace is not None else ""
        status = f"  {mode}  t = {self.t} / {self.steps - 1}   {note}"
        self.query_one("#step-status", Label).update(status)

    # -- controls ----------------------------------------------------------------------
    def watch_t(self, t: int) -> None:
        self._draw()

    def watch_backward(self, backward: bool) -> None:
        self._draw()

    def watch_steps(self, steps: int) -> None:
        self.t = min(self.t, steps - 1)
        self._rerun()

    def watch_seed(self, seed: int) -> None:
        self._rerun()

    def action_step(self, delta: int) -> None:
        self.t = min(max(0, self.t + delta), self.steps - 1)

    def action_jump(self, t: int) -> None:
        self.t = self.steps - 1 if t < 0 else t

    def action_toggle_backward(self) -> None:
        self.backward = not self.backward
        self.t = self.steps - 1 if self.backward else 0

    def action_new_sample(self) -> None:
        self.seed += 1

    @on(Button.Pressed, "#step-forward")
    def _forward(self) -> None:
        self.action_step(1)

    @on(Button.Pressed, "#step-back")
    def _back(self) -> None:
        self.action_step(-1)

    @on(Button.Pressed, "#step-mode")
    def _mode(self) -> None:
        self.action_toggle_backward()

    @on(Button.Pressed, "#step-sample")
    def _sample(self) -> None:
        self.action_new_sample()

    @on(Input.Submitted, "#step-steps")
    def _steps_typed(self, event: Input.Submitted) -> None:
        try:
            value = int(event.value)
        except ValueError:
            return
        if 1 <= value <= 10_000:
            self.steps = value
        self.query_one(StepView).focus()

    def current_values(self) -> dict:
        """Every node's value at the current step, as shown (for tests)."""
        if self.trace is None:
            return {}
        return {n: self.trace.at(n, self.t) for n in self.trace.order}
