"""Readers of the spec's small value forms (thresholds, initializers, edge names,
nested number lists) that the validator and the later stages share."""

from __future__ import annotations

import math
import re

from .model import EXPECT_RE, LARGEST, Bias, Spec

def parse_threshold(text) -> tuple[str, float] | None:
    """``"< 0.2"`` -> ``("<", 0.2)``; None when it is not of that form or its
    number is not finite (``"> 1e999"`` is no threshold)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        op, number = "==", text
    else:
        m = EXPECT_RE.match(str(text))
        if not m:
            return None
        op, number = m.group(1), m.group(2)
    try:
        bound = float(number)
    except OverflowError:
        return None
    return (op, bound) if math.isfinite(bound) else None



def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about huge values."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


INIT_FORMS = re.compile(
    r"^\s*(?:(?P<zero>zeros)|(?P<xavier>xavier)|(?P<orth>orthogonal)|"
    r"uniform\(\s*(?P<ua>[^,()]+)\s*,\s*(?P<ub>[^,()]+)\s*\)|normal\(\s*(?P<ns>[^,()]+)\s*\))\s*$")


def parse_initializer(value) -> tuple:
    """An edge ``init`` as a tuple: ``("constant", x)``, ``("uniform", a, b)``,
    ``("normal", std)``, ``("xavier",)``, ``("orthogonal",)``, ``("array", nested)``
    or ``("default",)``.  Raises ValueError with a message for anything else."""
    if value is None:
        return ("default",)
    if _is_number(value):
        return ("constant", float(value))
    if isinstance(value, list):
        return ("array", value)
    if isinstance(value, str):
        m = INIT_FORMS.match(value)
        if m:
            if m.group("zero"):
                return ("constant", 0.0)
            if m.group("xavier"):
                return ("xavier",)
            if m.group("orth"):
                return ("orthogonal",)
            try:
                if m.group("ua") is not None:
                    a, b = float(m.group("ua")), float(m.group("ub"))
                    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
                        raise ValueError
                    return ("uniform", a, b)
                std = float(m.group("ns"))
                if not math.isfinite(std) or std < 0:
                    raise ValueError
                return ("normal", std)
            except ValueError:
                pass
    raise ValueError(f"init must be a number, uniform(a,b) with a <= b, normal(std) with std >= 0, "
                     f"xavier, orthogonal, zeros or a list of numbers; got {value!r}")


def out_of_range(spec: Spec, dtype: str) -> list:
    """The numbers of ``spec`` (node inits, biases, edge inits; blocks expanded) that
    do not fit in ``dtype``, as (where, value) pairs: for building a spec in a
    narrower dtype than the one it was checked in (``build(spec, dtype="float32")``)."""
    largest, bad = LARGEST[dtype], []
    primitive = spec.expanded()
    for node in primitive.nodes.values():
        values = [("init", v) for v in (node.init.value if isinstance(node.init.value, tuple) else (node.init.value,))]
        if isinstance(node.bias, Bias):
            values.append(("bias.init", node.bias.init))
        bad += [(f"nodes.{node.name}.{key}", v) for key, v in values if abs(v) > largest]
    for edge in primitive.edges:
        if edge.init is not None:
            kind = parse_initializer(edge.init)
            numbers = _flat_numbers(edge.init) if kind[0] == "array" else kind[1:]
            bad += [(f"edge {edge.name or edge.source + '->' + edge.target}.init", v)
                    for v in numbers if abs(v) > largest]
    return bad


def _flat_numbers(value) -> list:
    """The numbers of a nested list, in order."""
    if isinstance(value, list):
        return [x for v in value for x in _flat_numbers(v)]
    return [value]


MAX_EDGE_NAME = 200


def edge_name_problem(name: str) -> str | None:
    """What makes ``name`` unfit as an edge's name (a member of params.npz), or None.

    A name is printable text of at most ``MAX_EDGE_NAME`` characters, without
    surrounding spaces or backslashes; ``/`` separates parts (as block expansion
    does: ``in/i``), none of them empty, ``.`` or ``..``."""
    if len(name) > MAX_EDGE_NAME:
        return f"is longer than {MAX_EDGE_NAME} characters"
    if not name.isprintable():
        return "holds a control character (such as NUL, a tab or a newline)"
    if name != name.strip():
        return "starts or ends with a space"
    if "\\" in name:
        return "holds a backslash"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' part between slashes"
    return None


def array_shape(value):
    """Shape of a nested list of numbers, or None when ragged / non-numeric."""
    if _is_number(value):
        return ()
    if isinstance(value, list) and value:
        shapes = {array_shape(v) for v in value}
        if len(shapes) == 1 and None not in shapes:
            return (len(value),) + shapes.pop()
    return None
