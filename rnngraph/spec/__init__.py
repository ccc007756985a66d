"""The spec stage: a network and its experiment, read, validated and expanded once, up front.

``load_spec(path)`` and ``parse_spec(text, path)`` (``load.py``) turn YAML into a
``Spec`` (docs/spec-format.md, Part 2), in four steps, one module each:

- ``source.py``: YAML text to plain data, remembering where every key was written;
- ``validate.py``: the data to a ``Spec`` (``model.py``), every independent mistake
  collected and raised as ``SpecError``/``SpecErrors`` pointing at the YAML;
- ``blocks.py``: LSTM/GRU blocks to primitive nodes (``spec.expanded()``);
- ``primitive.py``: checks on the expanded network as a whole (delay-0 cycles,
  repeated edge names, parameter memory).

Nothing downstream re-validates: a ``Spec`` that exists is a network that can be
built.  This stage imports only the shared leaf modules (errors, activations, io,
arguments) and the task catalogue's signatures, never the graph, the engine or training.
"""

from .blocks import expand
from .load import apply_overrides, load_spec, parse_spec
from .model import (BLOCK_TYPES, COMBINES, CONSTRAINTS, DTYPES, FORMAT_VERSION, HOPFIELD_RULES, LARGEST, LOSSES,
                    OPTIMIZERS, ROLES, TRAIN_METHODS, WEIGHTS, Bias, Edge, Init, Node, Spec, param_shape)
from .values import array_shape, edge_name_problem, out_of_range, parse_initializer, parse_threshold

__all__ = ["BLOCK_TYPES", "COMBINES", "CONSTRAINTS", "DTYPES", "FORMAT_VERSION", "HOPFIELD_RULES", "LARGEST",
           "LOSSES", "OPTIMIZERS", "ROLES", "TRAIN_METHODS", "WEIGHTS", "Bias", "Edge", "Init", "Node", "Spec",
           "apply_overrides", "array_shape", "edge_name_problem", "expand", "load_spec", "out_of_range",
           "param_shape", "parse_initializer", "parse_spec", "parse_threshold"]
