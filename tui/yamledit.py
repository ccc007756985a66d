"""Edit a spec's YAML text in place, keeping everything the edit does not touch.

The forms of the Edit screen change one node or one edge at a time.  Dumping
the whole document again would lose the user's comments, key order and
layout, so each edit here finds the span of the entry it changes in the
composed YAML tree (PyYAML keeps every node's start and end mark) and
replaces only that span.  Entries are written back in flow style
(``{size: 4, activation: tanh}``), which is how the example specs are
written; comments outside the changed entry survive.

Every function takes the text and returns the new text; none imports Textual.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = [
    "YamlEditError",
    "flow",
    "set_node",
    "remove_node",
    "set_edge",
    "add_edge",
    "remove_edge",
    "read_section",
]


class YamlEditError(ValueError):
    """The text cannot be edited structurally (it is not valid YAML, say)."""


def flow(value: Any) -> str:
    """``value`` as one line of flow-style YAML: ``{from: x, to: h, delay: 1}``."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**9)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    if text.endswith("..."):
        text = text[:-3].rstrip()
    return text


def _compose(text: str) -> yaml.MappingNode:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        raise YamlEditError(f"the YAML does not parse: {err}") from err
    except RecursionError as err:
        raise YamlEditError("the YAML is nested too deeply to edit") from err
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(root, yaml.MappingNode):
        raise YamlEditError("the document is not a mapping")
    return root


def _section(root: yaml.MappingNode, key: str):
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None, None


def _content_end(node: yaml.Node) -> int:
    """Index just past the last character that belongs to ``node``.

    A block collection's own end mark points at the next token (past blank
    lines and comments); the end of its last child is where it really ends.
    """
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index of the newline ending the line holding ``index`` (or len(text))."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def _is_plain_data(node: yaml.Node) -> bool:
    return isinstance(node, (yaml.ScalarNode,)) or bool(getattr(node, "flow_style", False))


def _replace_entry_value(text: str, key: yaml.Node, value: yaml.Node, new_value: Any) -> str:
    """Replace the value of one ``key: value`` entry or sequence item."""
    if _is_plain_data(value):
        start, end = value.start_mark.index, value.end_mark.index
        return text[:start] + flow(new_value) + text[end:]
    # A block collection: rewrite the entry from its key's line to its last line.
    start = _line_start(text, key.start_mark.index)
    end = _line_end(text, _content_end(value) - 1) if _content_end(value) > 0 else 0
    if key is value:  # a sequence item: keep its dash and indentation
        line = text[start:value.start_mark.index] + flow(new_value)
    else:
        line = f"{text[start:key.end_mark.index]}: {flow(new_value)}"
    return text[:start] + line + text[end:]


def _append_line(text: str, after: int, line: str) -> str:
    """Insert ``line`` as a new line after the line holding index ``after``."""
    end = _line_end(text, after)
    if end == len(text):
        return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    return text[: end + 1] + line + "\n" + text[end + 1 :]


def _delete_lines(text: str, start: int, end: int) -> str:
    """Delete whole lines from the one holding ``start`` to the one holding ``end - 1``."""
    a = _line_start(text, start)
    b = _line_end(text, max(end - 1, start))
    return text[:a] + text[b + 1 :]


