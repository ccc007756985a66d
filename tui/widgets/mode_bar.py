"""The top line of every screen: the app, the file, and the four screens on F2-F5.

It replaces Textual's ``Header``: the screens are listed as tabs, the
current one highlighted and each clickable, so the keys that switch screens
are always on view and the footer keeps its room for the screen's own keys.
"""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.widgets import Static

MODES = [("edit", "F2", "Edit"), ("unroll", "F3", "Unroll"), ("step", "F4", "Step"),
         ("train", "F5", "Train")]


class ModeBar(Static):
    """``rnngraph  file.yaml *   F2 Edit  F3 Unroll  F4 Step  F5 Train``."""

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.mode = mode
        self._spans: list[tuple[int, int, str]] = []    # (start, end, mode) of each tab

    def on_mount(self) -> None:
        self.watch(self.app, "sub_title", self._redraw)

    def _redraw(self, _=None) -> None:
        self.update(self.render_text())

    def render_text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" rnngraph ", "bold")
        self._spans = []
        for mode, key, title in MODES:
            start = text.cell_len
            style = "reverse bold" if mode == self.mode else ""
            text.append(f" {key} {title} ", style)
            self._spans.append((start, text.cell_len, mode))
            text.append(" ")
        text.append("  " + (self.app.sub_title or ""), "italic")
        return text

    def on_click(self, event: Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end and mode != self.mode:
                self.app.switch_mode(mode)
