"""A damaged checkpoint is refused on ``--resume``, field by field.

A real checkpoint is written by a one-epoch run with ``--out``; each case
rewrites one field of it.  ``rnngraph run SPEC --resume DIR`` must then exit
2 with one line naming the checkpoint file and the field, never a traceback;
a header declaring a huge array is refused from the header, before anything
is allocated (every subprocess runs under ``RLIMIT_AS``).
"""

from __future__ import annotations

import io
import resource
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

CLI_MEMORY = 3 * 1024 ** 3

SPEC = """\
rnngraph: 1
seed: 0
nodes:
  x: {role: input, size: 1}
  h: {size: 3, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: h, to: y}
task: {generator: temporal_xor, length: 40}
train: {loss: bce, epochs: 2, batch_size: 8, optimizer: {name: adam, lr: 0.01}}
"""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_memory)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A run directory holding the checkpoint of one of two epochs."""
    base = tmp_path_factory.mktemp("ck")
    (base / "spec.yaml").write_text(SPEC, encoding="utf-8")
    r = run_cli("run", "spec.yaml", "--epochs", "1", "--out", "first", "--quiet", cwd=base)
    assert r.returncode == 0, r.stderr
    assert (base / "first" / "checkpoint.npz").exists()
    return base


def load(path) -> dict:
    with np.load(path, allow_pickle=False) as ck:
        return {k: ck[k] for k in ck.files}


def first_param(state) -> str:
    return next(k for k in state if k.startswith("param::"))


def first_optim(state) -> str:
    return next(k for k in state if k.startswith("optim::") and k != "optim::steps")


def setting(field, value):
    """Replace ``field`` (a name, or a function of the state giving it) by ``value(state)`` or ``value``."""
    def damage(state):
        key = field(state) if callable(field) else field
        state[key] = value(state[key]) if callable(value) else np.asarray(value)
        return key
    return damage


def removing(field):
    def damage(state):
        del state[field]
        return field
    return damage


def forged_header(field, shape):
    """Written by ``write``: the member's header declares ``shape`` (hundreds of GiB)."""
    def damage(state):
        key = field(state) if callable(field) else field
        state[key] = ("forged", shape)
        return key
    return damage


def write(path, state) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in state.items():
            b = io.BytesIO()
            if isinstance(value, tuple) and value[0] == "forged":
                npy_format.write_array_header_1_0(b, {"descr": "<f8", "fortran_order": False, "shape": value[1]})
                b.write(b"\0" * 64)
            else:
                np.save(b, value)
            archive.writestr(key + ".npy", b.getvalue())


CASES = [
    ("epoch-nan", setting("epoch", np.nan)),
    ("epoch-string", setting("epoch", "three")),
    ("epoch-vector", setting("epoch", [1, 2])),
    ("epoch-negative", setting("epoch", -4)),
    ("epoch-missing", removing("epoch")),
    ("step-float", setting("step", 2.5)),
    ("rng-not-json", setting("rng", "not json")),
    ("rng-not-a-state", setting("rng", '{"bit_generator": "PCG64", "state": 3}')),
    ("rng-a-number", setting("rng", np.float64(1.0))),
    ("history-a-string", setting("history", '"a string"')),
    ("history-not-json", setting("history", "[{")),
    ("history-records-not-dicts", setting("history", "[1, 2, 3]")),
    ("run-options-not-json", setting("run_options", "--seed 3")),
    ("run-options-unknown-flag", setting("run_options", '["--out", "x"]')),
    ("param-strings", setting(first_param, lambda v: np.full(v.shape, "a"))),
    ("param-nan", setting(first_param, lambda v: np.full(v.shape, np.nan))),
    ("param-huge-header", forged_header(first_param, (10 ** 11,))),
    ("optim-wrong-shape", setting(first_optim, np.zeros(7))),
    ("optim-steps-string", setting("optim::steps", "two")),
    ("history-huge-header", forged_header("history", (10 ** 6, 10 ** 5))),
]


@pytest.mark.parametrize("damage", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_a_damaged_checkpoint_field_is_named(written, tmp_path, damage):
    out = tmp_path / "run"
    shutil.copytree(written / "first", out)
    path = out / "checkpoint.npz"
    state = load(path)
    field = damage(state)
    write(path, state)
    r = run_cli("run", written / "spec.yaml", "--resume", out, "--epochs", 2, "--quiet", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-3000:]
    assert "checkpoint.npz" in r.stderr and repr(field) in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_undamaged_checkpoint_resumes(written, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(written / "first", out)
    r = run_cli("run", written / "spec.yaml", "--resume", out, "--epochs", 2, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '"epochs": 2' in (out / "metrics.json").read_text()


def test_a_fifo_as_checkpoint_is_refused_without_waiting(written, tmp_path):
    import os
    out = tmp_path / "run"
    shutil.copytree(written / "first", out)
    (out / "checkpoint.npz").unlink()
    os.mkfifo(out / "checkpoint.npz")
    r = run_cli("run", written / "spec.yaml", "--resume", out, "--epochs", 2, "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "FIFO" in r.stderr and "checkpoint.npz" in r.stderr, r.stderr
