"""The ``train.schedule`` key: which schedules there are, their keys and
defaults, and what is wrong with one as written (``rnngraph/schedules.py``
computes the rates)."""

from __future__ import annotations

import math

from ..errors import suggest

SCHEDULES = {
    "step": {"every": None, "gamma": 0.1},
    "cosine": {"warmup": 0, "min_lr": 0.0},
    "plateau": {"metric": "eval_loss", "patience": 10, "factor": 0.1, "min_lr": 0.0},
}
REQUIRED = {"step": ("every",)}


def schedule_problems(raw) -> list[tuple[tuple, str, bool]]:
    """What is wrong with a ``train.schedule`` mapping: ``(key path under it,
    message, whether the key itself is wrong)`` per mistake, empty when fine.
    (Whether ``plateau``'s metric is computed is the spec validator's check,
    which knows the task.)"""
    if not isinstance(raw, dict):
        return [((), "schedule must be a mapping such as {name: step, every: 10, gamma: 0.5}, "
                     "{name: cosine, warmup: 5} or {name: plateau, patience: 5}", False)]
    name = raw.get("name")
    if not isinstance(name, str) or name not in SCHEDULES:
        hint = suggest(name, SCHEDULES) if isinstance(name, str) else ""
        where = ("name",) if "name" in raw else ()
        return [(where, f"schedule name must be one of {', '.join(SCHEDULES)}, got {name!r}{hint}", False)]
    out = []
    known = SCHEDULES[name]
    for key in raw:
        if key != "name" and key not in known:
            out.append(((key,), f"a {name} schedule takes {', '.join(known)}, not {key!r}", True))
    for key in REQUIRED.get(name, ()):
        if key not in raw:
            out.append(((), f"a {name} schedule needs `{key}:`", False))
    for key, value in raw.items():
        if key == "name" or key not in known:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        integer = isinstance(value, int) and not isinstance(value, bool)
        if key in ("every", "patience") and not (integer and value >= 1):
            out.append(((key,), f"{key} must be an integer >= 1, got {value!r}", False))
        elif key == "warmup" and not (integer and value >= 0):
            out.append(((key,), f"warmup must be an integer >= 0 (epochs), got {value!r}", False))
        elif key in ("gamma", "factor") and not (number and 0 < value <= 1):
            out.append(((key,), f"{key} must be a number in (0, 1], got {value!r}", False))
        elif key == "min_lr" and not (number and value >= 0):
            out.append(((key,), f"min_lr must be a number >= 0, got {value!r}", False))
        elif key == "metric" and not isinstance(value, str):
            out.append(((key,), f"metric must name a metric such as eval_loss, got {value!r}", False))
    return out
