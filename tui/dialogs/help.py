"""The keys of the current screen (F1, or ``?`` outside a text field)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Static, TextArea


def _enabled(screen: Screen, binding: Binding, namespace) -> bool:
    try:
        return screen.app._check_action_state(binding.action, namespace) is not False
    except Exception:  # an action the app cannot parse: list it anyway
        return True


def screen_keys(screen: Screen) -> list[tuple[str, str]]:
    """``(keys, description)`` of the screen's own bindings, then the app's.

    Read as if nothing had focus, so a text field does not hide the screen's
    keys; a key bound twice (left on the Step screen) shows the binding that
    is active now; keys for the same action are joined (``f1 ?``).
    """
    app = screen.app
    own = {(b.key, b.action) for b in getattr(type(screen), "BINDINGS", ()) if isinstance(b, Binding)}
    mine = screen._bindings.copy()
    inherited = screen._bindings.copy()     # Textual's own screen keys (Tab, copy): last
    for key, binding in list(screen._bindings):
        (inherited if (binding.key, binding.action) in own else mine).key_to_bindings.pop(key, None)
    chain = [(screen, mine), (app, app._bindings), (screen, inherited)]
    taken: set[str] = set()
    rows: dict[tuple[int, str], list[str]] = {}
    order: list[tuple[int, str]] = []
    texts: dict[tuple[int, str], str] = {}
    for level, (namespace, bindings) in enumerate(chain):
        for key, binding in bindings:
            if key in taken or binding.system or not _enabled(screen, binding, namespace):
                continue
            taken.add(key)
            group = (level, binding.action)
            if group not in rows:
                rows[group] = []
                order.append(group)
                texts[group] = binding.description or binding.action
            rows[group].append(app.get_key_display(binding))
    return [(" ".join(rows[g]), texts[g]) for g in order]


class HelpDialog(ModalScreen[None]):
    """A table of keys; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, title: str, rows: list[tuple[str, str]], notes: str = "",
                 typing: bool = False) -> None:
        super().__init__()
        self.title_text, self.rows, self.notes, self.typing = title, rows, notes, typing

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label(f"Keys — {self.title_text}  (Esc closes)", id="help-title",
                        classes="form-title")
            if self.notes:
                yield Static(self.notes, id="help-notes", markup=False)
            if self.typing:
                yield Static("In a text field the usual editing keys apply (arrows, Ctrl+Z, "
                             "Ctrl+X/C/V), and ? types a ?: F1 shows these keys.", id="help-typing")
            table = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("key", "does")
            for key, text in self.rows:
                table.add_row(Text(key), Text(text))
            yield table

    def action_close(self) -> None:
        self.dismiss(None)


def typing_focus(screen: Screen) -> bool:
    """Whether the focused widget takes typed characters (the editor, an input box)."""
    return isinstance(screen.focused, (TextArea, Input))
