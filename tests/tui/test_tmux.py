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


def _wait_for(session: str, *texts: str, timeout: float = 20.0) -> str:
    """The first screen that shows every one of ``texts`` at once (a screen mid-redraw, or
    one drawn before the last key landed, can show some of them and not the others)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if all(text in screen for text in texts):
            return screen
        time.sleep(0.3)
    missing = [text for text in texts if text not in screen]
    raise AssertionError(f"{missing!r} never appeared; the screen was:\n{screen}")


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
        _wait_for(session, "z^-1", "╚═", "elman.yaml")            # the feedback loop
        _keys(session, "F3")
        _wait_for(session, "hidden@2", "t=0", "═▶")
        _tmux("resize-window", "-t", session, "-x", "80", "-y", "24", check=False)
        time.sleep(1.0)
        screen = _wait_for(session, "hidden@")                    # still drawn after a resize
        assert max(len(line) for line in screen.splitlines()) <= 80
        _tmux("resize-window", "-t", session, "-x", "160", "-y", "48", check=False)
        _wait_for(session, "t=4")
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
        _wait_for(session, "z^-1")
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
        _wait_for(session, "Unsaved edits to elman.yaml", "Restore", "Discard")
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid(session: str) -> int:
    return int(_tmux("display-message", "-p", "-t", session, "#{pane_pid}").stdout.strip())


def _ends_after(session: str, sig: int, timeout: float) -> None:
    """Send ``sig`` to the app; it must end (its tmux session with it) within ``timeout`` s."""
    os.kill(_pid(session), sig)
    deadline = time.monotonic() + timeout
    while _tmux("has-session", "-t", session, check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app ignored {signal.Signals(sig).name}:\n"
                                 + _capture(session))
        time.sleep(0.1)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc for CPU time")
def test_typing_two_digits_into_t_settles_and_sigterm_ends_the_app(tmp_path):
    spec = tmp_path / "elman.yaml"
    spec.write_text(spec_path("elman_temporal_xor.yaml").read_text())
    session = _start(spec)
    try:
        _wait_for(session, "z^-1")
        _keys(session, "F3")
        _wait_for(session, "hidden@2")
        _keys(session, "Tab", "Tab")          # from the picture round to the T box
        time.sleep(0.5)
        _keys(session, "12")                  # both digits in one write, as fast as it gets
        _wait_for(session, "of 12")
        time.sleep(1.0)
        pid = _pid(session)
        used = _cpu_seconds(pid)
        time.sleep(2.0)
        used = _cpu_seconds(pid) - used
        screen = _capture(session)
        assert "T = 12" in screen and "steps 0..4 of 12" in screen
        assert used < 1.0, f"the app kept busy after T was typed: {used:.2f} s of CPU in 2 s"
        _ends_after(session, signal.SIGTERM, 10)
    finally:
        _tmux("kill-session", "-t", session, check=False)


def _chain_spec(hidden: int) -> str:
    """``hidden`` tanh layers in a row, each with its own recurrence: a large unrolled DAG."""
    lines = ["rnngraph: 1", "nodes:", "  x: {role: input, size: 1}"]
    edges = []
    for i in range(hidden):
        lines.append(f"  h{i}: {{size: 64, activation: tanh}}")
        edges += [f"  - {{from: {'x' if i == 0 else f'h{i - 1}'}, to: h{i}}}",
                  f"  - {{from: h{i}, to: h{i}, delay: 1}}"]
    lines.append("  y: {role: output, size: 1, activation: identity}")
    edges.append(f"  - {{from: h{hidden - 1}, to: y}}")
    return "\n".join([*lines, "edges:", *edges]) + "\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_app_while_a_large_graph_is_laid_out(tmp_path, sig):
    spec = tmp_path / "chain.yaml"
    spec.write_text(_chain_spec(69))
    session = _start(spec)
    try:
        _wait_for(session, "chain.yaml")
        _keys(session, "F3")                  # 71 nodes unrolled: seconds of layout
        _wait_for(session, "T = 5")
        _ends_after(session, sig, 6)
    finally:
        _tmux("kill-session", "-t", session, check=False)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc for CPU time")
def test_step_screen_takes_t_typed_quickly_and_a_resize(tmp_path):
    """Step: 52 and Enter in one write into the T box settle on 12 steps; at 80x24 the gradient
    table keeps its names and headings whole and the plot is there; back at 160x48 too."""
    spec = tmp_path / "elman_adding.yaml"
    spec.write_text(spec_path("elman_adding.yaml").read_text())
    session = _start(spec)
    try:
        _wait_for(session, "z^-1")
        _keys(session, "F4")
        _wait_for(session, "forward  t = 0 / 54")
        _keys(session, "t")                   # to the T box, its text selected: typing replaces it
        _keys(session, "52", literal=True)    # the digits right after it, Enter right after them
        _keys(session, "Enter")
        _wait_for(session, "t = 0 / 51")
        pid = _pid(session)
        used = _cpu_seconds(pid)
        time.sleep(2.0)
        used = _cpu_seconds(pid) - used
        assert used < 1.0, f"the app kept busy after T was typed: {used:.2f} s of CPU in 2 s"
        _keys(session, "b")
        _wait_for(session, "backward  t = 51 / 51")
        _tmux("resize-window", "-t", session, "-x", "80", "-y", "24", check=False)
        _wait_for(session, "Back in time")                    # the footer's keys fit
        _keys(session, "PageUp", "PageUp")
        _wait_for(session, "vs its largest", "|∂L/∂v| t=51", "▶ hidden │", "Back in time")
        _keys(session, "PageDown")
        screen = _wait_for(session, "against t: elman_adding.yaml", "10^0", "t=0", "t=51")
        assert "h" in screen.split("against t: elman_adding.yaml")[1]     # the hidden layer's curve
        _tmux("resize-window", "-t", session, "-x", "160", "-y", "48", check=False)
        _keys(session, "PageUp")
        # redrawn at 160 columns: all of it on one screen
        _wait_for(session, "h hidden", "backward  t = 51 / 51  (← to t-1)", "vs its largest")
    finally:
        _tmux("kill-session", "-t", session, check=False)
