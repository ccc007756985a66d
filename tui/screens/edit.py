"""Edit: the YAML beside the folded graph, its problems, tables and forms."""

from __future__ import annotations

import asyncio
import yaml
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import (Button, Checkbox, DataTable, Footer, Static, TabbedContent,
                             TabPane, TextArea)

from ..widgets.mode_bar import ModeBar
from .. import yamledit
from ..dialogs.confirm import ConfirmDialog
from ..dialogs.forms import BlockForm, EdgeForm, NodeForm
from ..layout import folded_layout
from ..model import Analysis
from ..widgets.graph_canvas import GraphCanvas, Stale, draw_in_worker
from ..widgets.inspector import inspect_node
from ..widgets.problems import ProblemList
from ..widgets.splitter import Splitter
from ..widgets.spec_editor import SpecEditor


def _cell(value) -> Text:
    """A table cell from raw YAML: literal text (a ``[/b]`` in the YAML is no markup)."""
    if value is None:
        return Text("")
    if isinstance(value, list):
        return Text(", ".join(map(str, value)))
    return Text(str(value))


class EditScreen(Screen):
    """The spec's text, validated as it is typed, and everything derived from it."""

    TITLE = "Edit"
    BINDINGS = [
        Binding("f6", "add_node", "Add node", priority=True),
        Binding("f7", "add_edge", "Add edge", priority=True),
        Binding("f8", "add_block", "Add block", priority=True),
        Binding("f9", "edit_selected", "Change", priority=True),
        Binding("f10", "remove_selected", "Remove", priority=True),
        Binding("ctrl+z", "undo", "Undo", show=False),
        Binding("ctrl+y", "redo", "Redo", show=False),
        Binding("ctrl+b", "toggle_blocks", "Blocks as boxes", show=False),
        Binding("alt+left", "resize_split(-4)", "Narrower editor", show=False, priority=True),
        Binding("alt+right", "resize_split(4)", "Wider editor", show=False, priority=True),
        Binding("ctrl+t", "toggle_tables", "Tables", show=False, priority=True),
    ]

    NARROW = 100        # columns below which the tables fold away (Ctrl+T brings them back)
    MIN_PANE = 20       # the fewest columns the split leaves either pane

    selected_node: reactive[str | None] = reactive(None)
    collapse_blocks: reactive[bool] = reactive(True)

    def __init__(self) -> None:
        super().__init__(id="edit-screen")
        self.data: dict = {}          # the YAML the tables show (the picture's version)
        self.drawn: Analysis | None = None   # the analysis the picture was drawn from
        self.tabled: Analysis | None = None  # the analysis the tables were filled from

    # -- layout ----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ModeBar("edit", id="mode-bar")
        with Horizontal(id="edit-main"):
            with Vertical(id="edit-left"):
                yield SpecEditor(id="spec-editor")
                yield ProblemList(id="problem-list")
            yield Splitter(id="edit-splitter")
            with Vertical(id="edit-right"):
                with Horizontal(id="edit-actions"):
                    yield Button("+node", id="add-node", compact=True, tooltip="add a node (F6)")
                    yield Button("+edge", id="add-edge", compact=True, tooltip="add an edge (F7)")
                    yield Button("+block", id="add-block", compact=True,
                                 tooltip="add an lstm or gru block (F8)")
                    yield Button("change", id="edit-selected", compact=True,
                                 tooltip="change the selected node or edge (F9)")
                    yield Button("remove", id="remove-selected", compact=True,
                                 tooltip="remove the selected node or edge (F10)")
                    yield Checkbox("blocks as boxes", value=True, id="collapse-blocks",
                                   compact=True, tooltip="draw lstm/gru blocks as one box (Ctrl+B)")
                yield GraphCanvas(id="folded-graph")
                with TabbedContent(id="edit-tabs"):
                    with TabPane("Edges", id="tab-edges"):
                        yield DataTable(id="edge-table", cursor_type="row", zebra_stripes=True)
                    with TabPane("Nodes", id="tab-nodes"):
                        yield DataTable(id="node-table", cursor_type="row", zebra_stripes=True)
                    with TabPane("Inspector", id="tab-inspector"):
                        yield Static("select a node (table or graph)", id="inspector")
        yield Footer(compact=True)

    @property
    def editor(self) -> SpecEditor:
        return self.query_one("#spec-editor", SpecEditor)

    _ready = False   # set once mounted: watchers fire before that

    # -- the split and the side panels ------------------------------------------------
    tables_shown: bool | None = None   # None: by the width (folded below NARROW columns)

    def on_resize(self, event) -> None:
        self._fold_tables()

    def _fold_tables(self) -> None:
        narrow = self.size.width < self.NARROW
        self.set_class(narrow, "narrow")
        shown = (not narrow) if self.tables_shown is None else self.tables_shown
        self.query_one("#edit-tabs", TabbedContent).display = shown
        # the form keys and F1 need the footer's width; Ctrl+P still opens the palette
        self.query_one(Footer).show_command_palette = not narrow

    def action_toggle_tables(self) -> None:
        """Show or fold the Edges/Nodes/Inspector tables (the picture takes their rows)."""
        self.tables_shown = not self.query_one("#edit-tabs", TabbedContent).display
        self._fold_tables()

    def action_resize_split(self, delta: int) -> None:
        """Move the editor/picture split by ``delta`` columns."""
        left = self.query_one("#edit-left")
        self._split_at(left.outer_size.width + delta)

    @on(Splitter.Moved)
    def _splitter_moved(self, event: Splitter.Moved) -> None:
        self._split_at(event.x)

    def _split_at(self, columns: int) -> None:
        """The editor takes ``columns`` columns (kept between MIN_PANE and the width less MIN_PANE)."""
        width = self.size.width
        columns = max(self.MIN_PANE, min(width - self.MIN_PANE - 1, columns))
        left = self.query_one("#edit-left")
        left.styles.min_width = self.MIN_PANE
        left.styles.width = columns

    def action_maximize_picture(self) -> None:
        """The folded graph alone on the screen (Escape gives the panes back)."""
        canvas = self.query_one(GraphCanvas)
        canvas.focus()
        self.maximize(canvas)

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()   # the UI loop layout workers give way to
        self._ready = True
        self.query_one("#edge-table", DataTable).add_columns(
            "#", "from", "to", "delay", "weight", "trainable", "name")
        self.query_one("#node-table", DataTable).add_columns(
            "node", "size", "role", "activation", "combine", "init", "type")
        self.editor.load_text(self.app.spec_text)
        self.watch(self.app, "analysis", self._show_analysis)
        self.editor.focus()

    # -- text -> app ---------------------------------------------------------------
    @on(TextArea.Changed, "#spec-editor")
    def _text_changed(self, event: TextArea.Changed) -> None:
        self.app.text_changed(event.text_area.text)

    def set_text(self, text: str) -> None:
        """Replace the editor's text with ``text`` as one undoable edit."""
        old = self.editor.text
        if old == text:
            return
        start = 0
        limit = min(len(old), len(text))
        while start < limit and old[start] == text[start]:
            start += 1
        end_old, end_new = len(old), len(text)
        while end_old > start and end_new > start and old[end_old - 1] == text[end_new - 1]:
            end_old -= 1
            end_new -= 1
        doc = self.editor.document
        a = doc.get_location_from_index(start)
        b = doc.get_location_from_index(end_old)
        self.editor.replace(text[start:end_new], a, b, maintain_selection_offset=False)

    def load_text(self, text: str) -> None:
        """A new document: replace everything and start a fresh undo history."""
        self.editor.load_text(text)
        self.app.text_changed(text)

    # -- app -> screen -----------------------------------------------------------------
    def _show_analysis(self, analysis: Analysis | None) -> None:
        if analysis is None:
            return
        self.query_one(ProblemList).show(analysis.problems, analysis.warnings)
        self.editor.mark_errors({p.line - 1 for p in analysis.problems if p.line})
        # the picture and the tables: the last valid version, kept while the text has problems
        stale = self.app.picture_is_stale
        for view in (self.query_one(GraphCanvas), self.query_one("#edit-tabs", TabbedContent)):
            view.set_class(stale, "stale")
            view.border_title = "last valid version (the text has problems)" if stale else None
        shown = self.app.picture_analysis
        if shown is not self.tabled:
            self.tabled = shown
            try:
                data = yaml.safe_load(shown.text)
            except (yaml.YAMLError, RecursionError):   # listed as a problem already
                data = None
            if isinstance(data, dict):
                self.data = data
                self._fill_tables()
        if shown is not self.drawn:
            self.drawn = shown
            self._relayout(shown)
        self._show_inspector()

    def _fill_tables(self) -> None:
        nodes = self.data.get("nodes") if isinstance(self.data.get("nodes"), dict) else {}
        edges = self.data.get("edges") if isinstance(self.data.get("edges"), list) else []
        table = self.query_one("#node-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for name, f in nodes.items():
            f = f if isinstance(f, dict) else {}
            table.add_row(_cell(name), _cell(f.get("size")), _cell(f.get("role", "hidden")),
                          _cell(f.get("activation", "" if f.get("type") else "identity")),
                          _cell(f.get("combine", "" if f.get("type") else "sum")),
                          _cell(f.get("init", "")),
                          _cell(f.get("type", "")) + (f" {f['variant']}" if f.get("variant") else ""),
                          key=str(name))
        if table.row_count:
            row = min(keep, table.row_count - 1)
            table.move_cursor(row=row)
            if self.selected_node not in nodes:   # at first, or its node is gone: the table's row
                self.selected_node = str(list(nodes)[row])
        table = self.query_one("#edge-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for i, e in enumerate(edges):
            e = e if isinstance(e, dict) else {}
            delay = e.get("delay", 0)
            table.add_row(str(i), _cell(e.get("from")), _cell(e.get("to")),
                          _cell(f"z^-{delay}" if delay else "0"), _cell(e.get("weight", "dense")),
                          Text("—") if e.get("weight") == "identity" else _cell(e.get("trainable", True)),
                          _cell(e.get("name", "")), key=str(i))
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    _layout_token = 0   # the latest layout asked for; older workers' results are dropped

    def _relayout(self, analysis: Analysis) -> None:
        self._layout_token += 1
        if analysis.graph is None or not len(analysis.graph):
            self.query_one(GraphCanvas).show(None, "(no graph: the spec needs nodes)")
            return
        self._layout_worker(analysis.graph, self.collapse_blocks, self._layout_token)

    @work(thread=True, exclusive=True, group="folded-layout")
    def _layout_worker(self, graph, collapse: bool, token: int) -> None:
        try:
            drawn = draw_in_worker(
                lambda checkpoint: folded_layout(graph, collapse=collapse, checkpoint=checkpoint),
                lambda: token == self._layout_token, self._loop)
        except Stale:
            return
        self.app.call_from_thread(self._laid_out, *drawn, token)

    def _laid_out(self, layout, picture, message: str, token: int) -> None:
        if token == self._layout_token:
            canvas = self.query_one(GraphCanvas)
            canvas.show(layout, message, picture)
            shown = layout.vertices if layout is not None else {}
            if self.selected_node in shown and canvas.selected not in shown:
                # chosen before the picture could show it (set again, it would scroll the picture
                # back; a box clicked inside an expanded block stays selected)
                canvas.selected = self.selected_node

    def watch_collapse_blocks(self, collapse: bool) -> None:
        if self._ready and self.drawn is not None:
            self._relayout(self.drawn)

    @on(Checkbox.Changed, "#collapse-blocks")
    def _collapse_changed(self, event: Checkbox.Changed) -> None:
        self.collapse_blocks = event.value

    def action_toggle_blocks(self) -> None:
        box = self.query_one("#collapse-blocks", Checkbox)
        box.value = not box.value

    # -- selection ----------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#node-table")
    def _node_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.selected_node = event.row_key.value

    @on(DataTable.RowSelected, "#node-table")
    @on(DataTable.RowSelected, "#edge-table")
    def _row_chosen(self) -> None:
        self.action_edit_selected()

    @on(GraphCanvas.VertexSelected, "#folded-graph")
    def _vertex_clicked(self, event: GraphCanvas.VertexSelected) -> None:
        vertex = event.vertex
        graph = self.drawn.graph if self.drawn else None
        if graph is not None and vertex in graph:
            vertex = graph.nodes[vertex].get("block") or vertex
        self.selected_node = vertex
        self.query_one(TabbedContent).active = "tab-inspector"

    def watch_selected_node(self, name: str | None) -> None:
        self._show_inspector()
        if self._ready:
            canvas = self.query_one(GraphCanvas)
            # not laid out yet: it shows the selection once it is; laid out: only a box it has
            # (a block's name while its inner boxes are shown would highlight none)
            if canvas.layout_data is None or name in canvas.layout_data.vertices:
                canvas.selected = name

    def _show_inspector(self) -> None:
        if not self._ready:
            return
        analysis = self.app.picture_analysis
        inspector = self.query_one("#inspector", Static)
        if self.selected_node is None or analysis is None:
            inspector.update("select a node (table or graph)")
            return
        inspector.update(inspect_node(analysis, self.selected_node))

    # -- forms ----------------------------------------------------------------------
    def _spec_nodes(self) -> dict:
        nodes = self.data.get("nodes")
        return nodes if isinstance(nodes, dict) else {}

    def _spec_edges(self) -> list:
        edges = self.data.get("edges")
        return edges if isinstance(edges, list) else []

    def _apply(self, change, *args) -> None:
        try:
            text = change(self.editor.text, *args)
        except yamledit.YamlEditError as err:
            self.notify(f"cannot change the YAML: {err}", severity="error")
            return
        except Exception as err:  # a bug in the edit: the text stays as it was, the app runs on
            self.notify(f"cannot change the YAML ({type(err).__name__}: {err}); "
                        "please report it", severity="error")
            return
        self.set_text(text)

    @on(Button.Pressed, "#add-node")
    def action_add_node(self) -> None:
        def done(result):
            if result:
                self._apply(yamledit.set_node, *result)
        self.app.push_screen(NodeForm(taken=tuple(self._spec_nodes())), done)

    @on(Button.Pressed, "#add-block")
    def action_add_block(self) -> None:
        def done(result):
            if result:
                self._apply(yamledit.set_node, *result)
        self.app.push_screen(BlockForm(taken=tuple(self._spec_nodes())), done)

    @on(Button.Pressed, "#add-edge")
    def action_add_edge(self) -> None:
        def done(result):
            if result:
                self._apply(yamledit.add_edge, result)
        self.app.push_screen(EdgeForm(list(self._spec_nodes())), done)

    def _rows_are_old(self) -> bool:
        """The tables show the last valid version, not the text: say so (F9/F10 refuse)."""
        if self.app.picture_is_stale:
            self.notify("the tables show the last valid version: fix the problems in the text "
                        "first (or undo, Ctrl+Z)", severity="warning")
            return True
        return False

    def _target(self):
        """What F9/F10 act on: the row of the active table."""
        tabs = self.query_one(TabbedContent)
        if tabs.active == "tab-edges":
            table = self.query_one("#edge-table", DataTable)
            if table.row_count:
                return "edge", table.cursor_row
            return None
        if self.selected_node in self._spec_nodes():
            return "node", self.selected_node
        return None

    @on(Button.Pressed, "#edit-selected")
    def action_edit_selected(self) -> None:
        if self._rows_are_old():
            return
        target = self._target()
        if target is None:
            self.notify("select a node or an edge first", severity="warning")
            return
        kind, key = target
        if kind == "edge":
            edges = self._spec_edges()
            if not 0 <= key < len(edges):
                return
            def done(result, index=key):
                if result:
                    self._apply(yamledit.set_edge, index, result)
            self.app.push_screen(EdgeForm(list(self._spec_nodes()), edges[key], key), done)
            return
        fields = self._spec_nodes().get(key)
        fields = fields if isinstance(fields, dict) else {}
        form = BlockForm if fields.get("type") else NodeForm
        def done_node(result):
            if result:
                self._apply(yamledit.set_node, *result)
        self.app.push_screen(form(key, fields, taken=tuple(self._spec_nodes())), done_node)

    @on(Button.Pressed, "#remove-selected")
    def action_remove_selected(self) -> None:
        if self._rows_are_old():
            return
        target = self._target()
        if target is None:
            self.notify("select a node or an edge first", severity="warning")
            return
        kind, key = target
        if kind == "edge":
            question = f"Remove edge {key} ({_cell(self._spec_edges()[key].get('from')).plain} → " \
                       f"{_cell(self._spec_edges()[key].get('to')).plain})?"
        else:
            question = f"Remove node {key} and the edges that touch it?"

        def done(yes: bool | None) -> None:
            if not yes:
                return
            if kind == "edge":
                self._apply(yamledit.remove_edge, key)
            else:
                self._apply(yamledit.remove_node, key)
                self.selected_node = None
        self.app.push_screen(ConfirmDialog(question, yes="Remove"), done)

    # -- problems ------------------------------------------------------------------
    @on(ProblemList.Jump)
    def _jump(self, event: ProblemList.Jump) -> None:
        problem = event.problem
        if problem.line:
            row = problem.line - 1
            column = (problem.column or 1) - 1
            self.editor.move_cursor((row, column), center=True)
            self.editor.focus()

    # -- undo ------------------------------------------------------------------------
    def action_undo(self) -> None:
        self.editor.undo()

    def action_redo(self) -> None:
        self.editor.redo()
