"""A sweep's tables and pictures: ``sweep.csv`` (one row per run),
``summary.csv`` (per grid point, each metric's mean, std, min and max and the
fraction of runs that met ``expect:``), the printed summary and, with
matplotlib, one plot per metric against each varied key.

Everything here is computed from ``RunJob``s and ``RunResult``s, which read
the same whether a run just finished or was read back from its folder: a
resumed sweep writes the same tables as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import os
import threading

from ..io import atomic_write, atomic_write_text
from ..plotting import new_figure, plain_log_axis


def metric_names(results) -> list[str]:
    """Every metric any run reported, in the order they first appear."""
    names: list[str] = []
    for result in results:
        for name in result.metrics:
            if name not in names:
                names.append(name)
    return names


def sweep_rows(jobs, results: dict) -> tuple[list[str], list[dict]]:
    """``sweep.csv``'s header and rows: one per job that has a result, in the
    sweep's order.  ``results`` maps run id -> RunResult."""
    keys = [key for key, _ in jobs[0].point] if jobs else []
    done = [results[job.run_id] for job in jobs if job.run_id in results]
    metrics = metric_names(done)
    header = ["run", *keys, "seed", *metrics, "status", "exit_status", "seconds"]
    rows = []
    for job in jobs:
        result = results.get(job.run_id)
        if result is None:
            continue
        row = {"run": job.run_id, **dict(job.point), "seed": job.seed}
        row.update({m: result.metrics.get(m, "") for m in metrics})
        row.update(status=result.status, exit_status=result.exit_status, seconds=round(result.seconds, 3))
        rows.append(row)
    return header, rows


