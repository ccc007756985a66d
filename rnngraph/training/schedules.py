"""Learning-rate schedules: the learning rate of each epoch (``train.schedule``).

A schedule scales the optimizer's ``lr`` (its *base* rate) epoch by epoch;
the trainer sets ``optimizer.options["lr"]`` before each epoch and records
it in the epoch's history record (``lr``).

- ``step``: ``lr = base * gamma ** (epoch // every)``.
- ``cosine``: a linear warm-up over ``warmup`` epochs, ``base * (e + 1) / warmup``,
  then from ``base`` down to ``min_lr`` along half a cosine so that the last
  epoch of the run (``train.epochs``) uses ``min_lr``.
- ``plateau``: starts at ``base``; after each evaluation, when ``metric`` has
  not improved on its best for more than ``patience`` evaluations, multiplies
  the rate by ``factor`` (never below ``min_lr``) and starts counting again.

Epochs count from 0 here.  ``state_dict``/``load_state_dict`` hold what a
schedule learns while running (only ``plateau`` learns anything), so a
resumed run continues exactly.
"""

from __future__ import annotations

import math

from ..spec.schedule import SCHEDULES
from .metrics import lower_is_better


class Schedule:
    """The learning rate of each epoch, from ``base`` (the optimizer's ``lr``)."""

    def __init__(self, config: dict, base: float, epochs: int):
        self.name = config["name"]
        self.options = {**SCHEDULES[self.name], **{k: v for k, v in config.items() if k != "name"}}
        self.base = float(base)
        self.epochs = int(epochs)
        self.current = self.base         # plateau: the rate it has come down to
        self.best: float | None = None   # plateau: the best value of the metric so far
        self.bad = 0                     # plateau: evaluations since the best

    def lr(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based)."""
        o = self.options
        if self.name == "step":
            return self.base * o["gamma"] ** (epoch // o["every"])
        if self.name == "cosine":
            warmup = o["warmup"]
            if epoch < warmup:
                return self.base * (epoch + 1) / warmup
            span = max(1, self.epochs - warmup - 1)
            progress = min(1.0, (epoch - warmup) / span)
            return o["min_lr"] + (self.base - o["min_lr"]) * (1 + math.cos(math.pi * progress)) / 2
        return self.current

    def observe(self, record: dict) -> None:
        """After an epoch: a plateau schedule reads its metric from the record
        (when the epoch was evaluated)."""
        if self.name != "plateau":
            return
        metric = self.options["metric"]
        value = record.get(metric)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (value < self.best if lower_is_better(metric) else value > self.best)
        if better:
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad > self.options["patience"]:
            self.current = max(self.options["min_lr"], self.current * self.options["factor"])
            self.bad = 0

    def state_dict(self) -> dict:
        return {"current": self.current, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.current = float(state["current"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad = int(state["bad"])
