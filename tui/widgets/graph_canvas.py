"""A scrollable picture of a layered graph (``tui.layout.Layout``)."""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..canvas import render_layout
from ..layout import Layout


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
        self._strips: list[Strip] = []
        self._message = ""

    def show(self, layout: Layout | None, message: str = "") -> None:
        """Draw ``layout`` (or only ``message`` when it is None)."""
        self.layout_data = layout
        self._message = message
        self._restrip()

    def _restrip(self) -> None:
        console = self.app.console
        if self.layout_data is None:
            lines = [self._message]
            self._strips = [Strip([Segment(line)]) for line in lines]
            width = max(len(line) for line in lines)
        else:
            texts = render_layout(self.layout_data, self.selected)
            self._strips = [Strip(list(t.render(console, end=""))) for t in texts]
            width = self.layout_data.width
        self.virtual_size = Size(width, len(self._strips))
        self.refresh()

    def watch_selected(self, vertex) -> None:
        if self.layout_data is not None:
            self._restrip()
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
        if 0 <= row < len(self._strips):
            strip = self._strips[row]
        else:
            strip = Strip.blank(width)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def text_lines(self) -> list[str]:
        """The picture as plain text (for tests and the clipboard)."""
        return ["".join(seg.text for seg in strip) for strip in self._strips]

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
