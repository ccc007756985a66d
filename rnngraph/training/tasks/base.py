"""The pieces every task is made of: ``TaskData``, ``Param``, ``Task``.

A task is a data generator with a metric.  It declares its parameters (name,
type, range, default) once, as a tuple of ``Param``; ``Task.validate`` checks a
user's dict against them and fills the defaults, so every task rejects bad
input the same way and names the parameter at fault.

Randomness
----------
``Task.generate(params, rng, split)`` draws, in this order: the task's *world*
(what train and eval must share: the weights of ``linear``, the stored
memories of ``patterns``; nothing for most tasks), then two seeds, one per
split, and builds the requested split from its own seed.  So a Generator in
the same state gives the same world for both splits and independent samples
for each: call it twice with identically seeded Generators, or call
``generate_splits`` once.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ...errors import ArgumentError, DataError
from ...spec.tasks import Param, TaskSignature

SPLITS = ("train", "eval")


class TaskDataError(DataError):
    """Arrays given to a task's metrics do not fit its data, or an argument
    of ``generate``/``metrics`` has a wrong value (a ``DataError``)."""


class TaskArgumentError(TaskDataError, ArgumentError):
    """An argument of ``generate``/``metrics`` has the wrong type (a
    ``TaskDataError`` and a ``TypeError``)."""


# --------------------------------------------------------------------------- data


@dataclass(eq=False)
class TaskData:
    """One split of a task's data, batch-major.

    Attributes
    ----------
    inputs : ndarray, float64, (N, T, input_size)
    targets : ndarray, float64, (N, T, output_size)
    mask : ndarray, float64, (N, T), or None
        1.0 where the loss counts, 0.0 elsewhere (padding, steps with no
        target); None when every step counts.
    extra : dict
        What the task's metrics need besides the arrays (lengths, which steps
        are predictable, true weights, ...).  Always holds ``"task"`` (the
        task's name) and ``"split"``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of sequences, N."""
        return int(self.inputs.shape[0])

    @property
    def steps(self) -> int:
        """Number of time steps, T (padded length)."""
        return int(self.inputs.shape[1])


# --------------------------------------------------------------------------- task


class Task:
    """Base class of the built-in generators.

    Subclasses set ``signature`` (``rnngraph.spec.tasks``: the parameters, the
    data's sizes, the training settings and the metric names, which the spec
    stage checks a spec against) and implement ``_sample`` and ``_metrics``
    (and ``_world`` when they need it).  Users call the public methods, which
    validate.
    """

    signature: ClassVar[TaskSignature]   # parameters, sizes, training settings, metric names

    # ---- public API: the signature's

    @property
    def name(self) -> str:
        return self.signature.name

    @property
    def params(self) -> tuple[Param, ...]:
        return self.signature.params

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The keys of what ``metrics`` returns."""
        return self.signature.metric_names

    @property
    def default_train(self) -> dict:
        """Training settings this task needs (loss, loss_on, ...); a spec may override them."""
        return self.signature.default_train

    @property
    def defaults(self) -> dict:
        """Every parameter's default (``None`` where it is derived from others)."""
        return self.signature.defaults

    def validate(self, params: dict | None = None) -> dict:
        """``TaskSignature.validate``: ``params`` checked, converted and completed."""
        return self.signature.validate(params)

    def sizes(self, params: dict | None = None) -> tuple[int, int]:
        """``(input_size, output_size)`` of the data made with ``params``."""
        return self.signature.sizes(params)

    def generate(self, params: dict | None, rng, split: str = "train") -> TaskData:
        """Make one split of data.

        Parameters
        ----------
        params : dict or None
            Validated or not (validation is repeated, it is cheap).
        rng : numpy.random.Generator or int
            The source of randomness (an int is a seed).  The result depends
            only on ``params``, the Generator's state and ``split``.  A
            Generator in the same state gives both splits the same world
            (``linear``'s weights, ``patterns``' memories) and independent
            samples.
        split : "train" or "eval"
            Which sample to draw; ``n_train`` or ``n_eval`` sequences.

        Returns
        -------
        TaskData
            float64 arrays ``(N, T, size)``.
        """
        if split not in SPLITS:
            kind = TaskDataError if isinstance(split, str) else TaskArgumentError
            raise kind(f"split must be 'train' or 'eval', got {split!r}")
        p = self.validate(params)
        world, seeds = self._draw(p, rng)
        return self._finish(p, world, seeds, split)

    def generate_splits(self, params: dict | None, rng, world: Any = None) -> tuple[TaskData, TaskData]:
        """``(train, eval)``: the same as ``generate`` twice from one Generator state.

        ``world``, when given, is used instead of drawing one (what a data
        file supplies: ``patterns``' memories, as documented by the task)."""
        p = self.validate(params)
        drawn, seeds = self._draw(p, rng)
        world = drawn if world is None else world
        return self._finish(p, world, seeds, "train"), self._finish(p, world, seeds, "eval")

    def metrics(self, outputs, data: TaskData) -> dict[str, float]:
        """The task's metrics of a network's output on ``data``.

        Parameters
        ----------
        outputs : array-like, (N, T, output_size)
            The output node's values for ``data.inputs``.
        data : TaskData
            What ``generate`` returned.

        Returns
        -------
        dict[str, float]

        Raises
        ------
        TaskDataError (a DataError, so a ValueError)
            ``outputs`` does not have the shape of ``data.targets``, or holds
            something other than real numbers (then a TaskArgumentError, also
            a TypeError), or ``data`` is not a ``TaskData``.
        """
        if not isinstance(data, TaskData):
            raise TaskArgumentError(f"data: expected the TaskData that generate returned, "
                                    f"got {type(data).__name__}")
        try:
            raw = np.asarray(outputs)
        except (TypeError, ValueError) as exc:
            raise TaskArgumentError(f"outputs of task '{self.name}': not a numeric array ({exc})") from None
        if raw.dtype.kind not in "biuf":
            raise TaskArgumentError(f"outputs of task '{self.name}': expected real numbers, got dtype {raw.dtype}")
        outputs = raw.astype(np.float64)
        outputs = self._check_outputs(outputs, data)
        return {k: float(v) for k, v in self._metrics(outputs, data).items()}

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # ---- for subclasses

    def _world(self, p: dict, rng: np.random.Generator) -> Any:
        return None

    def _sample(self, p: dict, world: Any, rng: np.random.Generator, split: str,
                n: int) -> TaskData:
        raise NotImplementedError

    def _metrics(self, outputs: np.ndarray, data: TaskData) -> dict:
        raise NotImplementedError

    def _check_outputs(self, outputs: np.ndarray, data: TaskData) -> np.ndarray:
        if outputs.shape != data.targets.shape:
            raise TaskDataError(f"outputs of task '{self.name}' must have shape "
                                f"{data.targets.shape} (N, T, output_size), got {outputs.shape}")
        return outputs

    # ---- internals

    def _draw(self, p: dict, rng) -> tuple[Any, np.ndarray]:
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            if rng < 0:
                raise TaskDataError(f"rng: a seed must be an integer >= 0, got {rng}")
            rng = np.random.default_rng(int(rng))
        if not isinstance(rng, np.random.Generator):
            raise TaskArgumentError(f"rng must be a numpy.random.Generator or an int seed, "
                                    f"got {type(rng).__name__}")
        world = self._world(p, rng)
        seeds = rng.integers(0, 2**63 - 1, size=len(SPLITS))
        return world, seeds

    def _finish(self, p: dict, world: Any, seeds: np.ndarray, split: str) -> TaskData:
        sub = np.random.default_rng(int(seeds[SPLITS.index(split)]))
        n = p["n_train"] if split == "train" else p["n_eval"]
        data = self._sample(p, world, sub, split, n)
        data.inputs = np.asarray(data.inputs, dtype=np.float64)
        data.targets = np.asarray(data.targets, dtype=np.float64)
        if data.mask is not None:
            data.mask = np.asarray(data.mask, dtype=np.float64)
        data.extra["task"] = self.name
        data.extra["split"] = split
        return data


def one_hot(indices: np.ndarray, size: int) -> np.ndarray:
    """``indices`` (any shape) as one-hot float64 vectors, shape ``indices.shape + (size,)``."""
    return np.eye(size, dtype=np.float64)[np.asarray(indices)]
