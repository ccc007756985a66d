"""Where the loss counts, and where inputs carry data, in an unrolled network.

``unroll_marks(spec, net, T)`` says which vertices ``(output, t)`` of
``net.unroll(T)`` the training loss reads (``train.loss_on``: ``all`` every
step, ``last`` step ``T-1``, ``mask`` where the task's data says) and which
input vertices the task leaves empty (zero at that step in every sequence of
a small sample, such as a one-to-many cue after ``t = 0``).  With those, a
many-to-one, a one-to-many and a many-to-many network unroll into visibly
different pictures (``render``'s printers take the marks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spec import HOPFIELD_RULES

SAMPLE = 8    # sequences generated to read the task's masks and inputs


@dataclass
class Marks:
    """``loss``: vertices the loss reads; ``empty``: input vertices without data;
    ``note``: what decided them, for people."""

    loss: set = field(default_factory=set)
    empty: set = field(default_factory=set)
    note: str = ""


def _sample(spec, net):
    """A few sequences of the spec's task (a Dataset), or None where there is none to read."""
    from ..training.data import file_splits, task_splits
    task = spec.task
    if not task or spec.train.get("method") in HOPFIELD_RULES:
        return None
    if "generator" in task:
        from ..training.tasks import get_task
        names = {p.name for p in get_task(task["generator"]).params}
        small = {**task, **{k: SAMPLE for k in ("n_train", "n_eval") if k in names}}
        train, _, _ = task_splits(spec.with_values(task=small), net, spec.seed)
    else:
        train, _ = file_splits(spec, net)
        train = train.subset(slice(0, SAMPLE))
    return train


def unroll_marks(spec, net, T: int) -> Marks:
    """The ``Marks`` of ``net.unroll(T)`` for ``spec``'s training (module doc)."""
    from ..training.train import resolve_config
    outputs = net.output_nodes
    marks = Marks()
    try:
        data = _sample(spec, net)
    except Exception as exc:   # noqa: BLE001 - a picture without data marks, and the reason, beats no picture
        data, why = None, f" (its data could not be read: {exc})"
    else:
        why = "" if data is not None else " (no task data)"
    task = None
    if spec.task and "generator" in spec.task:
        from ..training.tasks import get_task
        task = get_task(spec.task["generator"])
    loss_on = resolve_config(spec, task).loss_on      # the task's default where the spec says nothing
    if loss_on == "all":
        marks.loss = {(n, t) for n in outputs for t in range(T)}
        marks.note = "the loss counts at every step (train.loss_on: all)"
    elif loss_on == "last":
        marks.loss = {(n, T - 1) for n in outputs} if T else set()
        marks.note = "the loss counts at the last step only (train.loss_on: last)"
    elif data is None:
        marks.note = f"train.loss_on: mask, but the steps it counts are not known{why}"
    else:
        for n in outputs:
            m = data.masks.get(n)
            counted = np.ones(data.steps, bool) if m is None else np.asarray(m).any(axis=0)
            marks.loss |= {(n, t) for t in range(min(T, len(counted))) if counted[t]}
        later = [t for n in outputs if n in data.masks
                 for t in np.flatnonzero(np.asarray(data.masks[n]).any(axis=0)) if t >= T]
        marks.note = "the loss counts where the task's mask says (train.loss_on: mask)"
        if later:
            span = f"{min(later)}" if min(later) == max(later) else f"{min(later)}..{max(later)}"
            marks.note += f"; it {'also ' if marks.loss else ''}counts at t = {span}, beyond these {T} steps"
    if data is not None:
        for n, x in data.inputs.items():
            empty = ~np.asarray(x).any(axis=(0, 2))      # (T_data,): zero in every sequence
            marks.empty |= {(n, t) for t in range(min(T, len(empty))) if empty[t]}
    return marks

