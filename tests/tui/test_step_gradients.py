"""Pilot tests of the Step screen's second round (issue 21): the log-gradient plot, two specs side
by side, strips readable without colour, the row's vertex, which weights ran, labels in words,
80 columns; and the editor's hints (an isolated node) and theme."""

from __future__ import annotations

import numpy as np

from tui.app import RnnGraphApp
from tui.gradients import DENSITY, density_glyph, log_plot, markers, share_of_largest
from tui.widgets.problems import ProblemList
from tui.widgets.spec_editor import SpecEditor

from .conftest import settle, spec_path

SIZE = (160, 48)


def _view_text(app, width: int = 160) -> str:
    return app.screen.query_one("#step-view").plain_text(width=width)


async def _open_step(pilot, app, backward: bool = False) -> None:
    await pilot.press("f4")
    await settle(pilot, app)
    if backward:
        await pilot.press("b")
        await pilot.pause()


def _plot_rows(text: str, title: str) -> list[str]:
    """The rows (``10^k ┤...``) of the plot titled ``title``, cut to that plot's columns."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if title in line)
    start = lines[top].index("log10 |∂L/∂v| against t: " + title.split(": ")[-1])
    rows = []
    for line in lines[top + 1:]:
        if "┤" not in line[start:]:
            break
        rows.append(line[start:])
    return rows


def test_log_plot_places_each_decade_on_its_row():
    norms = {"h": 10.0 ** -np.arange(5, -1, -1)}       # 1e-5 .. 1e0 over t = 0..5
    lines = log_plot(norms, 30, height=6, decades=(-5, 0))
    rows = [line.split("┤")[1] for line in lines[:6]]
    for t in range(6):
        assert rows[5 - t][t] == "h"                    # t's value 10^(t-5) sits t rows above the bottom
    assert lines[0].lstrip().startswith("10^0 ┤") and lines[5].startswith("10^-5 ┤")
    assert "t=0" in lines[-1] and "t=5" in lines[-1]


def test_density_glyphs_and_shares_in_words():
    assert [density_glyph(x) for x in (0.0, 0.1, 0.4, 0.7, 1.0)] == [" ", "░", "▒", "▓", "█"]
    assert DENSITY == " ░▒▓█"
    assert share_of_largest(1.0) == "largest" and share_of_largest(0.63) == "63%"
    assert share_of_largest(0.0052) == "0.52%" and share_of_largest(3e-9) == "3e-09"
    assert share_of_largest(0.0) == "zero"
    assert markers(["lstm/fc", "lstm/c", "hidden"]) == {"lstm/fc": "f", "lstm/c": "c", "hidden": "h"}


async def test_backward_mode_plots_log_gradient_against_t():
    """Elman on the adding problem: the plot's h marks fall row by row towards t = 0."""
    app = RnnGraphApp(str(spec_path("elman_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app, backward=True)
        trace = app.screen.trace
        text = _view_text(app)
        assert "log10 |∂L/∂v| against t: elman_adding.yaml" in text
        assert "h hidden" in text and "10^0" in text
        rows = _plot_rows(text, "against t: elman_adding.yaml")
        plot = [row.split("┤", 1)[1] for row in rows]
        row_of = lambda col: next(r for r, line in enumerate(plot) if col < len(line) and line[col] == "h")  # noqa: E731
        g = trace.grad_norms["hidden"]
        late = int(np.argmax(g)) - 3                    # the peak itself is under y's mark
        assert g[late] > 1e6 * g[0]
        assert row_of(0) > row_of(late) + 5             # t = 0 is drawn decades lower
        assert row_of(0) == len(plot) - 1               # and it is the smallest value: the bottom row
        assert "vs its largest" in text and "of its max" not in text
        assert "at t=0, each node's gradient as a share of its largest: hidden " in text


async def test_a_second_spec_is_plotted_beside_the_first():
    """c, Enter (the guess: the LSTM of the same problem): both plots on one y-axis, side by side;
    the LSTM's cell keeps far more of its gradient at t = 0 than the Elman hidden layer."""
    app = RnnGraphApp(str(spec_path("elman_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app)
        await pilot.press("c")
        await pilot.pause()
        box = app.screen.query_one("#prompt-input")
        assert box.value.endswith("lstm_adding.yaml")
        await pilot.press("enter")
        await settle(pilot, app)
        screen = app.screen
        assert screen.compare_trace is not None and screen.backward   # gradients are what it compares
        other = screen.compare_trace
        assert other.steps == screen.trace.steps
        np.testing.assert_array_equal(other.inputs["x"], screen.trace.inputs["x"])   # the same sample
        text = _view_text(app)
        heads = [line for line in text.splitlines() if "against t: elman_adding.yaml" in line]
        assert heads and "against t: lstm_adding.yaml" in heads[0]     # one line: side by side
        left, right = (_plot_rows(text, f"against t: {n}") for n in ("elman_adding.yaml", "lstm_adding.yaml"))
        assert [r.split("┤")[0].strip() for r in left] == [r.split("┤")[0].strip() for r in right]
        assert "c lstm/c" in text
        cell, hidden = other.grad_norms["lstm/c"], screen.trace.grad_norms["hidden"]
        assert cell[0] / cell.max() > 1e3 * hidden[0] / hidden.max()
        # the same T for both when T changes
        screen.query_one("#step-steps").value = "30"
        screen.query_one("#step-steps").focus()
        await pilot.press("enter")
        await settle(pilot, app)
        assert screen.trace.steps == 30 and screen.compare_trace.steps == 30
        await pilot.press("c")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "no/such/spec.yaml"
        await pilot.press("enter")
        await settle(pilot, app)
        assert screen.compare_path.endswith("lstm_adding.yaml")        # a bad path leaves it as it was
        assert any("no/such/spec.yaml" in n.message for n in app._notifications)


async def test_strips_read_without_colour():
    """Plain text (no colour at all): the forward strip's density follows the node's mean value,
    the backward strip's follows log |dL/dv| (█ at the largest, ░ decades below)."""
    app = RnnGraphApp(str(spec_path("elman_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app)
        screen = app.screen
        await pilot.press("end")
        trace = screen.trace
        text = _view_text(app)
        row = next(line for line in text.splitlines() if line.split("│")[0].strip().endswith("hidden"))
        strip = row.split("│")[-1].strip()
        series = trace.values["hidden"].mean(axis=1)
        scale = abs(series).max()
        expected = "".join(density_glyph(abs(v) / scale) for v in series[:len(strip) - 1])
        assert strip[:-1] == expected[:len(strip) - 1] and "█" in strip
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("home")
        text = _view_text(app)
        row = next(line for line in text.splitlines() if line.split("│")[0].strip().endswith("hidden"))
        strip = row.split("│")[-1].strip()
        assert set(strip) <= set("░▒▓█▌-")
        g = trace.grad_norms["hidden"][:len(strip)]
        assert strip[int(np.argmax(g))] == "█" and strip[1] == "░"


async def test_backward_keys_say_where_time_goes():
    app = RnnGraphApp(str(spec_path("elman_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app, backward=True)
        keys = {k: b.binding.description for k, b in app.screen.active_bindings.items()}
        assert keys["left"] == "Back in time" and keys["right"] == "Forward in time"
        assert "Undo" not in keys.values() and "Backprop" not in keys.values()
        assert "k" not in keys                          # no cue to corrupt outside a Hopfield net


async def test_the_row_picked_shows_its_vertex_and_what_it_reads():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app)
        screen = app.screen
        await pilot.press("right", "right")
        text = _view_text(app)
        assert "▶ hidden" in text                      # the first node that is not an input
        assert "this step in the graph: hidden@2 = sigmoid(W x@2 + U context@1 + b)" in text
        context = screen.trace.values["context"][1]
        assert "context@1 = [" + " ".join(f"{v:+.3f}" for v in context) in text
        await pilot.press("down")
        text = _view_text(app)
        assert "▶ context" in text and "context@2 = hidden@2" in text


async def test_the_note_says_which_weights_ran(tmp_path):
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await _open_step(pilot, app)
        screen = app.screen
        note = str(screen.query_one("#step-note").render())
        assert note.startswith("initial weights")
        net = app.analysis.net
        saved = {k: v * 2.0 for k, v in net.params.items()}
        import rnngraph as rg
        other = rg.build(app.analysis.spec)
        for k, v in saved.items():
            other.params[k][...] = v
        run = tmp_path / "run"
        run.mkdir()
        other.save(str(run / "params.npz"))
        await pilot.press("p")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(run)
        await pilot.press("enter")
        await settle(pilot, app)
        assert "weights loaded from " + str(run / "params.npz") in str(screen.query_one("#step-note").render())
        trace = screen.trace
        expected = other.forward(trace.inputs, initial=trace.initial_full or None, steps=trace.steps)
        np.testing.assert_array_equal(trace.values["hidden"], np.asarray(expected["hidden"])[0])
        (tmp_path / "bad.npz").write_bytes(b"not an npz")
        assert screen.load_weights(str(tmp_path / "bad.npz")) is False
        await pilot.pause()
        assert any("bad.npz" in n.message for n in app._notifications)


async def test_step_screen_fits_80_by_24():
    """Names whole (not lst…), the status and the footer's keys inside the screen."""
    app = RnnGraphApp(str(spec_path("lstm_adding.yaml")))
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_step(pilot, app)
        screen = app.screen
        assert screen.has_class("narrow")
        status = screen.query_one("#step-status")
        assert status.region.right <= 80 and "t = 0 / " in str(status.render())
        text = _view_text(app, width=screen.query_one("#step-view").size.width)
        for name in ("lstm/ig", "lstm/fc", "lstm/tc", "lstm/h"):
            assert f"  {name} " in text
        await pilot.press("b")
        await pilot.pause()
        text = _view_text(app, width=screen.query_one("#step-view").size.width)
        assert "|∂L/∂v| t=" in text and "vs its largest" in text and "  lstm/ig " in text


async def test_an_isolated_node_is_a_warning_not_an_error():
    text = spec_path("elman_temporal_xor.yaml").read_text().replace("nodes:\n", "nodes:\n  lonely: {size: 2}\n", 1)
    app = RnnGraphApp(text=text)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.analysis.ok                          # the engine's check stays as it is
        problems = app.screen.query_one(ProblemList)
        shown = [str(problems.get_option_at_index(i).prompt) for i in range(problems.option_count)]
        line = text.splitlines().index("  lonely: {size: 2}") + 1
        assert shown == [f"⚠ {line}:3  nodes.lonely: node 'lonely' has no edges in or out: "
                         "it takes no part in the network"]
        assert problems.has_class("has-warnings") and not problems.has_class("has-problems")


async def test_the_editor_follows_the_app_theme():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen.query_one(SpecEditor)
        assert editor.theme == "css"                     # the default dark theme: the app's colours
        app.theme = "textual-light"
        await pilot.pause()
        assert editor.theme == "github_light"
        app.theme = "monokai"
        await pilot.pause()
        assert editor.theme == "monokai"
        app.theme = "textual-light"
        editor.mark_errors({0})
        await pilot.pause()
        assert editor._theme.syntax_styles["rnngraph.error"].bgcolor.name == "#ffd7d7"


async def test_edit_screen_at_80_by_24_folds_the_tables_and_resizes_the_split():
    from textual.widgets import TabbedContent
    from textual.widgets._footer import FooterKey

    from tui.widgets.graph_canvas import GraphCanvas
    from tui.widgets.splitter import Splitter

    app = RnnGraphApp(str(spec_path("lstm_adding.yaml")))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = app.screen
        tables = screen.query_one("#edit-tabs", TabbedContent)
        canvas = screen.query_one(GraphCanvas)
        assert not tables.display and canvas.size.height >= 15   # the picture takes the tables' rows
        keys = {k.key: k for k in screen.query(FooterKey)}
        assert keys["f1"].region.right <= 80 and keys["f10"].region.right <= 80
        picture = "\n".join(canvas.text_lines())
        assert "lstm" in picture and "lst…" not in picture
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert tables.display
        await pilot.press("ctrl+t")
        left = screen.query_one("#edit-left")
        before = left.outer_size.width
        await pilot.press("alt+right")
        await pilot.pause()
        assert left.outer_size.width == before + 4
        await pilot.press("alt+left", "alt+left")
        await pilot.pause()
        assert left.outer_size.width == before - 4
        bar = screen.query_one(Splitter)
        await pilot.mouse_down(bar)
        await pilot.hover(screen, offset=(30, 10))
        await pilot.mouse_up(screen, offset=(30, 10))
        await pilot.pause()
        assert left.outer_size.width == 30                        # dragged to column 30
        screen.query_one("#spec-editor").focus()
        screen.action_maximize_picture()                          # the palette's "Maximize the picture"
        await pilot.pause()
        assert screen.maximized is canvas and canvas.region.width == 80
    app = RnnGraphApp(str(spec_path("lstm_adding.yaml")))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        assert app.screen.query_one("#edit-tabs", TabbedContent).display   # room enough: shown
