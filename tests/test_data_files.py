"""Bad data files, bad parameter files and absurd sizes are refused clearly.

docs/spec-format.md ("Task"): a data file is an ``.npz`` holding one ``(N, T, size)``
array per input and output node (keyed by node name), optionally
``"<output>.mask"`` ``(N, T)`` and ``"<node>.init"`` ``(N, size)`` for nodes
with ``init: input``.  Section 5: exit status 2 for bad input, never a
traceback.

For every damaged data file: ``rnngraph run SPEC --out DIR`` exits 2, stderr
names the file, the array and what was expected, and holds no
"Traceback"; nothing inside the file is ever unpickled (the pickles used here
create a marker file when loaded).  ``net.load`` raises ``rg.DataError``
naming the file and the parameter and leaves ``net.params`` untouched.
Absurd sizes (a huge node, huge generated data, an array header declaring
terabytes) are refused before allocating, with an estimate of the memory
they would need; every subprocess here runs under ``RLIMIT_AS`` so a
regression fails the test instead of swapping the machine.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

import rnngraph as rg

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CLI_MEMORY = 3 * 1024 ** 3     # address space for each `rnngraph` subprocess
N, T = 6, 5

SPEC = """\
rnngraph: 1
seed: 0
nodes:
  x: {role: input, size: 2}
  m: {size: 3, init: input}         # its initial state comes from the data: "m.init"
  h: {size: 4, activation: tanh}
  y: {role: output, size: 1, activation: sigmoid}
edges:
  - {from: x, to: h}
  - {from: h, to: h, delay: 1}
  - {from: m, to: m, delay: 1, weight: identity}
  - {from: m, to: h, delay: 1}
  - {from: h, to: y}
task: {file: train.npz}
train: {loss: bce, loss_on: mask, epochs: 2, batch_size: 4, optimizer: {name: adam, lr: 0.01}}
"""


def good_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((N, T, 2)),
            "y": (rng.random((N, T, 1)) > 0.5).astype(np.float64),
            "y.mask": np.ones((N, T)),
            "m.init": rng.standard_normal((N, 3))}


class Pickled:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def run_cli(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_memory)


def npz_bytes(arrays: dict) -> bytes:
    """``np.savez`` of ``arrays`` (object arrays are pickled, as numpy does by default)."""
    bio = io.BytesIO()
    np.savez(bio, **arrays)
    return bio.getvalue()


def zip_bytes(members: dict) -> bytes:
    """A zip with these members (name -> bytes or an array, saved as .npy)."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                b = io.BytesIO()
                np.save(b, value)
                value = b.getvalue()
            z.writestr(name, value)
    return bio.getvalue()


def patched_zip(data: bytes, flag: int = 0, method: int | None = None) -> bytes:
    """``data`` (a zip) with ``flag`` set in every member's flags (1: encrypted)
    and, when given, its compression method replaced (9: deflate64)."""
    b = bytearray(data)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):   # local and central headers
        i = b.find(signature)
        while i >= 0:
            b[i + flags_at] |= flag
            if method is not None:
                b[i + flags_at + 2:i + flags_at + 4] = method.to_bytes(2, "little")
            i = b.find(signature, i + 4)
    return bytes(b)


def forged_npy(shape, descr="<f8") -> bytes:
    """A .npy whose header declares ``shape`` but which holds 64 bytes of data."""
    b = io.BytesIO()
    npy_format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False, "shape": shape})
    return b.getvalue() + b"\0" * 64


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return tmp_path


def test_the_good_file_runs(workdir):
    np.savez(workdir / "train.npz", **good_arrays())
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "out" / "params.npz").exists()


# --------------------------------------------------------------------------- damaged data files

def with_(**changes):
    """The good arrays with some replaced (a value) or removed (None); keys use __ for '.'."""
    def make(marker):
        arrays = good_arrays()
        for key, value in changes.items():
            key = key.replace("__", ".")
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value(arrays, marker) if callable(value) else value
        return npz_bytes(arrays)
    return make


def raw(data):
    return lambda marker: data(marker) if callable(data) else data


def objects(shape):
    def make(arrays, marker):
        a = np.empty(shape, dtype=object)
        a[...] = Pickled(marker)
        return a
    return make


