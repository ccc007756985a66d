"""A one-column bar between two panes: drag it with the mouse to share the width between them."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widget import Widget


class Splitter(Widget):
    """Posts ``Moved(x)`` while dragged: ``x`` is the screen column the bar is dragged to."""

    DEFAULT_CSS = """
    Splitter {
        width: 1;
        height: 1fr;
        background: $panel;
    }
    Splitter:hover, Splitter.-dragging {
        background: $accent;
    }
    """

    class Moved(Message):
        def __init__(self, x: int) -> None:
            super().__init__()
            self.x = x

    def render(self) -> str:
        return "\n".join("┃" for _ in range(self.size.height))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.capture_mouse()
        self.add_class("-dragging")
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self.has_class("-dragging"):
            self.post_message(self.Moved(event.screen_x))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self.has_class("-dragging"):
            self.release_mouse()
            self.remove_class("-dragging")
            self.post_message(self.Moved(event.screen_x))
