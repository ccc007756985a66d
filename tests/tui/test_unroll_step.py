"""Pilot tests of the Unroll and Step screens."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from textual.widgets import Input, OptionList

from tui.app import RnnGraphApp
from tui.unrolled import fitted_picture
from tui.model import analyse
from tui.stepping import Trace
from tui.widgets.graph_canvas import GraphCanvas

from .conftest import settle, spec_path

SIZE = (160, 48)


async def test_unroll_shows_time_columns_and_vertex_equations():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        screen = app.screen
        steps = screen.query_one("#unroll-steps", Input)
        steps.value = "30"
        await settle(pilot, app)
        picture = "\n".join(screen.query_one(GraphCanvas).text_lines())
        assert "hidden@0" in picture and "hidden@4" in picture
        assert "hidden@5" not in picture                  # a window of steps, not all 30
        await pilot.press("right_square_bracket")
        await settle(pilot, app)
        assert screen.start == 5                          # ] turns the page: the next 5 steps
        picture = "\n".join(screen.query_one(GraphCanvas).text_lines())
        assert "hidden@9" in picture and "context@4" in picture   # ghost of the step before
        assert "hidden@4 " not in picture
        options = screen.query_one("#vertex-list", OptionList)
        index = next(i for i in range(options.option_count)
                     if options.get_option_at_index(i).id == "v-6-hidden")
        options.focus()
        options.highlighted = index
        await pilot.pause()
        text = screen.equation_text()
        assert "hidden@6 = sigmoid(W x@6 + U context@5 + b)" in text
        assert "context@5 → hidden@6" in " ".join(text.split())


async def test_unroll_expands_and_collapses_blocks():
    app = RnnGraphApp(str(spec_path("lstm_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        screen = app.screen
        picture = "\n".join(screen.query_one(GraphCanvas).text_lines())
        assert "lstm@0" in picture and "lstm/c@0" not in picture
        screen.query_one(GraphCanvas).focus()
        await pilot.press("c")
        await settle(pilot, app)
        canvas = screen.query_one(GraphCanvas)
        picture = "\n".join(canvas.text_lines())
        assert ("lstm/c", 0) in canvas.layout_data.vertices and ("lstm/h", 1) in canvas.layout_data.vertices
        # too tall for the screen with full boxes: one-row boxes, names without the block, said so
        assert canvas.layout_data.compact and "│ c@0 " in picture and "(lstm/): h is lstm/h" in picture
        assert len(canvas.text_lines()) <= canvas.scrollable_content_region.height


async def test_stepping_forward_gives_net_forward_values():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        steps = screen.steps
        analysis = app.analysis
        trace = screen.trace
        assert "temporal_xor" in trace.note          # the spec's own data, not random numbers
        inputs, initial = trace.inputs, trace.initial_full
        assert inputs["x"].shape == (1, steps, 1)
        expected = analysis.net.forward(inputs, initial=initial or None, steps=steps)
        for t in range(steps):
            assert screen.t == t
            shown = screen.current_values()
            assert set(shown) == set(expected)
            for node, value in shown.items():
                np.testing.assert_array_equal(value, np.asarray(expected[node])[0, t])
            await pilot.press("right")
        assert screen.t == steps - 1          # stepping past the end stays at the end
        await pilot.press("left")
        assert screen.t == steps - 2
        await pilot.press("b")
        await pilot.pause()
        assert screen.backward and screen.t == steps - 1


async def test_hopfield_state_is_drawn_as_a_bitmap():
    """The Step screen settles the cue by the spec's dynamics (async: one unit at a time),
    one engine sweep per step, not net.forward's synchronous steps; the energy falls and the
    state ends on the stored pattern the cue was made from."""
    from rnngraph.engine.hopfield import energy, settle as settle_sweep
    app = RnnGraphApp(str(spec_path("hopfield_discrete.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        assert screen.trace is not None and screen.trace.hopfield == ["s"]
        trace = screen.trace
        assert "stored" in trace.note                 # the task's patterns, by the spec's rule
        assert "`async` updates" in trace.settle_note and "fixed point" in trace.settle_note
        before = trace.initial["s"]
        for t in range(trace.steps):                  # each step is one engine sweep from the last
            swept = settle_sweep(trace.net, before[None, :], update="async", sweeps=1, seed=t, until_stable=False)
            np.testing.assert_array_equal(trace.values["s"][t], swept.states[0])
            before = trace.values["s"][t]
        states = np.vstack([trace.initial["s"][None, :], trace.values["s"]])
        np.testing.assert_allclose(trace.energy, energy(trace.net, states))
        assert np.all(np.diff(trace.energy) <= 1e-9) and trace.energy[-1] < trace.energy[0]
        assert trace.overlaps[-1].max() == 1.0        # recalled: the state is a stored pattern
        assert set(np.unique(screen.current_values()["s"])) <= {-1.0, 1.0}
        rendered = screen.query_one("#step-view").plain_text()
        assert "██" in rendered and "energy (cue, then each update)" in rendered   # async: unit by unit
        assert "overlap with pattern" in rendered and "nearest" in rendered


async def test_hopfield_cue_is_a_pattern_corrupted_by_k_and_n_picks_the_next():
    from rnngraph.training.data import task_splits
    app = RnnGraphApp(str(spec_path("hopfield_discrete.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        spec = app.analysis.spec
        patterns = task_splits(spec, app.analysis.net, spec.seed)[0].task_data.extra["patterns"]
        await pilot.press("k", "k")                   # 20% of the units flipped
        await settle(pilot, app)
        cue = screen.trace.initial["s"]
        assert "pattern 0 of 10 with 20 of 100 units flipped (20%)" in screen.trace.note
        assert int(np.sum(cue != patterns[0])) == 20
        await pilot.press("n")
        await settle(pilot, app)
        assert int(np.sum(screen.trace.initial["s"] != patterns[1])) == 20
        assert screen.trace.overlaps[0, 1] == 0.6     # the cue's overlap with its pattern: 1 - 2 * 0.2


async def test_a_spec_without_data_steps_through_random_inputs():
    text = spec_path("elman_temporal_xor.yaml").read_text().replace(
        "task: {generator: temporal_xor, length: 3000}", "")
    app = RnnGraphApp(text=text)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        assert screen.trace is not None and "random" in screen.trace.note
        inputs = screen.trace.inputs
        expected = app.analysis.net.forward(inputs, steps=screen.steps)
        await pilot.press("right", "right")
        for node, value in screen.current_values().items():
            np.testing.assert_array_equal(value, np.asarray(expected[node])[0, 2])


def _norm_shown(screen, node) -> str:
    """The text of the row of ``node`` in the backward view."""
    text = screen.query_one("#step-view").plain_text(width=160)
    return next(line for line in text.splitlines() if line.split("│")[0].strip().lstrip("▶ ") == node)


async def test_backward_mode_shows_the_norms_of_backward_trace():
    app = RnnGraphApp(str(spec_path("elman_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        trace = screen.trace
        assert "adding" in trace.note
        T = screen.steps
        assert T >= 50                        # the whole sample: its loss is at the end
        expected = app.analysis.net.backward_trace(trace.inputs, trace.targets_full,
                                                   initial=trace.initial_full or None,
                                                   mask=trace.masks or None)
        await pilot.press("b")
        await pilot.pause()
        assert screen.backward and screen.t == T - 1
        keys = {k: b.binding.description for k, b in screen.active_bindings.items()}
        assert keys["left"] == "Back in time" and "Step" not in keys["right"]
        for t in range(T - 1, -1, -1):
            assert screen.t == t
            shown = screen.current_norms()
            assert set(shown) == set(trace.order)
            for node in ("hidden", "y"):
                norm = np.linalg.norm(np.asarray(expected[node])[0, t])
                assert shown[node] == pytest.approx(norm, rel=1e-12, abs=0)
            if t % 10 == 0:                   # the number on the screen is that one too
                norm = float(np.linalg.norm(np.asarray(expected["hidden"])[0, t]))
                row = _norm_shown(screen, "hidden")
                assert (f"{norm:.3e}" if norm else " 0 ") in row
            await pilot.press("left")         # the backward pass moves on to t - 1
        assert screen.t == 0
        await pilot.press("right")            # and back
        assert screen.t == 1
        # the lesson: the Elman network's gradient all but vanishes 40+ steps back
        hidden = trace.grad_norms["hidden"]
        assert hidden[0] < 1e-6 * hidden.max()
        share = f"{hidden[0] / hidden.max():.0e}"
        assert f"share of its largest: hidden {share}" in screen.query_one("#step-view").plain_text(width=160)


async def test_backward_mode_on_an_lstm_keeps_the_gradient():
    app = RnnGraphApp(str(spec_path("lstm_adding.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        screen = app.screen
        await pilot.press("b")
        await pilot.pause()
        trace = screen.trace
        expected = app.analysis.net.backward_trace(trace.inputs, trace.targets_full,
                                                   initial=trace.initial_full or None,
                                                   mask=trace.masks or None)
        await pilot.press("home")
        shown = screen.current_norms()
        for node in ("lstm/c", "lstm/h", "lstm/i"):
            assert shown[node] == pytest.approx(np.linalg.norm(np.asarray(expected[node])[0, 0]),
                                                rel=1e-12, abs=0)
        cell = trace.grad_norms["lstm/c"]
        other = Trace.run(analyse(spec_path("elman_adding.yaml").read_text()), None, 0)
        hidden = other.grad_norms["hidden"]
        # far more of the final error reaches t = 0 through the cell than through tanh(U h)
        assert cell[0] / cell.max() > 1e3 * hidden[0] / hidden.max()


async def test_typing_t_quickly_settles_on_the_last_value(monkeypatch):
    """2, 20, 200 typed in a row: the screen settles on T = 200 after a few layouts."""
    import tui.screens.unroll as unroll
    layouts = []

    def counted(*args, **kwargs):
        layouts.append(args[1])
        return fitted_picture(*args, **kwargs)

    monkeypatch.setattr(unroll, "fitted_picture", counted)
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        screen = app.screen
        box = screen.query_one("#unroll-steps", Input)
        layouts.clear()
        for value in ("2", "20", "200"):
            box.value = value
        await asyncio.wait_for(settle(pilot, app), 10)
        seen = set()
        for _ in range(5):                 # still 200 a while later: nothing writes T back
            await pilot.pause(0.1)
            seen.add((box.value, screen.steps))
        assert seen == {("200", 200)}
        assert len(layouts) <= 3, f"{len(layouts)} layouts for three values of T"
        assert str(screen.query_one("#unroll-window").render()).strip().endswith("of 200")


def _chain_spec(hidden: int) -> str:
    """``hidden`` tanh layers in a row, each with its own recurrence: a large unrolled DAG."""
    nodes = ["  x: {role: input, size: 1}"]
    edges = []
    source = "x"
    for i in range(hidden):
        nodes.append(f"  h{i}: {{size: 64, activation: tanh}}")
        edges += [f"  - {{from: {source}, to: h{i}}}", f"  - {{from: h{i}, to: h{i}, delay: 1}}"]
        source = f"h{i}"
    nodes.append("  y: {role: output, size: 1, activation: identity}")
    edges.append(f"  - {{from: {source}, to: y}}")
    return "\n".join(["rnngraph: 1", "nodes:", *nodes, "edges:", *edges]) + "\n"


async def test_keys_are_answered_while_a_large_graph_is_laid_out():
    """71 nodes unrolled: the UI thread is never held up for long, and a key opens its dialog."""
    from textual import events
    from tui.dialogs.help import HelpDialog

    app = RnnGraphApp(text=_chain_spec(69))
    assert len(app.analysis.graph) == 71
    async with app.run_test(size=SIZE):
        # keys posted as the terminal sends them: Pilot.press would wait for the layout
        app.post_message(events.Key("f3", None))
        loop = asyncio.get_running_loop()
        began = last = loop.time()
        longest, asked, answered, shown = 0.0, None, None, None
        while shown is None or last - shown < 0.5:        # the layout, then its first repaints
            await asyncio.sleep(0.02)
            now = loop.time()
            longest, last = max(longest, now - last), now
            if asked is None and now - began > 0.2:
                asked = now
                app.post_message(events.Key("f1", None))
            if answered is None and isinstance(app.screen, HelpDialog):
                answered = now
            canvas = app.get_screen_stack("unroll")[0].query_one(GraphCanvas) \
                if app.current_mode == "unroll" else None
            if shown is None and canvas is not None and canvas.layout_data is not None:
                shown = now
        assert now - began < 60, "the layout never ended"
        # generous bounds for a loaded machine: drawing in the UI thread holds it up 5 s and more
        assert answered is not None and answered - asked < 2.5
        assert longest < 2.5, f"the UI thread was held up {longest:.2f} s"
        assert "h68@0" in "\n".join(canvas.text_lines())


async def test_unroll_pages_through_eight_steps_and_marks_where_the_loss_counts():
    """] turns the page at T = 8 too (it did nothing up to T = 8); many-to-one (loss_on: last)
    marks only the last step, many-to-many every step."""
    app = RnnGraphApp(str(spec_path("parity_many_to_one.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#unroll-steps", Input).value = "8"
        await settle(pilot, app)
        canvas = screen.query_one(GraphCanvas)
        assert canvas.layout_data.loss_steps == ()           # steps 0..4 of 8: the loss counts at 7
        assert "last step only (many-to-one)" in str(screen.query_one("#unroll-loss").render())
        await pilot.press("right_square_bracket")
        await settle(pilot, app)
        assert screen.start == 3
        assert canvas.layout_data.loss_steps == (7,)
        assert "t=7" in "\n".join(canvas.text_lines())
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot, app)
        assert app.screen.query_one(GraphCanvas).layout_data.loss_steps == (0, 1, 2, 3, 4)


async def test_unroll_highlights_the_vertex_the_step_screen_is_at_and_arrows_move_it():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        await pilot.press(*["right"] * 6, "down")
        await settle(pilot, app)
        node, t, steps = app.step_vertex
        assert t == 6 and steps == app.screen.steps
        await pilot.press("f3")
        await settle(pilot, app)
        screen = app.screen
        canvas = screen.query_one(GraphCanvas)
        assert screen.steps == steps and screen.start == 5          # the page holding t = 6
        assert screen.selected == canvas.selected == (node, 6)
        box = canvas.layout_data.vertices[(node, 6)]
        row = canvas._strip(box.y + 1)                               # the box's label row, highlighted
        lit = [seg.text for seg in row if seg.style is not None and seg.style.reverse]
        assert f"{node}@6" in "".join(lit)
        assert f"{node}@6" in screen.equation_text()
        await pilot.press("right", "right", "right", "right")       # past t = 9: the next page
        await settle(pilot, app)
        assert screen.selected == canvas.selected == (node, 10) and screen.start <= 10 < screen.start + screen.window
        assert screen.start > 5                                      # the page turned
        await pilot.press("up")
        await settle(pilot, app)
        above = screen.selected
        assert above[1] == 10 and canvas.layout_data.vertices[above].y < canvas.layout_data.vertices[(node, 10)].y
        assert screen.equation_text().startswith(f"{above[0]}@10 = ")


@contextlib.asynccontextmanager
async def _on_step_screen(name: str):
    """The app on spec ``name`` at 120x40, switched to the Step screen with its sample run."""
    app = RnnGraphApp(str(spec_path(name)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot, app)
        yield app, pilot, app.screen


async def test_async_hopfield_steps_one_unit_per_key_and_a_sweep_with_the_bracket():
    """→ applies one single-unit update (the unit highlighted, the energy never rising), ] runs
    to the end of the sweep, which is the engine's sweep; ← and [ go back."""
    async with _on_step_screen("hopfield_discrete.yaml") as (app, pilot, screen):
        trace = screen.trace
        n = trace.unit_states.shape[1]
        assert screen.updates == 0 and len(trace.unit_order) == trace.steps * n
        view = screen.query_one("#step-view")
        assert "after update 0 of" in view.plain_text()
        energies = []
        for k in range(1, 6):
            await pilot.press("right")
            assert screen.updates == k and screen.t == 0
            text = view.plain_text()
            unit = int(trace.unit_order[k - 1])
            assert f"after update {k} of {len(trace.unit_order)} (sweep 1, unit {unit})" in text
            assert f"update {k}: unit {unit} " in text
            assert "◆◆" in text or "◇◇" in text                  # the unit just updated
            energies.append(trace.unit_energy[k])
        assert np.all(np.diff(trace.unit_energy) <= 1e-9)        # async updates never raise the energy
        await pilot.press("right_square_bracket")                 # the rest of sweep 1
        assert screen.updates == n and screen.t == 0
        np.testing.assert_array_equal(trace.unit_states[n], trace.values["s"][0])   # the engine's sweep 1
        await pilot.press("right")
        assert screen.updates == n + 1 and screen.t == 1
        await pilot.press("left", "left_square_bracket")
        assert screen.updates == 0
        await pilot.press("end")
        assert screen.updates == len(trace.unit_order) and screen.t == trace.steps - 1
        assert trace.overlaps[-1].max() == 1.0 and "nearest" in view.plain_text()


