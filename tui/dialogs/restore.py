"""Offer the unsaved edits an earlier session left in a backup."""

from __future__ import annotations

import difflib
import os
import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


def change_summary(old: str, new: str) -> str:
    """``3 lines changed, 1 added``: how the backup differs from the file."""
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"+{added} / -{removed} lines against the file"


class RestoreDialog(ModalScreen[bool]):
    """Dismisses with True to restore the backup, False to discard it.

    Escape restores too: restoring only puts the text in the editor (unsaved,
    undoable); nothing on disk changes until the user saves.
    """

    BINDINGS = [
        Binding("r,escape", "answer(True)", "Restore"),
        Binding("d", "answer(False)", "Discard"),
    ]

    def __init__(self, name: str, backup_path: str, saved: str, backup: str) -> None:
        super().__init__()
        self.name_text, self.backup_path = name, backup_path
        self.saved, self.backup = saved, backup

    def compose(self) -> ComposeResult:
        try:
            when = time.strftime("%Y-%m-%d %H:%M:%S",
                                 time.localtime(os.stat(self.backup_path).st_mtime))
        except OSError:
            when = "an earlier session"
        with Vertical(id="restore-box", classes="dialog"):
            yield Label(f"Unsaved edits to {self.name_text} were found", classes="form-title",
                        markup=False)
            yield Static(f"A backup written while you typed ({when}); the app or its terminal "
                         "ended before they were saved.", classes="dialog-text")
            yield Static(change_summary(self.saved, self.backup), id="restore-summary",
                         classes="dialog-text")
            yield Static(f"backup: {self.backup_path}", id="restore-path", classes="dialog-text",
                         markup=False)
            yield Static("Restore puts them in the editor, unsaved (Ctrl+Z undoes it); "
                         "Discard deletes the backup.", id="restore-note", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Restore (r)", variant="primary", id="restore-yes")
                yield Button("Discard (d)", variant="error", id="restore-no")

    def on_mount(self) -> None:
        self.query_one("#restore-yes", Button).focus()

    @on(Button.Pressed, "#restore-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#restore-no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
