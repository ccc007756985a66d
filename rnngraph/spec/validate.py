"""Validation: parsed YAML in, a ``Spec`` out, every independent mistake collected.

``Validator.spec()`` checks the spec as written (keys, types, ranges, names,
references, the task and the training settings: ``validate_network`` and
``validate_training``); the loader then checks the expanded network
(``parameter_names``, ``training_options``, ``primitive.check_primitive``).
"""

from __future__ import annotations

import os

from ..errors import a_or_an, one_of, suggest
from .model import DTYPES, FORMAT_VERSION, TOP_KEYS, Spec
from .source import format_where
from .values import _is_int
from .validate_network import NetworkChecks
from .validate_training import TrainingChecks


class Validator(NetworkChecks, TrainingChecks):
    """Turns parsed YAML into a ``Spec``, collecting every independent error."""

    # ---- top level
    def spec(self) -> Spec:
        data = self.data
        if data is None:
            raise self.source.error((), "the spec is empty; it needs at least `rnngraph: 1` and `nodes:`")
        if not isinstance(data, dict):
            raise self.source.error((), f"a spec is a mapping of keys (rnngraph, nodes, edges, ...), "
                                        f"not {a_or_an(type(data).__name__)} {type(data).__name__}")
        for key in data:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key {key!r}{suggest(key, TOP_KEYS)}", key=True)
        version = data.get("rnngraph")
        if "rnngraph" not in data:
            self.fail((), "missing `rnngraph: 1` (the format version) at the top")
        elif version != FORMAT_VERSION or isinstance(version, bool):
            self.fail(("rnngraph",), f"unsupported format version {version!r}; this rnngraph reads version 1")
        name = data.get("name")
        if name is None:
            name = os.path.splitext(os.path.basename(self.path))[0] if self.path else "network"
        elif not isinstance(name, str) or not name.strip():
            self.fail(("name",), "name must be a non-empty string")
            name = "network"
        description = data.get("description", "") or ""
        if not isinstance(description, str):
            self.fail(("description",), "description must be a string")
            description = ""
        seed = data.get("seed", 0)
        if not _is_int(seed) or seed < 0:
            self.fail(("seed",), f"seed must be a non-negative integer, got {seed!r}")
            seed = 0
        dtype = data.get("dtype", "float32")
        if dtype not in DTYPES:
            self.fail(("dtype",), f"dtype must be {one_of(DTYPES)}, got {dtype!r}{suggest(dtype, DTYPES)}")
            dtype = "float32"
        self.dtype = dtype

        train = self.train(data.get("train"))          # independent of the network: always checked
        expect = self.expect(data.get("expect"))
        dynamics = self.dynamics(data.get("dynamics"))
        # nodes, edges and the task are each checked even when another has mistakes, so that one
        # pass reports them all; references to a node that is written but invalid are not reported again
        before = len(self.errors)
        nodes = self.nodes(data.get("nodes"))
        self.complete = len(self.errors) == before
        edges = self.edges(data.get("edges", []), nodes)
        spec = Spec(nodes=nodes, edges=edges, name=name, description=description, seed=seed,
                    dtype=dtype, path=self.path, source=self.source, train=train, expect=expect,
                    dynamics=dynamics)
        spec.task = self.task(data.get("task"), spec)
        if spec.task is not None and self.complete:
            self.metrics_and_loss(spec)
        self.raise_if_errors()
        return spec


def where_of(path: tuple) -> str:
    return format_where(path)
