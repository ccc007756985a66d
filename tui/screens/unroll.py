"""Unroll: the network as the deep feedforward DAG it is for T steps."""

from __future__ import annotations

import asyncio
import networkx as nx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..widgets.mode_bar import ModeBar
from ..equations import vertex_equation
from ..layout import collapse_blocks, vertex_label
from ..model import Analysis
from ..stepping import loss_steps
from ..unrolled import fitted_picture
from ..widgets.graph_canvas import GraphCanvas, Stale, draw_in_worker

WINDOW = 5        # time steps drawn at once; [ and ] page through the rest
MAX_STEPS = 10_000  # the largest T the box takes
TYPING_PAUSE = 0.25  # seconds without a key in the T box before T follows what it holds


class UnrolledCanvas(GraphCanvas):
    """The unrolled picture; the arrow keys move the cursor (the highlighted vertex) in time
    and across the layers of a step instead of scrolling."""

    BINDINGS = [
        Binding("left", "cursor(-1, 0)", "Cursor", show=False),
        Binding("right", "cursor(1, 0)", "Cursor", show=False),
        Binding("up", "cursor(0, -1)", "Cursor", show=False),
        Binding("down", "cursor(0, 1)", "Cursor", show=False),
    ]

    class CursorMoved(Message):
        """An arrow key asked the cursor to move ``dt`` steps and ``rows`` boxes down."""

        def __init__(self, dt: int, rows: int) -> None:
            super().__init__()
            self.dt, self.rows = dt, rows

    def action_cursor(self, dt: int, rows: int) -> None:
        self.post_message(self.CursorMoved(dt, rows))


def _vid(vertex) -> str:
    node, t = vertex
    return f"v-{t}-{node}"


def block_equation(graph: nx.MultiDiGraph, node, t: int) -> tuple[str, list[str]]:
    """``lstm@3 = lstm(x@3, lstm@2)``: a collapsed block as one function."""
    kind = graph.nodes[node].get("activation", "block")
    args = [vertex_label(u, t - a.get("delay", 0)) for u, _, a in graph.in_edges(node, data=True)]
    return f"{vertex_label(node, t)} = {kind}({', '.join(args)})", [
        "a block drawn as one box; clear 'blocks as boxes' for its gates and cell"]


def arcs_text(graph: nx.MultiDiGraph, node, t: int, steps: int) -> list[str]:
    """The arcs into and out of ``(node, t)`` in the DAG unrolled for ``steps``.

    One short line each (``context@3 → hidden@4  context->hidden``) so the
    side panel does not wrap them.
    """
    here = vertex_label(node, t)
    into, out = [], []
    for u, _, k, a in graph.in_edges(node, keys=True, data=True):
        into.append(f"  {vertex_label(u, t - a.get('delay', 0))} → {here}  {k}")
    for _, v, k, a in graph.out_edges(node, keys=True, data=True):
        d = a.get("delay", 0)
        if 0 <= t + d < steps:
            out.append(f"  {here} → {vertex_label(v, t + d)}  {k}")
    lines = ["arcs in:", *(into or ["  (none)"])]
    lines += ["arcs out:", *(out or [f"  (none within T = {steps})"])]
    return lines


