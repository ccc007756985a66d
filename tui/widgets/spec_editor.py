"""The YAML editor: a code TextArea that marks the lines with problems."""

from __future__ import annotations

from rich.style import Style
from textual.widgets import TextArea

ERROR = "rnngraph.error"

# app themes with a TextArea theme of the same name; other dark themes get "css" (the
# editor's background and text from the app theme, dark syntax colours), light ones github_light
_SAME_NAME = {"monokai": "monokai", "dracula": "dracula"}


def editor_theme(app_theme: str, dark: bool) -> str:
    """The TextArea theme that goes with the app theme ``app_theme``."""
    return _SAME_NAME.get(app_theme, "css" if dark else "github_light")


class SpecEditor(TextArea):
    """``TextArea`` with YAML highlighting (tree-sitter-yaml) and error lines."""

    def __init__(self, text: str = "", **kwargs) -> None:
        kwargs.setdefault("language", "yaml")
        kwargs.setdefault("soft_wrap", False)
        kwargs.setdefault("tab_behavior", "indent")
        kwargs.setdefault("show_line_numbers", True)
        super().__init__(text, **kwargs)
        self.error_lines: set[int] = set()   # 0-based rows

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._follow_theme, init=True)

    def _follow_theme(self, name: str) -> None:
        self.theme = editor_theme(name, self.app.current_theme.dark)

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
        if theme is not None and ERROR not in theme.syntax_styles:   # a copy: the built-in theme stays as it is
            dark = getattr(self.app.current_theme, "dark", True) if self.is_attached else True
            theme.syntax_styles = {**theme.syntax_styles,
                                   ERROR: Style(bgcolor="#5f0000" if dark else "#ffd7d7", underline=True)}
        for row in getattr(self, "error_lines", ()):
            if 0 <= row < self.document.line_count:
                self._highlights[row].append((0, None, ERROR))
