"""The layers under the UI: YAML edits, layout, drawing, equations (no Textual)."""

from __future__ import annotations

import pytest
import yaml

from tui import yamledit
from tui.canvas import render_layout
from tui.equations import vertex_equation
from tui.layout import folded_layout, unrolled_layout
from tui.model import analyse

from .conftest import spec_path

COMMENTED = """\
rnngraph: 1
nodes:   # the nodes
  x:       {role: input, size: 1}   # the input
  hidden:
    size: 4   # four units
    activation: sigmoid
  y: {role: output, size: 1}
# the edges
edges:
  - {from: x, to: hidden}
  - {from: hidden, to: hidden, delay: 1}
  -   from: hidden
      to: y
"""


def test_set_node_changes_only_that_node_and_keeps_comments():
    text = yamledit.set_node(COMMENTED, "x", {"role": "input", "size": 3})
    assert "x:       {role: input, size: 3}   # the input" in text
    assert "# four units" in text and "# the edges" in text
    assert yaml.safe_load(text)["nodes"]["x"] == {"role": "input", "size": 3}


def test_set_node_rewrites_a_block_mapping_entry():
    text = yamledit.set_node(COMMENTED, "hidden", {"size": 8, "activation": "tanh"})
    data = yaml.safe_load(text)
    assert data["nodes"]["hidden"] == {"size": 8, "activation": "tanh"}
    assert list(data["nodes"]) == ["x", "hidden", "y"]
    assert "# the nodes" in text


def test_add_node_edge_and_remove_round_trip():
    text = yamledit.set_node(COMMENTED, "z", {"size": 2})
    text = yamledit.add_edge(text, {"from": "hidden", "to": "z", "delay": 2})
    data = yaml.safe_load(text)
    assert data["nodes"]["z"] == {"size": 2}
    assert data["edges"][-1] == {"from": "hidden", "to": "z", "delay": 2}
    text = yamledit.remove_node(text, "z")
    data = yaml.safe_load(text)
    assert "z" not in data["nodes"] and len(data["edges"]) == 3
    text = yamledit.set_edge(text, 2, {"from": "hidden", "to": "y", "weight": "dense"})
    assert yaml.safe_load(text)["edges"][2] == {"from": "hidden", "to": "y", "weight": "dense"}
    text = yamledit.remove_edge(text, 1)
    assert [e["to"] for e in yaml.safe_load(text)["edges"]] == ["hidden", "y"]
    assert "# the edges" in text


def test_edits_create_missing_sections():
    text = yamledit.set_node("rnngraph: 1\n", "x", {"role": "input", "size": 1})
    text = yamledit.add_edge(text, {"from": "x", "to": "x", "delay": 1})
    assert yaml.safe_load(text) == {"rnngraph": 1, "nodes": {"x": {"role": "input", "size": 1}},
                                    "edges": [{"from": "x", "to": "x", "delay": 1}]}


def test_flow_quotes_what_flow_style_needs():
    assert yaml.safe_load(yamledit.flow({"init": "uniform(-1,1)"})) == {"init": "uniform(-1,1)"}


def _plain(lines) -> str:
    return "\n".join(line.plain for line in lines)


def test_folded_picture_marks_feedback_with_its_delay():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    assert analysis.ok, analysis.problems
    layout = folded_layout(analysis.graph)
    ghost = ("ghost", "context", 1)
    assert ghost in layout.vertices
    # the ghost sits left of the node it feeds: a left-to-right DAG
    assert layout.vertices[ghost].layer < layout.vertices["hidden"].layer
    picture = _plain(render_layout(layout))
    assert "context[t-1]" in picture and "z^-1" in picture
    for name in ("x", "hidden", "context", "y"):
        assert name in picture


def test_unrolled_picture_has_time_columns_and_a_window():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    layout = unrolled_layout(analysis.graph, 50, start=10, window=4)
    picture = _plain(render_layout(layout))
    assert "hidden@10" in picture and "hidden@13" in picture
    assert "hidden@14" not in picture and "hidden@9" not in picture
    assert "context@9" in picture          # the arc into the window starts at a ghost
    for t in range(10, 14):
        assert f"t={t}" in picture
    # every arc of the unrolled DAG goes left to right
    for u, v, _ in layout.segments:
        assert layout.vertices[u].layer < layout.vertices[v].layer


def test_equation_uses_the_real_delays():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    equation, legend = vertex_equation(analysis.graph, "hidden", 3, analysis.params)
    assert equation == "hidden@3 = sigmoid(W x@3 + U context@2 + b)"
    assert any(line.startswith("U = context->hidden (4, 4)") for line in legend)
    equation, legend = vertex_equation(analysis.graph, "hidden", 0, analysis.params)
    assert "context@-1" in equation and any("0.5" in line for line in legend)


