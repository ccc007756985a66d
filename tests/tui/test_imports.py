"""The engine never imports Textual; the TUI's pure layers neither."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_rnngraph_does_not_import_textual():
    assert "textual" not in _modules_after("import rnngraph")


def test_pure_tui_layers_do_not_import_textual():
    modules = _modules_after(
        "import tui.yamledit, tui.layout, tui.canvas, tui.equations, tui.model, tui.stepping")
    assert "textual" not in modules