def read_section(text: str, key: str) -> Any:
    """The Python value of a top-level section, or None."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise YamlEditError(f"the YAML does not parse: {err}") from err
    except RecursionError as err:
        raise YamlEditError("the YAML is nested too deeply to edit") from err
    if not isinstance(data, dict):
        return None
    return data.get(key)


# -- nodes -------------------------------------------------------------------

def set_node(text: str, name: str, fields: dict[str, Any]) -> str:
    """Set node ``name`` to ``fields`` (replacing it, or adding it at the end)."""
    root = _compose(text)
    k, nodes = _section(root, "nodes")
    if nodes is None or not isinstance(nodes, yaml.MappingNode) or nodes.flow_style or not nodes.value:
        current = read_section(text, "nodes") or {}
        if not isinstance(current, dict):
            current = {}
        current[name] = fields
        return _rewrite_nodes_flowish(text, root, current)
    for nk, nv in nodes.value:
        if isinstance(nk, yaml.ScalarNode) and nk.value == name:
            return _replace_entry_value(text, nk, nv, fields)
    first_key = nodes.value[0][0]
    indent = " " * first_key.start_mark.column
    return _append_line(text, _content_end(nodes) - 1, f"{indent}{flow(name)}: {flow(fields)}")


def _rewrite_nodes_flowish(text: str, root, nodes: dict) -> str:
    """Write a whole ``nodes:`` section as a block mapping of flow entries."""
    k, v = _section(root, "nodes")
    lines = ["nodes:"] + [f"  {flow(n)}: {flow(f)}" for n, f in nodes.items()]
    body = "\n".join(lines)
    if k is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + body + "\n"
    start = _line_start(text, k.start_mark.index)
    if v.end_mark.index > v.start_mark.index:
        end = _line_end(text, _content_end(v) - 1)
    else:
        end = _line_end(text, k.end_mark.index)
    return text[:start] + body + text[end:]


def remove_node(text: str, name: str, *, with_edges: bool = True) -> str:
    """Remove node ``name`` and, with ``with_edges``, every edge touching it."""
    if with_edges:
        edges = read_section(text, "edges") or []
        for index in reversed(range(len(edges))):
            edge = edges[index]
            if not isinstance(edge, dict):
                continue
            ends = {}
            for side in ("from", "to"):
                value = edge.get(side)
                ends[side] = value if isinstance(value, list) else [value]
            if name not in ends["from"] and name not in ends["to"]:
                continue
            left = {side: [v for v in vals if v != name] for side, vals in ends.items()}
            if not left["from"] or not left["to"]:
                text = remove_edge(text, index)
            else:
                changed = dict(edge)
                for side in ("from", "to"):
                    changed[side] = left[side] if isinstance(edge.get(side), list) else left[side][0]
                text = set_edge(text, index, changed)
    root = _compose(text)
    _, nodes = _section(root, "nodes")
    if not isinstance(nodes, yaml.MappingNode):
        raise YamlEditError("the spec has no nodes mapping")
    for nk, nv in nodes.value:
        if isinstance(nk, yaml.ScalarNode) and nk.value == name:
            if nodes.flow_style:
                current = read_section(text, "nodes")
                current.pop(name, None)
                return _rewrite_nodes_flowish(text, root, current)
            return _delete_lines(text, nk.start_mark.index, _content_end(nv))
    raise YamlEditError(f"no node named {name!r}")


# -- edges -------------------------------------------------------------------

def _edges_node(root):
    _, edges = _section(root, "edges")
    return edges


def set_edge(text: str, index: int, fields: dict[str, Any]) -> str:
    """Replace the edge at position ``index`` of the ``edges`` list."""
    root = _compose(text)
    edges = _edges_node(root)
    if not isinstance(edges, yaml.SequenceNode) or not 0 <= index < len(edges.value):
        raise YamlEditError(f"no edge number {index}")
    if edges.flow_style:
        current = read_section(text, "edges")
        current[index] = fields
        return _rewrite_edges(text, root, current)
    item = edges.value[index]
    return _replace_entry_value(text, item, item, fields)


def add_edge(text: str, fields: dict[str, Any]) -> str:
    """Append an edge to the ``edges`` list (creating the list if needed)."""
    root = _compose(text)
    edges = _edges_node(root)
    if not isinstance(edges, yaml.SequenceNode) or edges.flow_style or not edges.value:
        current = read_section(text, "edges")
        current = list(current) if isinstance(current, list) else []
        current.append(fields)
        return _rewrite_edges(text, root, current)
    last = edges.value[-1]
    dash = text.rfind("-", _line_start(text, last.start_mark.index), last.start_mark.index)
    indent = " " * (dash - _line_start(text, last.start_mark.index)) if dash >= 0 else "  "
    return _append_line(text, _content_end(edges) - 1, f"{indent}- {flow(fields)}")


def _rewrite_edges(text: str, root, edges: list) -> str:
    k, v = _section(root, "edges")
    body = "\n".join(["edges:"] + [f"  - {flow(e)}" for e in edges])
    if k is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + body + "\n"
    start = _line_start(text, k.start_mark.index)
    if v.end_mark.index > v.start_mark.index:
        end = _line_end(text, _content_end(v) - 1)
    else:
        end = _line_end(text, k.end_mark.index)
    return text[:start] + body + text[end:]


def remove_edge(text: str, index: int) -> str:
    """Remove the edge at position ``index`` of the ``edges`` list."""
    root = _compose(text)
    edges = _edges_node(root)
    if not isinstance(edges, yaml.SequenceNode) or not 0 <= index < len(edges.value):
        raise YamlEditError(f"no edge number {index}")
    if edges.flow_style:
        current = read_section(text, "edges")
        del current[index]
        return _rewrite_edges(text, root, current)
    item = edges.value[index]
    return _delete_lines(text, item.start_mark.index, _content_end(item))
