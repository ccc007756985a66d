"""What the TUI knows about the spec being edited: one ``Analysis`` per text.

``analyse(text)`` parses and builds the spec with the engine
(``rnngraph.parse_spec`` and ``rnngraph.build``) and returns an ``Analysis``:
the parsed spec, the network, its folded graph of primitive nodes, and the
problems found, each with its line.  It never raises for a user's mistake.
While parts of the engine are missing it falls back, in steps, to building
the graph from the parsed spec or from the raw YAML, so the screens always
have a graph to show; semantics (values, gradients) always come from the
engine.  Nothing here imports Textual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import yaml

try:  # the engine; the TUI degrades to a structural view without it
    import rnngraph as _rg
except Exception:  # pragma: no cover - only while the engine is being written
    _rg = None

__all__ = ["Problem", "Analysis", "analyse", "engine", "has_engine"]


def engine():
    """The ``rnngraph`` module, or None when it cannot be imported."""
    return _rg


def has_engine(*names: str) -> bool:
    """Whether the engine exports every one of ``names``."""
    return _rg is not None and all(hasattr(_rg, n) for n in names)


@dataclass(frozen=True)
class Problem:
    """One mistake in the spec, located where the engine could locate it."""

    what: str
    line: int | None = None       # 1-based
    column: int | None = None     # 1-based
    where: str = ""

    @property
    def text(self) -> str:
        place = f"{self.line}:{self.column or 1}" if self.line else "-"
        where = f"{self.where}: " if self.where else ""
        return f"{place}  {where}{self.what}"

    @classmethod
    def from_error(cls, err: BaseException) -> "Problem":
        return cls(
            what=str(getattr(err, "what", None) or err),
            line=getattr(err, "line", None),
            column=getattr(err, "column", None),
            where=str(getattr(err, "where", "") or ""),
        )


@dataclass
class Analysis:
    """The result of reading one version of the text."""

    text: str
    path: str | None = None
    spec: Any = None            # rnngraph Spec, when it parsed
    net: Any = None             # rnngraph Network, when it built
    graph: nx.MultiDiGraph | None = None   # folded graph of primitive nodes
    problems: list[Problem] = field(default_factory=list)
    source: str = "engine"      # which path made the graph: engine | spec | yaml

    @property
    def ok(self) -> bool:
        return not self.problems and self.graph is not None

    @property
    def params(self) -> dict:
        return dict(getattr(self.net, "params", {}) or {})


def _problems(err: BaseException) -> list[Problem]:
    errors = getattr(err, "errors", None)
    if errors:
        return [Problem.from_error(e) for e in errors]
    return [Problem.from_error(err)]


def analyse(text: str, path: str | None = None) -> Analysis:
    """Parse and build ``text``; collect every problem instead of raising."""
    try:
        return _analyse(text, path)
    except Exception as err:  # a bug here must not end the app: report it as a problem
        return Analysis(text=text, path=path, problems=[
            Problem(f"the editor could not read this text ({type(err).__name__}: {err}); "
                    "please report it")])


def _analyse(text: str, path: str | None) -> Analysis:
    result = Analysis(text=text, path=path)
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        result.problems.append(Problem("YAML syntax: nested too deeply", 1, 1))
        return result
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        what = getattr(err, "problem", None) or str(err)
        result.problems.append(Problem(
            what=f"YAML syntax: {what}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ))
        return result
    if _rg is not None and hasattr(_rg, "parse_spec"):
        try:
            result.spec = _rg.parse_spec(text, path=path)
        except Exception as err:  # SpecError, or an engine bug: show it either way
            result.problems.extend(_problems(err))
            result.graph = _graph_from_yaml(data)
            result.source = "yaml"
            return result
        too_big = _too_big(result.spec)
        if too_big:   # the editor builds at every pause in typing: refuse what would swamp it
            result.problems.append(Problem(too_big, where="nodes"))
        elif hasattr(_rg, "build"):
            try:
                result.net = _rg.build(result.spec)
                result.graph = result.net.graph
                return result
            except Exception as err:
                result.problems.extend(_problems(err))
        result.graph = _graph_from_spec(result.spec)
        result.source = "spec"
        return result
    result.graph = _graph_from_yaml(data)
    result.source = "yaml"
    if result.graph is None:
        result.problems.append(Problem("the spec needs a `nodes` mapping", 1, 1))
    return result


MAX_NUMBERS = 50_000_000   # parameters plus units the editor builds as you type (200 MB in float32)


def size_estimate(spec) -> int:
    """Parameters plus units of a parsed spec, counted without building it."""
    try:
        graph = _graph_from_spec(spec)
    except Exception:
        return 0
    total = 0
    for _, attrs in graph.nodes(data=True):
        size = attrs.get("size") or 0
        total += size * (2 if attrs.get("bias") else 1)
    for u, v, attrs in graph.edges(data=True):
        kind = attrs.get("weight", "dense")
        if kind == "dense":
            total += (graph.nodes[u].get("size") or 0) * (graph.nodes[v].get("size") or 0)
        elif kind == "diagonal":
            total += graph.nodes[v].get("size") or 0
        else:
            total += 1
    return total


def _too_big(spec) -> str:
    """Why the editor will not build ``spec`` (too many numbers), or ''."""
    numbers = size_estimate(spec)
    if numbers <= MAX_NUMBERS:
        return ""
    return (f"the network would hold about {numbers:,} numbers (parameters and units): more "
            f"than the editor builds as you type ({MAX_NUMBERS:,}); `rnngraph run` has no such limit")


# -- fallbacks: structure only ------------------------------------------------

def _graph_from_spec(spec) -> nx.MultiDiGraph:
    """The folded graph of primitive nodes, from a parsed Spec (no engine build)."""
    try:
        spec = spec.expanded()
    except Exception:
        pass
    graph = nx.MultiDiGraph()
    for node in spec.nodes.values():
        bias = getattr(node, "bias", None)
        graph.add_node(
            node.name, size=node.size, role=node.role, activation=node.activation,
            combine=node.combine, bias=f"{node.name}.bias" if bias else None,
            init=getattr(node.init, "value", 0.0), block=node.block, part=node.part,
            init_param=f"{node.name}.init" if getattr(node.init, "trainable", False) else None,
        )
    for edge in spec.edges:
        graph.add_edge(
            edge.source, edge.target, key=edge.name, name=edge.name, delay=edge.delay,
            weight=edge.weight, param=edge.name if edge.weight != "identity" else None,
            trainable=edge.trainable and edge.weight != "identity",
        )
    return graph


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_/]*$")


def _graph_from_yaml(data: Any) -> nx.MultiDiGraph | None:
    """A best-effort folded graph from raw YAML (blocks stay single nodes)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        return None
    graph = nx.MultiDiGraph()
    for name, node in data["nodes"].items():
        node = node if isinstance(node, dict) else {}
        if not isinstance(name, str) or not _NAME.match(name):
            continue
        size = node.get("size", 1)
        graph.add_node(
            name, size=size if isinstance(size, int) else 1,
            role=node.get("role", "hidden"),
            activation=node.get("activation", node.get("type", "identity")),
            combine=node.get("combine", "sum"), bias=None, init=node.get("init", 0),
            block=name if node.get("type") else None, part=None,
        )
    for edge in data.get("edges") or []:
        if not isinstance(edge, dict):
            continue
        sources = edge.get("from")
        targets = edge.get("to")
        sources = sources if isinstance(sources, list) else [sources]
        targets = targets if isinstance(targets, list) else [targets]
        for s in sources:
            for t in targets:
                if s not in graph or t not in graph:
                    continue
                name = edge.get("name") or f"{s}->{t}"
                weight = edge.get("weight", "dense")
                delay = edge.get("delay", 0)
                graph.add_edge(
                    s, t, key=name, name=name, delay=delay if isinstance(delay, int) else 0,
                    weight=weight, param=None if weight == "identity" else name,
                    trainable=bool(edge.get("trainable", True)) and weight != "identity",
                )
    return graph


def param_shape(graph: nx.MultiDiGraph, edge: dict, source: str, target: str) -> tuple:
    """The shape the spec format gives an edge's parameter (for display without a net)."""
    kind = edge.get("weight", "dense")
    if kind == "dense":
        return (graph.nodes[target]["size"], graph.nodes[source]["size"])
    if kind == "diagonal":
        return (graph.nodes[target]["size"],)
    if kind == "scalar":
        return ()
    return ()


def init_text(init) -> str:
    """A node's ``init`` as the YAML would say it: ``0.5``, ``input``, ``[..] (trainable)``."""
    kind = getattr(init, "kind", None)
    if kind == "input":
        return "input"
    if kind is not None:
        value = getattr(init, "value", 0.0)
        text = str(list(value) if isinstance(value, tuple) else value)
        return text + (" (trainable)" if getattr(init, "trainable", False) else "")
    return str(init)
