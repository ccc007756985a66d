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

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import suggest

try:  # the project's error types, when the rest of rnngraph is there
    from rnngraph.errors import ArgumentError as _ArgumentErrorBase
    from rnngraph.errors import DataError as _DataErrorBase
    from rnngraph.errors import SpecError as _SpecErrorBase
except ImportError:  # pragma: no cover - the subpackage used on its own
    _DataErrorBase = ValueError
    _ArgumentErrorBase = TypeError
    _SpecErrorBase = None

SPLITS = ("train", "eval")


# --------------------------------------------------------------------------- errors

if _SpecErrorBase is not None:

    class TaskError(_SpecErrorBase):
        """A task name or parameter is invalid (a ``SpecError``, so a ``ValueError``).

        ``what`` is the whole message and names the parameter; ``where`` is the
        key path in a spec (``task.T``, ``task.generator``) so a caller that
        knows the file and line can re-raise it as a located ``SpecError``.
        ``str(err)`` is ``what`` until a path or line is attached.
        """

        def __init__(self, what: str, where: str = ""):
            super().__init__(what, where=where)

        def format(self) -> str:
            if self.path is None and self.line is None:
                return self.what
            return super().format()

        def __reduce__(self):
            return (TaskError, (self.what, self.where))

else:  # pragma: no cover

    class TaskError(ValueError):
        """A task name or parameter is invalid."""

        def __init__(self, what: str, where: str = ""):
            self.what, self.where = what, where
            self.path = self.line = self.column = None
            super().__init__(what)


class TaskDataError(_DataErrorBase):
    """Arrays given to a task's metrics do not fit its data, or an argument
    of ``generate``/``metrics`` has a wrong value (a ``DataError``)."""


class TaskArgumentError(TaskDataError, _ArgumentErrorBase):
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


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One parameter of a task: its name, kind, range and default.

    ``kind`` is ``"int"``, ``"float"`` or ``"choice"``.  ``low``/``high`` are
    inclusive bounds (``low_open`` makes the lower one strict).  ``optional``
    allows ``None`` (the task then derives the value from others).
    """

    name: str
    kind: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    optional: bool = False

    def expected(self) -> str:
        """What a valid value looks like, in words."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = "an integer" if self.kind == "int" else "a number"
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                bounds.append(f"<= {self.high:g}")
            if bounds:
                text += " " + " and ".join(bounds)
        if self.optional:
            text += " (or null)"
        return text

    def check(self, value: Any, task: str) -> Any:
        """Return ``value`` converted to its kind, or raise ``TaskError``."""
        where = f"task.{self.name}"

        def fail(detail: str = ""):
            raise TaskError(f"parameter '{self.name}' of task '{task}': expected "
                            f"{self.expected()}, got {value!r}{detail}", where)

        if value is None:
            if self.optional:
                return None
            fail()
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                fail(suggest(value, self.choices) if isinstance(value, str) else "")
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            fail()
        if self.kind == "int":
            if isinstance(value, numbers.Integral):
                value = int(value)
            elif math.isfinite(value) and float(value).is_integer():
                value = int(value)  # 3000.0 from a YAML float is fine
            else:
                fail()
        else:
            value = float(value)
            if not math.isfinite(value):
                fail()
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            fail()
        if self.high is not None and value > self.high:
            fail()
        return value


def n_params(n_train: int, n_eval: int) -> tuple[Param, Param]:
    """The two parameters every task has, with its own defaults."""
    return (Param("n_train", "int", n_train, "number of training sequences", low=1),
            Param("n_eval", "int", n_eval, "number of evaluation sequences", low=1))


# --------------------------------------------------------------------------- task


class Task:
    """Base class of the built-in generators.

    Subclasses set ``name``, ``params`` and ``_default_train`` and implement
    ``_sizes``, ``_sample`` and ``_metrics`` (and ``_world`` and ``_check``
    when they need them).  Users call the public methods, which validate.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    _default_train: ClassVar[dict] = {}
    metric_names: ClassVar[tuple[str, ...]] = ()   # the keys of what ``metrics`` returns

    # ---- public API

    @property
    def default_train(self) -> dict:
        """Training settings this task needs (loss, loss_on, ...); a spec may override them."""
        return copy.deepcopy(self._default_train)

    @property
    def defaults(self) -> dict:
        """Every parameter's default (``None`` where it is derived from others)."""
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict | None = None) -> dict:
        """Check ``params`` and fill in defaults.

        Parameters
        ----------
        params : dict or None
            The task's parameters as a user wrote them.  A ``generator`` key
            (the spec's ``task.generator``) is accepted and dropped.

        Returns
        -------
        dict
            A new dict with every parameter, converted (ints as ``int``,
            numbers as ``float``) and derived values filled in.  Validating
            the result again returns it unchanged.

        Raises
        ------
        TaskError (a ValueError)
            An unknown key, a wrong type or a value out of range; the message
            names the parameter and says what was expected.
        """
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise TaskError(f"the parameters of task '{self.name}' must be a mapping, "
                            f"got {type(params).__name__}", "task")
        known = {p.name: p for p in self.params}
        for key in params:
            if key == "generator":
                continue
            if key not in known:
                hint = suggest(key, known) or f" (known: {', '.join(known)})"
                raise TaskError(f"unknown parameter '{key}' for task '{self.name}'{hint}",
                                f"task.{key}")
        out = {}
        for p in self.params:
            out[p.name] = p.check(params.get(p.name, p.default), self.name)
        self._check(out)
        return out

    def sizes(self, params: dict | None = None) -> tuple[int, int]:
        """``(input_size, output_size)`` of the data made with ``params``."""
        return self._sizes(self.validate(params))

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

    def _check(self, p: dict) -> None:
        """Checks that involve several parameters; may fill derived values in ``p``."""

    def _sizes(self, p: dict) -> tuple[int, int]:
        raise NotImplementedError

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