def _truncated(marker):
    b = npz_bytes(good_arrays())
    return b[: len(b) // 2]


def _member_not_npy(marker):
    members = {k + ".npy": v for k, v in good_arrays().items()}
    members["x.npy"] = b"this is not a .npy file"
    return zip_bytes(members)


def _forged(marker):
    members = {k + ".npy": v for k, v in good_arrays().items()}
    members["x.npy"] = forged_npy((10 ** 11, T, 2))
    return zip_bytes(members)


FILE = "train.npz"
# (id, how to make the file's bytes from a marker path, phrases stderr must hold)
DATA_CASES = [
    pytest.param(with_(x=None), [FILE, "'x'", "(N, T, 2)"], id="missing-input"),
    pytest.param(with_(y=None, y__mask=None), [FILE, "y", "(N, T, 1)"], id="missing-target"),
    pytest.param(with_(y__mask=None), [FILE, "'y.mask'", "(N, T)"], id="missing-mask"),
    pytest.param(with_(m__init=None), [FILE, "'m.init'", "(N, 3)"], id="missing-init"),
    pytest.param(with_(x=np.zeros((N, T))), [FILE, "'x'", "(N, T, 2)"], id="input-2d"),
    pytest.param(with_(x=np.zeros((N, T, 3))), [FILE, "'x'", "(N, T, 2)"], id="input-wrong-size"),
    pytest.param(with_(x=np.float64(1.0)), [FILE, "'x'", "(N, T, 2)"], id="input-0d"),
    pytest.param(with_(y=np.zeros((N, T, 2))), [FILE, "'y'", "(N, T, 1)"], id="target-wrong-size"),
    pytest.param(with_(y=np.zeros((N - 1, T, 1)), y__mask=np.ones((N - 1, T))), [FILE, "'y'", f"{N}"],
                 id="target-fewer-sequences"),
    pytest.param(with_(x=np.zeros((N, T + 1, 2))), [FILE, "'", "steps"], id="input-more-steps"),
    pytest.param(with_(y__mask=np.ones((N, T + 1))), [FILE, "'y.mask'", f"({N}, {T})"], id="mask-wrong-shape"),
    pytest.param(with_(y__mask=np.ones((N, T, 1))), [FILE, "'y.mask'", "(N, T)"], id="mask-3d"),
    pytest.param(with_(x__mask=np.ones((N, T))), [FILE, "'x.mask'", "target"], id="mask-of-an-input"),
    pytest.param(with_(m__init=np.zeros((N, 2))), [FILE, "'m.init'", "(N, 3)"], id="init-wrong-size"),
    pytest.param(with_(m__init=np.zeros((N + 1, 3))), [FILE, "'m.init'", f"{N} sequences"], id="init-wrong-rows"),
    pytest.param(with_(h__init=np.zeros((N, 4))), [FILE, "'h.init'", "init: input"], id="init-of-a-plain-node"),
    pytest.param(with_(z=np.zeros((N, T, 1))), [FILE, "'z'", "not an input or output"], id="unknown-array"),
    pytest.param(with_(x=np.full((N, T, 2), "a")), [FILE, "'x'", "dtype", "numbers"], id="strings"),
    pytest.param(with_(x=np.full((N, T, 2), b"a")), [FILE, "'x'", "dtype", "numbers"], id="byte-strings"),
    pytest.param(with_(x=np.zeros((N, T, 2), dtype="datetime64[s]")), [FILE, "'x'", "dtype", "numbers"],
                 id="datetimes"),
    pytest.param(with_(x=np.zeros((N, T, 2), dtype=[("a", "<f4")])), [FILE, "'x'", "dtype", "numbers"],
                 id="structured"),
    pytest.param(with_(x=lambda a, m: a["x"] + 1j), [FILE, "'x'", "complex"], id="complex"),
    pytest.param(with_(x=objects((N, T, 2))), [FILE, "'x'", "Python objects"], id="pickle-in-an-input"),
    pytest.param(with_(z=objects((3,))), [FILE, "'z'"], id="pickle-under-an-unknown-name"),
    pytest.param(with_(x=lambda a, m: np.where(a["x"] > 1, np.nan, a["x"])), [FILE, "'x'", "NaN"], id="nan-input"),
    pytest.param(with_(y=lambda a, m: np.where(a["y"] > 0.5, np.inf, a["y"])), [FILE, "'y'", "infinite"],
                 id="inf-target"),
    pytest.param(with_(m__init=lambda a, m: a["m.init"] * np.nan), [FILE, "'m.init'", "NaN"], id="nan-init"),
    pytest.param(with_(y__mask=np.full((N, T), np.nan)), [FILE, "'y.mask'", "NaN"], id="nan-mask"),
    pytest.param(with_(x=np.full((N, T, 2), 1e300)), [FILE, "'x'"], id="overflows-float32"),
    pytest.param(with_(y__mask=-np.ones((N, T))), [FILE, "'y.mask'", "0"], id="negative-mask"),
    pytest.param(lambda m: npz_bytes({"x": np.zeros((0, T, 2)), "y": np.zeros((0, T, 1)),
                                      "y.mask": np.zeros((0, T)), "m.init": np.zeros((0, 3))}),
                 [FILE, "no sequences"], id="no-sequences"),
    pytest.param(lambda m: npz_bytes({"x": np.zeros((N, 0, 2)), "y": np.zeros((N, 0, 1)),
                                      "y.mask": np.zeros((N, 0)), "m.init": np.zeros((N, 3))}),
                 [FILE, "steps"], id="no-steps"),
    pytest.param(raw(b"hello, I am not a zip"), [FILE, "not an .npz"], id="text-not-a-zip"),
    pytest.param(raw(b""), [FILE, "not an .npz"], id="empty-file"),
    pytest.param(_truncated, [FILE], id="truncated-npz"),
    pytest.param(raw(zip_bytes({"readme.txt": b"hello"})), [FILE, "readme.txt"], id="zip-not-npz"),
    pytest.param(_member_not_npy, [FILE, "'x'"], id="zip-member-not-npy"),
    pytest.param(_forged, [FILE, "'x'", "GiB"], id="header-declares-terabytes"),
    pytest.param(lambda m: patched_zip(npz_bytes(good_arrays()), flag=1), [FILE, "'x.npy'", "encrypted"],
                 id="encrypted-member"),
    pytest.param(lambda m: patched_zip(npz_bytes(good_arrays()), method=9), [FILE, "'x.npy'", "compression"],
                 id="deflate64-member"),
]


@pytest.mark.parametrize("make, phrases", DATA_CASES)
def test_a_damaged_data_file_is_refused(workdir, make, phrases):
    marker = workdir / "UNPICKLED"
    (workdir / FILE).write_bytes(make(marker))
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert not marker.exists(), "a pickle inside the data file was loaded"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    for phrase in phrases:
        assert phrase in r.stderr, f"{phrase!r} not in {r.stderr!r}"
    assert not (workdir / "out" / "params.npz").exists(), "a run on refused data wrote results"


def test_a_missing_or_directory_data_file(workdir):
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr and FILE in r.stderr and "not found" in r.stderr, \
        r.stderr
    (workdir / FILE).mkdir()
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr and FILE in r.stderr, r.stderr


# --------------------------------------------------------------------------- files that are not files

def not_a_file(kind, tmp_path):
    """A FIFO (nothing ever writes to it) or a device that never ends."""
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
        return path, "FIFO"
    return pathlib.Path("/dev/zero"), "character device"


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("role", ["data file", "eval file", "--init", "spec (run)", "spec (check)", "spec (tui)"])
def test_a_fifo_or_device_is_refused_without_reading_it(workdir, kind, role):
    path, named = not_a_file(kind, workdir)
    np.savez(workdir / "train.npz", **good_arrays())
    args = ["run", "spec.yaml", "--out", "out", "--quiet"]
    if role == "data file":
        (workdir / "spec.yaml").write_text(SPEC.replace("file: train.npz", f"file: {path}"))
    elif role == "eval file":
        (workdir / "spec.yaml").write_text(SPEC.replace("file: train.npz", f"file: train.npz, eval_file: {path}"))
    elif role == "--init":
        args += ["--init", path]
    else:
        args = {"spec (run)": ["run", path], "spec (check)": ["check", path], "spec (tui)": ["tui", path]}[role]
    r = run_cli(*args, cwd=workdir, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert str(path) in r.stderr and named in r.stderr and "not a regular file" in r.stderr, r.stderr
    assert not (workdir / "out").exists()


def test_a_bad_eval_file_is_named(workdir):
    (workdir / "spec.yaml").write_text(SPEC.replace("task: {file: train.npz}",
                                                    "task: {file: train.npz, eval_file: eval.npz}"))
    np.savez(workdir / "train.npz", **good_arrays())
    np.savez(workdir / "eval.npz", **dict(good_arrays(), x=np.zeros((N, T, 5))))
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "eval.npz" in r.stderr and "'x'" in r.stderr and "(N, T, 2)" in r.stderr, r.stderr


def test_nothing_is_unpickled_by_the_python_api(tmp_path):
    spec = rg.parse_spec(SPEC, path=str(tmp_path / "spec.yaml"))
    net = rg.build(spec)
    marker = tmp_path / "UNPICKLED"
    from rnngraph.training.data import load_npz
    for key in ("x", "y", "y.mask", "m.init", "zzz"):
        arrays = good_arrays()
        arrays[key] = np.array([Pickled(marker)], dtype=object)
        np.savez(tmp_path / "p.npz", **arrays)
        with pytest.raises(rg.DataError, match=re.escape(repr(key))):
            load_npz(str(tmp_path / "p.npz"), net)
    assert not marker.exists()


# --------------------------------------------------------------------------- net.load

def _params_with(net, **changes):
    params = {k: np.array(v) for k, v in net.params.items()}
    params.update(changes)
    return params


FIRST = "x->h"


def _load_cases():
    """(id, maker(net, marker) -> bytes, phrases, marks)."""
    def npz(**changes):
        return lambda net, marker: npz_bytes(_params_with(net, **changes))

    def drop(name):
        return lambda net, marker: npz_bytes({k: v for k, v in net.params.items() if k != name})

    def obj(net, marker):
        a = np.empty(net.params[FIRST].shape, dtype=object)
        a[...] = Pickled(marker)
        return npz_bytes(_params_with(net, **{FIRST: a}))

    def members(replace):
        def make(net, marker):
            m = {k + ".npy": np.asarray(v) for k, v in net.params.items()}
            m[FIRST + ".npy"] = replace
            return zip_bytes(m)
        return make

    def truncated(net, marker):
        b = npz_bytes(dict(net.params))
        return b[: len(b) // 2]

    def single_npy(net, marker):
        b = io.BytesIO()
        np.save(b, net.params[FIRST])
        return b.getvalue()

    return [
        pytest.param(drop(FIRST), [repr(FIRST), "missing"], id="missing-parameter"),
        pytest.param(npz(zz=np.ones(1)), ["'zz'", "unknown"], id="unknown-parameter"),
        pytest.param(npz(**{FIRST: np.ones((7, 7))}), [repr(FIRST), "(7, 7)", "(4, 2)"], id="wrong-shape"),
        pytest.param(npz(**{FIRST: np.full((4, 2), "a")}), [repr(FIRST), "dtype"], id="strings"),
        pytest.param(npz(**{FIRST: np.full((4, 2), np.nan)}), [repr(FIRST), "NaN"], id="nan"),
        pytest.param(npz(**{FIRST: np.full((4, 2), -np.inf)}), [repr(FIRST), "infinite"], id="inf"),
        pytest.param(obj, [repr(FIRST)], id="pickle"),
        pytest.param(npz(**{FIRST: np.ones((4, 2)) + 1j}), [repr(FIRST), "complex"], id="complex"),
        pytest.param(lambda net, marker: b"hello", [], id="text"),
        pytest.param(lambda net, marker: b"", [], id="empty-file"),
        pytest.param(truncated, [], id="truncated"),
        pytest.param(lambda net, marker: zip_bytes({"readme.txt": b"hi"}), ["readme.txt"], id="zip-not-npz"),
        pytest.param(members(b"not an npy at all"), [repr(FIRST)], id="member-not-npy"),
        pytest.param(members(forged_npy((10 ** 12,))), [repr(FIRST)], id="header-declares-terabytes"),
        pytest.param(single_npy, [], id="a-single-npy"),
    ]


@pytest.mark.parametrize("make, phrases", _load_cases())
def test_net_load_refuses_a_bad_parameter_file(tmp_path, make, phrases):
    net = rg.build(rg.parse_spec(SPEC, path=str(tmp_path / "spec.yaml")))
    before = {k: v.copy() for k, v in net.params.items()}
    marker = tmp_path / "UNPICKLED"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(make(net, marker))
    with pytest.raises(rg.DataError) as info:
        net.load(bad)
    message = str(info.value)
    assert message.startswith(str(bad)), message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    assert not marker.exists(), "net.load unpickled something"
    assert all(np.array_equal(net.params[k], before[k]) for k in before), "a failed load changed the parameters"


def test_net_load_missing_file_and_directory(tmp_path):
    net = rg.build(rg.parse_spec(SPEC, path=str(tmp_path / "spec.yaml")))
    for path in (tmp_path / "nope.npz", tmp_path):
        with pytest.raises(rg.DataError) as info:
            net.load(path)
        assert str(info.value).startswith(str(path))


def test_run_init_with_a_bad_parameter_file(workdir):
    np.savez(workdir / "train.npz", **good_arrays())
    np.savez(workdir / "bad_params.npz", w=np.ones(3))
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", "--init", "bad_params.npz", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "bad_params.npz" in r.stderr and "'w'" in r.stderr, r.stderr


# --------------------------------------------------------------------------- absurd sizes

GIB = re.compile(r"\d+(\.\d+)?\s*[GT]iB")


def assert_refused_with_estimate(r):
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert GIB.search(r.stderr), f"no memory estimate in {r.stderr!r}"


def test_a_huge_dense_node_is_refused_with_an_estimate(tmp_path):
    (tmp_path / "big.yaml").write_text(
        "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 900000, activation: tanh}\n"
        "  y: {role: output, size: 1}\nedges:\n  - {from: x, to: h}\n  - {from: h, to: h, delay: 1}\n"
        "  - {from: h, to: y}\ntask: {generator: sine, length: 10, n_train: 4, n_eval: 4}\n")
    for args in (["run", "big.yaml", "--out", "out", "--quiet"], ["check", "big.yaml"]):
        r = run_cli(*args, cwd=tmp_path, timeout=60)
        assert_refused_with_estimate(r)
        assert "big.yaml:8" in r.stderr, r.stderr   # the line of the dense self edge


def test_huge_batches_of_a_wide_node_are_refused_with_an_estimate(tmp_path):
    """Parameters fit (8 MB), but one batch would need ~48 GiB of activations."""
    (tmp_path / "wide.yaml").write_text(
        "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 1000000, activation: tanh}\n"
        "  y: {role: output, size: 1}\nedges:\n  - {from: x, to: h}\n  - {from: h, to: y}\n"
        "task: {file: train.npz}\ntrain: {epochs: 1, batch_size: 32}\n")
    np.savez(tmp_path / "train.npz", x=np.zeros((32, 100, 1)), y=np.zeros((32, 100, 1)))
    r = run_cli("run", "wide.yaml", "--out", "out", "--quiet", cwd=tmp_path, timeout=60)
    assert_refused_with_estimate(r)


GENERATED = [
    ("elman_adding.yaml", "task.T=100000000"),
    ("parity_many_to_one.yaml", "task.length=1000000000"),
    ("parity_many_to_one.yaml", "task.n_train=1000000000"),
    ("elman_temporal_xor.yaml", "task.length=1000000000000"),
    ("fully_recurrent.yaml", "task.length=10000000000"),
    ("hopfield_discrete.yaml", "task.count=1000000000"),
]


@pytest.mark.parametrize("spec, setting", GENERATED, ids=[f"{s.split('.')[0]}:{k}" for s, k in GENERATED])
def test_absurd_generated_data_is_refused_with_an_estimate(tmp_path, spec, setting):
    r = run_cli("run", SPECS / spec, "--set", setting, "--out", tmp_path / "out", "--quiet", cwd=tmp_path,
                timeout=60)
    assert_refused_with_estimate(r)


def test_an_unknown_array_lists_the_file_arrays_and_the_expected_names_apart(workdir):
    arrays = good_arrays()
    arrays["z"] = np.zeros((N, T, 1))
    np.savez(workdir / FILE, **arrays)
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "the file holds 'm.init', 'x', 'y', 'y.mask', 'z'" in r.stderr, r.stderr
    assert "this network reads 'x', 'y', 'y.mask', 'm.init'" in r.stderr, r.stderr


def test_a_one_step_target_beside_longer_inputs_points_at_loss_on_last(workdir):
    arrays = good_arrays()
    arrays["y"] = arrays["y"][:, :1]
    arrays.pop("y.mask")
    np.savez(workdir / FILE, **arrays)
    r = run_cli("run", "spec.yaml", "--out", "out", "--quiet", cwd=workdir)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    for phrase in (FILE, "'y'", f"1 steps, others have {N} of {T}", "loss_on: last", "'y.mask'"):
        assert phrase in r.stderr, f"{phrase!r} not in {r.stderr!r}"
