"""Memory is estimated before it is allocated, and the estimate is honest.

One estimate (``rnngraph.budget``) guards data files, the CLI commands and
the Python API: whatever it refuses exits 2 (or raises ``rg.DataError``)
with the estimate in the message, before anything large is allocated; the
limit is changed with ``RNNGRAPH_MEMORY_LIMIT``.  The estimate is checked
against the peak resident memory of real ``rnngraph run`` processes: an
upper bound, and within 3x of it.  Every subprocess runs under ``RLIMIT_AS``.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

import rnngraph as rg

CLI_MEMORY = 3 * 1024 ** 3
ESTIMATE = re.compile(r"about (\d+(?:\.\d+)?) (MiB|GiB)")

SMALL = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1, activation: identity}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: train.npz}
train: {epochs: 1, batch_size: 1, optimizer: {name: sgd, lr: 0.01}}
"""

WIDE = """\
rnngraph: 1
dtype: float64
nodes:
  x: {role: input, size: 8}
  h: {size: 96, activation: tanh}
  y: {role: output, size: 8, activation: identity}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {file: train.npz}
train: {epochs: 1, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
"""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def run_cli(*args, cwd, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_memory, env={**os.environ, **(env or {})})


PEAK = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def peak_rss(*args, cwd) -> int:
    """Peak resident bytes of ``rnngraph ARGS`` (measured by a fresh parent, so no earlier child counts)."""
    r = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "rnngraph.cli", *map(str, args)],
                       cwd=cwd, capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)
    assert r.returncode == 0, r.stderr[-3000:]
    return int(r.stdout.split()[-1])


def estimate_of(r) -> float:
    """The estimate (bytes) in a refusal's message."""
    found = ESTIMATE.search(r.stderr)
    assert r.returncode == 2 and found, (r.returncode, r.stderr[-3000:])
    return float(found.group(1)) * (2 ** 20 if found.group(2) == "MiB" else 2 ** 30)


@pytest.mark.slow
@pytest.mark.parametrize("spec, N, T", [(SMALL, 1, 2 ** 16), (WIDE, 64, 400)], ids=["small-nodes-long", "wide-batch"])
def test_the_estimate_bounds_the_measured_peak_within_3x(tmp_path, spec, N, T):
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    net = rg.build(rg.parse_spec(spec))
    rng = np.random.default_rng(0)

    def data(steps):
        np.savez(tmp_path / "train.npz", x=rng.standard_normal((N, steps, net.size("x"))),
                 y=rng.standard_normal((N, steps, net.size("y"))))
    args = ("run", "spec.yaml", "--out", "out", "--overwrite", "--quiet")   # one folder, run after run
    data(2)
    baseline = peak_rss(*args, cwd=tmp_path)          # the interpreter, numpy, rnngraph
    data(T)
    # a limit the arrays fit in (a few MiB) but the run does not: the refusal gives the run's estimate
    estimate = estimate_of(run_cli(*args, cwd=tmp_path, env={"RNNGRAPH_MEMORY_LIMIT": "8M"}))
    used = peak_rss(*args, cwd=tmp_path) - baseline
    assert used <= estimate <= 3 * used, (used / 2 ** 20, estimate / 2 ** 20)


def test_a_small_deflated_file_of_a_long_sequence_is_refused_before_it_is_read(tmp_path):
    """7 MB on disk, 1 GiB as arrays; its training would need hundreds of GiB."""
    (tmp_path / "spec.yaml").write_text(SMALL, encoding="utf-8")
    np.savez_compressed(tmp_path / "train.npz", x=np.zeros((1, 2 ** 26, 2)), y=np.zeros((1, 2 ** 26, 1)))
    assert (tmp_path / "train.npz").stat().st_size < 10 * 2 ** 20
    for args in (["run", "spec.yaml", "--out", "out", "--quiet"], ["check", "spec.yaml"]):
        start = time.perf_counter()
        r = run_cli(*args, cwd=tmp_path)
        assert estimate_of(r) > 16 * 2 ** 30 and "train.npz" not in r.stderr or "GiB" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "RNNGRAPH_MEMORY_LIMIT" in r.stderr, r.stderr
        assert time.perf_counter() - start < 20
    assert not (tmp_path / "out").exists()


