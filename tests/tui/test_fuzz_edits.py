"""No edit, however wrong, ends the app (randomized Pilot test).

Many random edits (characters inserted and deleted anywhere in the YAML,
nonsense numbers, unknown node names, forms filled with nonsense sizes,
negative delays and unknown nodes, screen switches) are applied to a spec;
after each one the app must still run, list problems when the text is
invalid, and keep drawing the last valid graph.  ``RNNGRAPH_FUZZ_SEED`` and
``RNNGRAPH_FUZZ_EDITS`` run other or longer sequences; a failure names its
seed and step.
"""

from __future__ import annotations

import os
import random
import re
import time

import pytest
from textual.widgets import Checkbox, DataTable, Input, Select, TabbedContent

from tui.app import DEBOUNCE, RnnGraphApp
from tui.canvas import render_layout
from tui.dialogs.forms import _Form
from tui.layout import folded_layout
from tui.model import analyse
from tui.widgets.graph_canvas import GraphCanvas
from tui.widgets.problems import ProblemList
from tui.widgets.spec_editor import SpecEditor

SIZE = (160, 48)
EDITS = int(os.environ.get("RNNGRAPH_FUZZ_EDITS", "30"))
SEEDS = [int(os.environ["RNNGRAPH_FUZZ_SEED"])] if "RNNGRAPH_FUZZ_SEED" in os.environ else [1, 2]

CHARS = "abcxyz019:{}[],-#'\"\n  \t&*!|>%@`?/\\"
NONSENSE = ["-1", "0", "-3.5", "1e9", "abc", "99999999", "null", "[1, 2]", "{}", "''", "2", "3", "7",
            "'[/b]'", "'[bold]x'"]
NAMES = ["x", "hidden", "context", "y", "ghost", "Hidden", "1bad", "lstm", "'[/b]'"]
FIELD_VALUES = {     # what the form fields get: mostly accepted by the form, often wrong for the spec
    "size": ["-1", "0", "abc", "99999999", "7", "1", "4", "2", "[/i]"],
    "delay": ["-1", "x", "0", "1", "3", "1000000"],
    "name": ["ghost", "x", "1bad", "fresh", "hidden", "", "dup", "x->hidden", "[/b]"],
    "init": ["", "input", "[1, 2", "0.5", "abc", "[0.1, 0.2, 0.3]", "{value: 1, trainable: true}"],
}


def expected_picture(text: str) -> list[str]:
    """The folded graph of ``text`` as the Edit screen draws it (blocks as boxes)."""
    layout = folded_layout(analyse(text).graph, collapse=True)
    return [line.plain for line in render_layout(layout)]


