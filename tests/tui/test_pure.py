"""The layers under the UI: YAML edits, layout, drawing, equations (no Textual)."""

from __future__ import annotations

import pytest
import yaml

from tui import yamledit
from tui.canvas import render_layout
from tui.equations import vertex_equation
from tui.layout import collapse_blocks, folded_layout
from tui.unrolled import unrolled_picture
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


def test_folded_picture_draws_feedback_as_a_loop_into_its_target():
    """context -> hidden (delay 1) leaves context on its right, runs along its own row under the
    boxes (labelled z^-1), and comes back into hidden on its left: one unbroken double line."""
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    assert analysis.ok, analysis.problems
    layout = folded_layout(analysis.graph)
    assert not any(isinstance(v, tuple) for v in layout.vertices)     # no ghost boxes
    [loop] = layout.loops
    assert (loop.source, loop.target, loop.delay) == ("context", "hidden", 1)
    rows = _plain(render_layout(layout)).splitlines()
    context, hidden = layout.vertices["context"], layout.vertices["hidden"]
    assert rows[context.y + 1][context.x + context.w - 1] == "╞"
    assert rows[hidden.y + 1][hidden.x - 1] == "▶"
    assert "z^-1" in rows[loop.band_y]
    # follow the double line from context's side back to hidden's: it never breaks
    x, y, seen = context.x + context.w, context.y + 1, 0
    moves = {"═": None, "╗": (0, 1), "╝": (-1, 0), "╚": (0, -1), "╔": (1, 0)}
    direction = (1, 0)
    while (x, y) != (hidden.x - 1, hidden.y + 1) and seen < 500:
        ch = rows[y][x]
        if ch in "╗╝╚╔":
            direction = moves[ch]
        else:
            assert ch in "═║╪╫" or ch in " z^-1", (x, y, ch)
        x, y, seen = x + direction[0], y + direction[1], seen + 1
    assert (x, y) == (hidden.x - 1, hidden.y + 1)
    for name in ("x", "hidden", "context", "y"):
        assert name in "\n".join(rows)


def test_unrolled_picture_has_time_columns_and_a_window():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    picture = unrolled_picture(analysis.graph, 50, start=10, window=4)
    text = _plain(picture.lines)
    assert "hidden@10" in text and "hidden@13" in text
    assert "hidden@14" not in text and "hidden@9" not in text
    assert "context@9" in text          # the arc into the window starts at a ghost
    for t in range(10, 14):
        assert f"t={t}" in text


def _box(picture, vertex):
    return picture.vertices[vertex]


