"""The numba loop backend (engine/compile/numba_loops.py): the same losses and
gradients as the numpy loops on every spec, a clean fallback without numba,
and kernels cached on disk across processes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.engine.compile import numba_loops
from rnngraph.engine.compile.runtime import compiled_loops
from rnngraph.errors import DataError
from rnngraph.spec import HOPFIELD_RULES
from rnngraph.training.experiment import Experiment

ROOT = Path(__file__).resolve().parent.parent
# the specs with a training step (a Hopfield net is stored by a rule, not stepped)
SPECS = [p for p in sorted((ROOT / "specs").glob("*.yaml"))
         if rg.load_spec(str(p)).train.get("method", "bptt") not in HOPFIELD_RULES]

needs_numba = pytest.mark.skipif(numba_loops._numba() is None, reason="numba is not installed (extra 'fast')")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv(numba_loops.ENV_CACHE, str(tmp_path / "cache"))


@pytest.fixture
def any_batch(monkeypatch):
    """Kernels run whatever the batch (not only where they are faster)."""
    monkeypatch.setattr(numba_loops, "TRANSCENDENTALS_PER_CALL", 1 << 40)
    monkeypatch.setattr(numba_loops, "MAX_GEMM", 1 << 40)


def _step(spec, backend, monkeypatch):
    """Loss and gradients of one float64 step on the spec's evaluation data, and the
    network's compiled loops, with the loops of ``backend``."""
    monkeypatch.setenv(numba_loops.ENV_BACKEND, backend)
    experiment = Experiment(spec)
    data = experiment.eval_data if experiment.eval_data is not None and experiment.eval_data.n else \
        experiment.train_data
    net = rg.build(spec, dtype="float64")
    loss, grads = net.loss_and_grad(data.inputs, data.targets, initial=data.initial or None,
                                    mask=data.masks or None, steps=data.steps or None)
    compiled = [c for cache in net.program.stages.values() for pair in compiled_loops(cache) for c in pair if c]
    return loss, grads, compiled


@needs_numba
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_numba_loops_match_numpy_loops(path, monkeypatch, any_batch):
    spec = rg.load_spec(str(path))
    loss_np, grads_np, compiled_np = _step(spec, "numpy", monkeypatch)
    loss_nb, grads_nb, compiled_nb = _step(spec, "numba", monkeypatch)
    assert not any(isinstance(loop, numba_loops.NumbaLoop) for c in compiled_np for loop in (c.forward, c.backward))
    # every loop of a small stage runs as a numba kernel (large ones stay with numpy's BLAS)
    for c in compiled_nb:
        for loop in (c.forward, c.backward):
            assert isinstance(loop, numba_loops.NumbaLoop) != c.large
            if not c.large:
                assert loop.failure is None, loop.failure
    ran = [loop.kernel_runs for c in compiled_nb if not c.large for loop in (c.forward, c.backward)]
    assert any(ran) or all(c.large for c in compiled_nb)
    assert loss_nb == pytest.approx(loss_np, rel=1e-12, abs=1e-300)
    assert grads_nb.keys() == grads_np.keys()
    for name in grads_np:
        ref = np.asarray(grads_np[name])
        scale = max(float(np.max(np.abs(ref))), 1e-300)
        assert float(np.max(np.abs(np.asarray(grads_nb[name]) - ref))) <= 1e-12 * scale, name


RNN = """
rnngraph: 1
name: tiny
dtype: float64
nodes:
  x: {role: input, size: 2}
  h: {activation: tanh, size: 3}
  y: {role: output, size: 2}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
train: {method: bptt, loss: mse}
"""


