"""Time rnngraph's training step against another revision of it, in one process.

    python -m benchmarks.ab REV [--config CELL,I,H,B,T ...] [--seconds S] [--threads N]

On a shared machine two processes timed one after the other can differ by
tens of percent for no reason of their own (this project's VM drifted by up to
50% within minutes), which hides the few-percent effects of one change.  Here
both versions run in the same process and their calls alternate (A B, B A,
...), so a drift slows both alike; the ratio of their medians is what changed.

REV's ``rnngraph/`` is taken out of git (``git archive``) into a temporary
directory and imported under another name, ``rnngraph_rev``; the working
tree's is ``rnngraph``.  Both build the benchmark specs (``benchmarks/specs``)
at each configuration, start from the same parameters and train on the same
data.  (The few absolute imports inside ``rnngraph/tasks`` resolve to the
working tree's package in both: the training step does not use them.)

Default configurations: the small sizes of ``benchmarks.run``, where such
effects are hardest to see.  Prints a table; exits with 2 on a bad REV.
"""

from __future__ import annotations

import argparse
import importlib
import io
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

from . import numpy_bptt, rnngraph_adapter

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = ["rnn,1,2,1,20", "rnn,8,32,16,50", "lstm,1,2,1,20", "lstm,8,32,16,50"]


def load_revision(rev: str, into: pathlib.Path):
    """Import REV's ``rnngraph`` package as ``rnngraph_rev`` from a copy in ``into``."""
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", rev, "rnngraph"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = e.stderr.decode().strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
        print(f"benchmarks.ab: git cannot export rnngraph/ at {rev!r}: {detail}", file=sys.stderr)
        raise SystemExit(2) from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):   # Python >= 3.11.4
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    (into / "rnngraph").rename(into / "rnngraph_rev")
    sys.path.insert(0, str(into))
    return importlib.import_module("rnngraph_rev")


def compare(old, new, config: str, seconds: float) -> dict:
    """Alternate one training step of each version for about ``seconds``.

    Returns dict with the medians (us), their ratio new/old, the ratio of the
    25th percentiles, and the number of steps of each."""
    cell, I, H, B, T = config.split(",")[0], *map(int, config.split(",")[1:])
    text = rnngraph_adapter.spec_text(cell, I, H, I, np.float32)
    nets = {"old": old.build(old.parse_spec(text)), "new": new.build(new.parse_spec(text))}
    for name, value in nets["new"].params.items():
        nets["old"].params[name][...] = value
    x, y = numpy_bptt.make_data(B, T, I, I, dtype=np.float32)
    losses = {k: net.loss_and_grad({"x": x}, {"y": y})[0] for k, net in nets.items()}
    for net in nets.values():
        for _ in range(20):
            net.loss_and_grad({"x": x}, {"y": y})
    times: dict = {"old": [], "new": []}
    t_end = time.perf_counter() + seconds
    order = ("old", "new")
    while time.perf_counter() < t_end or len(times["new"]) < 20:
        for k in order:
            t0 = time.perf_counter()
            nets[k].loss_and_grad({"x": x}, {"y": y})
            times[k].append(time.perf_counter() - t0)
        order = order[::-1]
    med = {k: float(np.median(v)) * 1e6 for k, v in times.items()}
    p25 = {k: float(np.percentile(v, 25)) for k, v in times.items()}
    return {"config": config, "old_us": med["old"], "new_us": med["new"], "ratio": med["new"] / med["old"],
            "ratio_p25": p25["new"] / p25["old"], "steps": len(times["new"]),
            "loss_gap": abs(losses["new"] - losses["old"]) / max(abs(losses["old"]), 1e-30)}


def print_comparisons(old, new, rev: str, configs: list, seconds: float) -> None:
    """One table row per configuration (see ``compare``)."""
    print(f"working tree against {rev}, calls alternated in one process, {seconds:g} s each")
    print(f"{'config (cell,I,H,B,T)':<22} {rev + ' us':>12} {'tree us':>10} {'tree/rev':>9} "
          f"{'(p25)':>7} {'steps':>7} {'loss gap':>9}")
    for config in configs:
        r = compare(old, new, config, seconds)
        print(f"{config:<22} {r['old_us']:>12.1f} {r['new_us']:>10.1f} {r['ratio']:>9.3f} "
              f"{r['ratio_p25']:>7.3f} {r['steps']:>7} {r['loss_gap']:>9.1e}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the git revision to compare the working tree with (e.g. HEAD~1)")
    ap.add_argument("--config", action="append", metavar="CELL,I,H,B,T",
                    help=f"a configuration (repeatable; default {' '.join(CONFIGS)})")
    ap.add_argument("--seconds", type=float, default=5.0, help="time per configuration (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="numpy's BLAS threads (default 1)")
    args = ap.parse_args(argv)
    for config in args.config or []:
        parts = config.split(",")
        if len(parts) != 5 or parts[0] not in ("rnn", "lstm") or not all(p.isdigit() and int(p) > 0 for p in parts[1:]):
            ap.error(f"--config {config!r}: expected CELL,I,H,B,T with CELL rnn or lstm and positive sizes")
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
        print("threadpoolctl is not installed: numpy's BLAS threads are left as they are")
    import rnngraph as new
    with tempfile.TemporaryDirectory() as tmp:
        old = load_revision(args.rev, pathlib.Path(tmp))
        try:
            if threadpoolctl is None:
                print_comparisons(old, new, args.rev, args.config or CONFIGS, args.seconds)
            else:
                with threadpoolctl.threadpool_limits(args.threads):
                    print_comparisons(old, new, args.rev, args.config or CONFIGS, args.seconds)
        finally:   # the copy goes with the directory: so must its modules
            for name in [m for m in sys.modules if m == "rnngraph_rev" or m.startswith("rnngraph_rev.")]:
                del sys.modules[name]
            sys.path.remove(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
