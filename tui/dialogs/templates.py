"""Pick the family of network a new spec starts from."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from ..templates import TEMPLATES


class TemplateDialog(ModalScreen[str | None]):
    """Dismisses with a key of ``TEMPLATES``, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="template-box", classes="dialog"):
            yield Label("New spec from a template (Enter picks, Esc cancels)")
            yield OptionList(*[Option(f"{key:16} {title}", id=key)
                               for key, (title, _) in TEMPLATES.items()], id="template-list")

    @on(OptionList.OptionSelected, "#template-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
