"""The built-in tasks' signatures: each generator's parameters, the sizes of the
data it makes, the training settings it needs and the metrics it reports.

This is what a spec's ``task: {generator: NAME, ...}`` is checked against, so
the spec stage can validate a task without the generators (``rnngraph.training.tasks``,
which make the data and compute the metrics from these signatures).
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SpecError, suggest

# the metrics any task may list (``task.metrics``); rnngraph.training.metrics computes them
BUILTIN_METRICS = ("mse", "mae", "accuracy", "bit_error", "r2")
LETTER_COUNT = 26   # the letter bitmaps of rnngraph.training.tasks.letters
LETTER_SIZE = 35    # 5x7 units each


class TaskError(SpecError):
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


def _no_check(p: dict) -> None:
    pass


@dataclass(frozen=True)
class TaskSignature:
    """What a spec may say of a task and what it gets back.

    ``sizes(params)`` gives ``(input_size, output_size)`` of validated
    parameters; ``check(params)`` checks them together and fills in derived
    values in place (raising ``TaskError``); ``metric_names`` are the keys of
    what the generator's ``metrics`` returns.
    """

    name: str
    params: tuple[Param, ...]
    train: dict
    metric_names: tuple[str, ...]
    input_output: Callable[[dict], tuple[int, int]]
    check: Callable[[dict], None] = field(default=_no_check)

    @property
    def default_train(self) -> dict:
        """Training settings this task needs (loss, loss_on, ...); a spec may override them."""
        return copy.deepcopy(self.train)

    @property
    def defaults(self) -> dict:
        """Every parameter's default (``None`` where it is derived from others)."""
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict | None = None) -> dict:
        """Check ``params`` (as a user wrote them; a ``generator`` key is dropped)
        and fill in defaults: a new dict of every parameter, converted (ints as
        ``int``, numbers as ``float``), derived values filled in.  Validating the
        result again returns it unchanged.  Raises ``TaskError`` naming the
        parameter for an unknown key, a wrong type or a value out of range."""
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
                raise TaskError(f"unknown parameter '{key}' for task '{self.name}'{hint}", f"task.{key}")
        out = {p.name: p.check(params.get(p.name, p.default), self.name) for p in self.params}
        self.check(out)
        return out

    def sizes(self, params: dict | None = None) -> tuple[int, int]:
        """``(input_size, output_size)`` of the data made with ``params``."""
        return self.input_output(self.validate(params))


# --------------------------------------------------------------------------- the tasks' own checks

def _check_patterns(p: dict) -> None:
    if p["kind"] == "random":
        if p["size"] is None:
            p["size"] = 100
        return
    if p["count"] > LETTER_COUNT:
        raise TaskError(f"parameter 'count' of task 'patterns': kind 'letters' has "
                        f"{LETTER_COUNT} letters, got {p['count']}", "task.count")
    if p["size"] is None:
        p["size"] = LETTER_SIZE
    k = int(round(math.sqrt(p["size"] / LETTER_SIZE)))
    if k < 1 or LETTER_SIZE * k * k != p["size"]:
        raise TaskError(f"parameter 'size' of task 'patterns': kind 'letters' needs "
                        f"35 * k**2 units (5x7 glyphs scaled k times: 35, 140, 315, ...), "
                        f"got {p['size']}", "task.size")


def _check_sine(p: dict) -> None:
    if p["freq_min"] > p["freq_max"]:
        raise TaskError(f"parameter 'freq_min' of task 'sine': expected at most freq_max "
                        f"({p['freq_max']:g}), got {p['freq_min']:g}", "task.freq_min")


