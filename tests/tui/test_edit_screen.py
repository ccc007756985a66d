"""Pilot tests of the Edit screen: forms write YAML, errors show, quitting asks."""

from __future__ import annotations

import yaml
from textual.widgets import DataTable, Input, Select, TabbedContent

from tui.app import RnnGraphApp
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.forms import EdgeForm, NodeForm
from tui.dialogs.help import HelpDialog
from tui.widgets.graph_canvas import GraphCanvas
from tui.widgets.problems import ProblemList
from tui.widgets.spec_editor import SpecEditor

from .conftest import settle, spec_path

SIZE = (160, 48)


def _picture(app) -> str:
    return "\n".join(app.screen.query_one("#folded-graph", GraphCanvas).text_lines())


async def _select_node(pilot, app, name: str) -> None:
    screen = app.screen
    screen.query_one(TabbedContent).active = "tab-nodes"
    table = screen.query_one("#node-table", DataTable)
    row = table.get_row_index(name)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()
    assert screen.selected_node == name


async def test_editing_a_node_updates_the_yaml_and_the_graph(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "4 sigmoid" in _picture(app)
        await _select_node(pilot, app, "hidden")
        await pilot.press("f9")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NodeForm)
        form.query_one("#node-size", Input).value = "4"
        form.query_one("#node-activation", Select).value = "tanh"
        await pilot.click("#form-apply")
        await settle(pilot, app)
        text = app.screen.query_one(SpecEditor).text
        assert yaml.safe_load(text)["nodes"]["hidden"] == {"size": 4, "activation": "tanh"}
        assert "# the hidden layer: combines the current bit with the context" in text
        assert app.analysis.ok and app.analysis.graph.nodes["hidden"]["activation"] == "tanh"
        assert "4 tanh" in _picture(app)
        assert app.dirty
        # undo (focus on the table, not the editor) brings the old text back
        await pilot.press("ctrl+z")
        await settle(pilot, app)
        assert yaml.safe_load(app.spec_text)["nodes"]["hidden"] == {"size": 4, "activation": "sigmoid"}
        await pilot.press("ctrl+y")
        await settle(pilot, app)
        assert yaml.safe_load(app.spec_text)["nodes"]["hidden"]["activation"] == "tanh"


