"""Divergence, Ctrl-C, SIGTERM and kill -9: a run loses nothing it had.

* NaN/inf during training: ``rnngraph run`` exits 1 with a message naming
  the epoch, the step and the parameter or the loss, and ``params.npz`` holds
  the last finite parameters.
* SIGINT/SIGTERM during ``rnngraph run``: exit 130 with ``checkpoint.npz``,
  ``params.npz`` and ``metrics.json`` (status "interrupted"); ``--resume DIR``
  then finishes with parameters *equal* (``np.array_equal``) to those of an
  uninterrupted run with the same seed and epochs, and the same history.
  The signal is sent at several moments after training starts (the moment
  the run takes its folder's lock, read from ``/proc/locks``).
* SIGINT/SIGTERM before training (while modules load, the spec is read, the
  data are made): exit 130 with one line, no traceback, nothing written; in a
  long Hopfield settle: exit 130 within a second.
* kill -9 at random moments of a process writing ``params.npz`` and
  ``metrics.json`` in a loop (``net.save``, ``rnngraph.io.atomic_write``),
  and of ``rnngraph run`` while it writes its results: every file present is
  complete (``np.load`` and ``json.loads`` work, and its contents come from
  a single write), the old file or the new, never torn.

Every subprocess runs under ``RLIMIT_AS``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.io import atomic_write, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CLI_MEMORY = 3 * 1024 ** 3

# About 2 s of training after about 0.5 s of start-up (re-measured when the engine gets faster: the
# signals below come 0.1-0.6 s into training): shuffled mini-batches, loss on the last step,
# gradient clipping.  Plain SGD keeps no optimizer state, so these runs test the resume machinery
# (epoch roll-back, RNG, history) apart from the optimizer-state bug (see the xfails below).
PARITY = [SPECS / "parity_many_to_one.yaml", "--set", "task.n_train=1000", "--set", "task.n_eval=100",
          "--set", "expect={}", "--set", "train.optimizer.name=sgd", "--epochs", "200"]
# the same with the spec's own optimizer, Adam
PARITY_ADAM = [SPECS / "parity_many_to_one.yaml", "--set", "task.n_train=2400", "--set", "task.n_eval=100",
               "--set", "expect={}", "--epochs", "80"]
# truncated BPTT: the state is carried from window to window of one stream
XOR = [SPECS / "elman_temporal_xor.yaml", "--set", "task.length=2000", "--set", "expect={}",
       "--set", "train.optimizer.name=sgd", "--set", "train.optimizer.lr=0.5", "--epochs", "40"]


def epochs(n: int) -> list:
    """PARITY with ``--epochs n``."""
    return PARITY[:-1] + [str(n)]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def cli(*args, timeout=300, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limit_memory, cwd=cwd)


def start(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "rnngraph.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limit_memory, cwd=cwd)


def holds_lock(pid) -> bool | None:
    """Whether ``pid`` holds a file lock: ``rnngraph run`` locks its folder
    as training starts and unlocks it once the results are published (None:
    the process has exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            if any(line.startswith("State:") and "Z" in line.split()[1] for line in fh):
                return None
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.replace("->", "").split()
                if len(parts) > 4 and parts[1] == "FLOCK" and parts[4] == str(pid):
                    return True
    except (FileNotFoundError, ProcessLookupError):
        return None
    return False


def wait_until(pid, handler: bool, timeout=120) -> bool:
    """Wait until training starts (``handler``: the run holds its lock) or
    the results are published (``not handler``).  False if the process exited."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = holds_lock(pid)
        if state is None:
            return False
        if state == handler:
            return True
        time.sleep(0.002)
    raise TimeoutError(f"process {pid} never {'started' if handler else 'ended'} training")


def load_params(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_equal_params(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), \
            f"{k}: max difference {np.max(np.abs(a[k].astype(float) - b[k].astype(float)))}"


def history(out) -> list:
    with open(Path(out) / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def metrics(out) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs, computed once per worker: {name: out dir}."""
    base = tmp_path_factory.mktemp("reference")
    out = {}
    for name, args in (("parity", PARITY), ("xor", XOR), ("parity_adam", PARITY_ADAM), ("parity20", epochs(20))):
        r = cli("run", *args, "--out", base / name, "--quiet")
        assert r.returncode == 0, r.stderr
        out[name] = base / name
    return out


# --------------------------------------------------------------------------- divergence

def test_divergence_names_epoch_step_and_loss_and_keeps_finite_params(tmp_path):
    out = tmp_path / "out"
    r = cli("run", SPECS / "linear_regression.yaml", "--set", "train.optimizer.lr=1.0e+9", "--out", out, "--quiet")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    message = " ".join(r.stderr.split())
    assert "epoch 1" in message and "step " in message and ("loss" in message or "gradient of" in message), message
    params = load_params(out / "params.npz")
    assert all(np.all(np.isfinite(v)) for v in params.values()), params
    m = metrics(out)
    assert m["status"] == "failed" and "diverged" in m["message"]
    initial = rg.build(rg.load_spec(SPECS / "linear_regression.yaml")).params
    assert any(not np.array_equal(params[k], initial[k]) for k in params), "no step before the divergence was kept"
    # the saved parameters are loadable as a starting point
    rg.build(rg.load_spec(SPECS / "linear_regression.yaml")).load(out / "params.npz")


@pytest.mark.parametrize("spec", ["linear_regression.yaml", "parity_many_to_one.yaml"])
def test_overflowing_update_keeps_the_last_finite_params(tmp_path, spec):
    out = tmp_path / "out"
    r = cli("run", SPECS / spec, "--set", "train.optimizer.lr=1.0e+300", "--set", "task.n_train=64",
            "--epochs", "3", "--out", out, "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    params = load_params(out / "params.npz")
    assert all(np.all(np.isfinite(v)) for v in params.values()), {k: v.ravel()[:3] for k, v in params.items()}


def test_a_non_finite_evaluation_loss_is_divergence(tmp_path):
    """Training stays finite, the evaluation overflows (inputs of 1e30 in
    float32): the run fails, exit 1, saying the evaluation loss is not finite."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1, 3)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=x.sum(axis=2, keepdims=True))
    big = np.full((8, 1, 3), 1e30, dtype=np.float32)
    np.savez(tmp_path / "eval.npz", x=big, y=np.zeros((8, 1, 1), dtype=np.float32))
    spec = tmp_path / "spec.yaml"
    spec.write_text("rnngraph: 1\nnodes:\n  x: {role: input, size: 3}\n"
                    "  y: {role: output, size: 1, activation: identity}\nedges:\n  - {from: x, to: y}\n"
                    "task: {file: train.npz, eval_file: eval.npz}\n"
                    "train: {optimizer: {name: sgd, lr: 0.01}, epochs: 2}\n")
    out = tmp_path / "out"
    r = cli("run", spec, "--out", out, "--quiet")
    message = " ".join(r.stderr.split())
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "evaluation loss is inf, not finite" in message, message
    m = metrics(out)
    assert m["status"] == "failed" and "evaluation loss" in m["message"] and m["eval_loss"] == "inf", m


def test_scientific_notation_in_set(tmp_path):
    r = cli("run", SPECS / "linear_regression.yaml", "--set", "train.optimizer.lr=1e9", "--out", tmp_path / "o",
            "--quiet")
    assert r.returncode == 1 and "diverged" in r.stderr, r.stderr


# --------------------------------------------------------------------------- SIGINT / SIGTERM and --resume

def interrupt(args, out, sig, delay, cwd=None):
    """Start ``rnngraph run``, send ``sig`` ``delay`` s after training starts;
    returns the completed process and whether the signal was sent in training."""
    p = start("run", *args, "--out", out, "--quiet", cwd=cwd)
    try:
        in_training = wait_until(p.pid, handler=True)
        if in_training:
            time.sleep(delay)
            in_training = holds_lock(p.pid) is True
            p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, stdout, stderr, in_training


def check_interrupted(out, rc, stderr, total_epochs):
    assert "Traceback" not in stderr, stderr
    assert rc == 130, (rc, stderr)
    for name in ("checkpoint.npz", "params.npz", "metrics.json", "history.csv"):
        assert (out / name).exists(), name
    m = metrics(out)
    assert m["status"] == "interrupted", m
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ck:
        epoch = int(ck["epoch"])
    assert 0 <= epoch < total_epochs
    assert m["epochs"] == epoch and len(history(out)) == epoch
    assert "--resume" in " ".join(stderr.split())
    return epoch


def resume_and_compare(args, out, reference):
    r = cli("run", *args, "--resume", out, "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert_equal_params(load_params(out / "params.npz"), load_params(reference / "params.npz"))
    assert history(out) == history(reference)
    m, ref = metrics(out), metrics(reference)
    assert m["status"] == "ok" and m["epochs"] == ref["epochs"]
    assert {k: v for k, v in m.items() if k != "seconds"} == {k: v for k, v in ref.items() if k != "seconds"}


# when to send the signal, as a fraction of the reference run's training time
MOMENTS = [(signal.SIGINT, 0.0), (signal.SIGINT, 0.25), (signal.SIGINT, 0.7),
           (signal.SIGTERM, 0.03), (signal.SIGTERM, 0.45), (signal.SIGTERM, 0.9)]


@pytest.mark.parametrize("sig, fraction", MOMENTS,
                         ids=[f"{signal.Signals(s).name}-at-{int(f * 100)}%" for s, f in MOMENTS])
def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, references, sig, fraction):
    delay = fraction * metrics(references["parity"])["seconds"]
    for attempt in range(4):   # a busy or fast machine can end training first: retry earlier
        out = tmp_path / f"out{attempt}"
        rc, _, stderr, in_training = interrupt(PARITY, out, sig, delay * 0.5 ** attempt)
        if in_training and rc == 0:   # the signal came as training ended: the run finished, complete
            assert metrics(out)["status"] == "ok" and (out / "params.npz").exists(), stderr
            in_training = False
        if in_training:
            break
    assert in_training, "training always ended before the signal could be sent"
    check_interrupted(out, rc, stderr, 200)
    resume_and_compare(PARITY, out, references["parity"])


def test_interrupted_twice_then_resumed_twice(tmp_path, references):
    out = tmp_path / "out"
    # the whole run trains in about 0.9 s here: the two signals land well inside it
    rc, _, stderr, in_training = interrupt(PARITY, out, signal.SIGTERM, 0.2)
    assert in_training
    first = check_interrupted(out, rc, stderr, 200)
    p = start("run", *PARITY, "--resume", out, "--quiet")
    assert wait_until(p.pid, handler=True)
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    second = check_interrupted(out, p.returncode, stderr, 200)
    assert second >= first   # equal when the signal lands before the resumed run's first epoch ends
    resume_and_compare(PARITY, out, references["parity"])


def test_interrupt_truncated_bptt_then_resume(tmp_path, references):
    out = tmp_path / "out"
    rc, _, stderr, in_training = interrupt(XOR, out, signal.SIGINT, 0.6)
    assert in_training
    check_interrupted(out, rc, stderr, 40)
    resume_and_compare(XOR, out, references["xor"])


def test_resume_with_more_epochs_continues_exactly(tmp_path, references):
    """A finished run of 120 epochs resumed to 200 equals a run of 200 (the
    histories differ only in how often they evaluated: every 2 or 4 epochs)."""
    out = tmp_path / "out"
    assert cli("run", *epochs(120), "--out", out, "--quiet").returncode == 0
    r = cli("run", *PARITY, "--resume", out, "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert_equal_params(load_params(out / "params.npz"), load_params(references["parity"] / "params.npz"))
    assert [h["train_loss"] for h in history(out)] == [h["train_loss"] for h in history(references["parity"])]


OPTIMIZER_STATE_BUG = ("BUG: resuming after an interruption in the middle of an epoch is not exact for any "
                       "optimizer with state (Adam, SGD with momentum, RMSprop, Adagrad): Trainer._run "
                       "snapshots the epoch's start with self.state_dict(), whose optimizer buffers are the live "
                       "arrays (Optimizer.state_dict uses np.asarray, no copy) that the epoch's steps keep "
                       "updating in place, so the roll-back restores the buffers as they were at the "
                       "interruption, and the resumed run replays the epoch from the wrong optimizer state")


def test_interrupt_then_resume_with_adam_equals_an_uninterrupted_run(tmp_path, references):
    out = tmp_path / "out"
    rc, _, stderr, in_training = interrupt(PARITY_ADAM, out, signal.SIGTERM, 0.3)
    assert in_training
    check_interrupted(out, rc, stderr, 80)
    resume_and_compare(PARITY_ADAM, out, references["parity_adam"])


def _stop_resume_compare(optimizer: dict, stop_after_steps: int):
    """In process: train 3 epochs straight; train again but stop after
    ``stop_after_steps`` steps, then resume a fresh experiment from the
    checkpoint; return the largest parameter difference."""
    from rnngraph.training.experiment import Experiment
    spec = rg.load_spec(SPECS / "parity_many_to_one.yaml",
                        overrides={"task.n_train": 64, "task.n_eval": 16, "train.batch_size": 8, "expect": {},
                                   "train.optimizer": optimizer})
    reference = Experiment(spec, epochs=3)
    reference.run()
    first = Experiment(spec, epochs=3)
    calls = [0]

    def should_stop():
        calls[0] += 1
        return calls[0] == stop_after_steps
    outcome = first.run(should_stop=should_stop)
    assert outcome.status == "interrupted"
    checkpoint = {k: np.array(v) for k, v in first.trainer.state_dict().items()}   # what write() saves
    params = {k: v.copy() for k, v in first.net.params.items()}
    second = Experiment(spec, epochs=3)
    for k, v in params.items():
        second.net.params[k][...] = v
    assert second.run(resume=checkpoint).status == "ok"
    return max(float(np.max(np.abs(second.net.params[k] - reference.net.params[k]))) for k in params)


@pytest.mark.parametrize("stop_after", [1, 13])
def test_the_same_experiment_run_again_after_a_stop_goes_on_exactly(stop_after):
    """The TUI's pause: stop an experiment, then call run on it again: it goes on from the
    rolled-back epoch (it used to stop at once: the trainer kept its `interrupted` mark)."""
    from rnngraph.training.experiment import Experiment
    spec = rg.load_spec(SPECS / "parity_many_to_one.yaml",
                        overrides={"task.n_train": 64, "task.n_eval": 16, "train.batch_size": 8, "expect": {},
                                   "train.optimizer": {"name": "adam", "lr": 0.01}})
    reference = Experiment(spec, epochs=3)
    reference.run()
    paused = Experiment(spec, epochs=3)
    calls = [0]

    def should_stop():
        calls[0] += 1
        return calls[0] == stop_after
    assert paused.run(should_stop=should_stop).status == "interrupted"
    assert paused.run().status == "ok"
    assert [h["epoch"] for h in paused.trainer.history] == [1, 2, 3]
    for k, v in reference.net.params.items():
        assert np.array_equal(paused.net.params[k], v), k


@pytest.mark.parametrize("stop_after", [1, 5, 8, 13])
def test_stop_and_resume_in_process_is_exact_with_plain_sgd(stop_after):
    assert _stop_resume_compare({"name": "sgd", "lr": 0.1}, stop_after) == 0.0


@pytest.mark.parametrize("optimizer", [{"name": "adam", "lr": 0.01}, {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                                       {"name": "rmsprop", "lr": 0.01}, {"name": "adagrad", "lr": 0.1}],
                         ids=["adam", "sgd-momentum", "rmsprop", "adagrad"])
def test_stop_mid_epoch_and_resume_in_process_is_exact(optimizer):
    # 8 steps an epoch: stop after step 13, in the middle of epoch 2
    assert _stop_resume_compare(optimizer, 13) == 0.0


def test_stop_in_the_first_epoch_and_resume_is_exact_with_adam():
    """Rolled back to the very start, the optimizer has no state yet: exact."""
    assert _stop_resume_compare({"name": "adam", "lr": 0.01}, 5) == 0.0


def test_the_suggested_resume_command_finishes_the_same_run(tmp_path, references):
    import shlex
    out = tmp_path / "out"
    rc, _, stderr, in_training = interrupt(PARITY, out, signal.SIGINT, 0.3, cwd=tmp_path)
    assert in_training and rc == 130
    line = " ".join(stderr.split())
    command = shlex.split(line.split("Continue with:", 1)[1].strip())
    assert command[:2] == ["rnngraph", "run"], command
    r = cli(*command[1:], "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_equal_params(load_params(out / "params.npz"), load_params(references["parity"] / "params.npz"))


def test_a_double_ctrl_c_stops_at_once_and_leaves_valid_files(tmp_path, references):
    """The second Ctrl-C stops at once, without waiting for the step: the
    epoch is rolled back as for one Ctrl-C and the checkpoint written, so
    --resume still finishes the same run."""
    out = tmp_path / "out"
    p = start("run", *PARITY, "--out", out, "--quiet")
    assert wait_until(p.pid, handler=True)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert_files_valid(out)
    check_interrupted(out, p.returncode, stderr, 200)
    resume_and_compare(PARITY, out, references["parity"])


SIGNAL_IN_WRITE = """
import os, signal, sys
import rnngraph.training.experiment as ex
original = ex.Experiment.write
def write(self, out_dir, outcome):
    for sig in "{sig}".split(","):
        os.kill(os.getpid(), getattr(signal, sig))   # the signal arrives just as training has ended
    return original(self, out_dir, outcome)
ex.Experiment.write = write
from rnngraph.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGINT,SIGINT"])
def test_a_signal_while_writing_results_loses_nothing(tmp_path, references, sig):
    script = tmp_path / "run_with_signal.py"
    script.write_text(SIGNAL_IN_WRITE.format(sig=sig))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(script), "run", *map(str, PARITY), "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)
    assert r.returncode in (0, 130), (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    assert_equal_params(load_params(out / "params.npz"), load_params(references["parity"] / "params.npz"))
    assert (out / "checkpoint.npz").exists() and metrics(out)["epochs"] == 200
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ck:    # the set is one run's
        assert int(ck["epoch"]) == 200
    assert len(history(out)) == 200


# --------------------------------------------------------------------------- start-up and Hopfield settling

def loads_numpy(pid) -> bool:
    """Whether the process has begun loading numpy (its start-up has reached rnngraph's modules)."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return "_multiarray_umath" in fh.read()
    except OSError:
        return False


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1, 0.2, 0.3, 0.4])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path, delay):
    """While the modules load, the spec is read and the data are made."""
    out = tmp_path / "out"
    p = start("run", *PARITY, "--out", out, "--quiet")
    end = time.monotonic() + 60
    while not loads_numpy(p.pid) and p.poll() is None and time.monotonic() < end:
        time.sleep(0.001)
    time.sleep(delay)
    before_training = holds_lock(p.pid) is False
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    if before_training:
        assert len(stderr.strip().splitlines()) == 1 and "interrupted" in stderr, stderr
        assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_long_hopfield_settle_stops_within_a_second(tmp_path, sig):
    out = tmp_path / "out"
    p = start("run", SPECS / "hopfield_discrete.yaml", "--set", "task.size=600", "--set", "nodes.s.size=600",
              "--set", "task.count=40", "--set", "task.noise=0.3", "--set", "dynamics.until_stable=false",
              "--set", "dynamics.sweeps=500", "--set", "expect={}", "--out", out, "--quiet")
    try:
        assert wait_until(p.pid, handler=True)
        time.sleep(0.5)
        assert holds_lock(p.pid), "the settle ended before the signal"
        sent = time.monotonic()
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130 and "Traceback" not in stderr, (p.returncode, stderr)
    assert took < 3, f"took {took:.1f} s to stop"    # the stop, the result files and the exit, on a busy machine
    assert metrics(out)["status"] == "interrupted" and (out / "params.npz").exists()


def test_hopfield_metrics_count_the_epoch_history_records(tmp_path):
    out = tmp_path / "out"
    r = cli("run", SPECS / "hopfield_discrete.yaml", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    rows = history(out)
    assert metrics(out)["epochs"] == len(rows) == 1 and rows[0]["epoch"] == "1"


# --------------------------------------------------------------------------- damaged checkpoints

def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign(path):
    np.savez(path, a=np.ones(2))


def _bad_rng(path):
    with np.load(path, allow_pickle=False) as ck:
        state = {k: ck[k] for k in ck.files}
    state["rng"] = np.asarray("not json")
    np.savez(path, **state)


@pytest.mark.parametrize("damage", [_truncate, _foreign, _bad_rng], ids=["truncated", "foreign-npz", "bad-rng"])
def test_resume_from_a_damaged_checkpoint_is_refused(tmp_path, references, damage):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(references["parity20"], out)
    damage(out / "checkpoint.npz")
    r = cli("run", *epochs(20), "--resume", out, "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "checkpoint.npz" in r.stderr, r.stderr[-2000:]


KILL_AFTER_PARAMS = """
import os, signal, sys
import rnngraph.engine.network as nw
original = nw.Network.save
def save(self, path):
    original(self, path)
    if os.path.basename(str(path)) == "params.npz":
        os.kill(os.getpid(), signal.SIGKILL)   # a crash between params.npz and checkpoint.npz
nw.Network.save = save
from rnngraph.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_crash_between_params_and_checkpoint_is_not_resumed_silently(tmp_path, references):
    out = tmp_path / "out"
    assert cli("run", *epochs(10), "--out", out, "--quiet").returncode == 0    # checkpoint at epoch 10
    script = tmp_path / "crash.py"
    script.write_text(KILL_AFTER_PARAMS)
    r = subprocess.run([sys.executable, str(script), "run", *map(str, epochs(20)), "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)
    assert r.returncode == -signal.SIGKILL
    r = cli("run", *epochs(20), "--resume", out, "--quiet")
    if r.returncode == 2:      # refusing the mismatched pair is fine
        assert "Traceback" not in r.stderr and "checkpoint" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    assert_equal_params(load_params(out / "params.npz"), load_params(references["parity20"] / "params.npz"))


# --------------------------------------------------------------------------- kill -9 and atomic writes

SMALL = """\
rnngraph: 1
nodes:
  x: {role: input, size: 300}
  h: {size: 400, activation: tanh}
  y: {role: output, size: 2}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
"""


def metrics_text(k: int) -> str:
    return json.dumps({"k": k, "pad": "x" * (1000 * (k % 50)), "sum": k * 3}) + "\n"


def writer(directory: Path):
    """In a forked child: write params.npz (net.save) and metrics.json
    (atomic_write_text) forever, each version k filled with k."""
    net = rg.build(rg.parse_spec(SMALL))
    k = 0
    while True:
        k += 1
        for v in net.params.values():
            v[...] = k
        net.save(directory / "params.npz")
        atomic_write_text(directory / "metrics.json", metrics_text(k))
        atomic_write(directory / "raw.bin", lambda fh: [fh.write(bytes([k % 256]) * 65536) for _ in range(16)],
                     binary=True)


def assert_files_valid(directory: Path, expected_keys=None):
    """Every result file present is complete; returns the versions read."""
    versions = {}
    p = directory / "params.npz"
    if p.exists():
        params = load_params(p)
        if expected_keys is not None:
            assert sorted(params) == sorted(expected_keys)
        values = {float(v.flat[0]) for v in params.values() if v.size}
        if expected_keys is not None:   # the writer's files: one version k throughout
            assert len(values) == 1 and all(np.all(v == values.copy().pop()) for v in params.values()), values
            versions["params"] = values.pop()
        else:
            assert all(np.all(np.isfinite(v)) for v in params.values())
    m = directory / "metrics.json"
    if m.exists():
        data = json.loads(m.read_text())
        if expected_keys is not None:
            assert data["sum"] == 3 * data["k"] and len(data["pad"]) == 1000 * (data["k"] % 50)
            versions["metrics"] = data["k"]
    b = directory / "raw.bin"
    if b.exists():
        raw = b.read_bytes()
        assert len(raw) == 16 * 65536 and raw.count(raw[:1]) == len(raw)
    for name in ("checkpoint.npz",):
        if (directory / name).exists():
            load_params(directory / name)
    if (directory / "history.csv").exists():
        history(directory)
    return versions


def stale_temps(directory: Path) -> list:
    return sorted(f.name for f in directory.iterdir() if f.name.startswith(".") and f.name.endswith(".tmp"))


def kill_writer_repeatedly(directory: Path, kills: int, seed: int):
    rng = random.Random(seed)
    keys = list(rg.build(rg.parse_spec(SMALL)).params)
    seen = []
    for i in range(kills):
        pid = os.fork()
        if pid == 0:
            try:
                writer(directory)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen.append(assert_files_valid(directory, keys))
    return seen


def test_kill_9_while_writing_leaves_complete_files(tmp_path):
    seen = kill_writer_repeatedly(tmp_path, kills=50, seed=1)
    assert any(v for v in seen), "the writer never completed a file: the test proves nothing"
    leftovers = stale_temps(tmp_path)
    print(f"\n50 kills: versions seen {[v.get('params') for v in seen]}; {len(leftovers)} stale temp files")
    # nothing but the writer's own temp files may be left behind
    assert all(n.startswith((".params.npz.", ".metrics.json.", ".raw.bin.")) for n in leftovers), leftovers


@pytest.mark.slow
def test_kill_9_while_writing_many_times(tmp_path):
    seen = kill_writer_repeatedly(tmp_path, kills=500, seed=2)
    print(f"\n500 kills: {len(stale_temps(tmp_path))} stale temp files; "
          f"{sum(1 for v in seen if v)} kills found complete files")


HANG_IN_WRITE = """
import sys, time
from rnngraph.io import atomic_write
def write(fh):
    fh.write(b"half of it")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], write, binary=True)
"""


def test_stale_temp_files_do_not_accumulate(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(HANG_IN_WRITE)
    target = tmp_path / "d" / "params.npz"
    target.parent.mkdir()
    for _ in range(3):
        p = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "writing"
        p.kill()
        p.wait()
        atomic_write_text(str(target), "complete\n")    # a later, successful write
    assert target.read_text() == "complete\n"
    assert len(stale_temps(target.parent)) <= 1, stale_temps(target.parent)


def wait_until_publishing(pid, out: Path, timeout=120) -> bool:
    """Wait until ``pid`` makes the staging folder it writes its results into
    (beside ``out``); False if it exited first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if list(out.parent.glob(f".{out.name}.{pid}.*.staging")):
            return True
        if holds_lock(pid) is None:
            return False
        time.sleep(0.001)
    raise TimeoutError(f"process {pid} never wrote its results")


def kill_run_while_writing(tmp_path, n: int, seed: int):
    """Run parity to completion into one out dir, then n more runs into the
    same dir, each killed -9 a random 0-40 ms after it starts writing."""
    rng = random.Random(seed)
    out = tmp_path / "out"
    short = epochs(2)
    assert cli("run", *short, "--out", out, "--quiet").returncode == 0
    hits = 0
    for i in range(n):
        p = start("run", *short, "--seed", str(i + 1), "--out", out, "--overwrite", "--quiet")
        try:
            assert wait_until(p.pid, handler=True)
            if wait_until_publishing(p.pid, out):       # training over: the writes begin
                time.sleep(rng.uniform(0.0, 0.04))
                p.kill()
        finally:
            p.communicate(timeout=120)
        hits += p.returncode == -signal.SIGKILL
        assert_files_valid(out)
        rg.build(rg.load_spec(SPECS / "parity_many_to_one.yaml")).load(out / "params.npz")
    return hits, stale_temps(out)


def test_kill_9_while_rnngraph_run_writes_its_results(tmp_path):
    hits, leftovers = kill_run_while_writing(tmp_path, n=3, seed=3)
    print(f"\n3 runs, {hits} killed while writing; leftovers {leftovers}")


@pytest.mark.slow
def test_kill_9_while_rnngraph_run_writes_many_times(tmp_path):
    hits, leftovers = kill_run_while_writing(tmp_path, n=40, seed=4)
    print(f"\n40 runs, {hits} killed while writing; {len(leftovers)} stale temp files")