class Fuzzer:
    def __init__(self, app: RnnGraphApp, pilot, rng: random.Random) -> None:
        self.app, self.pilot, self.rng = app, pilot, rng

    @property
    def editor(self) -> SpecEditor:
        return self.app.edit_screen.query_one(SpecEditor)

    def _replace_span(self, start: int, end: int, new: str) -> None:
        doc = self.editor.document
        self.editor.replace(new, doc.get_location_from_index(start), doc.get_location_from_index(end))

    # -- edits of the text --------------------------------------------------------------
    async def insert_chars(self) -> str:
        text = self.editor.text
        i = self.rng.randrange(len(text) + 1)
        chunk = "".join(self.rng.choice(CHARS) for _ in range(self.rng.randint(1, 5)))
        self._replace_span(i, i, chunk)
        return f"insert {chunk!r} at {i}"

    async def delete_chars(self) -> str:
        text = self.editor.text
        if not text:
            return "delete: nothing"
        i = self.rng.randrange(len(text))
        j = min(len(text), i + self.rng.randint(1, 12))
        self._replace_span(i, j, "")
        return f"delete {text[i:j]!r} at {i}"

    async def nonsense_number(self) -> str:
        matches = list(re.finditer(r"(?<=[:\s,\[])-?\d+(\.\d+)?(?=[,}\]\s])", self.editor.text))
        if not matches:
            return await self.insert_chars()
        m = self.rng.choice(matches)
        value = self.rng.choice(NONSENSE)
        self._replace_span(m.start(), m.end(), value)
        return f"number {m.group()} -> {value}"

    async def rename_reference(self) -> str:
        matches = list(re.finditer(r"\b(x|hidden|context|y)\b", self.editor.text))
        if not matches:
            return await self.insert_chars()
        m = self.rng.choice(matches)
        value = self.rng.choice(NAMES)
        self._replace_span(m.start(), m.end(), value)
        return f"name {m.group()} -> {value}"

    async def deep_nesting(self) -> str:
        text = self.editor.text
        i = self.rng.randrange(len(text) + 1)
        chunk = self.rng.choice(["[", "{a: "]) * self.rng.choice([50, 600])
        self._replace_span(i, i, chunk)
        return f"nest {chunk[:4]!r}x{len(chunk)} at {i}"

    async def shuffle_line(self) -> str:
        lines = self.editor.text.split("\n")
        i, j = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
        if self.rng.random() < 0.5:
            lines.insert(j, lines[i])
            what = f"duplicate line {i} at {j}"
        else:
            lines[i], lines[j] = lines[j], lines[i]
            what = f"swap lines {i} and {j}"
        self.app.edit_screen.set_text("\n".join(lines))
        return what

    async def type_keys(self) -> str:
        editor = self.editor
        editor.focus()
        row = self.rng.randrange(editor.document.line_count)
        editor.move_cursor((row, self.rng.randint(0, len(editor.document.get_line(row)))))
        keys = [self.rng.choice(["a", "1", "colon", "space", "enter", "backspace", "delete",
                                 "tab", "minus", "left_curly_bracket", "ctrl+z", "ctrl+y"])
                for _ in range(self.rng.randint(1, 4))]
        await self.pilot.press(*keys)
        return f"type {keys} at row {row}"

    async def back_to_valid(self, last_valid: str) -> str:
        self.app.edit_screen.set_text(last_valid)
        return "back to the last valid text"

    # -- forms ---------------------------------------------------------------------------
    async def _fill_and_apply(self) -> str:
        form = self.app.screen
        if not isinstance(form, _Form):
            return "no form opened"
        for box in form.query(Input):
            if not box.disabled and self.rng.random() < 0.5:
                pool = FIELD_VALUES.get(box.id.split("-", 1)[1], NONSENSE)
                box.value = self.rng.choice(pool)
        for select in form.query(Select):
            options = [value for _, value in select._options if value is not Select.BLANK]
            if select.id in ("edge-from", "edge-to") and self.rng.random() < 0.3:
                options = [*options, "ghost"]                    # an unknown node
                select.set_options([(o, o) for o in options])
            if options:
                select.value = self.rng.choice(options)
        for box in form.query(Checkbox):
            if not box.disabled and self.rng.random() < 0.5:
                box.value = not box.value
        await self.pilot.pause()
        await self.pilot.click("#form-apply")
        await self.pilot.pause()
        refused = self.app.screen is form
        if refused:                             # the form said why: give up on it
            await self.pilot.press("escape")
            await self.pilot.pause()
        return "refused" if refused else "applied"

    async def form(self) -> str:
        key = self.rng.choice(["f6", "f7", "f8", "f9", "f10"])
        screen = self.app.edit_screen
        if key in ("f9", "f10"):
            tab = self.rng.choice(["tab-nodes", "tab-edges"])
            screen.query_one(TabbedContent).active = tab
            table = screen.query_one("#node-table" if tab == "tab-nodes" else "#edge-table", DataTable)
            if table.row_count:
                table.focus()
                table.move_cursor(row=self.rng.randrange(table.row_count))
            await self.pilot.pause()
        await self.pilot.press(key)
        await self.pilot.pause()
        if key == "f10":
            answer = self.rng.choice(["y", "n"])
            if self.app.screen is not screen:
                await self.pilot.press(answer)
                await self.pilot.pause()
            return f"{key} then {answer}"
        return f"{key} form: " + await self._fill_and_apply()

    async def switch_screens(self) -> str:
        key = self.rng.choice(["f3", "f4", "f5"])
        await self.pilot.press(key)
        await self.pilot.pause(0.2)
        await self.pilot.press("f2")
        await self.pilot.pause()
        return f"visit {key}"


