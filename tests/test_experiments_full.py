"""Every spec in specs/ as a full experiment: it meets its `expect:` thresholds
in under 60 s on 2 cores.  Slow (minutes in all): run with

    python -m pytest -m slow tests/test_experiments_full.py -s

which also prints each spec's metrics and time.  CI runs the short mode of
the same specs instead (tests/test_train.py)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_meets_its_expectations_in_a_minute(path, tmp_path):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rnngraph.cli", "run", str(path), "--out", str(tmp_path), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    seconds = time.perf_counter() - start
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    shown = {k: v["value"] for k, v in metrics.get("expect", {}).items()}
    print(f"\n{path.name}: {seconds:.1f} s, {shown}, status {metrics['status']}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert metrics.get("expect"), "every experiment states what it should reach"
    assert seconds < 60
