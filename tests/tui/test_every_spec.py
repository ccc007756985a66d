"""Every spec in specs/ opens, unrolls and steps in the TUI: whatever engine feature a spec uses
(look-ahead edges and bidirectional blocks, dropout, token inputs, Hopfield dynamics, RTRL...)."""

from __future__ import annotations

import pytest
from textual.widgets import Label

from tui.app import RnnGraphApp
from tui.screens.step import StepScreen
from tui.screens.unroll import UnrollScreen
from tui.widgets.graph_canvas import GraphCanvas

from .conftest import settle, spec_path

SPECS = sorted(spec_path(".").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
async def test_the_spec_opens_unrolls_and_steps(path):
    app = RnnGraphApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, rounds=1)
        await pilot.press("f3")
        await settle(pilot, app)
        assert isinstance(app.screen, UnrollScreen)
        picture = "\n".join(app.screen.query_one(GraphCanvas).text_lines())
        assert "@0" in picture, picture                  # a vertex of the first step is drawn
        await pilot.press("f4")
        await settle(pilot, app)
        assert isinstance(app.screen, StepScreen)
        before = str(app.screen.query_one("#step-status", Label).render())
        await pilot.press("right")
        await settle(pilot, app, rounds=1)
        after = str(app.screen.query_one("#step-status", Label).render())
        assert after, before
        if not before.rstrip().endswith("t = 0 / 0"):       # more than one step: it moved on
            assert after != before, (before, after)
        await pilot.press("b")
        await settle(pilot, app, rounds=1)
    assert app.return_code in (None, 0)
