"""Pilot tests of the Train screen: a worker with live progress that can be stopped."""

from __future__ import annotations

import time

import numpy as np
from textual.widgets import Input

from tui.app import RnnGraphApp
from tui.screens.train import TrainScreen

from .conftest import settle, spec_path

SIZE = (160, 48)


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


def _key(app, key: str) -> None:
    from textual import events
    app.post_message(events.Key(key, key))


async def test_training_pauses_and_resumes_at_the_next_epoch():
    """p pauses, s resumes the same run: epochs 1..N once each, and the result is the
    uninterrupted run's, bit for bit (the trainer rolls a paused epoch back)."""
    import rnngraph as rg
    from rnngraph.training.experiment import Experiment

    path = spec_path("jordan.yaml")
    whole = Experiment(rg.load_spec(str(path)), epochs=400).run()
    app = RnnGraphApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "400"
        post = screen.post_message

        def post_and_hold(message):
            # the trainer's thread waits at epoch 3 until p has landed: on a loaded machine
            # all 400 epochs could otherwise end before the key is handled
            posted = post(message)
            if isinstance(message, TrainScreen.Progress) and message.record["epoch"] == 3:
                for _ in range(600):
                    if screen._pause_asked:
                        break
                    time.sleep(0.05)
            return posted

        screen.post_message = post_and_hold
        _key(app, "s")                  # as the terminal sends it: Pilot.press waits for the run
        await _wait(pilot, lambda: len(screen.history) >= 3)
        _key(app, "p")
        await _wait(pilot, lambda: screen.paused and not screen.running)
        paused_at = len(screen.history)
        assert paused_at < 400, "the run ended before the pause"
        status = str(screen.query_one("#train-status").render())
        assert f"paused after epoch {paused_at}" in status
        await pilot.pause(0.5)
        assert len(screen.history) == paused_at                   # nothing runs while paused
        _key(app, "s")
        await _wait(pilot, lambda: not screen.running and not screen.paused and len(screen.history) >= 400)
        assert [r["epoch"] for r in screen.history] == list(range(1, 401))
        assert [r["train_loss"] for r in screen.history] == [r["train_loss"] for r in whole.history]


async def test_stop_after_a_pause_starts_again_at_epoch_one():
    app = RnnGraphApp(str(spec_path("jordan.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "100000"   # far more than run before the pause lands
        _key(app, "s")
        await _wait(pilot, lambda: len(screen.history) >= 2)
        _key(app, "p")
        await _wait(pilot, lambda: screen.paused)
        await pilot.press("x")
        assert not screen.paused and "s starts again at epoch 1" in str(screen.query_one("#train-status").render())
        before = screen.history
        _key(app, "s")
        await _wait(pilot, lambda: screen.history is not before and len(screen.history) >= 1)
        assert screen.history[0]["epoch"] == 1
        _key(app, "x")
        await _wait(pilot, lambda: not screen.running, seconds=30)


async def test_training_a_hopfield_net_stores_and_shows_the_patterns():
    """No loss curve for a Hopfield net: the Train screen shows the patterns it stored, and
    the app's network holds them (the hebbian weights)."""
    import io

    from rich.console import Console
    from rnngraph.training.data import task_splits
    app = RnnGraphApp(str(spec_path("hopfield_discrete.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        _key(app, "s")
        await _wait(pilot, lambda: screen.stored is not None and not screen.running)
        spec = app.analysis.spec
        patterns = task_splits(spec, app.analysis.net, spec.seed)[0].task_data.extra["patterns"]
        np.testing.assert_array_equal(screen.stored[0], patterns)
        console = Console(width=160, record=True, color_system=None, file=io.StringIO())
        console.print(screen._stored_picture())
        text = console.export_text()
        assert "stored 10 patterns of 100 units by the hebbian rule" in text and "██" in text
        W = app.analysis.net.params["s->s"]
        expected = patterns.T @ patterns / 100
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_allclose(W, expected)


async def test_epochs_are_plotted_while_the_train_screen_shows_and_caught_up_on_return(monkeypatch):
    """A run's epochs arriving while another screen shows are not plotted (each plot holds up
    the keys of the screen in use); the plot is brought up to date when the Train screen shows."""
    import tui.screens.train as train
    plotted = []
    real = train.loss_plot
    monkeypatch.setattr(train, "loss_plot", lambda history, **kw: plotted.append(len(history)) or real(history, **kw))
    app = RnnGraphApp(str(spec_path("jordan.yaml")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot, app)
        screen = app.screen
        screen.query_one("#train-epochs", Input).value = "30"
        await pilot.press("f4")
        await settle(pilot, app)
        screen.action_start()                  # a run going on behind the Step screen
        await _wait(pilot, lambda: not screen.running and len(screen.history) == 30)
        await settle(pilot, app)
        hidden = [n for n in plotted if n > 0]
        assert hidden == [], f"plotted while hidden: {hidden}"
        await pilot.press("f5")
        await settle(pilot, app)
        assert plotted and plotted[-1] == 30
        assert "epoch 1" in str(screen.query_one("#train-plot").render())