def test_unrolled_picture_stacks_a_step_in_a_column_inputs_at_the_bottom():
    """Time runs across, one column per step; in a column the input is lowest, the output highest."""
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    picture = unrolled_picture(analysis.graph, 5, window=5)
    for t in range(5):
        x, hidden, y = (_box(picture, (n, t)) for n in ("x", "hidden", "y"))
        assert x.x == hidden.x == y.x                       # one column per step
        assert y.y < hidden.y < x.y                         # outputs at the top, inputs at the bottom
        if t:
            assert _box(picture, ("hidden", t - 1)).x < hidden.x   # time runs left to right
    rows = [line.plain for line in picture.lines]
    # the recurrent arc context@0 -> hidden@1 is a double line ending in ▶ at hidden@1's left side
    hidden1 = _box(picture, ("hidden", 1))
    assert rows[hidden1.port][hidden1.x - 1] == "▶"
    assert "═" in rows[hidden1.port][_box(picture, ("hidden", 0)).x + hidden1.w:hidden1.x - 1]
    # the arc x@1 -> hidden@1 of the same step is a light line ending in ▲ under hidden@1
    below = hidden1.y + hidden1.h
    assert rows[below][hidden1.x + hidden1.w // 2] == "▲"
    assert all(ch not in "═║" for ch in rows[below][hidden1.x:hidden1.x + hidden1.w])
    # five Elman steps fit in 120 columns
    assert picture.vertices[("hidden", 4)].x + picture.vertices[("hidden", 4)].w < 120


def test_unrolled_picture_marks_the_steps_where_the_loss_counts():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    many = unrolled_picture(analysis.graph, 5, loss_steps=range(5))
    one = unrolled_picture(analysis.graph, 5, loss_steps=[4])
    assert many.loss_steps == (0, 1, 2, 3, 4) and one.loss_steps == (4,)
    heavy = lambda p, t: p.lines[_box(p, ("y", t)).y].plain[_box(p, ("y", t)).x]   # noqa: E731
    assert [heavy(many, t) for t in range(5)] == ["┏"] * 5
    assert [heavy(one, t) for t in range(5)] == ["┌"] * 4 + ["┏"]
    assert _plain(many.lines) != _plain(one.lines)


def test_unrolled_picture_crossing_lines_never_join():
    """Where a double (delayed) line crosses a light one the glyph is ╪ or ╫, never a join."""
    analysis = analyse(spec_path("lstm_adding.yaml").read_text())
    picture = unrolled_picture(analysis.graph, 5)
    text = _plain(picture.lines)
    assert "╪" in text
    assert "┼" not in text and "╬" not in text
    for t in range(5):
        for part in ("i", "f", "o", "g"):      # h(t-1) feeds every gate from the left
            box = _box(picture, (f"lstm/{part}", t))
            assert picture.lines[box.port].plain[box.x - 1] == "▶"


def test_every_spec_unrolls_to_the_engines_dag():
    """The picture draws exactly the arcs of rnngraph.engine.graph.unroll, for every spec in specs/."""
    from rnngraph.engine.graph import unroll
    for path in sorted(spec_path(".").glob("*.yaml")):
        analysis = analyse(path.read_text(), str(path))
        assert analysis.ok, (path, analysis.problems)
        picture = unrolled_picture(analysis.graph, 4, window=4)
        dag = unroll(analysis.graph, 4)
        assert {v for v in picture.vertices if len(v) == 2} == set(dag.nodes), path
        for t in range(4):
            assert f"t={t}" in _plain(picture.lines)


def test_the_tui_asks_the_engine_for_graph_shapes_and_hopfield():
    """For every spec in specs/: the TUI's folded graph is the network's, its shapes the
    network's parameters', its Hopfield state node the engine's memory edge's source."""
    import rnngraph as rg
    from rnngraph.engine.graph import folded_graph
    from rnngraph.engine.hopfield import is_hopfield, state_node
    from tui.model import param_shapes
    from tui.stepping import hopfield_state
    for path in sorted(spec_path(".").glob("*.yaml")):
        analysis = analyse(path.read_text(), str(path))
        net = rg.build(rg.load_spec(str(path)))
        graph = folded_graph(analysis.spec)
        assert list(analysis.graph.nodes(data=True)) == list(net.graph.nodes(data=True)), path
        assert list(analysis.graph.edges(keys=True, data=True)) == list(net.graph.edges(keys=True, data=True))
        assert list(graph.edges(keys=True)) == list(net.graph.edges(keys=True)), path
        want = {name: value.shape for name, value in net.params.items()}
        assert param_shapes(graph) == want, path
        assert analysis.param_shapes == want, path
        hopfield = "hopfield" in path.name
        assert hopfield_state(net.graph) == ([state_node(net)] if hopfield else []), path
        assert is_hopfield(graph) == hopfield, path


def test_a_spec_that_parses_but_does_not_build_still_has_the_engines_graph():
    """Too large for the editor to build as you type: no network, but the engine's folded
    graph to draw, and the shapes the network would have."""
    text = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  a: {size: 8000}
  b: {size: 8000}
edges:
  - {from: x, to: a}
  - {from: a, to: b}
  - {from: b, to: a, delay: 1}
"""
    analysis = analyse(text)
    assert analysis.net is None and analysis.problems
    assert "the editor builds" in analysis.problems[0].what
    assert set(analysis.graph.nodes) == {"x", "a", "b"}
    assert analysis.param_shapes["x->a"] == (8000, 2) and analysis.param_shapes["b->a"] == (8000, 8000)
    assert analysis.param_shapes["a.bias"] == (8000,)


def test_equation_uses_the_real_delays():
    analysis = analyse(spec_path("elman_temporal_xor.yaml").read_text())
    equation, legend = vertex_equation(analysis.graph, "hidden", 3, analysis.param_shapes)
    assert equation == "hidden@3 = sigmoid(W x@3 + U context@2 + b)"
    assert any(line.startswith("U = context->hidden (4, 4)") for line in legend)
    equation, legend = vertex_equation(analysis.graph, "hidden", 0, analysis.param_shapes)
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
        graph = collapse_blocks(analysis.graph) if collapse else analysis.graph
        unrolled_picture(graph, 50, start=20, window=6)
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
        unrolled_picture(analysis.graph, 50, start=20, window=6, checkpoint=checkpoint)
    calls.clear()
    with pytest.raises(Enough):
        folded_layout(analysis.graph, checkpoint=checkpoint)
    layout = folded_layout(analysis.graph)
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



LOOK_AHEAD = """\
rnngraph: 1
nodes:
  x: {role: input, size: 1}
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h, delay: -2}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
"""


def _arrow_row(picture, vertex):
    """The row of ``vertex``'s box where arcs from later steps arrive (under the label)."""
    box = _box(picture, vertex)
    return picture.lines[box.y + 2].plain, box


