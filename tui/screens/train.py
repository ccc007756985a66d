"""Train: a cancellable training worker with a live loss plot (needs rnngraph.train)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ..model import has_engine


class TrainScreen(Screen):
    """Placeholder until the engine's training API (issue 3) lands."""

    TITLE = "Train"

    def __init__(self) -> None:
        super().__init__(id="train-screen")

    def compose(self) -> ComposeResult:
        yield Header()
        ready = has_engine("train")
        yield Static(
            "Training is not wired in yet: it needs rnngraph.train (issue 3).\n"
            + ("(the engine exports train: this screen is next)" if ready else
               "The engine does not export `train` yet."),
            id="train-body")
        yield Footer()
