"""Shared helpers for the TUI tests: spec paths and waiting for workers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def spec_path(name: str) -> Path:
    path = SPECS / name
    if not path.exists():
        pytest.skip(f"{path} is not in the repository")
    return path


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch) -> Path:
    """Per-user state (backups of untitled specs) goes to a fresh directory per test."""
    path = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(path))
    return path / "rnngraph"


@pytest.fixture
def elman(tmp_path) -> Path:
    """A writable copy of specs/elman_temporal_xor.yaml."""
    target = tmp_path / "elman.yaml"
    shutil.copy(spec_path("elman_temporal_xor.yaml"), target)
    return target


async def settle(pilot, app, rounds: int = 3) -> None:
    """Let debounced validation and layout workers finish (a replaced worker is cancelled)."""
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        await pilot.pause(0.35)
        while True:
            try:
                await app.workers.wait_for_complete()
                break
            except WorkerCancelled:
                continue
        await pilot.pause()


def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests with asyncio.run (no pytest-asyncio needed)."""
    import asyncio
    import inspect

    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None
