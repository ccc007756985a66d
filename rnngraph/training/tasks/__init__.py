"""Built-in data generators ("tasks"), each with its metrics.

A spec's ``task: {generator: NAME, ...params}`` names one of ``TASKS``::

    from rnngraph.training.tasks import get_task
    task = get_task("adding")
    params = task.validate({"T": 50})        # defaults filled, types and ranges checked
    task.sizes(params)                       # (input_size, output_size) -> (2, 1)
    task.default_train                       # {"loss": "mse", "loss_on": "mask", ...}
    train, evald = task.generate_splits(params, np.random.default_rng(0))
    task.metrics(outputs, evald)             # outputs: (N, T, output_size) -> {"accuracy": ..., "mse": ...}

Randomness
----------
``generate(params, rng, split)`` first draws the task's *world* from ``rng``
(what both splits must share: ``linear``'s true weights, ``patterns``'
memories; nothing for the other tasks), then one seed per split, and builds
``split`` from its seed.  So Generators in the same state give both splits the
same world and independent samples: either call ``generate`` twice with
identically seeded Generators, or call ``generate_splits`` once.  Passing
differently seeded Generators for train and eval gives ``linear`` and
``patterns`` different worlds in the two splits.

Each task's class docstring gives its source, exact construction, parameters
with defaults and metrics; ``docs/tasks.md`` has them in one table.

Each task's parameters, data sizes, training settings and metric names are
its signature, ``rnngraph.spec.tasks.SIGNATURES``, which the spec stage checks
specs against; the classes here make the data and compute the metrics.
"""

from __future__ import annotations

from .adding import Adding
from .anbn import Anbn
from ...spec.tasks import Param, TaskError, signature
from .base import Task, TaskData, TaskDataError
from .copy_memory import Copy
from .linear import Linear, normal_equation
from .marker_ahead import MarkerAhead
from .parity import Parity
from .patterns import Patterns
from .reber import EmbeddedReber
from .sine import Sine
from .temporal_xor import TemporalXor

TASKS: dict[str, Task] = {t.name: t for t in (
    TemporalXor(), Adding(), EmbeddedReber(), Copy(), Parity(), Sine(), Anbn(), Patterns(),
    Linear(), MarkerAhead())}
"""Every built-in task by name, in the order docs/tasks.md lists them."""


def get_task(name: str) -> Task:
    """The task called ``name``.

    Raises
    ------
    TaskError (a ValueError, never a KeyError)
        ``name`` is not a task; the message suggests the closest name, e.g.
        ``unknown task 'addng' (did you mean 'adding'?)``.
    """
    return TASKS[signature(name).name]


__all__ = ["TASKS", "get_task", "Task", "TaskData", "TaskError", "TaskDataError", "Param",
           "normal_equation", "TemporalXor", "Adding", "EmbeddedReber", "Copy", "Parity",
           "Sine", "Anbn", "Patterns", "Linear", "MarkerAhead"]
