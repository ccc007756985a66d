"""Notebook pictures: a Network shows its folded graph inline, rg.draw(net, T) the unrolled DAG."""

from __future__ import annotations

import pathlib
import sys
import types

import pytest

import rnngraph as rg
import rnngraph.engine.pictures as notebook
from rnngraph.engine.render import to_text

ELMAN = """
rnngraph: 1
name: elman
nodes:
  x: {role: input, size: 1}
  hidden: {size: 4, activation: sigmoid}
  context: {size: 4, init: 0.5}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: hidden}
  - {from: context, to: hidden, delay: 1}
  - {from: hidden, to: context, weight: identity}
  - {from: hidden, to: y}
"""


@pytest.fixture
def net():
    return rg.build(rg.parse_spec(ELMAN))


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)      # import graphviz -> ImportError


@pytest.fixture
def fake_graphviz(monkeypatch):
    """A graphviz package and a dot binary that record what they were asked to draw."""
    drawn = []

    class Source:
        def __init__(self, dot):
            self.dot = dot

        def pipe(self, format):
            drawn.append((self.dot, format))
            return b"<svg>drawn</svg>"

    monkeypatch.setitem(sys.modules, "graphviz", types.SimpleNamespace(Source=Source))
    monkeypatch.setattr(notebook.shutil, "which", lambda name: "/usr/bin/dot" if name == "dot" else None)
    return drawn


def test_network_shows_its_folded_graph_as_mermaid_without_graphviz(net, no_graphviz):
    bundle = net._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    mermaid = bundle["text/markdown"]
    assert mermaid.startswith("```mermaid\nflowchart LR")
    assert '"hidden (4, sigmoid)"' in mermaid and '"context (4)"' in mermaid
    assert mermaid.count("-.->") == 1                 # the one delayed edge, context -> hidden
    assert '"context->hidden, delay 1"' in mermaid
    assert "hidden -> context: hidden->context identity" in bundle["text/plain"]


def test_network_shows_svg_drawn_by_graphviz_when_there(net, fake_graphviz):
    bundle = net._repr_mimebundle_()
    assert bundle["image/svg+xml"] == "<svg>drawn</svg>"
    (dot, fmt), = fake_graphviz
    assert fmt == "svg" and dot.startswith("digraph folded")
    assert '"context" -> "hidden" [label="context->hidden, delay 1", style=dashed' in dot


def test_graphviz_package_without_dot_program_falls_back(net, fake_graphviz, monkeypatch):
    monkeypatch.setattr(notebook.shutil, "which", lambda name: None)
    assert "text/markdown" in net._repr_mimebundle_() and not fake_graphviz


def test_draw_unrolled_has_one_column_per_step(net, no_graphviz):
    picture = rg.draw(net, T=3)
    assert picture.text == to_text(net.graph, net.unroll(3, initial=True))
    for t in range(3):
        assert f'subgraph "cluster_t{t}"' in picture.dot
        assert f'subgraph t{t}["t={t}"]' in picture.mermaid
    assert 'subgraph "cluster_t-1"' in picture.dot      # the initial state context@-1
    assert "hidden@2 = sigmoid(" in str(picture)
    assert picture._repr_mimebundle_()["text/markdown"].startswith("```mermaid\nflowchart LR")


def test_draw_block_network(no_graphviz):
    net = rg.build(rg.load_spec(pathlib.Path(__file__).parent.parent / "specs" / "lstm_adding.yaml"))
    text = rg.draw(net).text
    assert "lstm/c (16) [hidden]" in text and "lstm/c -> lstm/fc: lstm/c->lstm/fc identity, delay 1" in text


@pytest.mark.parametrize("wrong", [42, None, "specs/mlp.yaml"])
def test_draw_of_something_not_a_network_is_an_argument_error(wrong):
    with pytest.raises(rg.ArgumentError, match=r"draw: net: expected a network from rg\.build"):
        rg.draw(wrong)


def test_draw_of_a_spec_says_to_build_it():
    spec = rg.load_spec(str(pathlib.Path(__file__).resolve().parent.parent / "specs" / "mlp.yaml"))
    with pytest.raises(rg.ArgumentError, match=r"rg\.build\(spec\)"):
        rg.draw(spec)
