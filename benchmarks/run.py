"""Benchmark one BPTT training step: rnngraph against PyTorch, hand-fused numpy and BLAS.

    python -m benchmarks.run [--quick] [--json out.json] [--only rnn|lstm] [--threads N]

For every cell and size it builds one set of parameters, checks that every
implementation computes the same loss and gradients (float64, tight
tolerance; then float32 against the float64 answer), times a float32 step of
each (warm-up, then the median and spread of repetitions, all in this one
process), and prints the tables and ratios; ``--json`` writes everything.
Then the same for T = 10, 100, 1000 at the (8, 32, 16) size, for batch
4, 16, 64, 256 at (8, 32, T = 50), and the peak memory of a step.
See benchmarks/README.md for what each column means.

The PyTorch columns are skipped with a printed reason where PyTorch is not
installed, never an error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

import rnngraph

from . import blas_limit, numpy_bptt, rnngraph_adapter

try:
    import torch
except Exception as _e:  # noqa: BLE001
    torch = None
    TORCH_MISSING = f"{type(_e).__name__}: {_e}"
else:
    TORCH_MISSING = None
    from . import torch_impls

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

# (cell, input, hidden, batch, T); the readout has as many outputs as inputs.
CONFIGS = [
    ("rnn", 1, 2, 1, 20),
    ("rnn", 8, 32, 16, 50),
    ("rnn", 64, 256, 64, 100),
    ("lstm", 1, 2, 1, 20),
    ("lstm", 8, 32, 16, 50),
    ("lstm", 64, 256, 64, 100),
    ("lstm", 128, 512, 64, 100),
]
SCALING_SIZE = (8, 32, 16)  # input, hidden, batch
SCALING_T = (10, 100, 1000)
BATCH_SCALING_SIZE = (8, 32, 50)  # input, hidden, T
BATCH_SCALING_B = (4, 16, 64, 256)

IMPLS = ("torch_fused", "torch_eager", "numpy", "blas", "rnngraph")
LABEL = {
    "torch_fused": "torch nn.RNN/LSTM",
    "torch_eager": "torch eager loop",
    "numpy": "numpy fused",
    "blas": "BLAS limit",
    "rnngraph": "rnngraph",
}
BASELINES = ("torch_fused", "torch_eager", "numpy", "blas")
TOL = {"float64": 1e-9, "float32": 2e-3}  # max |a - b| / max |reference|, per array


# ----------------------------------------------------------------------------- environment


def blas_info():
    """numpy's BLAS as threadpoolctl sees it (library, version, kernel, threads)."""
    if threadpoolctl is None:
        return {"note": "threadpoolctl not installed: numpy's BLAS kernel and threads unknown"}
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in lib.get("filepath", ""):
            return {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")}
    libs = [lib for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    if libs:
        return {k: libs[0].get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")}
    return {"note": "no BLAS library found by threadpoolctl"}


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state():
    """The commit the run measured, and whether rnngraph/ had uncommitted changes then."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rnngraph"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"head": head or None, "rnngraph_uncommitted_changes": bool(dirty)}


def environment(threads):
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
        "numpy_blas": blas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "torch": torch_impls.info() if torch is not None else {"missing": TORCH_MISSING},
        "git": git_state(),
    }
    return env


# ----------------------------------------------------------------------------- measuring


class Budget:
    """How long to measure.

    Each implementation is warmed up (``warm_calls`` calls and ``warm_s``
    seconds), then the implementations take turns in rounds, each round a
    block of about ``block_s`` seconds per implementation, until every one has
    at least ``min_reps`` timed calls and ``min_s`` seconds of them (or
    ``max_reps``). Taking turns spreads any background load over all columns
    alike, so the ratios stay fair on a shared machine.
    """

    def __init__(self, quick, smoke=False):
        if smoke:  # one call each: exercises the harness, measures nothing (tests)
            self.warm_calls, self.warm_s, self.block_s, self.min_rounds = 1, 0.0, 0.0, 1
            self.min_reps, self.min_s, self.max_reps = 1, 0.0, 1
        elif quick:
            self.warm_calls, self.warm_s, self.block_s, self.min_rounds = 1, 0.05, 0.05, 3
            self.min_reps, self.min_s, self.max_reps = 3, 0.25, 60
        else:
            self.warm_calls, self.warm_s, self.block_s, self.min_rounds = 2, 0.3, 0.1, 5
            self.min_reps, self.min_s, self.max_reps = 10, 1.5, 400


def _stats(seconds):
    ms = sorted(1e3 * t for t in seconds)
    q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "p25_ms": q[0], "p75_ms": q[2], "min_ms": ms[0],
            "max_ms": ms[-1], "reps": len(ms)}


def measure(fns, budget):
    """Time each zero-arg step of ``fns`` (name -> fn) in interleaved blocks.

    Returns name -> wall-clock ms statistics, with the same statistics of the
    process's CPU time under ``"cpu"``. With one thread, CPU time is the
    step's cost without the time the process waited for a core, which makes
    it the steadier number on a busy machine (``--clock cpu``).
    """
    gc.collect()
    est = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        n = 0
        while n < budget.warm_calls or time.perf_counter() - t0 < budget.warm_s:
            t = time.perf_counter()
            fn()
            last = time.perf_counter() - t
            n += 1
        est[name] = max(last, 1e-7)
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    rounds = 0
    while True:
        done = all(len(ts) >= budget.min_reps and (sum(ts) >= budget.min_s or len(ts) >= budget.max_reps)
                   for ts in times.values())
        if done and rounds >= budget.min_rounds:
            break
        for name, fn in fns.items():
            ts, cs = times[name], cpu[name]
            if len(ts) >= budget.max_reps:
                continue
            k = max(1, min(int(budget.block_s / est[name]), budget.max_reps - len(ts)))
            for _ in range(k):
                t, c = time.perf_counter(), time.process_time()
                fn()
                ts.append(time.perf_counter() - t)
                cs.append(time.process_time() - c)
        rounds += 1
    out = {}
    for name in fns:
        out[name] = _stats(times[name])
        out[name]["rounds"] = rounds
        out[name]["cpu"] = _stats(cpu[name])  # this process's CPU seconds, all its threads
    return out


def _cpu_snapshot():
    """(busy jiffies of the whole machine, this process's CPU seconds, wall time)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
    except (OSError, ValueError, IndexError):
        busy = None
    t = os.times()
    return busy, t.user + t.system, time.perf_counter()


def background_load(before, after):
    """CPU used by *other* processes between two snapshots, in cores (0 = quiet machine)."""
    if before[0] is None or after[0] is None:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    others = (after[0] - before[0]) / hz - (after[1] - before[1])
    return max(0.0, others / (after[2] - before[2]))


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++-level chatter (the torch profiler prints to fd 2)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def traced_peak(call):
    """Peak bytes Python-side allocations (numpy arrays included) grow by during ``call()``.

    Returns (peak, retained): retained is what is still allocated afterwards
    (workspaces and caches the object keeps for the next step).
    """
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, cur - base


def torch_peak(step):
    """Peak live tensor bytes of one torch step, from the profiler's allocation records.

    The profiler attributes each allocation and free to the op that made it;
    summing them in time order gives the live-bytes curve at op granularity.
    """
    from torch.profiler import ProfilerActivity, profile

    step()  # warm
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(prof.profiler.function_events, key=lambda e: (e.time_range.start, -e.time_range.end))
    cur = peak = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak


# ----------------------------------------------------------------------------- implementations


def rel_err(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(a - ref))) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def compare(loss, grads, ref_loss, ref_grads):
    errs = {n: rel_err(grads.get(n, np.full(1, np.nan)), ref_grads[n]) for n in ref_grads}
    worst = max(errs, key=lambda n: errs[n])
    return {"loss_err": rel_err(loss, ref_loss), "grad_err": errs[worst], "worst": worst, "per_param": errs}


class Suite:
    """State shared by all configurations: budget, torch/rnngraph availability, messages."""

    def __init__(self, args):
        self.args = args
        self.budget = Budget(args.quick, smoke=args.smoke)
        self.skip = {}  # impl -> reason, for the whole run
        if torch is None:
            self.skip["torch_fused"] = self.skip["torch_eager"] = f"PyTorch not installed ({TORCH_MISSING})"
        self.rg = rnngraph
        for impl, why in sorted(self.skip.items()):
            print(f"[skip] {LABEL[impl]} column: {why}")

    def make(self, impl, cell, params, dtype):
        """An object with ``loss_and_grad(x, y)`` and ``timer(x, y)`` -> zero-arg step."""
        if impl == "numpy":
            return _Numpy(cell, params, dtype)
        if impl == "torch_fused":
            return _Torch(torch_impls.TorchFused(cell, params, dtype))
        if impl == "torch_eager":
            return _Torch(torch_impls.TorchEager(cell, params, dtype))
        if impl == "rnngraph":
            return _Rnngraph(rnngraph_adapter.RnngraphImpl(self.rg, cell, params, dtype))
        raise KeyError(impl)


class _Numpy:
    def __init__(self, cell, params, dtype):
        self.m = numpy_bptt.make(cell, params, dtype)

    def loss_and_grad(self, x, y):
        return self.m.loss_and_grad(x, y)

    def timer(self, x, y):
        return lambda: self.m.loss_and_grad(x, y)


class _Torch:
    def __init__(self, m):
        self.m = m

    def loss_and_grad(self, x, y):
        return self.m.loss_and_grad(x, y)

    def timer(self, x, y):
        xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
        return lambda: self.m.step(xt, yt)


class _Rnngraph:
    def __init__(self, m):
        self.m = m

    def loss_and_grad(self, x, y):
        return self.m.loss_and_grad(x, y)

    def timer(self, x, y):
        inputs, targets = {"x": x}, {"y": y}
        net = self.m.net
        return lambda: net.loss_and_grad(inputs, targets)


def run_config(suite, cell, I, H, B, T, *, check=True, memory=True):
    """Check, time and (optionally) measure the memory of one configuration."""
    O = I
    label = f"{cell} I={I} H={H} B={B} T={T}"
    print(f"\n== {label}", flush=True)
    params = numpy_bptt.init_params(cell, I, H, O, seed=0)
    x64, y64 = numpy_bptt.make_data(B, T, I, O, seed=0)
    x32, y32 = x64.astype(np.float32), y64.astype(np.float32)
    res = {"cell": cell, "input": I, "hidden": H, "output": O, "batch": B, "steps": T,
           "check": {}, "time": {}, "memory": {}, "skipped": {}, "failed_check": []}
    impls = [i for i in IMPLS if i not in suite.skip and i != "blas"]

    # --- correctness: float64 against the numpy reference, then float32 against float64
    if check:
        ref_loss, ref_grads = numpy_bptt.make(cell, params, np.float64).loss_and_grad(x64, y64)
        for impl in impls:
            out = {}
            for dt, x, y in (("float64", x64, y64), ("float32", x32, y32)):
                try:
                    loss, grads = suite.make(impl, cell, params, np.dtype(dt)).loss_and_grad(x, y)
                except Exception as e:  # noqa: BLE001 - a column that cannot run is skipped, loudly
                    res["skipped"][impl] = f"{dt}: {type(e).__name__}: {e}"
                    print(f"  [skip] {LABEL[impl]}: {res['skipped'][impl]}")
                    break
                c = compare(loss, grads, ref_loss, ref_grads)
                c["ok"] = c["loss_err"] <= TOL[dt] and c["grad_err"] <= TOL[dt]
                out[dt] = c
                if not c["ok"]:
                    print(f"  [CHECK FAILED] {LABEL[impl]} {dt}: loss err {c['loss_err']:.2e}, "
                          f"grad err {c['grad_err']:.2e} (worst {c['worst']}), tolerance {TOL[dt]:.0e}")
            if out:
                res["check"][impl] = out
                if not all(c["ok"] for c in out.values()):
                    res["failed_check"].append(impl)
        ok = [LABEL[i] for i in res["check"] if i not in res["failed_check"] and len(res["check"][i]) == 2]
        print(f"  check: {', '.join(ok) or 'nothing'} agree with numpy float64 "
              f"(tolerance {TOL['float64']:.0e} float64, {TOL['float32']:.0e} float32)")
    impls = [i for i in impls if i not in res["skipped"]]

    # --- timing, float32: all columns interleaved (see Budget)
    fns = {}
    for impl in impls:
        try:
            fns[impl] = suite.make(impl, cell, params, np.float32).timer(x32, y32)
            fns[impl]()  # fail here, not in the middle of the timing rounds
        except Exception as e:  # noqa: BLE001
            fns.pop(impl, None)
            res["skipped"][impl] = f"timing: {type(e).__name__}: {e}"
            print(f"  [skip] {LABEL[impl]}: {res['skipped'][impl]}")
    plan = blas_limit.gemm_plan(cell, I, H, O, B, T)
    bl = blas_limit.BlasLimit(plan, np.float32)
    fns["blas"] = bl.run
    snap = _cpu_snapshot()
    res["time"] = measure(fns, suite.budget)
    res["background_cores"] = background_load(snap, _cpu_snapshot())
    res["blas_gflop"] = bl.flops / 1e9
    for impl in fns:
        t = res["time"][impl]
        extra = f", {res['blas_gflop'] / t['median_ms'] * 1e3:.1f} GFLOP/s" if impl == "blas" else ""
        print(f"  {LABEL[impl]:<18} {t['median_ms']:10.3f} ms  (IQR {t['p25_ms']:.3f}-{t['p75_ms']:.3f}, n={t['reps']}; "
              f"cpu {t['cpu']['median_ms']:.3f} ms{extra})", flush=True)
    if res["background_cores"] is not None and res["background_cores"] > 0.1:
        print(f"  [noise] other processes used {res['background_cores']:.2f} cores while this was timed")
    res["blas_breakdown"] = []
    for k, g in enumerate(bl.plan):
        t = None if suite.args.quick or suite.args.smoke else measure({"g": lambda k=k: bl.run_one(k)}, Budget(quick=True))["g"]
        res["blas_breakdown"].append({"gemm": g.name, "phase": g.phase, "m": g.m, "k": g.k, "n": g.n, "count": g.count,
                                      "gflop": g.flops / 1e9, "median_ms": t and t["median_ms"]})

    # --- peak memory of one step
    if memory:
        for impl in impls:
            try:
                res["memory"][impl] = step_memory(suite, impl, cell, params, x32, y32)
            except Exception as e:  # noqa: BLE001
                res["memory"][impl] = {"error": f"{type(e).__name__}: {e}"}

    # --- ratios rnngraph / baseline (and numpy / the others, to see the baselines themselves)
    res["ratios"] = {}  # clock -> stat -> "a/b" -> ratio
    for clock in ("wall", "cpu"):
        for stat in ("median", "min"):
            r = res["ratios"].setdefault(clock, {}).setdefault(stat, {})
            for a in ("rnngraph", "numpy"):
                for b in BASELINES:
                    if a != b and a in res["time"] and b in res["time"]:
                        ta, tb = clocked(res["time"][a], clock), clocked(res["time"][b], clock)
                        r[f"{a}/{b}"] = ta[f"{stat}_ms"] / tb[f"{stat}_ms"]
    return res


def clocked(t, clock):
    """The wall (default) or CPU-time statistics of one measurement."""
    return t["cpu"] if clock == "cpu" else t


def step_memory(suite, impl, cell, params, x, y):
    """Peak memory of one float32 step (see README: what each number counts)."""
    if impl in ("torch_fused", "torch_eager"):
        obj = suite.make(impl, cell, params, np.float32)
        return {"peak_bytes": torch_peak(obj.timer(x, y)), "how": "torch profiler, op granularity, steady state"}
    obj = suite.make(impl, cell, params, np.float32)  # fresh: the first call allocates workspaces
    step = obj.timer(x, y)
    peak, retained = traced_peak(step)
    steady, _ = traced_peak(step)
    return {"peak_bytes": peak, "retained_bytes": retained, "steady_peak_bytes": steady,
            "how": "tracemalloc, first call on a fresh object (workspace included)"}


# ----------------------------------------------------------------------------- output


STAT = {"name": "median", "key": "median_ms", "clock": "wall"}  # set by main from --stat, --clock


def ratios_of(r):
    return r["ratios"][STAT["clock"]][STAT["name"]]


def fmt_ms(t):
    if t is None:
        return "-"
    t = clocked(t, STAT["clock"])
    spread = (t["p75_ms"] - t["p25_ms"]) / 2 / t["median_ms"] * 100 if t["median_ms"] else 0
    v = t[STAT["key"]]
    s = f"{v:.3f}" if v < 10 else (f"{v:.2f}" if v < 100 else f"{v:.1f}")
    return f"{s} ±{spread:.0f}%"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt_mb(m):
    if not m:
        return "-"
    if "error" in m:
        return "error"
    return f"{m['peak_bytes'] / 2**20:.2f}"


def print_table(title, headers, rows, caption=None):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"\n{title}")
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for r in [headers, *rows]:
            print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
        if caption:
            print(caption)
        return
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for r in rows:
        table.add_row(*[str(c) for c in r])
    Console(width=max(100, sum(len(h) for h in headers) + 4 * len(headers) + 40)).print(table)


def mark(res, impl):
    return " ✗" if impl in res.get("failed_check", []) else ""


def print_results(results, title):
    headers = (["config (I,H,B,T)"] + [LABEL[i] for i in IMPLS]
               + [f"rg/{s}" for s in ("fused", "eager", "numpy", "BLAS")] + ["bg"])
    rows = []
    for r in results:
        cfg = f"{r['cell']} ({r['input']},{r['hidden']},{r['batch']},{r['steps']})"
        cells = [fmt_ms(r["time"].get(i)) + mark(r, i) for i in IMPLS]
        ratios = [fmt_ratio(ratios_of(r).get(f"rnngraph/{b}")) for b in BASELINES]
        bg = r.get("background_cores")
        rows.append([cfg, *cells, *ratios, "?" if bg is None else f"{bg:.2f}"])
    print_table(title, headers, rows,
                caption=f"ms per float32 training step (forward + BPTT + all grads), {STAT['clock']} time, "
                        f"{STAT['name']} ±half-IQR; "
                        "rg/X = rnngraph time / X time (lower is better); ✗ = failed the gradient check; "
                        "bg = cores other processes used meanwhile (0 = quiet machine)")
    headers = ["config"] + [f"numpy/{LABEL[b]}" for b in ("torch_fused", "torch_eager", "blas")]
    rows = [[f"{r['cell']} ({r['input']},{r['hidden']},{r['batch']},{r['steps']})"]
            + [fmt_ratio(ratios_of(r).get(f"numpy/{b}")) for b in ("torch_fused", "torch_eager", "blas")] for r in results]
    print_table(f"{title}: the baselines against each other", headers, rows)


def print_memory(results):
    mem_impls = [i for i in IMPLS if i != "blas"]
    headers = ["config (I,H,B,T)"] + [LABEL[i] for i in mem_impls]
    rows = []
    for r in results:
        if not r["memory"]:
            continue
        rows.append([f"{r['cell']} ({r['input']},{r['hidden']},{r['batch']},{r['steps']})"]
                    + [fmt_mb(r["memory"].get(i)) for i in mem_impls])
    if rows:
        print_table("Peak memory of one step (MiB)", headers, rows,
                    caption="numpy, rnngraph: tracemalloc, first call on a fresh object (workspaces included); "
                            "torch: profiler allocation records, op granularity (tensors only)")


def print_checks(results):
    headers = ["config", "implementation", "float64 loss", "float64 grads", "float32 grads", "ok"]
    rows = []
    for r in results:
        for impl, c in r["check"].items():
            c64, c32 = c.get("float64"), c.get("float32")
            rows.append([f"{r['cell']} ({r['input']},{r['hidden']},{r['batch']},{r['steps']})", LABEL[impl],
                         f"{c64['loss_err']:.1e}" if c64 else "-", f"{c64['grad_err']:.1e}" if c64 else "-",
                         f"{c32['grad_err']:.1e}" if c32 else "-",
                         "yes" if impl not in r["failed_check"] and c64 and c32 else "NO"])
    if rows:
        print_table("Correctness against the numpy float64 step (max |diff| / max |ref|, worst parameter)", headers, rows)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no per-GEMM breakdown")
    ap.add_argument("--json", metavar="PATH", help="write every number to this JSON file")
    ap.add_argument("--only", choices=("rnn", "lstm"), help="one cell type")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for numpy's BLAS and torch (default: all cores)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the T- and batch-scaling tables")
    ap.add_argument("--no-memory", action="store_true", help="skip peak-memory measurements")
    ap.add_argument("--no-check", action="store_true", help="skip the correctness check (not recommended)")
    ap.add_argument("--stat", choices=("median", "min"), default="median",
                    help="statistic the tables and rg/X ratios use (min resists background load; both are in the JSON)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall-clock time, or this process's CPU time (with --threads 1: far less affected by other processes)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: one call per column
    ap.add_argument("--max-hidden", type=int, default=None, help="skip configurations with a larger hidden size")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    STAT.update(name=args.stat, key=f"{args.stat}_ms", clock=args.clock)
    if args.clock == "cpu" and args.threads != 1:
        print(f"[note] --clock cpu with {args.threads} threads adds up every thread's CPU time (spinning included): "
              "it measures CPU cost, not latency; use --threads 1 for a load-proof latency")
    limiter = contextlib.nullcontext()
    if threadpoolctl is not None:
        limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    else:
        print("[note] threadpoolctl not installed: numpy's BLAS threads not set (use OPENBLAS_NUM_THREADS)")
    if torch is not None:
        torch.set_num_threads(args.threads)
    with limiter:
        env = environment(args.threads)
        b = env["numpy_blas"]
        print(f"numpy {env['numpy']}, BLAS: {b.get('internal_api', '?')} {b.get('version', '')} "
              f"kernel {b.get('architecture', '?')}, {b.get('num_threads', '?')} threads; "
              f"OPENBLAS_CORETYPE={env['env']['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={env['env']['OPENBLAS_L2_SIZE']}")
        if torch is not None:
            ti = env["torch"]
            print(f"torch {ti['version']}, {ti['num_threads']} threads, BLAS {ti['blas']}, mkldnn {ti['mkldnn']}, {ti['cpu_capability']}")
        print(f"cpu: {env['cpu']} ({env['cpu_count']} cores)")
        if env["git"]:
            print(f"commit {env['git']['head']}" + (" + uncommitted changes in rnngraph/" if env["git"]["rnngraph_uncommitted_changes"] else ""))
        suite = Suite(args)
        run_start = _cpu_snapshot()
        configs = [c for c in CONFIGS if (args.only is None or c[0] == args.only) and (args.max_hidden is None or c[2] <= args.max_hidden)]
        results = [run_config(suite, *c, check=not args.no_check, memory=not args.no_memory) for c in configs]
        scaling, batch_scaling = [], []
        if not args.no_scaling:
            I, H, B = SCALING_SIZE
            cells = [args.only] if args.only else ["rnn", "lstm"]
            scaling = [run_config(suite, cell, I, H, B, T, check=not args.no_check, memory=not args.no_memory)
                       for cell in cells for T in SCALING_T]
            I, H, T = BATCH_SCALING_SIZE
            batch_scaling = [run_config(suite, cell, I, H, B, T, check=not args.no_check, memory=False)
                             for cell in cells for B in BATCH_SCALING_B]

        print()
        print_checks(results + scaling + batch_scaling)
        print_results(results, "Training step, float32")
        if scaling:
            print_results(scaling, f"T scaling at (I,H,B) = {SCALING_SIZE}")
            print_results(batch_scaling, f"Batch scaling at (I,H,T) = {BATCH_SCALING_SIZE}")
        if not args.no_memory:
            print_memory(results + scaling)
        for impl, why in sorted(suite.skip.items()):
            print(f"[skipped] {LABEL[impl]}: {why}")
        env["background_cores"] = background_load(run_start, _cpu_snapshot())
        if env["background_cores"] is not None and env["background_cores"] > 0.1:
            print(f"[noise] other processes used {env['background_cores']:.2f} of {os.cpu_count()} cores on average "
                  f"during this run: timings are inflated and ratios less certain; rerun on a quiet machine, "
                  f"or compare with --stat min")
        failed = sorted({(i, f"{r['cell']} ({r['input']},{r['hidden']},{r['batch']},{r['steps']})") for r in results + scaling + batch_scaling for i in r["failed_check"]})
        for impl, cfg in failed:
            print(f"[CHECK FAILED] {LABEL[impl]} on {cfg}: its timing is not a valid comparison")

    if args.json:
        doc = {"env": env, "settings": {**vars(args), "tolerance": TOL, "configs": CONFIGS,
                                        "scaling_size": SCALING_SIZE, "scaling_T": SCALING_T,
                                        "batch_scaling_size": BATCH_SCALING_SIZE, "batch_scaling_B": BATCH_SCALING_B},
               "skipped": suite.skip, "results": results, "scaling": scaling, "batch_scaling": batch_scaling}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=float)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
