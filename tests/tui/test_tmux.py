"""Smoke test in a real terminal: start the app under tmux, press keys, read the screen."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from .conftest import ROOT, spec_path

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: no real terminal to test in")

# A tmux server of our own (not the user's, not another test worker's), kept alive by a
# keeper session: a server exits with its last session, and starting a session while it
# shuts down fails.
SOCKET = f"rnngraph-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True,
                          check=check)


@pytest.fixture(autouse=True, scope="module")
def tmux_server():
    _tmux("new-session", "-d", "-s", "keeper", "sleep 3600")
    yield
    _tmux("kill-server", check=False)


def _capture(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session).stdout


def _wait_for(session: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


def _start(spec, env: dict | None = None) -> str:
    """A detached tmux session running the app on ``spec``; its name."""
    session = f"rnngraph-{uuid.uuid4().hex[:8]}"
    extra = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    command = (f"env -u COLUMNS -u LINES {extra} {sys.executable} -c "
               f"'from tui.app import run; run(\"{spec}\")'")
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", "-c", str(ROOT), command)
    # some tmux servers ignore -x/-y for detached sessions: size the window explicitly
    _tmux("resize-window", "-t", session, "-x", "160", "-y", "48", check=False)
    return session


def _keys(session: str, *keys: str, literal: bool = False) -> None:
    _tmux("send-keys", "-t", session, *(["-l"] if literal else []), *keys)


def test_app_runs_in_a_terminal(tmp_path):
    spec = tmp_path / "elman.yaml"
    spec.write_text(spec_path("elman_temporal_xor.yaml").read_text())
    session = _start(spec)
    try:
        screen = _wait_for(session, "context[t-1]")
        assert "z^-1" in screen and "elman.yaml" in screen
        _keys(session, "F3")
        screen = _wait_for(session, "hidden@2")
        assert "t=0" in screen
        _keys(session, "F4")
        screen = _wait_for(session, "t = 0 /")
        _keys(session, "Right")
        _wait_for(session, "t = 1 /")
        _keys(session, "C-q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = _tmux("has-session", "-t", session, check=False)
            if alive.returncode != 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the app did not quit on ctrl+q:\n" + _capture(session))
    finally:
        _tmux("kill-session", "-t", session, check=False)


def test_edits_survive_a_killed_app(tmp_path):
    """kill -9 after typing: the next start offers the edits, and restoring gives them back."""
    spec = tmp_path / "elman.yaml"
    original = spec_path("elman_temporal_xor.yaml").read_text()
    spec.write_text(original)
    backup = tmp_path / ".elman.yaml.rnngraph-backup"
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    session = _start(spec, env)
    try:
        _wait_for(session, "context[t-1]")
        _keys(session, "# survived the kill", literal=True)
        _keys(session, "Enter")
        _wait_for(session, "# survived the kill")
        deadline = time.monotonic() + 15
        while not (backup.exists() and "# survived the kill" in backup.read_text()):
            assert time.monotonic() < deadline, "no backup was written:\n" + _capture(session)
            time.sleep(0.2)
        pid = _tmux("display-message", "-p", "-t", session, "#{pane_pid}").stdout.strip()
        os.kill(int(pid), signal.SIGKILL)                 # no clean-up of any kind
    finally:
        _tmux("kill-session", "-t", session, check=False)
    assert spec.read_text() == original
    session = _start(spec, env)
    try:
        screen = _wait_for(session, "Unsaved edits to elman.yaml")
        assert "Restore" in screen and "Discard" in screen
        _keys(session, "r")
        _wait_for(session, "# survived the kill")
        _keys(session, "C-s")
        deadline = time.monotonic() + 10
        while "# survived the kill" not in spec.read_text() or backup.exists():
            assert time.monotonic() < deadline, ("ctrl+s did not save, or left the backup:\n"
                                                 + _capture(session))
            time.sleep(0.2)
        _keys(session, "C-q")
    finally:
        _tmux("kill-session", "-t", session, check=False)
