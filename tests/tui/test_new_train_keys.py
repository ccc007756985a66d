"""The TUI opens and trains specs with a learning-rate schedule, edge dropout
and token (``encoding: one_hot``) data."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tui.app import RnnGraphApp
from tui.screens import train as train_screen

from .conftest import settle, spec_path

SIZE = (160, 48)
pytestmark = pytest.mark.skipif(train_screen.Experiment is None,
                                reason="needs rnngraph.experiment (training API)")


async def _wait(pilot, condition, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("timed out")


async def test_a_spec_with_a_schedule_dropout_and_tokens_opens_and_trains(tmp_path):
    letters = spec_path("elman_letters_tokens.yaml")
    data = letters.parent / "data"
    text = letters.read_text(encoding="utf-8")
    text = text.replace("data/letters_tokens", f"{data}/letters_tokens")
    text = text.replace("- {from: context, to: hidden, delay: 1}", "- {from: context, to: hidden, delay: 1, dropout: 0.2}")
    text = text.replace("epochs: 150, batch_size: 10}",
                        "epochs: 150, batch_size: 10, schedule: {name: step, every: 2, gamma: 0.5}}")
    path = tmp_path / "letters.yaml"
    path.write_text(text, encoding="utf-8")
    app = RnnGraphApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "4"
        await pilot.press("s")
        await _wait(pilot, lambda: not screen.running and len(screen.history) == 4)
        assert [r["lr"] for r in screen.history] == [0.01, 0.01, 0.005, 0.005]
        assert screen.history[-1]["train_loss"] < screen.history[0]["train_loss"]
