"""The spec validators' shared ground: the errors found so far, and the checks every section uses.

Each section of a spec has its checks in a class of its own module
(``validate_network.NetworkChecks``, ``validate_training.TrainingChecks``);
``validate.Validator`` runs them all and reports every independent mistake at once.
"""

from __future__ import annotations

from ..errors import SpecError, SpecErrors
from .model import LARGEST
from .source import Source


class Checks:
    """Collects ``SpecError``s located in the YAML (``fail``) and raises them together."""


    def __init__(self, data, source: Source, path: str | None):
        self.data = data
        self.source = source
        self.path = path
        self.errors: list[SpecError] = []
        self.dtype = "float32"      # until the spec's own is read
        self.written: set = set()   # every node name written under nodes:, valid or not
        self.complete = True        # whether every node written is valid
        self.task_signature = None   # the generator's signature, once task: is checked

    def fits(self, values, where) -> bool:
        """Whether every number of ``values`` is finite in the spec's dtype; fails at
        ``where`` for the first that is not (1e300 overflows float32 to inf)."""
        largest = LARGEST[self.dtype]
        for v in values:
            if abs(v) > largest:
                self.fail(where, f"{v!r} is too large for {self.dtype} (largest magnitude {largest:.4g}); "
                                 f"use a smaller value or dtype: float64")
                return False
        return True

    def fail(self, where, what, key=False):
        self.errors.append(self.source.error(tuple(where), what, key=key))

    def raise_if_errors(self):
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SpecErrors(sorted(self.errors, key=lambda e: (e.line or 0, e.column or 0)))