async def test_an_invalid_change_keeps_the_last_valid_picture(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await _select_node(pilot, app, "hidden")
        await pilot.press("f9")
        await pilot.pause()
        app.screen.query_one("#node-size", Input).value = "8"   # context (identity) stays 4
        await pilot.click("#form-apply")
        await settle(pilot, app)
        assert yaml.safe_load(app.spec_text)["nodes"]["hidden"]["size"] == 8
        assert any("identity" in p.what for p in app.analysis.problems)
        canvas = app.screen.query_one("#folded-graph", GraphCanvas)
        assert "4 sigmoid" in _picture(app) and "8 sigmoid" not in _picture(app)
        assert canvas.has_class("stale") and "last valid" in str(canvas.border_title)
        await pilot.press("f3")
        await settle(pilot, app)
        assert "last valid" in str(app.screen.query_one(GraphCanvas).border_title)
        await pilot.press("f2")
        await pilot.press("ctrl+z")
        await settle(pilot, app)
        assert app.analysis.ok and not canvas.has_class("stale")


async def test_adding_a_feedback_edge_draws_a_loop(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "z^-2" not in _picture(app)
        await pilot.press("f7")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EdgeForm)
        form.query_one("#edge-from", Select).value = "y"
        form.query_one("#edge-to", Select).value = "hidden"
        form.query_one("#edge-delay", Input).value = "2"
        await pilot.click("#form-apply")
        await settle(pilot, app)
        edges = yaml.safe_load(app.spec_text)["edges"]
        assert edges[-1] == {"from": "y", "to": "hidden", "delay": 2}
        assert app.analysis.ok
        picture = _picture(app)
        assert "z^-2" in picture
        layout = app.edit_screen.query_one(GraphCanvas).layout_data
        loop = next(loop for loop in layout.loops if loop.source == "y")
        assert (loop.target, loop.delay) == ("hidden", 2)
        rows = picture.splitlines()
        y, hidden = layout.vertices["y"], layout.vertices["hidden"]
        assert rows[y.y + 1][y.x + y.w - 1] == "╞"              # leaves y on its right
        assert rows[hidden.y + 1][hidden.x - 1] == "▶"          # comes back into hidden on its left
        assert "z^-2" in rows[loop.band_y]


async def test_a_bad_form_value_is_refused_in_the_form(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f6")
        await pilot.pause()
        form = app.screen
        form.query_one("#node-name", Input).value = "extra"
        form.query_one("#node-size", Input).value = "many"
        await pilot.click("#form-apply")
        await pilot.pause()
        assert app.screen is form           # still open, saying why
        assert "size" in str(form.query_one("#form-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, NodeForm)
        assert "extra" not in app.spec_text


async def test_an_invalid_edit_lists_the_error_and_jumps_to_its_line(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        editor = app.screen.query_one(SpecEditor)
        lines = editor.text.splitlines()
        row = next(i for i, line in enumerate(lines) if line.startswith("  hidden:"))
        editor.replace("  hidden: {size: 0, activation: sigmoid}",
                       (row, 0), (row, len(lines[row])))
        await settle(pilot, app)
        assert app.analysis.problems
        problem = app.analysis.problems[0]
        assert problem.line == row + 1
        assert row in editor.error_lines
        problems = app.screen.query_one(ProblemList)
        assert problems.has_class("has-problems")
        # the picture stays (the last valid version), and nothing crashed
        assert "hidden" in _picture(app)
        editor.move_cursor((0, 0))
        problems.focus()
        problems.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert editor.cursor_location[0] == row
        assert editor.has_focus
        # a YAML syntax error is a problem too
        editor.replace("nodes: [", (0, 0), (0, 0))
        await settle(pilot, app)
        problem = app.analysis.problems[0]
        assert problem.what.startswith("YAML syntax") and problem.line is not None
        assert problem.line - 1 in editor.error_lines


async def test_quitting_with_unsaved_edits_asks_first(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        editor = app.screen.query_one(SpecEditor)
        editor.focus()
        editor.move_cursor((0, 0))
        await pilot.press("#", " ", "x", "enter")
        await pilot.pause()
        assert app.dirty
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0
    assert elman.read_text() == spec_path("elman_temporal_xor.yaml").read_text()   # nothing was written


async def test_quitting_without_edits_does_not_ask(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_save_writes_the_file_atomically(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        editor = app.screen.query_one(SpecEditor)
        editor.replace("# saved by the test\n", (0, 0), (0, 0))
        await pilot.pause()
        assert app.dirty
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not app.dirty
        assert elman.read_text() == editor.text
        assert not [p for p in elman.parent.iterdir() if p.name.startswith(".rnngraph-")]


async def test_new_spec_from_a_template(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+n")
        await pilot.pause()
        options = app.screen.query_one("#template-list")
        index = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == "lstm")
        options.highlighted = index
        await pilot.press("enter")
        await settle(pilot, app)
        assert "type: lstm" in app.spec_text
        assert app.document.path is None
        assert app.analysis.ok
        assert "lstm" in _picture(app)


async def test_help_lists_the_keys_of_the_screen(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpDialog)
        keys = dict(app.screen.rows)
        assert "Add node" in keys.values() and "Unroll screen" in keys.values()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpDialog)


async def test_command_palette_lists_the_actions(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Add node", "Add edge", "Add block", "Save", "Unroll screen", "Undo"):
            assert title in titles


async def test_adding_a_block_and_removing_a_node(elman):
    from tui.dialogs.forms import BlockForm

    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f8")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, BlockForm)
        form.query_one("#block-name", Input).value = "memory"
        form.query_one("#block-type", Select).value = "gru"
        await pilot.pause()
        assert form.query_one("#block-variant", Select).value == "reset_after"
        form.query_one("#block-variant", Select).value = "reset_before"
        form.query_one("#block-size", Input).value = "3"
        await pilot.click("#form-apply")
        await settle(pilot, app)
        nodes = yaml.safe_load(app.spec_text)["nodes"]
        assert nodes["memory"] == {"type": "gru", "size": 3, "variant": "reset_before"}
        # feed it so it is part of the network, then look at its primitive nodes
        await pilot.press("f7")
        await pilot.pause()
        app.screen.query_one("#edge-from", Select).value = "x"
        app.screen.query_one("#edge-to", Select).value = "memory"
        await pilot.click("#form-apply")
        await settle(pilot, app)
        assert app.analysis.ok, app.analysis.problems
        assert "memory/rh" in app.analysis.graph          # reset_before's r * h(t-1)
        # remove it again: the node and the edge touching it go, after a question
        await _select_node(pilot, app, "memory")
        await pilot.press("f10")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot, app)
        data = yaml.safe_load(app.spec_text)
        assert "memory" not in data["nodes"]
        assert all(e["to"] != "memory" for e in data["edges"])
        assert app.analysis.ok


async def test_f2_to_f5_switch_screens_question_mark_shows_keys_and_the_footer_the_main_ones(elman):
    from textual.widgets._footer import FooterKey

    from tui.widgets.mode_bar import ModeBar

    app = RnnGraphApp(str(elman))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        for key, mode in (("f3", "unroll"), ("f4", "step"), ("f5", "train"), ("f2", "edit")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            tabs = app.screen.query_one(ModeBar).render_text().plain
            assert "F2 Edit" in tabs and "F5 Train" in tabs
            footer = {k.key for k in app.screen.query(FooterKey)}
            assert {"f1", "ctrl+s", "ctrl+q"} <= footer, (mode, footer)
        assert {"f6", "f7", "f8", "f9", "f10"} <= {k.key for k in app.screen.query(FooterKey)}
        # in the editor ? is a character; F1 shows the keys there
        editor = app.screen.query_one(SpecEditor)
        editor.focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpDialog) and "?" in editor.text
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpDialog) and app.screen.typing
        await pilot.press("escape")
        await pilot.press("f4")                     # elsewhere ? shows them
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpDialog)
        rows = app.screen.rows
        assert ("→", "Step") in rows and ("←", "Back") in rows and ("f4", "Step screen") in rows
        await pilot.press("escape")


def _rows(app, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_while_the_yaml_is_wrong_tables_and_picture_show_the_last_valid_graph(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        valid_edges, valid_nodes = _rows(app, "#edge-table"), _rows(app, "#node-table")
        assert ["2", "hidden", "context", "0", "identity", "—", ""] in valid_edges
        text = app.spec_text.replace("{from: hidden, to: context, weight: identity}",
                                     "{from: hidden, to: nowhere, weight: identity}")
        app.screen.set_text(text)
        await settle(pilot, app)
        assert any("nowhere" in p.what for p in app.analysis.problems)
        assert _rows(app, "#edge-table") == valid_edges       # the graph the picture shows
        assert _rows(app, "#node-table") == valid_nodes
        tabs = app.screen.query_one("#edit-tabs", TabbedContent)
        canvas = app.screen.query_one("#folded-graph", GraphCanvas)
        assert tabs.has_class("stale") and canvas.has_class("stale")
        assert "last valid" in str(tabs.border_title)
        await pilot.press("f10")                 # a row of the old version: not applied to the text
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog) and app.spec_text == text
        app.screen.set_text(text.replace("nowhere", "context") + "# fixed\n")
        await settle(pilot, app)
        assert app.analysis.ok and not tabs.has_class("stale")
        assert _rows(app, "#edge-table") == valid_edges


async def test_the_picture_highlights_the_selected_node_whatever_arrives_first(tmp_path):
    """The node table's row is the picture's highlighted box from the start (the
    table and the worker-drawn picture may come in either order); a box clicked
    inside an expanded block stays highlighted, though the tables select the block."""
    path = tmp_path / "lstm.yaml"
    path.write_text(spec_path("lstm_adding.yaml").read_text())
    app = RnnGraphApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        screen = app.screen
        canvas = screen.query_one("#folded-graph", GraphCanvas)
        first = screen.query_one("#node-table", DataTable).coordinate_to_cell_key((0, 0)).row_key.value
        assert screen.selected_node == first and canvas._selected_box().id == first
        screen.action_toggle_blocks()          # the blocks' inner nodes, drawn anew
        await settle(pilot, app)
        inner = next(v for v in canvas.layout_data.vertices if str(v).startswith("lstm/"))
        box = canvas.layout_data.vertices[inner]
        canvas.scroll_to(0, 0, animate=False)
        await pilot.pause()
        region = canvas.content_region
        await pilot.click("#folded-graph", offset=(region.x - canvas.region.x + box.x + 1,
                                                   region.y - canvas.region.y + box.y + 1))
        await settle(pilot, app, rounds=1)
        assert screen.selected_node == "lstm"
        assert canvas._selected_box().id == inner
