"""A loss curve as text: one column per epoch (or bucket of epochs), log or linear y."""

from __future__ import annotations

import math

from rich.text import Text

__all__ = ["loss_plot"]

SERIES_STYLE = {"train_loss": "cyan", "eval_loss": "magenta"}
SERIES_MARK = {"train_loss": "•", "eval_loss": "×"}    # told apart without colour too
BOTH = "◆"                                             # both series in one cell


def loss_plot(history: list[dict], width: int = 60, height: int = 12,
              keys: tuple = ("train_loss", "eval_loss")) -> Text:
    """Plot ``record[key]`` for each record of ``history`` (a training history)."""
    series = {k: [(r["epoch"], r[k]) for r in history if k in r and r[k] is not None
                  and math.isfinite(r[k])] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return Text("no epochs yet", "dim")
    values = [v for pts in series.values() for _, v in pts]
    log = all(v > 0 for v in values) and max(values) / min(values) > 20
    scale = math.log10 if log else (lambda v: v)
    low = min(scale(v) for v in values)
    high = max(scale(v) for v in values)
    span = (high - low) or 1.0
    last_epoch = max(e for pts in series.values() for e, _ in pts)
    first_epoch = min(e for pts in series.values() for e, _ in pts)
    cols = max(1, min(width, last_epoch - first_epoch + 1))
    grid = [[(" ", None)] * cols for _ in range(height)]
    for key, pts in series.items():
        for epoch, v in pts:
            x = 0 if last_epoch == first_epoch else round((epoch - first_epoch) / (last_epoch - first_epoch) * (cols - 1))
            y = height - 1 - round((scale(v) - low) / span * (height - 1))
            mark = SERIES_MARK.get(key, "•")
            if grid[y][x][0] not in (" ", mark):
                grid[y][x] = (BOTH, "white")
            else:
                grid[y][x] = (mark, SERIES_STYLE.get(key, "white"))
    label = lambda v: f"{(10 ** v if log else v):.3g}"  # noqa: E731
    top, bottom = label(high), label(low)
    pad = max(len(top), len(bottom))
    text = Text()
    for i, row in enumerate(grid):
        axis = top if i == 0 else bottom if i == height - 1 else ""
        text.append(f"{axis:>{pad}} │", "dim")
        for ch, style in row:
            text.append(ch, style)
        text.append("\n")
    text.append(" " * pad + " └" + "─" * cols + "\n", "dim")
    text.append(" " * pad + f"  epoch {first_epoch}" + " " * max(1, cols - 16) + f"{last_epoch}\n", "dim")
    for key in series:
        text.append(f"  {SERIES_MARK.get(key, '•')} {key}", SERIES_STYLE.get(key, "white"))
    if len(series) > 1:
        text.append(f"  {BOTH} both", "white")
    if log:
        text.append("   (log scale)", "dim")
    return text
