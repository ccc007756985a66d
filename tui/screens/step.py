"""Step: values flowing through the network one time step at a time.

Forward mode moves a cursor ``t`` from 0 over the sample's values; backward
mode starts at the last step and moves back in time, showing the norm of
``d loss / d v_n(t)`` for every node as a heat strip on a log scale, so a
vanishing gradient shows as a strip fading to black towards t = 0.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label

from ..widgets.mode_bar import ModeBar
from ..model import Analysis
from ..stepping import Trace
from ..widgets.step_view import StepView

MAX_STEPS = 10_000


class StepBody(VerticalScroll, inherit_bindings=False):
    """Scrolls by pages only: arrows and Home and End belong to stepping and picking a node."""

    BINDINGS = [
        Binding("pageup", "page_up", "Page Up", show=False),
        Binding("pagedown", "page_down", "Page Down", show=False),
    ]


class StepScreen(Screen):
    """→ and ← move in time; b switches to the backward pass; ↑ ↓ pick the node whose
    vertex is shown; c puts a second spec beside this one; p loads trained weights."""

    TITLE = "Step"
    BINDINGS = [
        # forward mode: time runs on to the right
        Binding("right", "step(1)", "Step"),
        Binding("left", "step(-1)", "Back"),
        # backward mode: the backward pass runs on to the left, from t = T-1
        Binding("left", "backprop(1)", "Back in time"),
        Binding("right", "backprop(-1)", "Forward in time"),
        Binding("up", "select(-1)", "Node", show=False),
        Binding("down", "select(1)", "Node", show=False),
        Binding("c", "compare", "Compare"),
        Binding("p", "load_weights", "Weights"),
        Binding("home", "jump(0)", "First step", show=False),
        Binding("end", "jump(-1)", "Last step", show=False),
        Binding("b", "toggle_backward", "Fwd/bwd"),
        Binding("right_square_bracket", "sweep(1)", "Sweep"),
        Binding("left_square_bracket", "sweep(-1)", "Sweep back", show=False),
        Binding("n", "new_sample", "Sample"),
        Binding("k", "corrupt", "Corrupt cue"),
        Binding("t", "focus_steps", "Set T", show=False, priority=True),
    ]

    t: reactive[int] = reactive(0)
    backward: reactive[bool] = reactive(False)
    seed: reactive[int] = reactive(0)
    corrupt: reactive[float | None] = reactive(None)   # Hopfield: fraction of a pattern flipped for the cue

    def __init__(self) -> None:
        super().__init__(id="step-screen")
        self.trace: Trace | None = None
        self.message = ""
        self.steps = 1                       # T of the sample shown
        self.requested: int | None = None    # T typed by the user; None: the whole sample
        self.selected: int | None = None     # row of the node whose vertex is shown (None: the first non-input)
        self.compare_path: str | None = None # a second spec drawn beside this one
        self.compare_trace: Trace | None = None
        self.updates = 0                      # async Hopfield: the single-unit updates applied so far

    def compose(self) -> ComposeResult:
        yield ModeBar("step", id="mode-bar")
        with Horizontal(id="step-bar", classes="bar"):
            yield Label("T =")
            yield Input("", id="step-steps", type="integer", compact=True,
                        placeholder="all", tooltip="steps of the sample (Enter); empty: all")
            yield Button("← step", id="step-back", compact=True)
            yield Button("step →", id="step-forward", compact=True)
            yield Button("fwd/bwd (b)", id="step-mode", compact=True)
            yield Button("new sample (n)", id="step-sample", compact=True)
            yield Label("", id="step-status", markup=False)
        yield Label("", id="step-note", markup=False)
        with StepBody(id="step-body"):
            yield StepView(id="step-view")
        yield Footer(compact=True)

    _ready = False   # set once mounted: watchers fire before that

    def on_mount(self) -> None:
        self._ready = True
        self.watch(self.app, "analysis", self._analysis_changed)
        self.query_one(StepView).focus()

    NARROW = 100    # columns below which the buttons the footer's keys stand in for are hidden

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < self.NARROW, "narrow")

    def on_screen_resume(self) -> None:
        self.query_one(StepView).focus()

    def _analysis_changed(self, analysis: Analysis | None) -> None:
        self._rerun()

    _run_token = 0      # the latest run asked for; older workers' results are dropped
    _ran_on = None      # (analysis, steps, seed) of the trace shown

    def _rerun(self) -> None:
        if not self._ready:
            return
        analysis = self.app.runnable_analysis    # the last valid one while the text is wrong
        if analysis is None:
            why = "the spec has problems: fix them on the Edit screen (F2)"
            self._run_token += 1
            self._ran_on = None
            self.trace = None
            self.message = why
            self._draw()
            return
        key = (self.requested, self.seed, self.corrupt)
        if (self.app.picture_is_stale and self._ran_on is not None
                and self._ran_on[0] is analysis and self._ran_on[1] == key):
            self._draw()       # still the last valid network and sample: only the note changes
            return
        self._ran_on = (analysis, key)
        self._run_token += 1
        self._run(analysis, self.requested, self.seed, self._run_token, self.corrupt)
        if self.compare_path is not None and self.compare_trace is not None and \
                (self.compare_trace.steps != (self.requested or self.compare_trace.steps) or
                 self._compared_seed != self.seed):
            self._compare(self.compare_path, self.requested, self.seed)   # the same T and sample

    @work(thread=True, exclusive=True, group="step-run")
    def _run(self, analysis: Analysis, steps: int | None, seed: int, token: int,
             corrupt: float | None = None) -> None:
        try:
            trace = Trace.run(analysis, steps, seed, corrupt)
            message = ""
        except Exception as err:  # shown, never a crash
            trace, message = None, f"forward failed: {type(err).__name__}: {err}"
        self.app.call_from_thread(self._ran, trace, message, token)

    def _ran(self, trace: Trace | None, message: str, token: int) -> None:
        if token != self._run_token:
            return
        self.trace, self.message = trace, message
        self.refresh_bindings()      # k (corrupt) is offered for a Hopfield net only
        self.updates = 0             # a new cue: settling starts again from it
        if trace is not None:
            new_length = trace.steps != self.steps
            self.steps = trace.steps
            if new_length:
                self.query_one("#step-steps", Input).value = str(trace.steps)
            t = self.steps - 1 if self.backward and new_length else min(self.t, self.steps - 1)
            if self._unit_stepping:
                t = 0
            if t != self.t:
                self.t = t          # draws
                return
        self._draw()

    def _draw(self) -> None:
        if not self._ready:
            return
        view = self.query_one(StepView)
        view.show(self.trace, self.t, self.backward, self.message, self.selected, self.compare_trace,
                  (self._file_name(self.app.document.path or self.app.document.name),
                   self._file_name(self.compare_path or "")),
                  self.updates if self._unit_stepping else None)
        if self.trace is not None:          # the Unroll screen's cursor follows it
            self.app.step_vertex = (view.chosen(), self.t, self.steps)
        if self.trace is None:
            status = ""
        elif self.backward:
            status = f"  backward  t = {self.t} / {self.steps - 1}  (← to t-1)"
        elif self._unit_stepping:
            status = f"  update {self.updates} / {len(self.trace.unit_order)}  (sweep t = {self.t})"
        else:
            status = f"  forward  t = {self.t} / {self.steps - 1}"
        self.query_one("#step-status", Label).update(status)
        note = self.trace.note if self.trace is not None else ""
        if self.trace is not None:
            note = f"{self.trace.weights};  {note}"
        if self.trace is not None and self.app.picture_is_stale:
            note = "the text has problems (F2): this is the last valid version;  " + note
        self.query_one("#step-note", Label).update(note)

    # -- controls ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "step":
            return not self.backward
        if action == "backprop":
            return self.backward
        if action == "corrupt":       # only a Hopfield net has a cue to corrupt
            return self.trace is not None and self.trace.energy is not None
        if action == "sweep":         # async Hopfield nets: → is one unit, ] a sweep
            return self._unit_stepping
        return True

    @property
    def _unit_stepping(self) -> bool:
        """→ and ← move one single-unit update (an async Hopfield net, forward mode)."""
        return self.trace is not None and self.trace.unit_states is not None and not self.backward

    def _set_update(self, k: int) -> None:
        """Show the state after ``k`` single-unit updates; ``t`` is the sweep they reach."""
        n = self.trace.unit_states.shape[1]
        self.updates = min(max(0, k), len(self.trace.unit_order))
        t = min(self.steps - 1, max(0, -(-self.updates // n) - 1))
        if t != self.t:
            self.t = t               # draws
        else:
            self._draw()

    def action_sweep(self, delta: int) -> None:
        """Async Hopfield nets: to the end of the next (or back to the end of the previous) sweep."""
        if not self._unit_stepping:
            return
        n = self.trace.unit_states.shape[1]
        k = self.updates
        self._set_update((k // n + 1) * n if delta > 0 else ((k - 1) // n) * n if k else 0)

    @staticmethod
    def _file_name(path: str) -> str:
        import os
        return os.path.basename(path)

    def action_select(self, delta: int) -> None:
        if self.trace is not None:
            now = self.trace.order.index(self.query_one(StepView).chosen())
            self.selected = (now + delta) % len(self.trace.order)
            self._draw()

    def action_compare(self) -> None:
        """Ask for a second spec file; its gradients are plotted beside this one's (an empty answer
        removes it)."""
        from ..dialogs.prompt import PromptDialog

        def chosen(path: str | None) -> None:
            if path is None:                  # empty, or Escape
                self.compare_path, self.compare_trace = None, None
                self._draw()
                return
            self._compare(path.strip(), self.requested, self.seed)

        here = self.app.document.path or ""
        guess = here.replace("elman", "lstm") if "elman" in here else ""
        self.app.push_screen(PromptDialog("Compare with the spec file (path; empty or Escape: no comparison):",
                                          self.compare_path or guess), chosen)

    @work(thread=True, exclusive=True, group="step-compare")
    def _compare(self, path: str, steps: int | None, seed: int) -> None:
        from ..model import analyse
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as err:
            self.app.call_from_thread(self.notify, f"{path}: cannot read it ({err.strerror or err})",
                                      severity="error")
            return
        analysis = analyse(text, path)
        if not analysis.ok or analysis.net is None:
            first = analysis.problems[0].text if analysis.problems else "it does not build"
            self.app.call_from_thread(self.notify, f"{path}: {first}", severity="error")
            return
        try:
            trace = Trace.run(analysis, steps, seed)
        except Exception as err:  # shown, never a crash
            self.app.call_from_thread(self.notify, f"{path}: forward failed: {err}", severity="error")
            return
        self.app.call_from_thread(self._compared, path, trace)

    _compared_seed = 0

    def _compared(self, path: str, trace: Trace) -> None:
        self.compare_path, self.compare_trace = path, trace
        self._compared_seed = self.seed
        if not self.backward:
            self.action_toggle_backward()    # the comparison is of gradients: show them
        else:
            self._draw()

    def action_load_weights(self) -> None:
        """Load parameters saved by ``rnngraph run`` (a run folder or its params.npz) into the network."""
        from ..dialogs.prompt import PromptDialog

        def chosen(path: str | None) -> None:
            if path:
                self.load_weights(path)

        self.app.push_screen(PromptDialog("Load weights from (a run folder or a params.npz):", "runs/"),
                             chosen)

    def load_weights(self, path: str) -> bool:
        """Put the parameters at ``path`` into the app's network; False (and a notice) when they do not fit."""
        import os
        analysis = self.app.runnable_analysis
        if analysis is None or analysis.net is None:
            self.notify("the spec has problems: fix them before loading weights", severity="error")
            return False
        file = os.path.join(path, "params.npz") if os.path.isdir(path) else path
        try:
            analysis.net.load(file)
        except Exception as err:  # a DataError saying which file and which array
            self.notify(f"{file}: {err}", severity="error")
            return False
        analysis.weights = f"weights loaded from {file}"
        self._ran_on = None
        self.app.analysis = analysis       # every screen redraws with them
        return True

    def watch_t(self, t: int) -> None:
        self._draw()

    def watch_backward(self, backward: bool) -> None:
        self.refresh_bindings()
        self._draw()

    def watch_seed(self, seed: int) -> None:
        self._rerun()

    def action_step(self, delta: int) -> None:
        if self._unit_stepping:
            self._set_update(self.updates + delta)
            return
        self.t = min(max(0, self.t + delta), self.steps - 1)

    def action_backprop(self, delta: int) -> None:
        """One step of the backward pass: from t to t-1 (``delta`` 1) or back."""
        self.action_step(-delta)

    def action_jump(self, t: int) -> None:
        if self._unit_stepping:
            self._set_update(len(self.trace.unit_order) if t < 0 else 0)
            return
        self.t = self.steps - 1 if t < 0 else t

    def action_toggle_backward(self) -> None:
        self.backward = not self.backward
        self.updates = 0
        self.t = self.steps - 1 if self.backward else 0

    def action_new_sample(self) -> None:
        if self.trace is not None and self.trace.samples == 1:
            self.notify("the spec's data has a single sample: there is no other to draw")
            return
        self.seed += 1

    def watch_corrupt(self, corrupt) -> None:
        self._rerun()

    def action_corrupt(self) -> None:
        """Hopfield nets: cue with a stored pattern, 10% more of its units flipped each time
        (back to the data's cue after 50%)."""
        following = {None: 0.1, 0.1: 0.2, 0.2: 0.3, 0.3: 0.4, 0.4: 0.5}
        self.corrupt = following.get(self.corrupt)

    def action_focus_steps(self) -> None:
        """t: focus the T box now, not after the queued messages (as ``Widget.focus`` does), so
        digits sent in the same burst as the t land in the box."""
        self.set_focus(self.query_one("#step-steps", Input))

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
        text = event.value.strip()
        if not text:
            self.requested = None
        else:
            try:
                value = int(text)
            except ValueError:
                value = 0
            if not 1 <= value <= MAX_STEPS:
                self.notify(f"T must be a whole number from 1 to {MAX_STEPS}", severity="warning")
                event.input.value = str(self.steps)
                return
            self.requested = value
        self.query_one(StepView).focus()
        self._rerun()

    def current_values(self) -> dict:
        """Every node's value at the current step, as shown (for tests)."""
        if self.trace is None:
            return {}
        return {n: self.trace.at(n, self.t) for n in self.trace.order}

    def current_norms(self) -> dict:
        """Every node's gradient norm at the current step, as shown (for tests)."""
        if self.trace is None or self.trace.grad_norms is None:
            return {}
        return {n: self.trace.grad_norm(n, self.t) for n in self.trace.grad_norms}
