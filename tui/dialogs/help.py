"""The keys of the current screen (``?`` or F1)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label


def screen_keys(screen: Screen) -> list[tuple[str, str]]:
    """``(key, description)`` for every binding active on ``screen``, app ones too."""
    rows, seen = [], set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        text = binding.description or binding.action
        if (binding.action, text) in seen or binding.system:
            continue
        seen.add((binding.action, text))
        rows.append((active.node.app.get_key_display(binding), text))
    return rows


class HelpDialog(ModalScreen[None]):
    """A table of keys; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, title: str, rows: list[tuple[str, str]], notes: str = "") -> None:
        super().__init__()
        self.title_text, self.rows, self.notes = title, rows, notes

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label(f"Keys — {self.title_text}", id="help-title")
            table = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("key", "does")
            for key, text in self.rows:
                table.add_row(key, text)
            yield table
            if self.notes:
                yield Label(self.notes, id="help-notes")

    def action_close(self) -> None:
        self.dismiss(None)