SIGNATURES: dict[str, TaskSignature] = {s.name: s for s in (
    TaskSignature(
        "temporal_xor",
        (Param("length", "int", 3000, "bits in each stream", low=3), *n_params(1, 1)),
        {"loss": "bce", "loss_on": "all", "batch_size": 1},
        ("third_bit_error", "other_bit_error", "rms_error"),
        lambda p: (1, 1)),
    TaskSignature(
        "adding",
        (Param("T", "int", 50, "minimal sequence length", low=10), *n_params(1000, 500)),
        {"loss": "mse", "loss_on": "mask", "batch_size": 50},
        ("accuracy", "mse"),
        lambda p: (2, 1)),
    TaskSignature(
        "embedded_reber",
        n_params(256, 256),
        {"loss": "bce", "loss_on": "mask", "batch_size": 16},
        ("accuracy", "penultimate_accuracy", "step_accuracy", "topk_accuracy"),
        lambda p: (7, 7)),
    TaskSignature(
        "copy",
        (Param("length", "int", 5, "symbols to copy", low=1),
         Param("delay", "int", 10, "blank steps before the go marker", low=0),
         Param("symbols", "int", 4, "alphabet size", low=2),
         *n_params(1000, 200)),
        {"loss": "cross_entropy", "loss_on": "mask", "batch_size": 50},
        ("accuracy", "sequence_accuracy"),
        lambda p: (p["symbols"] + 2, p["symbols"])),
    TaskSignature(
        "parity",
        (Param("length", "int", 8, "bits per sequence", low=1), *n_params(1000, 500)),
        {"loss": "bce", "loss_on": "last", "batch_size": 50},
        ("accuracy",),
        lambda p: (1, 1)),
    TaskSignature(
        "sine",
        (Param("length", "int", 50, "steps per sequence", low=2),
         Param("mode", "choice", "next_step", "what to learn", choices=("next_step", "one_to_many")),
         Param("freq_min", "float", 0.02, "lowest frequency, cycles per step", low=0.0, low_open=True, high=0.5),
         Param("freq_max", "float", 0.1, "highest frequency, cycles per step", low=0.0, low_open=True, high=0.5),
         *n_params(200, 100)),
        {"loss": "mse", "loss_on": "all", "batch_size": 20},
        ("mse",),
        lambda p: ((1 if p["mode"] == "next_step" else 2), 1),
        _check_sine),
    TaskSignature(
        "anbn",
        (Param("n_max", "int", 10, "largest n in training", low=1),
         Param("n_eval_max", "int", 20, "largest n in evaluation", low=1),
         *n_params(100, 20)),
        {"loss": "bce", "loss_on": "mask", "batch_size": 10},
        ("accuracy", "full_accuracy", "max_correct_n"),
        lambda p: (4, 4)),
    TaskSignature(
        "patterns",
        (Param("count", "int", 10, "number of memories", low=1),
         Param("size", "int", None, "units per memory (derived from kind when null)", low=1, optional=True),
         Param("kind", "choice", "random", "random +-1 or letter bitmaps", choices=("random", "letters")),
         Param("noise", "float", 0.1, "fraction of units flipped in a cue", low=0.0, high=1.0),
         Param("n_train", "int", 100, "number of cues (train split)", low=1),
         Param("n_eval", "int", 100, "number of cues (eval split)", low=1),
         Param("n_cues", "int", None, "number of cues in each split (overrides both)", low=1, optional=True)),
        {"method": "hebbian"},
        ("recall", "overlap", "bit_error"),
        lambda p: (p["size"], p["size"]),
        _check_patterns),
    TaskSignature(
        "linear",
        (Param("features", "int", 3, "number of inputs", low=1),
         Param("noise", "float", 0.1, "standard deviation of the noise", low=0.0),
         *n_params(100, 100)),
        {"loss": "mse", "loss_on": "all", "batch_size": 32},
        ("mse",),
        lambda p: (p["features"], 1)),
)}
"""Every built-in task's signature by name, in the order docs/tasks.md lists them."""


def signature(name) -> TaskSignature:
    """The signature of the task called ``name``; a ``TaskError`` (never a
    KeyError) suggesting the closest name otherwise."""
    if not isinstance(name, str):
        raise TaskError(f"a task name must be a string, got {name!r}", "task.generator")
    try:
        return SIGNATURES[name]
    except KeyError:
        hint = suggest(name, SIGNATURES) or f" (known: {', '.join(SIGNATURES)})"
        raise TaskError(f"unknown task '{name}'{hint}", "task.generator") from None
