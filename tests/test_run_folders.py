"""Where ``rnngraph run`` puts its results, and that they are a whole set.

* Without ``--out`` every run gets a new folder directly inside ``runs/``
  (``runs/<name>``, ``runs/<name>-2``, ...), whatever the spec's ``name:``.
* An ``--out`` that cannot take the results (a file, a path through a file,
  ``/dev/null``, a folder of other files) is refused before training, exit 2;
  one that holds a run is refused unless ``--overwrite`` (or ``--resume``).
* The folder receives every file at once: nothing of an earlier run stays
  beside the new set; a folder in use by a run is refused to a second one;
  when writing fails after training (a full disk), the folder keeps its old
  set and the results are saved elsewhere, named in the message.
* ``spec.yaml`` repeats the run; ``run.json`` says how it was made.
* ``--resume`` refuses a spec that differs from the checkpoint's.
* Result files respect the umask.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
LINEAR = SPECS / "linear_regression.yaml"
SHORT = [LINEAR, "--epochs", "3", "--set", "expect={}"]


def cli(*args, cwd=None, umask=None, timeout=300):
    def setup():
        if umask is not None:
            os.umask(umask)
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, preexec_fn=setup)


def metrics(out) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


def without_seconds(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "seconds"}


def load_params(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------- folders inside runs/

@pytest.mark.parametrize("name", ["ABSOLUTE", "../../escape", "a/b", ".hidden", "..", "a\\b"])
def test_the_spec_name_never_leaves_runs(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    name = str(tmp_path / "escape") if name == "ABSOLUTE" else name
    r = cli("run", *SHORT, "--set", f"name={name}", "--quiet", cwd=work)
    assert r.returncode == 0, r.stderr
    runs = work / "runs"
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1 and not folders[0].name.startswith("."), folders
    assert (folders[0] / "metrics.json").exists() and (folders[0] / "params.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]           # nothing written beside


def test_each_run_without_out_gets_a_new_folder(tmp_path):
    for _ in range(3):
        assert cli("run", *SHORT, "--quiet", cwd=tmp_path).returncode == 0
    names = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert names == ["linear-regression", "linear-regression-2", "linear-regression-3"]


# --------------------------------------------------------------------------- --out checked before training

@pytest.mark.parametrize("where", ["file", "file/sub", "/dev/null", "others", "link"])
def test_an_out_that_cannot_take_the_results_is_refused_before_training(tmp_path, where):
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "others").mkdir()
    (tmp_path / "others" / "notes.txt").write_text("mine\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    out = where if where.startswith("/") else str(tmp_path / where)
    r = cli("run", *SHORT, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert where.split("/")[0] in r.stderr or where in r.stderr
    assert "wrote" not in r.stdout                      # refused before training, not after
    assert (tmp_path / "file").read_text() == "not a folder\n"
    assert sorted(p.name for p in (tmp_path / "others").iterdir()) == ["notes.txt"]
    assert (tmp_path / "link").is_symlink() and not any((tmp_path / "empty").iterdir())


def test_an_out_holding_a_run_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    assert cli("run", *SHORT, "--out", out, "--quiet").returncode == 0
    first = metrics(out)
    r = cli("run", *SHORT, "--seed", "1", "--out", out, "--quiet")
    assert r.returncode == 2 and "--overwrite" in r.stderr and str(out) in r.stderr, r.stderr
    assert metrics(out) == first
    assert (out / "loss.txt").exists() or (out / "loss.png").exists()
    (out / "metrics.json").unlink()
    (out / "metrics.json").mkdir()                                # in the way of the new file
    # one epoch draws no loss plot: the earlier run's must not stay beside the new set
    r = cli("run", *SHORT, "--epochs", "1", "--seed", "1", "--out", out, "--overwrite", "--quiet")
    assert r.returncode == 0, r.stderr
    assert metrics(out)["status"] == "ok"
    assert not (out / "loss.txt").exists() and not (out / "loss.png").exists()
    assert json.loads((out / "run.json").read_text())["seed"] == 1


def test_a_folder_in_use_is_refused_to_a_second_run(tmp_path):
    out = tmp_path / "out"
    long = [SPECS / "parity_many_to_one.yaml", "--set", "task.n_train=1000", "--set", "expect={}", "--epochs", "2000"]
    first = subprocess.Popen([sys.executable, "-m", "rnngraph.cli", "run", *map(str, long), "--out", str(out),
                              "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / ".out.lock"
        end = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < end, "the first run never locked its folder"
            time.sleep(0.01)
        r = cli("run", *SHORT, "--out", out, "--overwrite", "--quiet")
        assert r.returncode == 2, r.stderr
        assert "in use" in r.stderr and f"pid {first.pid}" in r.stderr, r.stderr
        assert not out.exists() or not any(out.iterdir())         # the second run wrote nothing
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert metrics(out)["status"] == "interrupted"          # the first run's files, whole


# --------------------------------------------------------------------------- a full disk

def test_a_full_disk_keeps_the_old_set_and_saves_the_results_elsewhere(tmp_path, monkeypatch, capsys):
    """Writing fails (ENOSPC) after training: the folder keeps the previous
    run's set, whole, and the new parameters are saved where writing works."""
    from rnngraph.cli import main
    out = tmp_path / "disk" / "out"
    assert main(["run", *map(str, SHORT), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(elsewhere))
    full = str(tmp_path / "disk")
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(full):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    code = main(["run", *map(str, SHORT), "--seed", "7", "--out", str(out), "--overwrite", "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "could not write" in err and "No space left on device" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before       # the old set, whole
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".staging")]
    saved = [p for p in elsewhere.iterdir() if (p / "params.npz").exists()]
    assert len(saved) == 1 and str(saved[0] / "params.npz") in err, (err, list(elsewhere.iterdir()))
    rg.build(rg.load_spec(LINEAR)).load(saved[0] / "params.npz")
    assert json.loads((saved[0] / "run.json").read_text())["seed"] == 7


# --------------------------------------------------------------------------- spec.yaml and run.json

def test_spec_yaml_repeats_the_run_bit_for_bit(tmp_path):
    r = cli("run", SPECS / "mlp.yaml", "--set", "train.optimizer.lr=0.3", "--epochs", "20", "--seed", "3",
            "--set", "expect={}", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = tmp_path / "runs" / "mlp-xor"
    record = json.loads((first / "run.json").read_text())
    assert record["seed"] == 3 and record["exit_status"] == 0 and record["status"] == "ok"
    assert record["command"][:3] == ["rnngraph", "run", str(SPECS / "mlp.yaml")]
    assert {"python", "numpy", "rnngraph"} <= set(record["versions"]) and record["started"] <= record["ended"]
    r = cli("run", first / "spec.yaml", "--quiet", cwd=tmp_path)      # from another folder: data paths hold
    assert r.returncode == 0, r.stderr
    again = tmp_path / "runs" / "mlp-xor-2"
    assert without_seconds(metrics(again)) == without_seconds(metrics(first))
    a, b = load_params(first / "params.npz"), load_params(again / "params.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- --resume with another spec

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "out"
    r = cli("run", SPECS / "parity_many_to_one.yaml", "--set", "expect={}", "--epochs", "2", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("change, key", [
    (["--set", "train.optimizer.lr=0.5"], "train.optimizer.lr"),
    (["--set", "train.optimizer.name=sgd"], "train.optimizer.name"),
    (["--set", "task.length=5"], "task.length"),
    (["--set", "dtype=float64"], "dtype"),
])
def test_resume_with_a_changed_spec_is_refused(tmp_path, finished, change, key):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    r = cli("run", SPECS / "parity_many_to_one.yaml", "--set", "expect={}", *change, "--epochs", "4",
            "--resume", out, "--force", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert key in r.stderr and str(out) in r.stderr, r.stderr
    assert metrics(out)["epochs"] == 2


def test_resume_with_a_changed_spec_file_is_refused(tmp_path, finished):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    spec = tmp_path / "parity.yaml"
    spec.write_text((SPECS / "parity_many_to_one.yaml").read_text().replace("lr: 0.01", "lr: 0.02"))
    r = cli("run", spec, "--resume", out, "--quiet")
    assert r.returncode == 2 and "train.optimizer.lr (0.01 -> 0.02)" in r.stderr, r.stderr


def test_force_lets_a_resume_change_what_does_not_change_the_computation(tmp_path, finished):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    args = [SPECS / "parity_many_to_one.yaml", "--set", "expect.accuracy=>= 0.1", "--epochs", "4", "--resume", out,
            "--quiet"]
    r = cli("run", *args)
    assert r.returncode == 2 and "expect.accuracy" in r.stderr and "--force" in r.stderr, r.stderr
    r = cli("run", *args, "--force")
    assert r.returncode == 0, r.stderr
    assert metrics(out)["epochs"] == 4


# --------------------------------------------------------------------------- permissions

@pytest.mark.parametrize("umask, files, folder", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_result_files_respect_the_umask(tmp_path, umask, files, folder):
    out = tmp_path / "out"
    assert cli("run", *SHORT, "--out", out, "--quiet", umask=umask).returncode == 0
    assert out.stat().st_mode & 0o777 == folder
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert set(modes) >= {"metrics.json", "params.npz", "history.csv", "checkpoint.npz", "spec.yaml", "run.json"}
    assert set(modes.values()) == {files}, modes


def test_a_file_tasks_spec_yaml_repeats_the_run_from_elsewhere_and_predicts_its_metrics(tmp_path):
    """Relative data paths, eval_split and listed metrics survive in spec.yaml: run from
    another folder it repeats the run bit for bit, and predict on it gives its metrics."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "data").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "data" / "letters.npz").write_bytes((SPECS / "data" / "letters.npz").read_bytes())
    text = (SPECS / "elman_letters.yaml").read_text().replace(
        "task: {file: data/letters.npz, eval_file: data/letters_eval.npz}",
        "task: {file: data/letters.npz, eval_split: 0.2, metrics: [accuracy, mae]}")
    assert "eval_split" in text
    (project / "letters.yaml").write_text(text)
    r = cli("run", "letters.yaml", "--epochs", "4", "--seed", "2", "--set", "expect={}", "--quiet", cwd=project)
    assert r.returncode == 0, r.stderr
    first = project / "runs" / "elman-letters"
    r = cli("run", first / "spec.yaml", "--quiet", "--out", elsewhere / "again", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    again = elsewhere / "again"
    assert without_seconds(metrics(again)) == without_seconds(metrics(first))
    a, b = load_params(first / "params.npz"), load_params(again / "params.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    r = cli("predict", first / "spec.yaml", "--params", first / "params.npz", "--out", elsewhere / "p.npz",
            cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    with np.load(elsewhere / "p.npz") as p:
        assert float(p["metrics.accuracy"]) == metrics(first)["accuracy"]
        assert float(p["metrics.loss"]) == pytest.approx(metrics(first)["eval_loss"], rel=1e-6)


def test_a_run_whose_loss_grows_to_1e293_still_gets_its_results_and_plot(tmp_path):
    """A log axis cannot label losses that span 1e129..1e293 (matplotlib overflows): the plot shows
    their log10 instead, and the run ends with its folder, not a traceback."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    r = cli("run", LINEAR, "--epochs", "3", "--set", "expect={}", "--set", "dtype=float64",
            "--set", "train.optimizer.name=sgd", "--set", "train.optimizer.lr=1e9",
            "--set", "train.optimizer.momentum=0.9", "--set", "train.schedule={name: step, every: 1, gamma: 0.5}",
            "--out", out, "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "diverged" in r.stderr
    losses = [float(line.split(",")[2]) for line in (out / "history.csv").read_text().splitlines()[1:]]
    assert len(losses) >= 2 and max(losses) > 1e200
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
