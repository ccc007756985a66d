"""``rnngraph grads`` (|dL/dv(t)| per node and step) and the loss marks of ``rnngraph unroll``."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.cli.grads import evaluation_batch, gradient_norms

SPECS = Path(__file__).resolve().parent.parent / "specs"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- grads

def test_grads_are_the_norms_of_backward_trace_on_the_first_evaluation_batch():
    spec = rg.load_spec(SPECS / "parity_many_to_one.yaml")
    net = rg.build(spec)
    batch, masks, loss = evaluation_batch(spec, net, steps=None)
    assert batch.n == min(spec.train.get("batch_size", 32), batch.n) and masks  # loss_on: last
    nodes, norms, _ = gradient_norms(net, batch, masks, loss)
    assert nodes == ["hidden", "y"] and norms.shape == (batch.steps, 2)
    trace = net.backward_trace(batch.inputs, batch.targets, loss=loss, mask=masks)
    want = np.sqrt((trace["hidden"].astype(float) ** 2).sum(axis=(0, 2)))
    np.testing.assert_allclose(norms[:, 0], want, rtol=1e-6)
    # many-to-one: the loss reads y at the last step alone, and the hidden gradient fades going back
    assert np.all(norms[:-1, 1] == 0) and norms[-1, 1] > 0
    assert norms[0, 0] < norms[-1, 0]


def test_grads_cli_text_and_csv_agree(tmp_path, capsys):
    code, text, _ = run_cli(capsys, "grads", SPECS / "elman_temporal_xor.yaml", "-T", 6)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith("# |dL/dv(t)| of ") and "initial parameters" in lines[0]
    assert lines[1].split()[0] == "t" and sorted(lines[1].split()[1:]) == ["context", "hidden", "y"]
    assert len(lines) == 2 + 6
    out = tmp_path / "g.csv"
    code, said, _ = run_cli(capsys, "grads", SPECS / "elman_temporal_xor.yaml", "-T", 6, "--format", "csv",
                            "--out", out)
    assert code == 0 and "wrote" in said
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0][0] == "t" and rows[0][1:] == lines[1].split()[1:] and len(rows) == 7
    for row, line in zip(rows[1:], lines[2:]):
        np.testing.assert_allclose([float(x) for x in row[1:]], [float(x) for x in line.split()[1:]], rtol=1e-2)


def test_grads_with_trained_params_differ_from_the_initial_ones(tmp_path, capsys):
    spec = rg.load_spec(SPECS / "parity_many_to_one.yaml")
    net = rg.build(spec)
    for value in net.params.values():
        value *= 3.0
    net.save(tmp_path / "p.npz")
    _, initial, _ = run_cli(capsys, "grads", SPECS / "parity_many_to_one.yaml", "--format", "csv")
    code, scaled, _ = run_cli(capsys, "grads", SPECS / "parity_many_to_one.yaml", "--format", "csv",
                              "--params", tmp_path / "p.npz")
    assert code == 0 and scaled != initial


def test_grads_png_is_a_heat_map_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "g.png"
    code, _, _ = run_cli(capsys, "grads", SPECS / "elman_adding.yaml", "--format", "png", "--out", out)
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, words", [
    (["--format", "png"], "--out"),
    (["-T", "3"], "counts at none of these steps"),       # adding: the loss is read at the end only
    (["-T", "5000"], "only"),
    (["--params", "nope.npz"], "nope.npz"),
])
def test_grads_usage_errors_exit_2(capsys, argv, words):
    code, _, err = run_cli(capsys, "grads", SPECS / "elman_adding.yaml", *argv)
    assert code == 2 and words in err and "Traceback" not in err


def test_grads_of_a_hopfield_spec_is_refused(capsys):
    code, _, err = run_cli(capsys, "grads", SPECS / "hopfield_discrete.yaml")
    assert code == 2 and err


# --------------------------------------------------------------------------- unroll marks

def unrolled(capsys, name, fmt, T=4):
    code, out, err = run_cli(capsys, "unroll", SPECS / f"{name}.yaml", "-T", T, "--format", fmt)
    assert code == 0, err
    return out


def test_many_to_one_one_to_many_and_many_to_many_unroll_differently(capsys):
    pictures = {}
    for name in ("parity_many_to_one", "one_to_many", "fully_recurrent"):
        data = json.loads(unrolled(capsys, name, "json"))
        pictures[name] = ({v["id"] for v in data["vertices"] if v["loss"]},
                          {v["id"] for v in data["vertices"] if v["empty"]})
    assert pictures["parity_many_to_one"] == ({"y@3"}, set())
    assert pictures["one_to_many"] == ({"y@0", "y@1", "y@2", "y@3"}, {"x@1", "x@2", "x@3"})
    assert pictures["fully_recurrent"] == ({"y@0", "y@1", "y@2", "y@3"}, set())


def test_loss_marks_in_text_dot_and_mermaid(capsys):
    text = unrolled(capsys, "parity_many_to_one", "text")
    marked = [line.split()[0] for line in text.splitlines() if line.endswith("<- loss")]
    assert marked == ["y@3"] and "loss_on: last" in text
    dot = unrolled(capsys, "parity_many_to_one", "dot")
    assert [line.split()[0] for line in dot.splitlines() if "penwidth=3" in line] == ['"y@3"']
    mermaid = unrolled(capsys, "one_to_many", "mermaid")
    assert "  class y_0,y_1,y_2,y_3 loss" in mermaid and "  class x_1,x_2,x_3 empty" in mermaid


def test_a_data_mask_marks_the_steps_it_counts(capsys, tmp_path):
    x = np.zeros((2, 5, 1))
    x[:, :2] = 1.0
    mask = np.zeros((2, 5))
    mask[0, 2] = mask[1, 4] = 1
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros((2, 5, 1)), **{"y.mask": mask})
    (tmp_path / "s.yaml").write_text("""rnngraph: 1
nodes:
  x: {role: input, size: 1}
  h: {size: 2, activation: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: d.npz}
train: {loss_on: mask}
""")
    code, out, err = run_cli(capsys, "unroll", tmp_path / "s.yaml", "-T", 5, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {v["id"] for v in data["vertices"] if v["loss"]} == {"y@2", "y@4"}
    assert {v["id"] for v in data["vertices"] if v["empty"]} == {"x@2", "x@3", "x@4"}