def test_unrolled_picture_draws_arcs_from_later_steps_right_to_left():
    """A backward block's arc bw@t+1 -> bw@t leaves bw@t+1's left side (╡) and ends in ◀ at
    bw@t's right side, on its own row, a double line all the way; the step past the end
    (t = T, the initial state) is a dashed ghost column on the right."""
    analysis = analyse(spec_path("bidirectional_marker.yaml").read_text())
    picture = unrolled_picture(analysis.graph, 5, window=5)
    text = _plain(picture.lines)
    assert "◀═ from a later step" in text
    for t in range(5):
        row, box = _arrow_row(picture, ("bw", t))
        assert row[box.x + box.w] == "◀"
        source = picture.vertices[("bw", t + 1) if t < 4 else ("ghost", "bw", 5)]
        assert row[source.x] == "╡"
        assert set(row[box.x + box.w + 1:source.x]) <= set("═╪"), row   # followed without a join
        fw_row, fw = _arrow_row(picture, ("fw", t))
        assert "◀" not in fw_row                          # the forward block reads no later step
        assert picture.lines[fw.y + 1].plain[fw.x - 1] == "▶"      # on the label row
    assert "t≥5" in text and "bw@5" in text and "init" in text.splitlines()[1]
    later = unrolled_picture(analysis.graph, 8, start=0, window=5)
    assert "t≥5" in _plain(later.lines) and "later" in later.lines[1].plain     # t=5 exists, off the window


def test_unrolled_picture_draws_a_look_ahead_of_two_steps_along_a_band():
    analysis = analyse(LOOK_AHEAD)
    assert analysis.ok, analysis.problems
    picture = unrolled_picture(analysis.graph, 6, window=5)
    rows = [line.plain for line in picture.lines]
    for t in range(5):
        row, h = _arrow_row(picture, ("h", t))
        assert row[h.x + h.w] == "◀"                                    # x@t+2 -> h@t arrives
        assert _box(picture, ("x", t)).y > h.y > _box(picture, ("y", t)).y   # inputs at the bottom
    for t in range(2, 5):
        x = _box(picture, ("x", t))
        assert rows[x.y + 2][x.x] == "╡"                               # x@t feeds h@t-2
    ghost = picture.vertices[("ghost", "x", 5)]                        # x@5, x@6 lie past the window
    assert rows[ghost.y + 2][ghost.x] == "╡"
    assert sum(r.count("◀") for r in rows[:-1]) == 5                   # one per h@t; the last row is the legend
    assert "┼" not in "\n".join(rows) and "╬" not in "\n".join(rows)


def test_an_expanded_lstm_fits_the_unroll_canvas_of_a_120x40_terminal():
    """88x35 is the picture's room at 120x40: full boxes are 58 rows, so the boxes become one
    row and the parts lose their block's name; five steps still fit side by side."""
    from tui.unrolled import fitted_picture
    analysis = analyse(spec_path("lstm_adding.yaml").read_text())
    full = unrolled_picture(analysis.graph, 5, loss_steps=range(5))
    assert full.height > 35
    picture = fitted_picture(analysis.graph, 5, window=5, width=88, height=35, loss_steps=range(5))
    assert picture.compact and picture.window == 5
    assert picture.width <= 88 and picture.height <= 35
    rows = [line.plain for line in picture.lines]
    assert all(len(r.rstrip()) <= 88 for r in rows)
    assert set(picture.vertices) >= {(n, t) for n in analysis.graph.nodes for t in range(5)}
    y0 = picture.vertices[("y", 0)]
    assert rows[y0.y][y0.x:y0.x + y0.w] == "┃ y@0 ┃"                  # the loss counts: heavy sides
    fc = picture.vertices[("lstm/fc", 2)]
    assert rows[fc.y][fc.x - 1] == "▶" and "fc@2" in rows[fc.y]        # c(t-1) still arrives from the left
    assert "(lstm/): h is lstm/h" in "\n".join(rows)
    narrow = fitted_picture(analysis.graph, 5, window=5, width=60, height=35, loss_steps=range(5))
    assert narrow.width <= 60 and 1 <= narrow.window < 5                 # fewer steps a page


