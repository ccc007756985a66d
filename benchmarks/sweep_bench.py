"""A sweep of N seeds against one run and against N separate runs, end to end.

    python -m benchmarks.sweep_bench [--seeds 32] [--epochs E] [--workers K] [--spec NAME ...] [--json OUT]

For each spec (default: elman_temporal_xor, parity_many_to_one, lstm_reber),
in one benchmark run, wall-clock times of the commands a user types:

* ``one``: ``rnngraph run SPEC --seed 0``, one process;
* ``sweep``: ``rnngraph sweep SPEC --seeds N``, the default: the seeds are
  replicas of one program, trained together (``--workers`` batches);
* ``no-batch``: ``rnngraph sweep SPEC --seeds N --no-batch`` (each run in a
  worker process of its own);
* ``separate``: N ``rnngraph run SPEC --seed S`` processes one after another
  (the shell loop a sweep replaces).

Printed as times and the ratios ``sweep/one`` and ``sweep/separate`` (the
issue's goals: at most 3 and at most 0.25), and ``no-batch/one``.  ``--epochs`` shortens every run
alike (the ratios then weigh process start-up more).  Each command's output
goes to a temporary folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ("elman_temporal_xor", "parity_many_to_one", "lstm_reber")


def timed(command: list[str], ok=(0, 1)) -> float:
    """Wall seconds of one command; SystemExit when its exit status is not in
    ``ok`` (``run``'s 1 is a missed threshold, still a full run; ``sweep``'s is a failed run)."""
    start = time.perf_counter()
    r = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if r.returncode not in ok:
        raise SystemExit(f"sweep_bench: {' '.join(command)} exited {r.returncode}:\n{r.stderr}")
    return seconds


def bench(spec: str, seeds: int, epochs: int | None, workers: int | None) -> dict:
    path = str(ROOT / "specs" / f"{spec}.yaml")
    rg = [sys.executable, "-m", "rnngraph.cli"]
    extra = ["--epochs", str(epochs)] if epochs is not None else []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        one = timed([*rg, "run", path, "--seed", "0", "--quiet", "--out", str(tmp / "one"), *extra])
        pool = ["--workers", str(workers)] if workers else []
        sweep = timed([*rg, "sweep", path, "--seeds", str(seeds), "--quiet", "--out", str(tmp / "sweep"), *extra,
                       *pool], ok=(0,))
        alone = timed([*rg, "sweep", path, "--seeds", str(seeds), "--quiet", "--out", str(tmp / "alone"), *extra,
                       *pool, "--no-batch"], ok=(0,))
        separate = sum(timed([*rg, "run", path, "--seed", str(s), "--quiet", "--out", str(tmp / f"run-{s}"), *extra])
                       for s in range(seeds))
    return {"spec": spec, "seeds": seeds, "epochs": epochs, "one": one, "sweep": sweep, "no-batch": alone,
            "separate": separate, "sweep/one": sweep / one, "sweep/separate": sweep / separate,
            "no-batch/one": alone / one}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--epochs", type=int, help="override train.epochs in every run")
    parser.add_argument("--workers", type=int, help="the sweep's --workers (default: the number of cores)")
    parser.add_argument("--spec", action="append", choices=SPECS, help="one of the specs (repeatable)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers here")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'spec':<22}{'one s':>8}{'sweep s':>9}{'no-batch s':>12}{'separate s':>12}{'sweep/one':>11}"
          f"{'sweep/sep':>11}{'no-batch/one':>14}")
    for spec in args.spec or SPECS:
        row = bench(spec, args.seeds, args.epochs, args.workers)
        rows.append(row)
        print(f"{spec:<22}{row['one']:8.2f}{row['sweep']:9.2f}{row['no-batch']:12.2f}{row['separate']:12.2f}"
              f"{row['sweep/one']:11.2f}{row['sweep/separate']:11.3f}{row['no-batch/one']:14.2f}", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