def _csv(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _number(value) -> float | None:
    """A metric as a float (``"nan"``, as metrics.json writes it, included);
    None for anything that is not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarize(jobs, results: dict) -> tuple[list[str], list[dict]]:
    """``summary.csv``'s header and rows: one per grid point with at least
    one result.  Per metric: mean, std (population, ddof 0), min and max over
    the point's runs with a finite value; ``met_expect``: the fraction of its
    runs that met every ``expect:`` threshold (empty when the spec has none)."""
    keys = [key for key, _ in jobs[0].point] if jobs else []
    groups: dict = {}
    for job in jobs:
        if job.run_id in results:
            groups.setdefault(job.point, []).append(results[job.run_id])
    metrics = metric_names(r for rs in groups.values() for r in rs)
    header = [*keys, "runs", "failed", "met_expect"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_min", f"{m}_max"]
    rows = []
    for point, runs in groups.items():
        row = {**dict(point), "runs": len(runs), "failed": sum(r.status in ("failed", "error") for r in runs)}
        judged = [r.met_expect for r in runs if r.met_expect is not None]
        row["met_expect"] = round(sum(judged) / len(runs), 6) if judged else ""
        for m in metrics:
            values = [v for v in (_number(r.metrics.get(m)) for r in runs) if v is not None and math.isfinite(v)]
            if values:
                mean = math.fsum(values) / len(values)
                std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
                row.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_min": min(values), f"{m}_max": max(values)})
            else:
                row.update({f"{m}_mean": "", f"{m}_std": "", f"{m}_min": "", f"{m}_max": ""})
        rows.append(row)
    return header, rows


def write_tables(out_dir: str, jobs, results: dict) -> list[str]:
    """Write ``sweep.csv`` and ``summary.csv`` atomically; their paths."""
    paths = []
    for name, (header, rows) in (("sweep.csv", sweep_rows(jobs, results)),
                                 ("summary.csv", summarize(jobs, results))):
        path = os.path.join(out_dir, name)
        atomic_write_text(path, _csv(header, rows))
        paths.append(path)
    return paths


def summary_table(jobs, results: dict, title: str):
    """The printed summary: a rich Table, one row per grid point and metric."""
    from rich.table import Table
    keys = [key for key, _ in jobs[0].point] if jobs else []
    header, rows = summarize(jobs, results)
    metrics = [h[:-len("_mean")] for h in header if h.endswith("_mean")]
    table = Table(title=title)
    for key in keys:
        table.add_column(key.rsplit(".", 1)[-1])
    for column in ("runs", "met expect", "metric", "mean", "std", "min", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows:
        for i, m in enumerate(metrics):
            first = i == 0
            cells = [str(row[k]) if first else "" for k in keys]
            cells += [str(row["runs"]) if first else "",
                      (f"{row['met_expect']:.0%}" if row["met_expect"] != "" else "-") if first else ""]
            cells.append(m)
            cells += [_fmt(row[f"{m}_{s}"]) for s in ("mean", "std", "min", "max")]
            table.add_row(*cells, end_section=i == len(metrics) - 1)
    return table


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def load_plotting() -> threading.Thread:
    """Import matplotlib (if installed) in a thread of its own, for ``write_plots``:
    the sweep's process starts it while it waits for its runs, instead of
    paying the import, a noticeable part of a short sweep, after the last one.
    Join it before drawing.  It is a daemon thread: a sweep that draws nothing
    (interrupted) need not wait for it."""
    def load():
        try:
            import matplotlib.backends.backend_agg  # noqa: F401 - what plotting.new_figure uses
            import matplotlib.figure  # noqa: F401
            import matplotlib.ticker  # noqa: F401
        except ImportError:
            pass
    thread = threading.Thread(target=load, name="load-matplotlib", daemon=True)
    thread.start()
    return thread


def write_plots(out_dir: str, jobs, results: dict) -> list[str]:
    """With matplotlib: ``plots/<metric>-vs-<key>.png`` for every metric and
    varied key (each run a dot, the mean per value a line) and
    ``plots/loss.png`` (the training loss per epoch, one line per grid point:
    the mean over its seeds).  Nothing, and no error, without matplotlib."""
    keys = [key for key, _ in jobs[0].point] if jobs else []
    if not results:
        return []
    try:
        import matplotlib  # noqa: F401 - whether it is installed
    except ImportError:
        return []
    from .run import safe_name
    done = [(job, results[job.run_id]) for job in jobs if job.run_id in results]
    folder = os.path.join(out_dir, "plots")
    os.makedirs(folder, exist_ok=True)
    paths = _loss_curves(folder, out_dir, done)
    for m in metric_names(r for _, r in done):
        for index, key in enumerate(keys):
            values = []   # this key's values in the sweep's order
            for job, _ in done:
                if job.point[index][1] not in values:
                    values.append(job.point[index][1])
            numeric = all(_number(v) is not None for v in values)
            position = {v: (_number(v) if numeric else i) for i, v in enumerate(values)}
            xs, ys = [], []
            for job, result in done:
                y = _number(result.metrics.get(m))
                if y is not None and math.isfinite(y):
                    xs.append(position[job.point[index][1]])
                    ys.append(y)
            if not ys:
                continue
            fig, ax = new_figure(5, 3.5)
            ax.plot(xs, ys, "o", alpha=0.4, label="runs")
            means = []
            for v in values:
                at = [y for x, y in zip(xs, ys) if x == position[v]]
                if at:
                    means.append((position[v], sum(at) / len(at)))
            means.sort()
            ax.plot(*zip(*means), "-", color="black", label="mean")
            if numeric and len(values) > 2 and min(position.values()) > 0 and \
                    max(position.values()) / min(position.values()) >= 100:
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(range(len(values)), values)
            ax.set_xlabel(key)
            ax.set_ylabel(m)
            ax.legend()
            fig.tight_layout()
            path = os.path.join(folder, safe_name(f"{m}-vs-{key}") + ".png")
            atomic_write(path, lambda fh, fig=fig: fig.savefig(fh, format="png"), binary=True)
            paths.append(path)
    return paths


def _read_losses(path: str) -> dict:
    """``{epoch: train_loss}`` from a run's history.csv ({} when unreadable)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return {}
    out = {}
    for row in rows:
        epoch, loss = _number(row.get("epoch")), _number(row.get("train_loss"))
        if epoch is not None and loss is not None and math.isfinite(loss):
            out[int(epoch)] = loss
    return out


def _loss_curves(folder: str, out_dir: str, done: list) -> list[str]:
    curves: dict = {}   # grid point -> [{epoch: loss}, ...]
    for job, _ in done:
        losses = _read_losses(os.path.join(out_dir, job.run_id, "history.csv"))
        if len(losses) >= 2:
            curves.setdefault(job.point, []).append(losses)
    if not curves:
        return []
    fig, ax = new_figure(6, 4)
    positive = True
    for point, runs in curves.items():
        epochs = sorted(set().union(*runs))
        mean = [sum(r[e] for r in runs if e in r) / sum(e in r for r in runs) for e in epochs]
        positive = positive and min(mean) > 0
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point) or "all runs"
        ax.plot(epochs, mean, label=f"{label} ({len(runs)} runs)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss (mean over seeds)")
    if positive:
        plain_log_axis(ax)
    if len(curves) <= 12:
        ax.legend(fontsize="small")
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.97)   # tight_layout costs a render
    path = os.path.join(folder, "loss.png")
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    return [path]
