"""Pilot tests of the Train screen: a worker with live progress that can be stopped."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input

from tui.app import RnnGraphApp
from tui.screens import train as train_screen

from .conftest import settle, spec_path

SIZE = (160, 48)
pytestmark = pytest.mark.skipif(train_screen.Experiment is None,
                                reason="needs rnngraph.training.experiment (training API)")


async def _wait(pilot, condition, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("timed out")


async def test_training_runs_plots_and_hands_the_weights_to_the_app():
    app = RnnGraphApp(str(spec_path("jordan.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        before = {k: v.copy() for k, v in app.analysis.net.params.items()}
        screen.query_one("#train-epochs", Input).value = "20"
        await pilot.press("s")
        await _wait(pilot, lambda: not screen.running and len(screen.history) == 20)
        await settle(pilot, app)
        assert [r["epoch"] for r in screen.history] == list(range(1, 21))
        assert screen.history[-1]["train_loss"] < screen.history[0]["train_loss"]
        status = str(screen.query_one("#train-status").render())
        assert "train_loss" in status
        changed = [k for k, v in app.analysis.net.params.items() if not np.array_equal(v, before[k])]
        assert changed, "the trained weights were not handed to the app's network"


async def test_training_can_be_stopped():
    app = RnnGraphApp(str(spec_path("elman_temporal_xor.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "100000"
        await pilot.press("s")
        await _wait(pilot, lambda: len(screen.history) >= 1)
        await pilot.press("x")
        await _wait(pilot, lambda: not screen.running and "interrupted" in str(
            screen.query_one("#train-status").render()), seconds=30)
        assert len(screen.history) < 100000


async def test_a_file_task_with_eval_split_and_listed_metrics_trains(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (12, 5, 1)).astype(float)
    np.savez(tmp_path / "d.npz", x=x, y=np.cumsum(x, axis=1) % 2)
    (tmp_path / "s.yaml").write_text(
        "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 3, activation: tanh}\n"
        "  y: {role: output, size: 1, activation: sigmoid}\n"
        "edges:\n  - {from: x, to: h}\n  - {from: h, to: h, delay: 1}\n  - {from: h, to: y}\n"
        "task: {file: d.npz, eval_split: 0.25, metrics: [accuracy, r2]}\n"
        "train: {loss: bce, epochs: 3, batch_size: 3, log_every: 1}\n")
    app = RnnGraphApp(str(tmp_path / "s.yaml"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "3"
        await pilot.press("s")
        await _wait(pilot, lambda: not screen.running and len(screen.history) == 3)
        await settle(pilot, app)
        assert all({"eval_loss", "accuracy", "r2"} <= set(r) for r in screen.history)
        assert "accuracy" in str(screen.query_one("#train-status").render())
