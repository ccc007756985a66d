"""Safe YAML loading that remembers where every value came from.

``load_yaml(text, path)`` returns plain Python data (dicts, lists, str, int,
float, bool, None) and a ``Source`` that maps a key path such as
``("edges", 2, "to")`` to its 1-based line and column, so later checks can
point at the YAML that caused them.

Only the YAML core schema is accepted: a Python tag (``!!python/object``) or
any other custom tag is refused, and so is a document that expands (through
aliases) into more values than a spec could sensibly hold: a "billion laughs"
document is refused after ``MAX_VALUES`` values, not after exhausting memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..errors import SpecError

MAX_TEXT_BYTES = 2 * 1024 * 1024   # a spec is a page of YAML; arrays belong in .npz data files
MAX_LINES = 20_000                  # bounds the parse time (PyYAML composes ~10k lines a second)
MAX_VALUES = 200_000                # values after alias expansion
MAX_DEPTH = 64
# an integer beyond float64's range fits nowhere in a spec (every number becomes a float or a count)
LARGEST_NUMBER = 1.7976931348623157e308
MAX_INT_DIGITS = 1000               # longer integer text is refused before converting it

# YAML 1.1 (PyYAML) reads 1e-3 and 1.0e9 as strings; YAML 1.2 and every user read them as numbers
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _TooLarge(ValueError):
    """An integer too large for any place in a spec."""


def _construct_int(loader, node):
    """YAML integers, refusing those beyond float64's range before Python
    converts huge digit strings (which is slow, and refused past 4,300 digits)."""
    text = str(node.value)
    digits = sum(c.isalnum() for c in text)
    if digits > MAX_INT_DIGITS:
        raise _TooLarge(f"an integer of {digits:,} digits is too large (numbers in a spec are at most "
                        f"about 1.8e308)")
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if abs(value) > LARGEST_NUMBER:
        raise _TooLarge(f"an integer of {len(str(abs(value))):,} digits is too large (numbers in a spec are "
                        f"at most about 1.8e308)")
    return value


def _loader_class():
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: same safety, faster

    class Loader(base):
        pass
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789."))
    Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    return Loader


_Loader = _loader_class()


def load_value(text: str, label: str) -> tuple[object, "Source"]:
    """A command-line value read as YAML (``0.01``, ``1e-3``, ``[1, 2]``,
    ``{}``) with the limits of a spec file (size, depth, aliases, numbers);
    text that is not valid YAML stays a string.  ``label`` (such as
    ``--set train.epochs=5``) names it in messages.

    Raises SpecError, at ``label``, for a value over those limits."""
    try:
        return load_yaml(text, path=label)
    except SpecError as exc:
        if exc.what.startswith("YAML"):   # a syntax error: the text itself is the value
            return text, Source(path=label)
        raise

class Overrides(dict):
    """``{"train.optimizer.lr": 0.01, ...}`` (dotted key paths to values), with
    ``sources[key]``: the ``Source`` of each value, naming where it was given."""

    def __init__(self):
        super().__init__()
        self.sources: dict = {}

    def set(self, key: str, value, source: "Source") -> None:
        self[key] = value
        self.sources[key] = source


_CORE_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
}

Path = tuple  # of str (mapping keys) and int (sequence indices)


def format_where(path: Path) -> str:
    """``("edges", 2, "to")`` -> ``"edges[2].to"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Source:
    """Positions of the values of one YAML document.

    ``values[path]`` is where the value at ``path`` starts; ``keys[path]`` is
    where its mapping key starts (for "unknown key" messages).
    """

    path: str | None = None
    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    # key path -> Source of a value put there from elsewhere (a --set argument):
    # mistakes at or under that path are reported at that origin, not in the file
    overrides: dict = field(default_factory=dict)

    def position(self, path: Path, key: bool = False) -> tuple[int | None, int | None]:
        """The (line, column) of ``path``, else of its nearest located ancestor."""
        table = self.keys if key else self.values
        p = tuple(path)
        while True:
            if p in table:
                return table[p]
            if key and p in self.values:
                return self.values[p]
            if not p:
                return (None, None)
            p = p[:-1]

    def error(self, path: Path, what: str, key: bool = False) -> SpecError:
        """A ``SpecError`` located at ``path`` (or at the ``--set`` that put it there)."""
        path = tuple(path)
        for n in range(len(path), 0, -1):
            origin = self.overrides.get(path[:n])
            if origin is not None:
                return SpecError(what, path=origin.path, where=format_where(path))
        line, column = self.position(path, key=key)
        return SpecError(what, path=self.path, line=line, column=column, where=format_where(path))


