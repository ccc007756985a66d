"""Every screen at the two sizes a learner meets: 80x24 (a default terminal) and 120x40.

Update after an intended change of the look with
``pytest tests/tui/test_snapshots_sizes.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import pytest

from tui.app import RnnGraphApp

from .conftest import spec_path
from .test_snapshots import _prepare

SIZES = [(80, 24), (120, 40)]

SCREENS = {
    "edit": ("elman_temporal_xor.yaml", ()),
    "unroll": ("elman_temporal_xor.yaml", ("f3",)),
    "step": ("elman_temporal_xor.yaml", ("f4", "right", "right")),
    "step_backward": ("elman_adding.yaml", ("f4", "b", "left")),
    "train": ("jordan.yaml", ("f5",)),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_at_size(snap_compare, screen, size):
    name, keys = SCREENS[screen]
    assert snap_compare(RnnGraphApp(str(spec_path(name))), terminal_size=size, run_before=_prepare(*keys))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_step_compares_elman_and_lstm(snap_compare, size):
    """The Elman and the LSTM gradients side by side on the adding problem."""
    lstm = str(spec_path("lstm_adding.yaml"))

    async def run_before(pilot) -> None:
        await _prepare("f4")(pilot)
        app = pilot.app
        app.screen._compare(lstm, None, 0)      # as `c` and the path typed: backward mode, both plots
        await _prepare()(pilot)

    assert snap_compare(RnnGraphApp(str(spec_path("elman_adding.yaml"))), terminal_size=size,
                        run_before=run_before)
