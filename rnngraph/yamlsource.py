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

from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import SpecError

MAX_TEXT_BYTES = 8 * 1024 * 1024   # a spec is a page of YAML; 8 MiB leaves room for inline data
MAX_VALUES = 200_000                # values after alias expansion
MAX_DEPTH = 64

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
        """A ``SpecError`` located at ``path``."""
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
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or "invalid YAML"
            if exc.context:
                problem = f"{exc.context}: {problem}"
            raise SpecError(f"YAML syntax error: {problem}", path=path,
                            line=mark.line + 1 if mark else None,
                            column=mark.column + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"YAML error: {exc}", path=path) from None
        except RecursionError:
            raise SpecError(f"the document is nested more than {MAX_DEPTH} levels deep", path=path) from None
        if root is None:
            return None, source
        budget = [MAX_VALUES]
        return _convert(root, (), loader, source, budget, 0), source
    finally:
        loader.dispose()


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node, path: Path, loader, source: Source, budget: list, depth: int):
    budget[0] -= 1
    if budget[0] < 0:
        raise source.error((), f"the document expands to more than {MAX_VALUES} values "
                               "(too large, or aliases that multiply); refusing to load it")
    if depth > MAX_DEPTH:
        raise source.error(path, f"nested more than {MAX_DEPTH} levels deep")
    source.values.setdefault(path, _mark(node))
    if node.tag not in _CORE_TAGS:
        raise source.error(path, f"tag {node.tag!r} is not allowed: specs are plain data "
                                 "(numbers, strings, lists and mappings)")
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise source.error(path, f"invalid value: {exc}") from None
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
            key = loader.construct_object(key_node)
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