def test_lstm_stack_lays_out_quickly():
    """20+ primitive nodes unrolled 50 steps, windowed: fast enough for a worker."""
    import time
    text = """\
rnngraph: 1
nodes:
  x: {role: input, size: 3}
  a: {type: lstm, size: 8}
  b: {type: lstm, size: 8}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: a}
  - {from: a, to: b}
  - {from: b, to: y}
"""
    analysis = analyse(text)
    assert analysis.ok, analysis.problems
    assert analysis.graph.number_of_nodes() >= 20
    began = time.perf_counter()
    for collapse in (False, True):
        render_layout(folded_layout(analysis.graph, collapse=collapse))
        render_layout(unrolled_layout(analysis.graph, 50, start=20, window=6, collapse=collapse))
    assert time.perf_counter() - began < 10.0


def test_a_checkpoint_that_raises_stops_the_layout_and_the_drawing():
    """The layout worker's way to drop a picture nobody waits for any more."""
    analysis = analyse(spec_path("lstm_adding.yaml").read_text())

    class Enough(Exception):
        pass

    calls = []

    def checkpoint():
        calls.append(None)
        if len(calls) > 1:
            raise Enough

    with pytest.raises(Enough):
        unrolled_layout(analysis.graph, 50, start=20, window=6, checkpoint=checkpoint)
    calls.clear()
    with pytest.raises(Enough):
        folded_layout(analysis.graph, checkpoint=checkpoint)
    layout = unrolled_layout(analysis.graph, 50, start=20, window=6)
    calls.clear()
    with pytest.raises(Enough):
        render_layout(layout, checkpoint=checkpoint)


def test_invalid_yaml_is_a_problem_not_an_exception():
    analysis = analyse("nodes: {x: [\n")
    assert analysis.problems and analysis.problems[0].line is not None
    analysis = analyse("rnngraph: 1\nnodes:\n  x: {size: 0}\nedges: []\n")
    assert analysis.problems


def test_inspector_names_the_parameters_the_graph_gives():
    import io

    from rich.console import Console

    from tui.widgets.inspector import inspect_node

    analysis = analyse(spec_path("primitives.yaml").read_text())
    assert analysis.ok, analysis.problems
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(inspect_node(analysis, "trace"))
    text = out.getvalue()
    init_param = analysis.graph.nodes["trace"]["init_param"]
    assert init_param == "trace.init"                       # the engine's name, not a guess
    assert f"(trainable: {init_param})" in text
    assert any(line.split("│")[0].strip() == init_param for line in text.splitlines())


YAMLISH = "abxy01:-{}[],#'\"&*!|>%@` \n\t"


def test_yaml_edits_on_any_text_raise_only_yaml_edit_errors():
    """Forms on broken YAML: the edit is refused with YamlEditError, never another error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = spec_path("elman_temporal_xor.yaml").read_text()
    edits = [
        lambda t: yamledit.set_node(t, "extra", {"size": 3}),
        lambda t: yamledit.set_node(t, "hidden", {"size": 5, "activation": "tanh"}),
        lambda t: yamledit.remove_node(t, "hidden"),
        lambda t: yamledit.add_edge(t, {"from": "x", "to": "y", "delay": 2}),
        lambda t: yamledit.set_edge(t, 0, {"from": "x", "to": "ghost"}),
        lambda t: yamledit.remove_edge(t, 1),
    ]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, len(base)), st.integers(0, 20), st.text(YAMLISH, max_size=8),
           st.sampled_from(range(len(edits))))
    def check(at, cut, insert, which):
        text = base[:at] + insert + base[at + cut:]
        try:
            out = edits[which](text)
        except yamledit.YamlEditError:
            return
        assert isinstance(out, str)

    check()
    for deep in ("[" * 600, "{a: " * 600):
        for edit in edits:
            try:
                edit(deep)
            except yamledit.YamlEditError:
                pass
    assert analyse("[" * 600).problems[0].what.startswith("YAML syntax")


def test_pictures_of_a_backward_loop_read_later_steps():
    """A delay -1 edge is a ghost reading ``t+1``; unrolled, its arcs come from the next
    step, a later step outside the window, or the initial state past the end."""
    analysis = analyse(spec_path("bidirectional_marker.yaml").read_text())
    assert analysis.ok, analysis.problems
    folded = _plain(render_layout(folded_layout(analysis.graph)))
    assert "bw[t+1]" in folded and "z^+1" in folded and "fw[t-1]" in folded
    assert vertex_equation(analysis.graph, "bw", 3, analysis.params)[0] == "bw@3 = tanh(W x@3 + U bw@4 + b)"
    window = unrolled_layout(analysis.graph, 6, start=2, window=2)
    assert ("ghost", "bw", 4) in window.vertices and "later" in _plain(render_layout(window))
    whole = unrolled_layout(analysis.graph, 3)
    assert ("ghost", "bw", 3) in whole.vertices
    assert "bw@3" in _plain(render_layout(whole)) and "init" in _plain(render_layout(whole))