async def test_continuous_hopfield_settles_as_the_engine_does():
    """A continuous net steps its Euler iteration for dynamics.sweeps steps from the cue (the
    engine's settle), with the energy per step and the overlaps; → is one step."""
    from rnngraph.engine.hopfield import settle as engine_settle
    async with _on_step_screen("hopfield_continuous.yaml") as (app, pilot, screen):
        trace = screen.trace
        sweeps = app.analysis.spec.dynamics["sweeps"]
        assert trace.steps == sweeps and trace.unit_states is None
        cue = trace.initial["v"][None, :]
        result = engine_settle(trace.net, cue, update="sync", sweeps=sweeps)
        np.testing.assert_allclose(trace.values["v"][-1], result.states[0])
        np.testing.assert_allclose(trace.energy, result.energy[0])
        assert "Euler step" in trace.settle_note and "settled" in trace.settle_note
        await pilot.press("right")
        assert screen.t == 1 and "energy (cue, then each sweep)" in screen.query_one("#step-view").plain_text()


async def test_step_keys_read_in_one_burst_reach_the_t_box():
    """t, 5, 2, Enter read by the terminal driver at once (one write, as a fast typist or tmux
    sends them) go to the T box: t moves the focus before the next key is routed."""
    from textual import events
    async with _on_step_screen("elman_adding.yaml") as (app, pilot, screen):
        assert screen.steps == 55
        for key, char in (("t", "t"), ("5", "5"), ("2", "2"), ("enter", "\r")):
            app.post_message(events.Key(key, char))             # queued together, as the driver does
        await settle(pilot, app)
        assert screen.requested == 52 and screen.steps == 52
