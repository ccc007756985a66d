"""The benchmark baselines compute the right numbers; the harness runs end to end.

No timing assertions here: these tests check correctness only.
Run: ``python -m pytest benchmarks/tests``.
"""

import json

import numpy as np
import pytest

from benchmarks import blas_limit, numpy_bptt, rnngraph_adapter, run

CELLS = ["rnn", "lstm"]


def finite_diff(cell, params, x, y, eps=1e-6):
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + eps
            lp = numpy_bptt.reference_loss(cell, params, x, y)
            value[idx] = old - eps
            lm = numpy_bptt.reference_loss(cell, params, x, y)
            value[idx] = old
            g[idx] = (lp - lm) / (2 * eps)
        grads[name] = g
    return grads


def max_rel(a, b):
    scale = np.max(np.abs(b))
    return np.max(np.abs(a - b)) / (scale if scale > 0 else 1.0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("I,H,O,B,T", [(1, 2, 1, 1, 20), (3, 5, 2, 4, 7), (3, 4, 2, 2, 1)])
def test_numpy_bptt_matches_finite_differences(cell, I, H, O, B, T):
    params = numpy_bptt.init_params(cell, I, H, O, seed=1)
    x, y = numpy_bptt.make_data(B, T, I, O, seed=1)
    loss, grads = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x, y)
    assert loss == pytest.approx(numpy_bptt.reference_loss(cell, params, x, y), rel=1e-12)
    fd = finite_diff(cell, params, x, y)
    for name in numpy_bptt.PARAM_NAMES:
        assert grads[name].shape == params[name].shape
        assert max_rel(grads[name], fd[name]) < 1e-6, name


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_bptt_float32_close_to_float64_and_reusable(cell):
    params = numpy_bptt.init_params(cell, 4, 6, 3, seed=2)
    x, y = numpy_bptt.make_data(5, 9, 4, 3, seed=2)
    l64, g64 = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x, y)
    m = numpy_bptt.make(cell, params, np.float32)
    first = m.loss_and_grad(x.astype(np.float32), y.astype(np.float32))
    again = m.loss_and_grad(x.astype(np.float32), y.astype(np.float32))  # reused workspace
    for loss, grads in (first, again):
        assert loss == pytest.approx(l64, rel=1e-5)
        for n in g64:
            assert grads[n].dtype == np.float32
            assert max_rel(grads[n], g64[n]) < 1e-4, n
    other = m.loss_and_grad(x[:2, :4].astype(np.float32), y[:2, :4].astype(np.float32))  # new (B, T)
    ref = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x[:2, :4], y[:2, :4])
    assert other[0] == pytest.approx(ref[0], rel=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_torch_baselines_agree_with_numpy(cell):
    pytest.importorskip("torch")
    from benchmarks import torch_impls

    params = numpy_bptt.init_params(cell, 3, 5, 2, seed=3)
    x, y = numpy_bptt.make_data(4, 6, 3, 2, seed=3)
    ref_loss, ref = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x, y)
    for cls in (torch_impls.TorchFused, torch_impls.TorchEager):
        loss, grads = cls(cell, params, np.float64).loss_and_grad(x, y)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for n in ref:
            assert max_rel(grads[n], ref[n]) < 1e-12, (cls.__name__, n)


