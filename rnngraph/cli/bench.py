"""``rnngraph bench SPEC``: how long one training step of a spec takes.

One step is what training does per batch: forward over the sequence, BPTT,
every weight's gradient (``loss_and_grad`` on random data of the spec's
shapes).  Reported: median and spread over repetitions, the cost per time
step (the slope between T and 2T, so fixed costs drop out), forward alone,
and the step's peak memory (tracemalloc: numpy buffers included).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np


def _time(fn, repeat: int) -> np.ndarray:
    fn()   # warm up: compiles the scan loops, fills caches
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return np.array(out)


def bench(net, T: int = 50, B: int = 16, repeat: int = 20, seed: int = 0) -> dict:
    """Timings (seconds) and peak memory (bytes) of one training step.

    Raises DataError, before allocating, when the step over ``2 T`` steps
    would need more memory than ``budget.limit()``."""
    from .. import budget
    from ..engine.gradcheck import problem_bytes, random_problem
    budget.check(budget.estimate(net, 2 * T, B, data_bytes=2 * problem_bytes(net, 2 * T, B)),
                 f"timing {B} sequences of up to {2 * T} steps", "use fewer steps (-T) or a smaller batch (--batch)")

    def problem(steps):
        inputs, targets, initial, loss = random_problem(net, T=steps, B=B, seed=seed)
        cast = lambda d: {k: v.astype(net.dtype) for k, v in d.items()}   # noqa: E731
        return cast(inputs), cast(targets), cast(initial), loss
    any_node = not net.output_nodes
    results = {}
    for steps in (T, 2 * T):
        inputs, targets, initial, loss = problem(steps)
        step = lambda: net.train_step(inputs, targets, loss=loss, initial=initial, steps=steps,   # noqa: E731
                                      any_node=any_node)
        results[steps] = _time(step, repeat)
        if steps == T:
            fwd = _time(lambda: net.forward(inputs, initial=initial, steps=steps), repeat)
            net.program.release_workspaces()   # the peak counts the buffers a training step keeps between steps
            tracemalloc.start()
            step()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    t1, t2 = np.median(results[T]), np.median(results[2 * T])
    q1, q3 = np.percentile(results[T], [25, 75])
    return {"T": T, "batch": B, "repeat": repeat, "median": float(t1), "iqr": float(q3 - q1),
            "min": float(results[T].min()), "per_step": float((t2 - t1) / T), "fixed": float(max(2 * t1 - t2, 0.0)),
            "forward": float(np.median(fwd)), "peak_bytes": int(peak)}


def cmd_bench(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..engine.network import build
    from ..spec import load_spec
    net = build(load_spec(args.spec), dtype=args.dtype)
    r = bench(net, T=args.T, B=args.batch, repeat=args.repeat)
    table = Table(title=f"{args.spec}: one training step, T={r['T']}, batch={r['batch']}, {net.dtype}, "
                        f"{r['repeat']} repetitions")
    table.add_column("measure")
    table.add_column("value", justify="right")
    ms = lambda s: f"{s * 1e3:.3f} ms"   # noqa: E731
    table.add_row("training step (median)", ms(r["median"]))
    table.add_row("spread (interquartile)", ms(r["iqr"]))
    table.add_row("fastest", ms(r["min"]))
    table.add_row("per time step (slope T -> 2T)", f"{r['per_step'] * 1e6:.1f} us")
    table.add_row("fixed cost per call", ms(r["fixed"]))
    table.add_row("forward only (median)", ms(r["forward"]))
    table.add_row("peak memory of a step", f"{r['peak_bytes'] / 2 ** 20:.2f} MiB")
    Console().print(table)
    print(net.plan.describe())
    return 0