def _tiny_step(monkeypatch, backend="auto", batch=2):
    monkeypatch.setenv(numba_loops.ENV_BACKEND, backend)
    net = rg.build(rg.parse_spec(RNN), seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((batch, 5, 2)), rng.standard_normal((batch, 5, 2))
    loss, grads = net.loss_and_grad({"x": x}, {"y": y})
    loops = [loop for cache in net.program.stages.values() for pair in compiled_loops(cache) for c in pair if c
             for loop in (c.forward, c.backward)]
    return loss, grads, loops


def test_without_numba_the_numpy_loops_run(monkeypatch):
    """With numba hidden (its import fails), the loops are numpy's and the results the same."""
    reference = _tiny_step(monkeypatch, "numpy")
    monkeypatch.setitem(sys.modules, "numba", None)     # import numba -> ImportError
    assert numba_loops.backend() == "numpy"
    loss, grads, loops = _tiny_step(monkeypatch, "auto")
    assert loops and not any(isinstance(loop, numba_loops.NumbaLoop) for loop in loops)
    assert loss == reference[0]
    assert all(np.array_equal(grads[k], reference[1][k]) for k in grads)
    with pytest.raises(DataError, match="numba is not installed"):
        _tiny_step(monkeypatch, "numba")


def test_bad_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(numba_loops.ENV_BACKEND, "fortran")
    with pytest.raises(DataError, match="RNNGRAPH_LOOPS='fortran': expected one of auto, numba, numpy"):
        numba_loops.backend()


def test_translation_covers_the_loop_vocabulary():
    """Each kind of line the loop compiler writes, as nopython-mode code."""
    tr = numba_loops.translate_line
    assert tr("dot((V0[t - 1] if t >= 1 else H0[t + D0 - 1]), WT0, A0[t])") == \
        ["_gemm((V0[t - 1] if t >= 1 else H0[t + D0 - 1]), WT0, A0[t])"]
    assert tr("matmul(GAP0[t], W0, out=GV1[t][:, 0:3])") == ["_gemm(GAP0[t], W0, GV1[t][:, 0:3])"]
    assert tr("multiply(GV6[t], DER6[t], out=GA6[t])") == ["np.multiply(GV6[t], DER6[t], GA6[t])"]
    assert tr("copyto(ga, gv)") == ["ga[:] = gv"]
    assert tr("ga.fill(0)") == ["ga.fill(0)"]
    assert tr("multiply(GV6[t][:, None], DERP0[t][:, 0:6].reshape(-1, 3, 2), out=GAP0[t][:, 0:6].reshape(-1, 3, 2))") \
        == [f"np.multiply(GV6[t], DERP0[t][:, {lo}:{lo + 2}], GAP0[t][:, {lo}:{lo + 2}])" for lo in (0, 2, 4)]
    for line in ("ga[...] = F3(gv, A3[t], V3[t])", "v[...] = F2(a)"):
        with pytest.raises(numba_loops.Unsupported):
            tr(line)


@needs_numba
def test_kernels_are_cached_on_disk_for_the_next_process(tmp_path, monkeypatch):
    """A kernel's module is written to the cache directory with numba's machine code
    beside it; a second process loads it from there instead of compiling."""
    loss, _, loops = _tiny_step(monkeypatch)
    assert loops and all(isinstance(loop, numba_loops.NumbaLoop) for loop in loops)
    folder = numba_loops.cache_dir()
    assert folder == tmp_path / "cache" / "numba"
    modules = sorted(folder.glob("loops_*.py"))
    assert len(modules) == len({loop.kernel_source for loop in loops if loop._kernel is not None}) >= 2
    assert not list(folder.glob(".loops_*"))              # no temporary file left behind
    assert list((folder / "__pycache__").glob("*.nbi"))   # numba's index of compiled code
    script = f"""
import numpy as np, numba, rnngraph as rg
from numba.core import dispatcher
compiled = []
original = dispatcher.Dispatcher.compile
def counting(self, sig):
    compiled.append(self.py_func.__name__) if not self._cache.load_overload(sig, self.targetctx) else None
    return original(self, sig)
dispatcher.Dispatcher.compile = counting
net = rg.build(rg.parse_spec({RNN!r}), seed=0)
rng = np.random.default_rng(1)
x, y = rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 2))
print(repr(net.loss_and_grad({{"x": x}}, {{"y": y}})[0]), compiled)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ}, check=True).stdout.split(" ", 1)
    assert float(out[0]) == loss
    assert out[1].strip() == "[]"          # every kernel came from the cache



@needs_numba
def test_large_batches_run_the_numpy_loop(monkeypatch):
    """Past the bound on tanh evaluations per step the numpy loop runs (numpy's tanh is
    vectorized, numba's is not), with the same results; below it the kernel."""
    reference = _tiny_step(monkeypatch, "numpy", batch=200)
    loss, grads, loops = _tiny_step(monkeypatch, "numba", batch=200)
    forward = loops[0]
    assert isinstance(forward, numba_loops.NumbaLoop) and forward.max_rows < 200
    assert forward.kernel_runs == 0
    assert loss == pytest.approx(reference[0], rel=1e-12)
    *_, small = _tiny_step(monkeypatch, "numba", batch=2)
    assert small[0].kernel_runs == 1


def test_bad_backend_stops_a_run_with_exit_2(tmp_path):
    spec = ROOT / "specs" / "elman_temporal_xor.yaml"
    r = subprocess.run([sys.executable, "-m", "rnngraph", "run", str(spec), "--out", str(tmp_path / "out"), "--quiet"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, numba_loops.ENV_BACKEND: "fast please"})
    assert r.returncode == 2, r.stderr
    assert "RNNGRAPH_LOOPS='fast please': expected one of auto, numba, numpy" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
