"""The list of problems in the spec; choosing one jumps to its line."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..model import Problem


class ProblemList(OptionList):
    """One option per ``Problem``; posts ``Jump`` when one is chosen."""

    class Jump(Message):
        def __init__(self, problem: Problem) -> None:
            super().__init__()
            self.problem = problem

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.problems: list[Problem] = []

    def show(self, problems: list[Problem], warnings: list[Problem] = ()) -> None:
        """List ``problems`` (✗, errors) then ``warnings`` (⚠, hints the spec still runs with)."""
        self.problems = list(problems) + list(warnings)
        self.clear_options()
        if not problems and not warnings:
            self.add_option(Option("✓ no problems", disabled=True))
        for i, p in enumerate(self.problems):
            mark = "✗" if i < len(problems) else "⚠"
            self.add_option(Option(Text(f"{mark} {p.text}"), id=f"problem-{i}"))   # literal text
        self.set_class(bool(problems), "has-problems")
        self.set_class(not problems and bool(warnings), "has-warnings")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id and event.option.id.startswith("problem-"):
            self.post_message(self.Jump(self.problems[int(event.option.id.split("-")[1])]))
