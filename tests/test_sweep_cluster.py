"""``rnngraph sweep --cluster`` on a real Dask scheduler and workers on
127.0.0.1, started with the ``dask scheduler`` / ``dask worker`` commands
(workers without a nanny, so a killed worker stays dead).

* sweep.csv equals the local sweep's in every metric, bit for bit;
* a worker SIGKILLed while it runs a run loses nothing: the run is redone on
  another worker and the sweep ends as the local one;
* an unreachable scheduler is a clear error within seconds, exit 2;
* Ctrl-C, then the same command into the same folder, skips the finished runs
  and ends with the same sweep.csv.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")   # the `cluster` extra

from test_sweep import XOR, interrupt_when_a_run_is_done, read_csv, without_seconds

ROOT = Path(__file__).resolve().parent.parent
DASK = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
SEEDS = "4"
EPOCHS = "1"   # one epoch: no loss curve to draw, a short run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(address: str, name: str) -> subprocess.Popen:
    return subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_workers(address: str, n: int) -> dict:
    with distributed.Client(address, timeout="30s", set_as_default=False) as client:
        client.wait_for_workers(n, timeout=60)
        return {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-threaded workers; the scheduler's address."""
    if DASK is None:
        pytest.fail("the `dask` command is missing though distributed is installed")
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs += [start_worker(address, "w1"), start_worker(address, "w2")]
        wait_for_workers(address, 2)
        yield address
    finally:
        for p in reversed(procs):
            p.kill()   # test processes with nothing to save; a graceful close takes seconds
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def sweep(out, *extra, timeout=300):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", "sweep", XOR, "--seeds", SEEDS, "--epochs", EPOCHS,
                           "--out", str(out), "--quiet", *extra], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


@pytest.fixture(scope="module")
def local_csv(tmp_path_factory):
    """The local sweep with each run alone, as the cluster runs them (batched replicas equal their runs to
    rounding only)."""
    out = tmp_path_factory.mktemp("local") / "xor"
    r = sweep(out, "--workers", "2", "--no-batch")
    assert r.returncode == 0, r.stderr
    return without_seconds(read_csv(out / "sweep.csv"))


def test_cluster_sweep_equals_the_local_sweep_bit_for_bit(cluster, local_csv, tmp_path):
    r = sweep(tmp_path / "c", "--cluster", cluster)
    assert r.returncode == 0, r.stderr
    rows = without_seconds(read_csv(tmp_path / "c" / "sweep.csv"))
    assert len(rows) == int(SEEDS) and "eval_loss" in rows[0]
    assert rows == local_csv


def test_a_killed_worker_loses_no_run(cluster, local_csv, tmp_path):
    victim = start_worker(cluster, "victim")
    try:
        workers = wait_for_workers(cluster, 3)
        out = tmp_path / "k"
        proc = subprocess.Popen([sys.executable, "-m", "rnngraph.cli", "sweep", XOR, "--seeds", SEEDS, "--epochs",
                                 EPOCHS, "--out", str(out), "--quiet", "--cluster", cluster],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        killed = False
        with distributed.Client(cluster, timeout="30s", set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if client.processing(workers=[workers["victim"]]).get(workers["victim"]):
                    os.kill(victim.pid, signal.SIGKILL)   # it is running a run now
                    killed = True
                    break
                time.sleep(0.05)
        assert killed, "the victim worker never got a run"
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert without_seconds(read_csv(out / "sweep.csv")) == local_csv
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(tmp_path):
    started = time.monotonic()
    r = sweep(tmp_path / "u", "--cluster", f"tcp://127.0.0.1:{free_port()}", timeout=60)
    took = time.monotonic() - started
    assert r.returncode == 2, r.stderr
    assert "cannot reach a Dask scheduler" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert took < 15, took
    assert not (tmp_path / "u").exists()


def test_interrupted_cluster_sweep_continues_to_the_same_sweep_csv(cluster, local_csv, tmp_path):
    out = tmp_path / "i"
    command = [sys.executable, "-m", "rnngraph.cli", "sweep", XOR, "--seeds", SEEDS, "--epochs", EPOCHS,
               "--out", str(out), "--quiet", "--cluster", cluster]
    code, err = interrupt_when_a_run_is_done(command, out)
    assert code == 130, err
    finished = [p for p in out.iterdir() if (p / "run.json").exists()]
    assert 1 <= len(finished) < int(SEEDS)
    r = sweep(out, "--cluster", cluster)
    assert r.returncode == 0, r.stderr
    assert f"{len(finished)} of {SEEDS} runs already in" in r.stderr
    assert without_seconds(read_csv(out / "sweep.csv")) == local_csv