def load_yaml(text: str, path: str | None = None) -> tuple[object, Source]:
    """Parse one YAML document safely, keeping positions.

    Raises
    ------
    SpecError
        For a syntax error (with the parser's line and column), a custom tag,
        duplicate keys, a non-scalar key, or a document too large or deep.
    """
    source = Source(path=path)
    if len(text.encode("utf-8", "replace")) > MAX_TEXT_BYTES:
        raise SpecError(f"file is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB; a spec should be a page of YAML",
                        path=path)
    if _nesting(text) > MAX_DEPTH:   # refused before parsing: libyaml recurses on nesting and can crash
        raise SpecError(f"the document is nested more than {MAX_DEPTH} levels deep", path=path)
    if text.count("\n") > MAX_LINES:
        raise SpecError(f"file has more than {MAX_LINES:,} lines; a spec should be a page of YAML "
                        f"(put arrays in an .npz data file)", path=path)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:   # the reader refuses control characters before parsing
        raise _syntax_error(exc, text, path) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or "invalid YAML"
            if exc.context:
                problem = f"{exc.context}: {problem}"
            if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
                problem += " ('\\t': a tab; YAML indents with spaces)"
            raise SpecError(f"YAML syntax error: {problem}", path=path,
                            line=mark.line + 1 if mark else None,
                            column=mark.column + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, text, path) from None
        except RecursionError:
            raise SpecError(f"the document is nested more than {MAX_DEPTH} levels deep", path=path) from None
        if root is None:   # an empty document (or only comments): its mistake is at the start
            source.values[()] = (1, 1)
            return None, source
        budget = [MAX_VALUES]
        return _convert(root, (), loader, source, budget, 0), source
    finally:
        loader.dispose()


_FLOW = re.compile(r"'[^'\n]*'|\"(?:[^\"\\\n]|\\.)*\"|#[^\n]*|[\[\]{}]")


def _nesting(text: str) -> int:
    """An upper estimate of how deeply the document nests: flow brackets
    (outside quotes and comments) plus block indentation levels."""
    depth = deepest = 0
    for match in _FLOW.finditer(text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth = max(depth - 1, 0)
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    return deepest + indent // 2


def _syntax_error(exc, text: str, path) -> SpecError:
    """A YAML error that has no mark (the reader's): locate it by its position."""
    position = getattr(exc, "position", None)
    line = column = None
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
    what = str(getattr(exc, "reason", "") or exc).splitlines()[0]
    char = getattr(exc, "character", None)
    if char is not None:
        char = chr(char) if isinstance(char, int) else char
        what = f"character {char!r} (U+{ord(char):04X}) is not allowed in YAML"
    return SpecError(f"YAML error: {what}", path=path, line=line, column=column)


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node, path: Path, loader, source: Source, budget: list, depth: int):
    source.values.setdefault(path, _mark(node))
    budget[0] -= 1
    if budget[0] < 0:   # located at the value (for an alias, the anchored value) that crossed the limit
        raise source.error(path, f"the document expands to more than {MAX_VALUES:,} values here "
                                 "(too large, or aliases that multiply); refusing to load it")
    if depth > MAX_DEPTH:
        raise source.error(path, f"nested more than {MAX_DEPTH} levels deep")
    if node.tag not in _CORE_TAGS:
        raise source.error(path, f"tag {node.tag!r} is not allowed: specs are plain data "
                                 "(numbers, strings, lists and mappings)")
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise source.error(path, f"invalid value: {exc}") from None
        except _TooLarge as exc:
            raise source.error(path, str(exc)) from None
    if isinstance(node, SequenceNode):
        return [_convert(item, path + (i,), loader, source, budget, depth + 1)
                for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        try:
            loader.flatten_mapping(node)   # resolves "<<" merge keys
        except yaml.YAMLError as exc:
            raise source.error(path, f"invalid merge key: {exc}") from None
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _CORE_TAGS:
                line, col = _mark(key_node)
                raise SpecError("mapping keys must be plain scalars", path=source.path,
                                line=line, column=col, where=format_where(path))
            try:
                key = loader.construct_object(key_node)
            except _TooLarge:
                key = str(key_node.value)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                line, col = _mark(key_node)
                raise SpecError("mapping keys must be plain scalars", path=source.path,
                                line=line, column=col, where=format_where(path))
            if not isinstance(key, str):   # `off:` or `1:` as a key: keep what the user typed
                key = str(key_node.value)
            child = path + (key,)
            if key in out:
                line, col = _mark(key_node)
                raise SpecError(f"duplicate key {key!r}", path=source.path, line=line,
                                column=col, where=format_where(child))
            source.keys.setdefault(child, _mark(key_node))
            out[key] = _convert(value_node, child, loader, source, budget, depth + 1)
        return out
    raise source.error(path, "unsupported YAML node")