class UnrollScreen(Screen):
    """Time as columns; choose a vertex to read its equation."""

    TITLE = "Unroll"
    BINDINGS = [
        Binding("left_square_bracket", "shift(-1)", "Earlier", priority=True),
        Binding("right_square_bracket", "shift(1)", "Later", priority=True),
        Binding("plus", "steps(1)", "T+1"),
        Binding("minus", "steps(-1)", "T-1"),
        Binding("c", "toggle_collapse", "Blocks as boxes"),
    ]

    steps: reactive[int] = reactive(5)
    start: reactive[int] = reactive(0)
    collapse: reactive[bool] = reactive(True)

    def __init__(self) -> None:
        super().__init__(id="unroll-screen")
        self.graph: nx.MultiDiGraph | None = None   # the graph drawn (collapsed or not)
        self.selected = None

    def compose(self) -> ComposeResult:
        yield ModeBar("unroll", id="mode-bar")
        with Horizontal(id="unroll-bar", classes="bar"):
            yield Label("T =")
            yield Input(str(self.steps), id="unroll-steps", type="integer", compact=True)
            yield Button("◀ earlier", id="unroll-earlier", compact=True,
                         tooltip="move the window of steps earlier ([)")
            yield Button("later ▶", id="unroll-later", compact=True,
                         tooltip="move the window of steps later (])")
            yield Checkbox("blocks as boxes", value=True, id="unroll-collapse", compact=True)
            yield Label("", id="unroll-window", markup=False)
            yield Label("", id="unroll-loss", markup=False)
        with Horizontal(id="unroll-main"):
            yield UnrolledCanvas(id="unrolled-graph")
            with Vertical(id="unroll-side"):
                yield OptionList(id="vertex-list")
                yield Static("choose a vertex", id="equation", markup=False)
        yield Footer(compact=True)

    _ready = False   # set once mounted: watchers fire before that

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()   # the UI loop layout workers give way to
        self._ready = True
        self.watch(self.app, "analysis", self._analysis_changed)
        self.query_one(GraphCanvas).focus()

    def _analysis_changed(self, analysis: Analysis | None) -> None:
        self._refresh()

    _followed = None    # the Step screen's vertex last followed

    def on_screen_resume(self) -> None:
        """Coming from the Step screen: the cursor goes to the vertex it is at (same T)."""
        at = getattr(self.app, "step_vertex", None)
        if at is None or at == self._followed or self.graph is None:
            return
        self._followed = at
        node, t, steps = at
        full = self.app.picture_analysis.graph if self.app.picture_analysis is not None else None
        if node not in self.graph and full is not None and node in full:   # a block's part: its box
            node = full.nodes[node].get("block") or node
        if node not in self.graph:
            return
        self.steps = steps
        self.select((node, t))

    _shown_window = None   # the steps the last picture drew (fewer than WINDOW when they do not fit)

    @property
    def window(self) -> int:
        """The steps a page holds: those of the picture shown ([ and ] turn by it)."""
        return min(self.steps, self._shown_window or WINDOW)

    def on_resize(self) -> None:
        self._refresh()

    _drawn = None       # what the picture shows: (analysis, (steps, start, collapse))

    def _refresh(self) -> None:
        if not self._ready:
            return
        analysis = self.app.picture_analysis      # the last valid one while the text is wrong
        canvas = self.query_one(GraphCanvas)
        stale = self.app.picture_is_stale
        canvas.set_class(stale, "stale")
        canvas.border_title = "last valid version (the text has problems)" if stale else None
        stop = min(self.steps, self.start + self.window)
        self.query_one("#unroll-window", Label).update(
            f" steps {self.start}..{stop - 1} of {self.steps}"
            + ("" if analysis is None or analysis.ok else "  (spec has problems: structure only)"))
        canvas_size = (canvas.scrollable_content_region.width, canvas.scrollable_content_region.height)
        key = (self.steps, self.start, self.collapse, canvas_size)
        if self._drawn is not None and self._drawn[0] is analysis and self._drawn[1] == key:
            return
        self._drawn = (analysis, key)
        self._layout_token += 1
        if analysis is None or analysis.graph is None or not len(analysis.graph):
            self.graph = None
            self.query_one("#vertex-list", OptionList).clear_options()
            canvas.show(None, "(no graph: fix the spec on the Edit screen, F2)")
            return
        graph = collapse_blocks(analysis.graph) if self.collapse else analysis.graph
        self.graph = graph
        self._fill_vertices(graph, stop)
        canvas.show(None, "laying out…")
        self._layout(analysis, graph, self.steps, self.start, min(self.steps, WINDOW), self._layout_token,
                     canvas_size)

    _layout_token = 0   # the latest layout asked for; older workers' results are dropped

    @work(thread=True, exclusive=True, group="unroll-layout")
    def _layout(self, analysis, graph, steps: int, start: int, window: int, token: int,
                size: tuple[int, int] = (0, 0)) -> None:
        known = self._loss_known
        if known is not None and known[0] is analysis and known[1] == steps:
            counted, note = known[2]
        else:
            try:
                counted, note = loss_steps(analysis.spec, analysis.net, steps)
            except Exception as err:   # the data could not be made: draw without loss marks
                counted, note = None, f"loss steps unknown ({type(err).__name__}: {err})"
            self._loss_known = (analysis, steps, (counted, note))
        try:
            drawn = draw_in_worker(
                lambda checkpoint: fitted_picture(graph, steps, start=start, window=window,
                                                  width=size[0] or None, height=size[1] or None,
                                                  loss_steps=counted, checkpoint=checkpoint),
                lambda: token == self._layout_token, self._loop, render=lambda picture, _: picture.lines)
        except Stale:
            return
        self.app.call_from_thread(self._laid_out, *drawn, token, note)

    def _laid_out(self, layout, picture, message: str, token: int, note: str = "") -> None:
        if token != self._layout_token:
            return
        self.loss_note = note
        self.query_one("#unroll-loss", Label).update(note)
        canvas = self.query_one(GraphCanvas)
        canvas.show(layout, message, picture)
        if layout is None:
            return
        if layout.window != self._shown_window:
            self._shown_window = layout.window
            stop = min(self.steps, self.start + self.window)
            self.query_one("#unroll-window", Label).update(f" steps {self.start}..{stop - 1} of {self.steps}")
            self._fill_vertices(self.graph, stop)
        if self.selected is not None and self.selected in layout.vertices:
            canvas.selected = self.selected
        elif self.selected is None:                 # the cursor starts at the top of the first step
            first = min((v for v in layout.vertices.values() if len(v.id) == 2),
                        key=lambda v: (v.id[1], v.y), default=None)
            if first is not None:
                self.select(first.id)

    def _fill_vertices(self, graph, stop: int) -> None:
        options = self.query_one("#vertex-list", OptionList)
        options.clear_options()
        options.add_options([Option(Text(vertex_label(n, t)), id=_vid((n, t)))
                             for t in range(self.start, stop) for n in graph.nodes])

    # -- controls --------------------------------------------------------------------
    def watch_steps(self, steps: int) -> None:
        if self.start > max(0, steps - self.window):
            self.start = max(0, steps - self.window)
        if self._ready:
            box = self.query_one("#unroll-steps", Input)
            if box.value != str(steps) and not self._typing:
                # a T from the keys (+/-): shown in the box without reading it back as typed
                with box.prevent(Input.Changed):
                    box.value = str(steps)
        self._refresh()

    def watch_start(self, start: int) -> None:
        self._refresh()

    def watch_collapse(self, collapse: bool) -> None:
        self.selected = None
        self._refresh()

    _typed_timer = None   # applies the T being typed once the typing pauses

    @property
    def _typing(self) -> bool:
        return self._typed_timer is not None

    @on(Input.Changed, "#unroll-steps")
    def _steps_typed(self, event: Input.Changed) -> None:
        """Typing in the T box: T follows once the typing pauses (Enter applies at once)."""
        if self._typed_timer is not None:
            self._typed_timer.stop()
        self._typed_timer = self.set_timer(TYPING_PAUSE, self._apply_typed_steps)

    @on(Input.Submitted, "#unroll-steps")
    def _steps_submitted(self) -> None:
        self._apply_typed_steps()
        box = self.query_one("#unroll-steps", Input)
        if box.value != str(self.steps):      # not a valid T: show the T drawn
            with box.prevent(Input.Changed):
                box.value = str(self.steps)
        self.query_one(GraphCanvas).focus()

    def _apply_typed_steps(self) -> None:
        """Set T from what the box holds now (a number from 1 to MAX_STEPS; else T stays)."""
        if self._typed_timer is not None:
            self._typed_timer.stop()
            self._typed_timer = None
        try:
            value = int(self.query_one("#unroll-steps", Input).value)
        except ValueError:
            return
        if 1 <= value <= MAX_STEPS:
            self.steps = value

    def action_steps(self, delta: int) -> None:
        self.steps = max(1, self.steps + delta)

    @on(Button.Pressed, "#unroll-earlier")
    def _earlier(self) -> None:
        self.action_shift(-1)

    @on(Button.Pressed, "#unroll-later")
    def _later(self) -> None:
        self.action_shift(1)

    loss_note = ""       # where the loss counts, as the window's label says
    _loss_known = None   # (analysis, T, (steps where the loss counts, note)): the data is made once

    def action_shift(self, direction: int) -> None:
        """Page through time: the next (or previous) ``window`` steps."""
        step = self.window
        self.start = min(max(0, self.start + direction * step), max(0, self.steps - self.window))

    @on(Checkbox.Changed, "#unroll-collapse")
    def _collapse_changed(self, event: Checkbox.Changed) -> None:
        self.collapse = event.value

    def action_toggle_collapse(self) -> None:
        box = self.query_one("#unroll-collapse", Checkbox)
        box.value = not box.value

    # -- selection --------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#vertex-list")
    @on(OptionList.OptionSelected, "#vertex-list")
    def _vertex_chosen(self, event) -> None:
        _, t, node = event.option.id.split("-", 2)
        self.select((node, int(t)))

    @on(GraphCanvas.VertexSelected, "#unrolled-graph")
    def _vertex_clicked(self, event: GraphCanvas.VertexSelected) -> None:
        vertex = event.vertex
        if len(vertex) == 3:  # a ghost ("ghost", node, t)
            return
        self.select(vertex)

    @on(UnrolledCanvas.CursorMoved)
    def _cursor_moved(self, event: UnrolledCanvas.CursorMoved) -> None:
        """Arrows: the cursor moves a step in time (turning the page at the window's edge)
        or a box up or down the step's column."""
        graph = self.graph
        if graph is None:
            return
        node, t = self.selected if self.selected is not None else (next(iter(graph.nodes)), self.start)
        if event.dt:
            t = min(max(0, t + event.dt), self.steps - 1)
        if event.rows:
            layout = self.query_one(GraphCanvas).layout_data
            column = [v.id[0] for v in sorted((v for v in layout.vertices.values()
                                               if len(v.id) == 2 and v.id[1] == self.selected[1]),
                                              key=lambda v: v.y)] if layout is not None and self.selected else []
            if node in column:
                node = column[min(max(0, column.index(node) + event.rows), len(column) - 1)]
        self.select((node, t))

    def select(self, vertex) -> None:
        """Show the equation of ``vertex = (node, t)`` and highlight it (the cursor), turning
        the page of steps to it when it lies outside the window."""
        graph = self.graph
        if graph is None or vertex[0] not in graph:
            return
        node, t = vertex
        if not 0 <= t < self.steps:
            return
        self.selected = vertex
        if not self.start <= t < self.start + self.window:
            self.start = min((t // self.window) * self.window, max(0, self.steps - self.window))
        canvas = self.query_one(GraphCanvas)
        if canvas.layout_data is not None and vertex in canvas.layout_data.vertices:
            canvas.selected = vertex
        self._show_in_list(vertex)
        if graph.nodes[node].get("collapsed"):
            equation, legend = block_equation(graph, node, t)
        else:
            shown = self.app.picture_analysis
            shapes = shown.param_shapes if shown is not None else {}
            equation, legend = vertex_equation(graph, node, t, shapes)
        text = "\n".join([equation, "", *legend, "", *arcs_text(graph, node, t, self.steps)])
        self._equation = text
        self.query_one("#equation", Static).update(text)

    _equation = ""

    def _show_in_list(self, vertex) -> None:
        options = self.query_one("#vertex-list", OptionList)
        try:
            index = options.get_option_index(_vid(vertex))
        except Exception:      # the list is being refilled for another window
            return
        if options.highlighted != index:
            with options.prevent(OptionList.OptionHighlighted):
                options.highlighted = index

    def equation_text(self) -> str:
        """The equation panel's text (for tests)."""
        return self._equation
