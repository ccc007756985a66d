"""``rnngraph tui --serve``: the app served to a web browser.

The server runs as a user starts it; headless Chromium (driven by Playwright)
opens the page, the app draws its Edit screen in the page's terminal, and
Tesseract reads the screenshot: the spec's node names must be on it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or shutil.which("tesseract") is None,
    reason="headless Chromium and Tesseract are not installed (.ci/run installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "rnngraph", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _wait_for_page(url: str, server: subprocess.Popen, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server ended ({server.returncode}): {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_a_taken_port_is_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pytest.importorskip("textual_serve")
        result = _cli("tui", "specs/elman_temporal_xor.yaml", "--serve", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_out_of_range_is_a_usage_error():
    result = _cli("tui", "--serve", "--port", "70000")
    assert result.returncode == 2 and "at most 65535" in result.stderr


@needs_browser
def test_the_browser_shows_the_edit_screen_with_the_specs_nodes(tmp_path):
    pytest.importorskip("textual_serve")
    sync_api = pytest.importorskip("playwright.sync_api")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "rnngraph", "tui", "specs/elman_temporal_xor.yaml",
                               "--serve", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        page_html = _wait_for_page(f"http://127.0.0.1:{port}/", server)
        assert "textual" in page_html.lower()
        shot = tmp_path / "edit.png"
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/?fontsize=20")
            text = ""
            for _ in range(30):   # the app starts in its own process, then draws
                time.sleep(1)
                page.screenshot(path=str(shot))
                text = _read(shot)
                if "hidden" in text and "context" in text:
                    break
            browser.close()
        assert "hidden" in text and "context" in text, f"the page showed:\n{text}"
        assert "Add node" in text and "Add edge" in text   # the Edit screen's keys
        keep = os.environ.get("RNNGRAPH_SERVE_SCREENSHOT")
        if keep:
            shutil.copy(shot, keep)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)


def _read(image: Path) -> str:
    """The screenshot's text, as Tesseract reads it (light text on the dark page made dark on light)."""
    from PIL import Image, ImageOps
    grey = ImageOps.invert(Image.open(image).convert("L"))
    prepared = image.with_suffix(".ocr.png")
    grey.resize((grey.width * 2, grey.height * 2)).save(prepared)
    return subprocess.run(["tesseract", str(prepared), "stdout"], capture_output=True, text=True,
                          timeout=60).stdout
