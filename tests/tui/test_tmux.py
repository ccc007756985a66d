"""Smoke test in a real terminal: start the app under tmux, press keys, read the screen."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid

import pytest

from .conftest import ROOT, spec_path

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: no real terminal to test in")


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                          capture_output=True, text=True, check=True).stdout


def _wait_for(session: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


def test_app_runs_in_a_terminal(tmp_path):
    spec = tmp_path / "elman.yaml"
    spec.write_text(spec_path("elman_temporal_xor.yaml").read_text())
    session = f"rnngraph-{uuid.uuid4().hex[:8]}"
    command = f"env -u COLUMNS -u LINES {sys.executable} -c 'from tui.app import run; run(\"{spec}\")'"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48",
                    "-c", str(ROOT), command], check=True)
    # some tmux servers ignore -x/-y for detached sessions: size the window explicitly
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "160", "-y", "48"],
                   capture_output=True)
    try:
        screen = _wait_for(session, "context[t-1]")
        assert "z^-1" in screen and "elman.yaml" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "F3"], check=True)
        screen = _wait_for(session, "hidden@2")
        assert "t=0" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "F4"], check=True)
        screen = _wait_for(session, "t = 0 /")
        subprocess.run(["tmux", "send-keys", "-t", session, "Right"], check=True)
        _wait_for(session, "t = 1 /")
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
            if alive.returncode != 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the app did not quit on ctrl+q:\n" + _capture(session))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
