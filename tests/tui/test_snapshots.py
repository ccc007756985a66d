"""One snapshot per screen, at a fixed terminal size, on specs from specs/.

Update after an intended change of the look (or of the spec files) with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import pytest

from tui.app import RnnGraphApp
from tui.widgets.spec_editor import SpecEditor

from .conftest import settle, spec_path

SIZE = (150, 44)


def _app(name: str) -> RnnGraphApp:
    return RnnGraphApp(str(spec_path(name)))


def _prepare(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        for editor in app.query(SpecEditor):
            editor.cursor_blink = False
        await settle(pilot, app)
        for key in keys:
            await pilot.press(key)
            await settle(pilot, app, rounds=2)
        for editor in app.get_screen_stack("edit")[0].query(SpecEditor):
            editor.cursor_blink = False
    return run_before


def test_edit_screen(snap_compare):
    assert snap_compare(_app("elman_temporal_xor.yaml"), terminal_size=SIZE, run_before=_prepare())


def test_unroll_screen(snap_compare):
    assert snap_compare(_app("elman_temporal_xor.yaml"), terminal_size=SIZE,
                        run_before=_prepare("f3"))


def test_step_screen(snap_compare):
    assert snap_compare(_app("elman_temporal_xor.yaml"), terminal_size=SIZE,
                        run_before=_prepare("f4", "right", "right", "right"))


def test_train_screen(snap_compare):
    assert snap_compare(_app("jordan.yaml"), terminal_size=SIZE, run_before=_prepare("f5"))