def test_short_names_are_used_only_when_unambiguous():
    from tui.unrolled import short_names
    analysis = analyse(spec_path("lstm_adding.yaml").read_text())
    assert short_names(analysis.graph)["lstm/fc"] == "fc"
    graph = analysis.graph.copy()
    graph.add_node("fc", size=1)                                         # a node of its own named fc
    assert short_names(graph)["lstm/fc"] == "lstm/fc"


def test_folded_edges_that_cross_are_drawn_crossing_not_joined():
    """Where a light edge only passes over another (no line ends or turns there) the cell is
    the vertical line over a broken horizontal one, never ┼: the gated recurrent blocks had
    three ┼ each, read as joins that are not in the graph."""
    from tui.layout import folded_layout
    for name in ("gru_adding.yaml", "lstm_adding.yaml", "lstm_reber.yaml"):
        analysis = analyse(spec_path(name).read_text())
        layout = folded_layout(analysis.graph)
        rows = [line.plain for line in render_layout(layout)]
        assert "┼" not in "\n".join(rows), name


def test_track_order_keeps_a_sources_line_off_the_line_into_a_target_on_its_row():
    """A source's line out must not run past the track of a target on its own row (the two
    lines would overlap): that target's track goes right of the source's tracks."""
    from tui.layout import _track_order
    from tui.layout import Vertex
    vertices = {n: Vertex(n, [n], layer, "hidden") for n, layer in
                (("u", 0), ("w", 0), ("p", 1), ("q", 1))}
    pos = {"u": 1, "w": 0, "p": 0, "q": 1}                  # u shares row 1 with q
    segments = [("u", "p", "edge"), ("w", "q", "edge")]
    assert _track_order({"p": None, "q": None}, segments, vertices, pos, 0) == ["p", "q"]
    pos = {"u": 0, "w": 1, "p": 2, "q": 0}                  # u (row 0) feeds p (row 2); q is on row 0
    segments = [("u", "p", "edge"), ("w", "q", "edge")]
    assert _track_order({"q": None, "p": None}, segments, vertices, pos, 0) == ["p", "q"]


DENSE = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  a: {size: 4}
  b: {size: 4}
  c: {size: 4}
  d: {size: 4}
  e: {size: 4}
  f: {size: 4}
  y: {role: output, size: 1}
  z: {role: output, size: 1}
edges:
  - {from: x, to: [a, b, c]}
  - {from: a, to: [e, f]}
  - {from: b, to: [d, f]}
  - {from: c, to: [d, e]}
  - {from: [d, e], to: y}
  - {from: [f, d], to: z}
  - {from: x, to: y}
"""


def test_a_line_into_a_target_never_runs_along_the_line_out_of_the_source_on_its_row():
    """In this graph every channel row has a source and a target whose tracks cannot all be
    ordered apart: the target's line in then comes in on its label row, so the line out of
    a (which feeds e and f, not d) is not seen running on into d."""
    from tui.layout import folded_layout
    analysis = analyse(DENSE)
    assert analysis.ok, analysis.problems
    layout = folded_layout(analysis.graph)
    rows = [line.plain for line in render_layout(layout)]
    a, d = layout.vertices["a"], layout.vertices["d"]
    assert a.port == d.port                              # a and d share a row
    between = rows[a.port][a.x + a.w:d.x]
    assert "▶" not in between                            # nothing on a's row enters d
    assert rows[d.y + 1][d.x - 1] == "▶"                 # d's line in: its label row
    assert rows[a.port][d.x - 1] == " "                  # a's line stops at its last track
