"""Every number a spec's network computes, as a fingerprint to compare two revisions.

A change that should not move results (a refactoring, an error check, a new
code path for other networks) is shown to keep them by running this on both
revisions and comparing::

    python -m benchmarks.fingerprint --out before.json            # at the old revision
    python -m benchmarks.fingerprint --out after.json --compare before.json

For each spec in ``specs/`` (or those named) it records, bit for bit:

- ``step``: the loss and every gradient of one ``loss_and_grad`` call on the
  spec's evaluation data, with its own parameters, seed and dtype (a float's
  ``hex()``, and a SHA-256 of each gradient's bytes);
- ``run`` (with ``--epochs N``): the metrics of a whole run cut to ``N``
  epochs (``--epochs 0``: as long as the spec says), as ``rnngraph run``
  computes them, less the wall-clock ``seconds``.

``--compare`` prints each difference and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _digest(array) -> str:
    array = np.ascontiguousarray(array)
    return f"{array.dtype}{array.shape}:" + hashlib.sha256(array.tobytes()).hexdigest()[:16]


def _exact(value):
    """Floats as ``hex()`` so that equal means bitwise equal; the rest as JSON has it."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def _experiment(*args, **kwargs):
    """An ``Experiment`` from where the revision being fingerprinted keeps it."""
    try:
        from rnngraph.training.experiment import Experiment
    except ImportError:   # a revision from before the pipeline packages
        from rnngraph.experiment import Experiment
    return Experiment(*args, **kwargs)


def step_fingerprint(path: Path) -> dict:
    """The loss and gradients of one call on the spec's evaluation data."""
    import rnngraph as rg
    experiment = _experiment(rg.load_spec(str(path)))
    if experiment.is_hopfield:
        return {"hopfield": True}
    data = experiment.eval_data if experiment.eval_data is not None and experiment.eval_data.n else \
        experiment.train_data
    loss, grads = experiment.net.loss_and_grad(data.inputs, data.targets, initial=data.initial or None,
                                               mask=data.masks or None, steps=data.steps or None)
    return {"loss": float(loss).hex(), "grads": {k: _digest(v) for k, v in sorted(grads.items())}}


def run_fingerprint(path: Path, epochs: int) -> dict:
    """The metrics of a run of ``epochs`` epochs (0: the spec's own), without its timing."""
    import rnngraph as rg
    experiment = _experiment(rg.load_spec(str(path)), epochs=epochs or None)
    outcome = experiment.run()
    metrics = {k: v for k, v in outcome.metrics.items() if k != "seconds"}
    return {"metrics": _exact(metrics), "params": {k: _digest(v) for k, v in sorted(experiment.net.params.items())}}


def fingerprint(paths: list[Path], epochs: int | None) -> dict:
    out = {}
    for path in paths:
        entry = {"step": step_fingerprint(path)}
        if epochs is not None:
            entry["run"] = run_fingerprint(path, epochs)
        out[path.name] = entry
        print(f"{path.name}: done", file=sys.stderr)
    return out


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Every key path whose value differs (or exists on one side only)."""
    out = []
    for key in sorted(set(old) | set(new)):
        where = f"{prefix}{key}"
        if key not in old or key not in new:
            out.append(f"{where}: only in {'the new' if key in new else 'the old'} fingerprint")
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            out += differences(old[key], new[key], where + ".")
        elif old[key] != new[key]:
            out.append(f"{where}: {old[key]} -> {new[key]}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fingerprint", description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", type=Path, help="spec files (default: every specs/*.yaml)")
    parser.add_argument("--epochs", type=int, help="also run each spec for N epochs (0: the spec's own length)")
    parser.add_argument("--out", type=Path, help="write the fingerprint here (JSON)")
    parser.add_argument("--compare", type=Path, help="a fingerprint to compare with; exit 1 on any difference")
    args = parser.parse_args(argv)
    paths = args.specs or sorted((ROOT / "specs").glob("*.yaml"))
    result = fingerprint(paths, args.epochs)
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    elif not args.compare:
        sys.stdout.write(text)
    if args.compare:
        diffs = differences(json.loads(args.compare.read_text(encoding="utf-8")), result)
        for line in diffs:
            print(line)
        print(f"{len(result)} specs: " + (f"{len(diffs)} differences" if diffs else "bit-identical"))
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
