"""The engine stands alone: importing it and using the CLI's engine commands
never imports textual (the TUI is a separate package, ``tui``)."""

import subprocess
import sys

CODE = """
import sys
import rnngraph, rnngraph.cli, rnngraph.engine.reference, rnngraph.engine.gradcheck, rnngraph.engine.render
import rnngraph.training.tasks
bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))
assert not bad, bad
print('clean')
"""


def test_engine_imports_without_textual():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "clean"


def test_engine_works_when_textual_cannot_be_imported():
    code = ("import sys; sys.modules['textual'] = None\n"   # any `import textual` now raises ImportError
            "import rnngraph.cli\n"
            "sys.exit(rnngraph.cli.main(['check', 'specs/elman_temporal_xor.yaml']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "elman_temporal_xor.yaml: ok" in out.stdout