def test_the_limit_can_be_raised_and_lowered(tmp_path):
    (tmp_path / "spec.yaml").write_text(SMALL, encoding="utf-8")
    np.savez(tmp_path / "train.npz", x=np.zeros((1, 200, 2)), y=np.zeros((1, 200, 1)))
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=tmp_path, env={"RNNGRAPH_MEMORY_LIMIT": "10K"})
    assert r.returncode == 2 and "RNNGRAPH_MEMORY_LIMIT" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=tmp_path, env={"RNNGRAPH_MEMORY_LIMIT": "1G"})
    assert r.returncode == 0, r.stderr
    r = run_cli("run", "spec.yaml", "--out", "out", "--overwrite", "--quiet", cwd=tmp_path,
                env={"RNNGRAPH_MEMORY_LIMIT": "lots"})
    assert r.returncode == 2 and "RNNGRAPH_MEMORY_LIMIT" in r.stderr and "Traceback" not in r.stderr, r.stderr


# --------------------------------------------------------------------------- CLI numbers

SPEC_FILE = "spec.yaml"
BOUNDS = [
    ("gradcheck", "-T", "-1"), ("gradcheck", "-T", "0"), ("gradcheck", "--batch", "0"),
    ("gradcheck", "--seed", "-1"), ("bench", "-T", "-1"), ("bench", "--batch", "0"), ("bench", "--repeat", "0"),
    ("unroll", "-T", "-1"), ("gradcheck", "-T", "three"),
]


@pytest.mark.parametrize("command, option, value", BOUNDS, ids=[" ".join(b) for b in BOUNDS])
def test_out_of_range_numbers_are_usage_errors(tmp_path, command, option, value):
    (tmp_path / SPEC_FILE).write_text(SMALL.replace("task: {file: train.npz}\n", ""), encoding="utf-8")
    r = run_cli(command, SPEC_FILE, option, value, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert option in r.stderr and value in r.stderr, r.stderr


HUGE = [("gradcheck", "-T", "100000000"), ("gradcheck", "--batch", "1000000000"), ("bench", "-T", "1000000000"),
        ("bench", "--batch", "1000000000")]


@pytest.mark.parametrize("command, option, value", HUGE, ids=[" ".join(b) for b in HUGE])
def test_huge_cli_sizes_are_refused_with_an_estimate(tmp_path, command, option, value):
    (tmp_path / SPEC_FILE).write_text(SMALL.replace("task: {file: train.npz}\n", ""), encoding="utf-8")
    start = time.perf_counter()
    r = run_cli(command, SPEC_FILE, option, value, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-3000:]
    assert re.search(r"\d+\.\d GiB", r.stderr), r.stderr
    assert time.perf_counter() - start < 20


# --------------------------------------------------------------------------- the Python API

def test_forward_refuses_a_huge_input_by_its_shape_before_copying_it():
    net = rg.build(rg.parse_spec(SMALL.replace("task: {file: train.npz}\n", "")))
    x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10 ** 7, 10 ** 3, 2), strides=(0, 0, 0))
    for call in (lambda: net.forward({"x": x}), lambda: net.loss_and_grad({"x": x}, {"y": x[..., :1]})):
        with pytest.raises(rg.DataError, match=r"GiB.*RNNGRAPH_MEMORY_LIMIT"):
            call()


def test_unroll_refuses_a_graph_of_millions_of_vertices_at_once():
    net = rg.build(rg.parse_spec(SMALL.replace("task: {file: train.npz}\n", "")))
    start = time.perf_counter()
    with pytest.raises(rg.DataError, match=r"unroll\(T=1000000\).*rnngraph unroll"):
        net.unroll(10 ** 6)
    assert time.perf_counter() - start < 1
    assert net.unroll(50).number_of_nodes() > 50