async def _settle(pilot, app, patience: float = 20.0) -> None:
    """Wait until the text is analysed and the picture laid out (patiently: CI can be slow)."""
    await pilot.pause(DEBOUNCE + 0.05)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause()
        editor = app.edit_screen.query_one(SpecEditor)
        if (app._timer is None and app.analysis.text == editor.text == app.spec_text
                and not any(w.is_running for w in app.workers)):
            return
        await pilot.pause(0.05)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_edits_never_end_the_app(elman, seed):
    rng = random.Random(seed)
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot, app)
        fuzz = Fuzzer(app, pilot, rng)
        last_valid = app.spec_text
        assert app.analysis.ok
        kinds = [fuzz.insert_chars, fuzz.delete_chars, fuzz.nonsense_number, fuzz.rename_reference,
                 fuzz.shuffle_line, fuzz.type_keys, fuzz.form, fuzz.form, fuzz.switch_screens,
                 fuzz.deep_nesting]
        history, seen_invalid, seen_valid_change = [], 0, 0
        for step in range(EDITS):
            if rng.random() < 0.2:
                what = await fuzz.back_to_valid(last_valid)
            else:
                what = await rng.choice(kinds)()
            history.append(what)
            await _settle(pilot, app)
            where = f"seed {seed}, step {step}: {what}\nhistory: {history}"
            assert app.is_running and app._exception is None, where
            if app.current_mode != "edit" or app.screen is not app.edit_screen:
                while app.screen is not app.edit_screen and len(app.screen_stack) > 1:
                    await pilot.press("escape")          # a dialog left open
                    await pilot.pause()
                await pilot.press("f2")
                await _settle(pilot, app)
            text = fuzz.editor.text
            assert app.spec_text == text and app.analysis.text == text, where
            fresh = analyse(text, str(elman))
            assert app.analysis.ok == fresh.ok, where
            problems = app.edit_screen.query_one(ProblemList)
            if not fresh.ok:
                seen_invalid += 1
                assert app.analysis.problems, where
                assert problems.has_class("has-problems"), where
                assert problems.option_count == len(app.analysis.problems) >= 1, where
            else:
                assert not problems.has_class("has-problems"), where
                seen_valid_change += text != last_valid
                last_valid = text
            canvas = app.edit_screen.query_one("#folded-graph", GraphCanvas)
            assert app.last_valid.text == last_valid, where
            assert canvas.has_class("stale") == (not fresh.ok), where
            assert canvas.text_lines() == expected_picture(last_valid), where
        # the edits did break the spec, often, and changed it validly too
        assert seen_invalid >= EDITS // 5, (seen_invalid, seen_valid_change, history)
    assert app._exception is None


MARKUP = [   # text that Rich / Textual markup would choke on, in every place the YAML allows it
    ("activation: sigmoid}", "activation: '[/b]'}"),
    ("  hidden: {size: 4", "  '[/b]': {size: 2}\n  hidden: {size: 4"),
    ("- {from: x, to: hidden}", "- {from: '[/b]', to: hidden}"),
    ("\nseed: 0", "\n'[/i]': 1\nseed: 0"),
    ("context: {size: 4", "context: {size: '[bold]'"),
]
VALID_MARKUP = [("- {from: x, to: hidden}", "- {from: x, to: hidden, name: '[/i]'}")]


@pytest.mark.parametrize("valid", [False, True], ids=["invalid spec", "valid spec"])
async def test_brackets_in_the_yaml_are_text_not_markup(elman, valid):
    text = elman.read_text()
    for old, new in VALID_MARKUP if valid else MARKUP:
        assert old in text
        text = text.replace(old, new, 1)
    app = RnnGraphApp(str(elman), text=text)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot, app)
        screen = app.edit_screen
        for tab, table_id in (("tab-nodes", "#node-table"), ("tab-edges", "#edge-table")):
            screen.query_one(TabbedContent).active = tab
            table = screen.query_one(table_id, DataTable)
            table.focus()
            rows = [r for r in range(table.row_count)
                    if "[" in " ".join(str(c) for c in table.get_row_at(r))]
            assert rows or valid
            for row in rows or [0]:                 # the rows with brackets: their forms open
                table.move_cursor(row=row)
                await pilot.press("f9")
                await pilot.pause()
                await pilot.press("escape")
                await pilot.pause()
        screen.query_one(TabbedContent).active = "tab-inspector"
        for key in ("f3", "tab", "down", "down", "f4", "b", "f5", "f1", "escape", "f2"):
            await pilot.press(key)
            await pilot.pause(0.2)
        assert app.is_running and app._exception is None
        if valid:     # the name reaches parameters and equations
            assert "[/i]" in app.analysis.net.params
        else:
            shown = " ".join(p.text for p in app.analysis.problems)
            assert "'[/b]'" in shown and "'[/i]'" in shown and "'[bold]'" in shown
