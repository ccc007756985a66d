"""A scrollable picture of a layered graph (``tui.layout.Layout``)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from ..canvas import STYLES, render_layout
from ..layout import Checkpoint, Layout


YIELD_EVERY = 0.005   # seconds a layout worker works before it lets the UI thread catch up
YIELD_WAIT = 0.05     # the longest it waits for the UI thread each time


class Stale(Exception):
    """The picture being computed is wanted no more (a newer one was asked for)."""


def draw_in_worker(compute: Callable[[Checkpoint], Layout], wanted: Callable[[], bool],
                   loop: asyncio.AbstractEventLoop, render=None):
    """Lay out and draw a picture inside a thread worker, giving way to the UI.

    ``compute(checkpoint)`` returns the ``Layout``; the checkpoint, called often by
    the layout and the drawing, raises ``Stale`` once the worker is cancelled or
    ``wanted()`` is false, and every ``YIELD_EVERY`` seconds of work waits (up to
    ``YIELD_WAIT``) until the UI's event ``loop`` has run a callback: a UI thread
    that is busy, or waiting for the GIL, goes first.  Returns ``(layout, picture,
    message)`` for ``GraphCanvas.show``; the message says why there is no layout
    when the computation failed; ``render(layout, checkpoint)`` draws the picture
    (default: ``canvas.render_layout`` for a ``Layout``).  Raises ``Stale``.
    """
    worker = get_current_worker()
    ran = [time.monotonic()]
    beat = [0.0]

    def tick() -> None:
        beat[0] = time.monotonic()

    def checkpoint() -> None:
        if worker.is_cancelled or not wanted():
            raise Stale
        now = time.monotonic()
        if now - ran[0] < YIELD_EVERY:
            return
        try:
            loop.call_soon_threadsafe(tick)
        except RuntimeError:          # the loop has closed: the app is ending
            raise Stale from None
        while beat[0] < now and time.monotonic() - now < YIELD_WAIT:
            time.sleep(0.001)
            if worker.is_cancelled:
                raise Stale
        ran[0] = time.monotonic()

    try:
        layout = compute(checkpoint)
        if render is None:
            return layout, render_layout(layout, checkpoint=checkpoint), ""
        return layout, render(layout, checkpoint), ""
    except Stale:
        raise
    except Exception as err:  # a layout bug must not end the app: say so instead
        return None, None, f"(cannot draw this graph: {type(err).__name__}: {err})"


class GraphCanvas(ScrollView, can_focus=True):
    """Draws a ``Layout``; clicking a box selects its vertex."""

    selected = reactive(None, always_update=True)

    class VertexSelected(Message):
        """A vertex was clicked."""

        def __init__(self, canvas: "GraphCanvas", vertex) -> None:
            super().__init__()
            self.canvas = canvas
            self.vertex = vertex

        @property
        def control(self) -> "GraphCanvas":
            return self.canvas

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.layout_data: Layout | None = None
        self._lines: list[Text] = []          # the picture, nothing selected
        self._strips: dict[int, Strip] = {}   # rows turned into strips as they are shown
        self._message = ""

    def show(self, layout: Layout | None, message: str = "",
             picture: list[Text] | None = None) -> None:
        """Draw ``layout`` (or only ``message`` when it is None).

        ``picture`` is ``render_layout(layout)`` when the caller has it already
        (drawn in a worker thread); else it is drawn here.
        """
        self.layout_data = layout
        self._message = message
        if layout is None:
            self._lines = [Text(message, no_wrap=True, overflow="crop")]
            width = len(message)
        else:
            self._lines = picture if picture is not None else render_layout(layout)
            width = layout.width
        self._strips = {}
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def _strip(self, row: int) -> Strip:
        strip = self._strips.get(row)
        if strip is None:
            text = self._lines[row]
            box = self._selected_box()
            if box is not None and box.y <= row < box.y + box.h:
                text = text.copy()
                text.stylize(STYLES["selected"], box.x, box.x + box.w)
            strip = self._strips[row] = Strip(list(text.render(self.app.console, end="")))
        return strip

    def _selected_box(self):
        if self.layout_data is None:
            return None
        v = self.layout_data.vertices.get(self.selected)
        return None if v is None or v.is_dummy else v

    def watch_selected(self, vertex) -> None:
        if self.layout_data is not None:
            self._strips = {}
            self.refresh()
            v = self.layout_data.vertices.get(vertex)
            if v is not None:
                self.scroll_to_region_visible(v)

    def scroll_to_region_visible(self, v) -> None:
        from textual.geometry import Region
        self.scroll_to_region(Region(v.x, v.y, v.w, v.h), animate=False, force=True)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        width = self.scrollable_content_region.width
        if 0 <= row < len(self._lines):
            strip = self._strip(row)
        else:
            strip = Strip.blank(width)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def text_lines(self) -> list[str]:
        """The picture as plain text (for tests and the clipboard)."""
        return [line.plain for line in self._lines]

    def on_click(self, event: events.Click) -> None:
        if self.layout_data is None:
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x = offset.x + self.scroll_offset.x
        y = offset.y + self.scroll_offset.y
        vertex = self.layout_data.vertex_at(x, y)
        if vertex is not None:
            self.selected = vertex
            self.post_message(self.VertexSelected(self, vertex))