class _RecordingNumpy:
    """Stands in for ``numpy`` inside numpy_bptt and records every matmul's shapes."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, a, b, out=None):
        self.calls.append((a.shape[0], a.shape[1], b.shape[1]))
        return np.matmul(a, b, out=out)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T", [1, 6])
def test_blas_plan_lists_exactly_the_gemms_of_the_numpy_step(cell, T, monkeypatch):
    I, H, O, B = 3, 5, 2, 4
    params = numpy_bptt.init_params(cell, I, H, O)
    x, y = numpy_bptt.make_data(B, T, I, O)
    rec = _RecordingNumpy()
    monkeypatch.setattr(numpy_bptt, "np", rec)
    numpy_bptt.make(cell, params, np.float32).loss_and_grad(x, y)
    monkeypatch.undo()
    planned = sorted((g.m, g.k, g.n) for g in blas_limit.gemm_plan(cell, I, H, O, B, T) for _ in range(g.count))
    assert sorted(rec.calls) == planned
    bl = blas_limit.BlasLimit(blas_limit.gemm_plan(cell, I, H, O, B, T))
    bl.run()
    assert bl.flops == sum(2 * m * k * n for m, k, n in planned)


@pytest.mark.parametrize("cell", CELLS)
def test_adapter_names_round_trip(cell):
    params = numpy_bptt.init_params(cell, 3, 4, 2)
    named = rnngraph_adapter.to_named(cell, params)
    assert sorted(named) == sorted(rnngraph_adapter.names(cell))
    back = rnngraph_adapter.from_named(cell, named)
    for n in params:
        np.testing.assert_array_equal(back[n], params[n])
    if cell == "lstm":  # gate blocks in PyTorch order i, f, g, o
        np.testing.assert_array_equal(named["x->lstm/g"], params["W_ih"][8:12])
        np.testing.assert_array_equal(named["lstm/o.bias"], params["b"][12:16])


@pytest.mark.parametrize("cell", CELLS)
def test_spec_text_sets_sizes_and_dtype(cell):
    import yaml

    doc = yaml.safe_load(rnngraph_adapter.spec_text(cell, 3, 7, 2, np.float64))
    assert doc["dtype"] == "float64"
    assert doc["nodes"]["x"]["size"] == 3 and doc["nodes"]["y"]["size"] == 2
    assert doc["nodes"][rnngraph_adapter.HIDDEN[cell]]["size"] == 7


@pytest.mark.parametrize("cell", CELLS)
def test_rnngraph_column_agrees_with_the_numpy_step(cell):
    import rnngraph as rg
    params = numpy_bptt.init_params(cell, 3, 4, 2, seed=4)
    x, y = numpy_bptt.make_data(2, 5, 3, 2, seed=4)
    ref_loss, ref = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x, y)
    loss, grads = rnngraph_adapter.RnngraphImpl(rg, cell, params, np.float64).loss_and_grad(x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    for n in ref:
        assert max_rel(grads[n], ref[n]) < 1e-9, n


def _small_suite(monkeypatch):
    monkeypatch.setattr(run, "CONFIGS", [("rnn", 1, 2, 1, 5), ("lstm", 2, 3, 2, 4)])
    monkeypatch.setattr(run, "SCALING_SIZE", (2, 3, 2))
    monkeypatch.setattr(run, "SCALING_T", (3,))
    monkeypatch.setattr(run, "BATCH_SCALING_SIZE", (2, 3, 4))
    monkeypatch.setattr(run, "BATCH_SCALING_B", (1, 3))


def test_harness_runs_and_writes_json(tmp_path, monkeypatch):
    _small_suite(monkeypatch)
    out = tmp_path / "bench.json"
    assert run.main(["--smoke", "--threads", "1", "--clock", "cpu", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["cell"] for r in doc["results"]] == ["rnn", "lstm"]
    assert len(doc["scaling"]) == 2
    assert [(r["cell"], r["batch"]) for r in doc["batch_scaling"]] == [("rnn", 1), ("rnn", 3), ("lstm", 1), ("lstm", 3)]
    for r in doc["results"] + doc["scaling"] + doc["batch_scaling"]:
        assert r["failed_check"] == []
        assert "numpy" in r["time"] and "blas" in r["time"]
        assert r["time"]["numpy"]["cpu"]["reps"] == r["time"]["numpy"]["reps"]
        assert set(r["ratios"]) == {"wall", "cpu"}
        assert r["check"]["numpy"]["float64"]["grad_err"] == 0.0
    assert "numpy_blas" in doc["env"]


def test_harness_skips_torch_columns_without_torch(tmp_path, monkeypatch, capsys):
    _small_suite(monkeypatch)
    monkeypatch.setattr(run, "torch", None)
    monkeypatch.setattr(run, "TORCH_MISSING", "ModuleNotFoundError: No module named 'torch'")
    out = tmp_path / "bench.json"
    assert run.main(["--smoke", "--threads", "1", "--no-scaling", "--no-memory", "--only", "rnn", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[skip] torch nn.RNN/LSTM column: PyTorch not installed" in text
    doc = json.loads(out.read_text())
    assert "torch_fused" not in doc["results"][0]["time"]
    assert "torch_fused" in doc["skipped"]


def _git_checkout() -> bool:
    import pathlib
    import shutil
    import subprocess
    root = pathlib.Path(__file__).resolve().parents[2]
    return shutil.which("git") is not None and subprocess.run(
        ["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True).returncode == 0


needs_git = pytest.mark.skipif(not _git_checkout(), reason="benchmarks.ab exports a revision with git: "
                                                           "this tree is not a git checkout")


@needs_git
def test_ab_times_a_revision_against_the_tree_in_one_process(capsys):
    """``benchmarks.ab`` imports HEAD's package beside the tree's, both train the same
    network on the same data (the first losses agree), and it cleans up after itself."""
    import sys

    from benchmarks import ab
    assert ab.main(["HEAD", "--config", "rnn,1,2,1,3", "--config", "lstm,2,3,2,4", "--seconds", "0.05"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()
            if line.startswith(("rnn,", "lstm,"))}
    assert set(rows) == {"rnn,1,2,1,3", "lstm,2,3,2,4"}
    for cells in rows.values():
        old_us, new_us, ratio, steps, loss_gap = (float(cells[i]) for i in (1, 2, 3, 5, 6))
        assert old_us > 0 and new_us > 0 and ratio == pytest.approx(new_us / old_us, rel=2e-3)
        assert steps >= 20 and loss_gap < 1e-4
    assert not any(m.startswith("rnngraph_rev") for m in sys.modules)


@needs_git
def test_ab_refuses_a_revision_git_does_not_know(capsys):
    from benchmarks import ab
    with pytest.raises(SystemExit) as exc:
        ab.main(["no-such-revision-anywhere", "--seconds", "0.01"])
    assert exc.value.code == 2
    assert "git cannot export rnngraph/ at 'no-such-revision-anywhere'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        ab.main(["HEAD", "--config", "gru,1,2,3,4"])
    assert exc.value.code == 2


def test_fingerprint_is_repeatable_and_names_what_changed(tmp_path, capsys):
    from benchmarks import fingerprint
    spec = fingerprint.ROOT / "specs" / "elman_temporal_xor.yaml"
    saved = tmp_path / "before.json"
    assert fingerprint.main([str(spec), "--epochs", "1", "--out", str(saved)]) == 0
    assert fingerprint.main([str(spec), "--epochs", "1", "--compare", str(saved)]) == 0
    assert "bit-identical" in capsys.readouterr().out
    before = json.loads(saved.read_text())
    before["elman_temporal_xor.yaml"]["step"]["grads"]["hidden->y"] = "changed"
    saved.write_text(json.dumps(before))
    assert fingerprint.main([str(spec), "--epochs", "1", "--compare", str(saved)]) == 1
    assert "elman_temporal_xor.yaml.step.grads.hidden->y: changed ->" in capsys.readouterr().out
