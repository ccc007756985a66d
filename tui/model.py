"""What the TUI knows about the spec being edited: one ``Analysis`` per text.

``analyse(text)`` parses and builds the spec with the engine
(``rnngraph.parse_spec`` and ``rnngraph.build``) and returns an ``Analysis``:
the parsed spec, the network, its folded graph of primitive nodes (the
engine's ``folded_graph``, also when the network cannot be built), and the
problems found, each with its line.  It never raises for a user's mistake.
Nothing here imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import yaml

import rnngraph as rg
from rnngraph.engine.graph import folded_graph
from rnngraph.engine.params import param_infos

__all__ = ["Problem", "Analysis", "analyse", "isolated_nodes", "param_shapes"]


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
    weights: str = "initial weights (drawn from the spec's seed)"   # or trained, or loaded from where

    @property
    def ok(self) -> bool:
        return not self.problems and self.graph is not None

    @property
    def warnings(self) -> list[Problem]:
        """Hints that are not errors: a node with no edge in or out (``isolated_nodes``)."""
        return isolated_nodes(self.spec) if self.spec is not None else []

    @property
    def params(self) -> dict:
        return dict(self.net.params) if self.net is not None else {}

    @property
    def param_shapes(self) -> dict:
        """Every parameter's shape by name: the network's arrays when it built,
        else what the engine would give the folded graph."""
        if self.net is not None:
            return {name: tuple(value.shape) for name, value in self.net.params.items()}
        return param_shapes(self.graph) if self.graph is not None else {}


def isolated_nodes(spec) -> list[Problem]:
    """A warning for each node of ``spec`` that no edge reads or writes, at its key's line.

    The engine accepts such a node (it is the spec's business); the editor says it does nothing.
    """
    touched = set()
    for edge in getattr(spec, "edges", None) or []:
        touched.update((edge.source, edge.target))
    warnings = []
    for name in getattr(spec, "nodes", None) or {}:
        if name in touched:
            continue
        try:
            line, column = spec.source.position(("nodes", name), key=True)
        except Exception:   # no position known: the warning still stands
            line, column = None, None
        warnings.append(Problem(f"node {name!r} has no edges in or out: it takes no part in the network",
                                line, column, where=f"nodes.{name}"))
    return warnings


def param_shapes(graph: nx.MultiDiGraph) -> dict:
    """``{parameter name: shape}`` of an engine folded graph (``rnngraph.engine.params.param_infos``)."""
    return {name: info.shape for name, info in param_infos(graph).items()}


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
        yaml.safe_load(text)
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
    try:
        result.spec = rg.parse_spec(text, path=path)
    except Exception as err:  # SpecError, or an engine bug: show it either way
        result.problems.extend(_problems(err))
        return result
    result.graph = folded_graph(result.spec)
    too_big = _too_big(result.graph)
    if too_big:   # the editor builds at every pause in typing: refuse what would swamp it
        result.problems.append(Problem(too_big, where="nodes"))
        return result
    try:
        result.net = rg.build(result.spec)
        result.graph = result.net.graph
    except Exception as err:
        result.problems.extend(_problems(err))
    return result


MAX_NUMBERS = 50_000_000   # parameters plus units the editor builds as you type (200 MB in float32)


def size_estimate(graph: nx.MultiDiGraph) -> int:
    """Parameters plus units of an engine folded graph, counted without building it."""
    units = sum(int(size) for _, size in graph.nodes(data="size"))
    return units + sum(int(np.prod(shape, dtype=np.int64)) for shape in param_shapes(graph).values())


def _too_big(graph: nx.MultiDiGraph) -> str:
    """Why the editor will not build this graph (too many numbers), or ''."""
    numbers = size_estimate(graph)
    if numbers <= MAX_NUMBERS:
        return ""
    return (f"the network would hold about {numbers:,} numbers (parameters and units): more "
            f"than the editor builds as you type ({MAX_NUMBERS:,}); `rnngraph run` has no such limit")


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
