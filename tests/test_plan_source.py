"""`rnngraph plan SPEC --source` and `net.describe(source=True)`: the schedule, what the
loop compiler decided for each time loop and why, and the loops it generated, named
after the graph."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import rnngraph as rg
from rnngraph.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"
# the compiler's internal tokens (A3, WT0, GAP1) and anonymous views (_v7) must not reach the printed code
INTERNAL = re.compile(r"\b(_v\d+|(A|V|BS|H|GV|GA|GH|DER|W|WT|C|GC|AP|VP|BSP|GVP|GAP|DERP|TMP|TP)\d+)\b")


def loops(text: str) -> list[str]:
    return [block for block in re.split(r"\n(?=def )", text) if block.startswith("def ")]


def test_without_source_it_is_the_schedule():
    net = rg.build(rg.load_spec(SPECS / "elman_temporal_xor.yaml"))
    assert net.describe() == net.plan.describe()
    assert "time loop over" in net.describe()


@pytest.mark.parametrize("spec", ["elman_temporal_xor.yaml", "lstm_adding.yaml", "gru_adding.yaml", "jordan.yaml"])
def test_the_generated_loops_name_the_graph_and_say_what_each_part_computes(spec):
    net = rg.build(rg.load_spec(SPECS / spec))
    text = net.describe(source=True)
    forward, backward = loops(text)
    assert forward.startswith("def forward(") and backward.startswith("def backward(")
    for code in (forward, backward):
        compile(code, spec, "exec")          # printed as it runs: valid Python
        assert not INTERNAL.search(code), INTERNAL.search(code)
        assert "    # " in code              # provenance comments
    recurrent = [s for s in net.plan.stages if s.kind == "recurrent"]
    for node in recurrent[0].nodes:        # every node of the loop is named in its code
        assert re.sub(r"\W", "_", node) in forward + backward, node


def test_an_lstm_loop_reads_as_the_cell_equations():
    text = rg.build(rg.load_spec(SPECS / "lstm_adding.yaml")).describe(source=True)
    forward, backward = loops(text)
    assert "dot(v_lstm_h_t_minus_1, WT_lstm_h_to_lstm_i_g_f_o, a_lstm_i_g_f_o_t)" in forward
    assert "multiply(v_lstm_f_t, v_lstm_c_t_minus_1, a)" in forward        # f * c(t - 1)
    assert "# dense lstm/h(t - 1) -> lstm/i, lstm/g, lstm/f, lstm/o (one fused GEMM)" in forward
    # the layout says what was decided, and why
    assert "pack 0: lstm/i, lstm/g, lstm/f, lstm/o" in text
    assert "sigmoid columns of its weights and base come halved" in text
    assert "a(t) is lstm/c's value" in text
    assert "the other factors of lstm/ig are multiplied into its derivative" in text


def test_a_large_batch_shows_the_memory_layout():
    text = rg.build(rg.load_spec(SPECS / "lstm_adding.yaml")).describe(source=True, T=200, batch=256)
    assert "layout for large sequences (memory first)" in text
    assert "derivative computed in the loop from the step's value" in text


def test_describe_leaves_the_network_as_it_was():
    net = rg.build(rg.load_spec(SPECS / "elman_temporal_xor.yaml"))
    before = {k: v.copy() for k, v in net.params.items()}
    net.describe(source=True)
    assert not any(s.__dict__.get("_calls") for s in net.plan.stages)   # nothing compiled on this network
    assert all((net.params[k] == v).all() for k, v in before.items())


def test_plan_command(capsys):
    assert main(["plan", str(SPECS / "elman_temporal_xor.yaml"), "--source"]) == 0
    out = capsys.readouterr().out
    assert "time loop 2 over" in out or "time loop 1 over" in out
    assert "def backward(" in out
    assert main(["plan", str(SPECS / "elman_temporal_xor.yaml"), "-T", "0", "--source"]) == 2
    assert "-T must be between 1 and 100000, not 0" in capsys.readouterr().err


def test_plan_command_of_an_invalid_spec_points_at_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rnngraph: 1\nnodes:\n  x: {role: input, size: 0}\nedges: []\n")
    r = subprocess.run([sys.executable, "-m", "rnngraph.cli", "plan", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "bad.yaml:3:" in r.stderr and "Traceback" not in r.stderr
