"""The YAML editor: a code TextArea that marks the lines with problems."""

from __future__ import annotations

from rich.style import Style
from textual.widgets import TextArea

ERROR = "rnngraph.error"


class SpecEditor(TextArea):
    """``TextArea`` with YAML highlighting (tree-sitter-yaml) and error lines."""

    def __init__(self, text: str = "", **kwargs) -> None:
        kwargs.setdefault("language", "yaml")
        kwargs.setdefault("soft_wrap", False)
        kwargs.setdefault("tab_behavior", "indent")
        kwargs.setdefault("show_line_numbers", True)
        kwargs.setdefault("theme", "monokai")
        super().__init__(text, **kwargs)
        self.error_lines: set[int] = set()   # 0-based rows

    def mark_errors(self, rows: set[int]) -> None:
        """Underline and tint ``rows`` (0-based); an empty set clears them."""
        if rows == self.error_lines:
            return
        self.error_lines = set(rows)
        self._build_highlight_map()
        self.refresh()

    def _build_highlight_map(self) -> None:
        super()._build_highlight_map()
        theme = getattr(self, "_theme", None)
        if theme is not None and ERROR not in theme.syntax_styles:
            theme.syntax_styles[ERROR] = Style(bgcolor="#5f0000", underline=True)
        for row in getattr(self, "error_lines", ()):
            if 0 <= row < self.document.line_count:
                self._highlights[row].append((0, None, ERROR))
