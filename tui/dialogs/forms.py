"""Forms that add or change a node, an edge or a block.

Each dismisses with ``(name, fields)`` for nodes and blocks or ``fields`` for
edges, ready for ``tui.yamledit``; or None when cancelled.  Keys the form
does not show (a node's ``bias``, an edge's ``init`` or ``constraint``) are
carried over unchanged, so editing through a form never drops them.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

import rnngraph.activations

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ROLES = ["hidden", "input", "output"]
ACTIVATIONS = list(rnngraph.activations.ACTIVATIONS)
COMBINES = ["sum", "product"]
WEIGHTS = ["dense", "diagonal", "scalar", "identity"]
LSTM_VARIANTS = ["standard", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
GRU_VARIANTS = ["reset_after", "reset_before"]


def _select(options: list[str], value: str, id: str) -> Select:
    if value not in options:
        options = [*options, value]
    # prompts as Text: a value from the YAML such as "[/b]" is shown, not parsed as markup
    return Select([(Text(str(o)), o) for o in options], value=value, allow_blank=False, id=id)


def _parse_scalar(text: str) -> Any:
    """``0.5`` -> 0.5, ``[1, 2]`` -> list, ``input`` -> "input" (YAML rules)."""
    import yaml
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text


class _Form(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Apply", priority=True)]
    title_text = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(self.title_text, classes="form-title", markup=False)
            with VerticalScroll(classes="form-fields"):
                yield from self.fields()
            yield Label("", classes="form-error", id="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="form-apply")
                yield Button("Cancel", id="form-cancel")

    def fields(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def on_mount(self) -> None:
        # the first field to fill takes the keys (not the scrolling box around the fields)
        for widget in self.query("Input, Select, Checkbox"):
            if not widget.disabled:
                widget.focus()
                break

    def _row(self, label: str, widget) -> Horizontal:
        return Horizontal(Label(label, classes="form-label"), widget, classes="form-row")

    def value(self, id: str):
        widget = self.query_one(f"#{id}")
        return widget.value

    def fail(self, message: str) -> None:
        self.query_one("#form-error", Label).update(message)

    @on(Button.Pressed, "#form-apply")
    def action_submit(self) -> None:
        try:
            result = self.collect()
        except ValueError as err:
            self.fail(str(err))
            return
        self.dismiss(result)

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def collect(self):  # pragma: no cover - overridden
        raise NotImplementedError


def _int(text: str, what: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text!r}") from None
    if value < low:
        raise ValueError(f"{what} must be >= {low}")
    return value


class NodeForm(_Form):
    """Add a node (``name`` None) or change one."""

    def __init__(self, name: str | None = None, fields: dict | None = None,
                 taken: tuple = ()) -> None:
        super().__init__()
        self.original_name = name
        self.original = dict(fields or {})
        self.taken = set(taken) - {name}
        self.title_text = f"Node {name}" if name else "New node"

    def fields(self) -> ComposeResult:
        f = self.original
        yield self._row("name", Input(self.original_name or "", id="node-name",
                                      disabled=self.original_name is not None))
        yield self._row("size", Input(str(f.get("size", 4)), id="node-size"))
        yield self._row("role", _select(ROLES, f.get("role", "hidden"), "node-role"))
        yield self._row("activation", _select(ACTIVATIONS, f.get("activation", "identity"),
                                              "node-activation"))
        yield self._row("combine", _select(COMBINES, f.get("combine", "sum"), "node-combine"))
        init = f.get("init", "")
        yield self._row("init", Input("" if init == "" else _flow(init), id="node-init",
                                      placeholder="0, 0.5, [..], input"))

    def collect(self):
        name = self.original_name or self.value("node-name").strip()
        if not NAME.match(name):
            raise ValueError("name: letters, digits and _, not starting with a digit")
        if name in self.taken:
            raise ValueError(f"there is already a node named {name!r}")
        out = {k: v for k, v in self.original.items()
               if k not in ("size", "role", "activation", "combine", "init")}
        fields: dict[str, Any] = {}
        if self.value("node-role") != "hidden":
            fields["role"] = self.value("node-role")
        fields["size"] = _int(self.value("node-size"), "size", 1)
        if self.value("node-activation") != "identity":
            fields["activation"] = self.value("node-activation")
        if self.value("node-combine") != "sum":
            fields["combine"] = self.value("node-combine")
            out.pop("bias", None)  # product nodes take no bias
        init = self.value("node-init").strip()
        if init:
            fields["init"] = _parse_scalar(init)
        # role and size first, as the example specs write them
        return name, {**fields, **out}


def _flow(value) -> str:
    from ..yamledit import flow
    return flow(value)


class EdgeForm(_Form):
    """Add an edge (``fields`` None) or change one."""

    def __init__(self, nodes: list[str], fields: dict | None = None, index: int | None = None) -> None:
        super().__init__()
        self.nodes = list(nodes) or ["?"]
        self.original = dict(fields or {})
        self.index = index
        self.title_text = f"Edge {index}" if index is not None else "New edge"

    def _end(self, side: str) -> str:
        value = self.original.get(side, self.nodes[0])
        return ", ".join(value) if isinstance(value, list) else str(value)

    def fields(self) -> ComposeResult:
        f = self.original
        yield self._row("from", _select(self.nodes, self._end("from"), "edge-from"))
        yield self._row("to", _select(self.nodes, self._end("to"), "edge-to"))
        yield self._row("delay", Input(str(f.get("delay", 0)), id="edge-delay"))
        yield self._row("weight", _select(WEIGHTS, f.get("weight", "dense"), "edge-weight"))
        yield self._row("trainable", Checkbox("(identity edges have no weight)",
                                               value=bool(f.get("trainable", True)),
                                               id="edge-trainable"))
        yield self._row("name", Input(str(f.get("name", "")), id="edge-name",
                                      placeholder="only for a second edge between the same pair"))

    def collect(self):
        out = {k: v for k, v in self.original.items()
               if k not in ("from", "to", "delay", "weight", "trainable", "name")}
        fields: dict[str, Any] = {}
        for side in ("from", "to"):
            text = str(self.value(f"edge-{side}"))
            names = [n.strip() for n in text.split(",") if n.strip()]
            fields[side] = names if len(names) > 1 else names[0]
        delay = _int(self.value("edge-delay"), "delay", 0)
        if delay:
            fields["delay"] = delay
        if self.value("edge-weight") != "dense":
            fields["weight"] = self.value("edge-weight")
        if not self.value("edge-trainable") and fields.get("weight") != "identity":
            fields["trainable"] = False
        name = self.value("edge-name").strip()
        if name:
            fields["name"] = name
        return {**fields, **out}


class BlockForm(_Form):
    """Add a block (lstm or gru) or change one."""

    def __init__(self, name: str | None = None, fields: dict | None = None,
                 taken: tuple = ()) -> None:
        super().__init__()
        self.original_name = name
        self.original = dict(fields or {"type": "lstm", "size": 8})
        self.taken = set(taken) - {name}
        self.title_text = f"Block {name}" if name else "New block"

    def fields(self) -> ComposeResult:
        f = self.original
        kind = f.get("type", "lstm")
        variants = GRU_VARIANTS if kind == "gru" else LSTM_VARIANTS
        yield self._row("name", Input(self.original_name or "", id="block-name",
                                      disabled=self.original_name is not None))
        yield self._row("type", _select(["lstm", "gru"], kind, "block-type"))
        yield self._row("size", Input(str(f.get("size", 8)), id="block-size"))
        yield self._row("variant", _select(variants, f.get("variant", variants[0]), "block-variant"))
        yield self._row("peepholes", Checkbox("lstm only", value=bool(f.get("peepholes", False)),
                                               id="block-peepholes"))

    @on(Select.Changed, "#block-type")
    def _type_changed(self, event: Select.Changed) -> None:
        variants = GRU_VARIANTS if event.value == "gru" else LSTM_VARIANTS
        select = self.query_one("#block-variant", Select)
        select.set_options([(Text(v), v) for v in variants])
        select.value = variants[0]
        self.query_one("#block-peepholes", Checkbox).disabled = event.value == "gru"

    def collect(self):
        name = self.original_name or self.value("block-name").strip()
        if not NAME.match(name):
            raise ValueError("name: letters, digits and _, not starting with a digit")
        if name in self.taken:
            raise ValueError(f"there is already a node named {name!r}")
        kind = self.value("block-type")
        out = {k: v for k, v in self.original.items()
               if k not in ("type", "size", "variant", "peepholes")}
        fields: dict[str, Any] = {"type": kind, "size": _int(self.value("block-size"), "size", 1)}
        variant = self.value("block-variant")
        if variant not in ("standard", "reset_after") or "variant" in self.original:
            fields["variant"] = variant
        if kind == "lstm" and self.value("block-peepholes"):
            fields["peepholes"] = True
        if kind == "gru":
            out.pop("forget_bias", None)
        return name, {**fields, **out}
