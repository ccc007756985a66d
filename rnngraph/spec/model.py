"""The spec's model: the format's tables and the dataclasses a validated spec is made of.

A ``Spec`` may hold blocks (``type: lstm``/``gru``); ``spec.expanded()`` is the
same network in primitive nodes only, made by the loader (``load.py``) with
``blocks.expand``.  Nothing here validates: ``validate.py`` builds these objects
only from YAML it has checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import yaml

from ..errors import SpecError
from .source import Source

FORMAT_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXPANDED_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)+$")

MAX_NODE_SIZE = 1_000_000
MAX_DELAY = 100_000
MAX_PARAM_BYTES = 4 * 1024 ** 3   # refuse networks whose parameters alone need more than 4 GiB

ROLES = ("input", "hidden", "output")
COMBINES = ("sum", "product")
WEIGHTS = ("dense", "diagonal", "scalar", "identity")
CONSTRAINTS = ("symmetric", "zero_diagonal")
DTYPES = ("float32", "float64")
LARGEST = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}   # np.finfo(dtype).max
BLOCK_TYPES = ("lstm", "gru")
LSTM_VARIANTS = ("standard", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr")
GRU_VARIANTS = ("reset_after", "reset_before")
TOP_KEYS = ("rnngraph", "name", "description", "seed", "dtype", "nodes", "edges",
            "task", "train", "expect", "dynamics")
NODE_KEYS = ("size", "role", "activation", "combine", "bias", "init", "type", "encoding")
ENCODINGS = ("one_hot",)     # how an input node reads integer data (data.py converts it)
BLOCK_KEYS = ("type", "size", "role", "variant", "peepholes", "forget_bias", "init")
EDGE_KEYS = ("from", "to", "delay", "weight", "init", "trainable", "constraint", "name", "dropout")
TRAIN_METHODS = ("bptt", "hebbian", "storkey", "pseudoinverse", "none")
LOSSES = ("mse", "bce", "cross_entropy")
LOSS_ON = ("all", "last", "mask")
OPTIMIZERS = {
    "sgd": ("lr", "momentum", "nesterov", "weight_decay"),
    "adam": ("lr", "betas", "eps", "weight_decay"),
    "rmsprop": ("lr", "alpha", "eps", "momentum", "weight_decay"),
    "adagrad": ("lr", "eps", "weight_decay"),
}
TRAIN_KEYS = ("method", "loss", "optimizer", "epochs", "batch_size", "truncate", "clip",
              "loss_on", "early_stopping", "log_every", "schedule")
DYNAMICS_KEYS = ("update", "sweeps", "until_stable")
HOPFIELD_RULES = ("hebbian", "storkey", "pseudoinverse")   # train.method values that store patterns
HOPFIELD_METRICS = {"energy_increases", "converged", "cycles", "mean_sweeps", "train_loss"}
# the output activations each loss is defined for (bce reads probabilities, cross_entropy a distribution)
LOSS_ACTIVATIONS = {"bce": ("sigmoid", "step"), "cross_entropy": ("softmax",)}
LOSS_NEEDS = {"bce": "output values in [0, 1] (a sigmoid output)",
              "cross_entropy": "outputs that are a probability distribution (a softmax output)"}
EXPECT_RE = re.compile(r"^\s*(<=|>=|<|>|==)\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$")




# --------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Init:
    """A node's value before t = 0 (docs/spec-format.md: node ``init``).

    ``kind`` is ``"value"`` (``value``: a number or a list of ``size`` numbers)
    or ``"input"`` (supplied per sample); ``trainable`` makes it the parameter
    ``"{node}.init"``.
    """

    kind: str = "value"
    value: float | tuple = 0.0
    trainable: bool = False

    def to_yaml(self):
        if self.kind == "input":
            return "input"
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"value": value, "trainable": True} if self.trainable else value


@dataclass(frozen=True)
class Bias:
    """A sum node's bias: the parameter ``"{node}.bias"`` starting at ``init``."""

    init: float = 0.0
    trainable: bool = True

    def to_yaml(self):
        if self.trainable:
            return True if self.init == 0.0 else self.init
        return {"init": self.init, "trainable": False}


@dataclass(frozen=True)
class Node:
    """One node: a group of ``size`` units (or a block, when ``type`` is set).

    ``bias`` is None for "the default", which ``resolve_biases`` decides
    from the incoming edges; ``False`` for no bias; else a ``Bias``.
    ``where`` is the key path of the node in the YAML, for error messages.
    """

    name: str
    size: int
    role: str = "hidden"
    activation: str = "identity"
    combine: str = "sum"
    bias: Bias | bool | None = None
    init: Init = Init()
    type: str | None = None
    options: tuple = ()          # block options as sorted (key, value) pairs
    block: str | None = None     # for primitives made by expansion: the block's name
    part: str | None = None      # and which part of it ("i", "f", "c", "h", ...)
    where: tuple = ()
    encoding: str | None = None  # input nodes: "one_hot" reads (N, T) integers from data

    def option(self, key, default=None):
        return dict(self.options).get(key, default)

    def to_yaml(self) -> dict:
        if self.type:
            out = {"type": self.type, "size": self.size}
            if self.role != "hidden":
                out["role"] = self.role
            out.update(dict(self.options))
            if self.init != Init():
                out["init"] = self.init.to_yaml()
            return out
        out = {"size": self.size}
        if self.role != "hidden":
            out["role"] = self.role
        if self.activation != "identity":
            out["activation"] = self.activation
        if self.combine != "sum":
            out["combine"] = self.combine
        if self.bias is not None:
            out["bias"] = self.bias.to_yaml() if isinstance(self.bias, Bias) else False
        if self.init != Init():
            out["init"] = self.init.to_yaml()
        if self.encoding:
            out["encoding"] = self.encoding
        return out


@dataclass(frozen=True)
class Edge:
    """One edge ``source -> target`` read at ``t - delay`` (docs/spec-format.md: edges).

    ``init`` is the initializer as written (a number, a string such as
    ``"uniform(-1,1)"``, a nested list, or None for the default);
    ``named`` records whether the user gave ``name`` (expansion and printing
    keep default names implicit).  ``dropout`` is the probability that training
    drops each unit of the value the edge reads (0: none).
    """

    source: str
    target: str
    delay: int = 0
    weight: str = "dense"
    init: object = None
    trainable: bool = True
    constraints: tuple = ()
    name: str = ""
    named: bool = False
    where: tuple = ()
    dropout: float = 0.0

    @property
    def has_param(self) -> bool:
        return self.weight != "identity"

    def to_yaml(self) -> dict:
        out = {"from": self.source, "to": self.target}
        if self.delay:
            out["delay"] = self.delay
        if self.weight != "dense":
            out["weight"] = self.weight
        if self.init is not None:
            out["init"] = self.init
        if not self.trainable and self.has_param:
            out["trainable"] = False
        if self.constraints:
            out["constraint"] = list(self.constraints) if len(self.constraints) > 1 else self.constraints[0]
        if self.named:
            out["name"] = self.name
        if self.dropout:
            out["dropout"] = self.dropout
        return out


@dataclass
class Spec:
    """A validated spec.  ``nodes`` keeps the YAML's order; ``edges`` too.

    ``task``, ``train``, ``expect`` and ``dynamics`` are plain dicts with
    defaults filled in where the format gives them.  ``source`` locates any key
    path in the YAML (``spec.error(path, what)``).
    """

    nodes: dict
    edges: list
    name: str = "network"
    description: str = ""
    seed: int = 0
    dtype: str = "float32"
    task: dict | None = None
    train: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    dynamics: dict = field(default_factory=dict)
    path: str | None = None
    source: Source = field(default_factory=Source, repr=False, compare=False)
    is_expanded: bool = False
    primitive: "Spec | None" = field(default=None, repr=False, compare=False)   # set by the loader

    def error(self, where: tuple, what: str) -> SpecError:
        return self.source.error(where, what)

    def expanded(self) -> "Spec":
        """This network with every block replaced by primitive nodes: the spec
        itself when it has no blocks, else the expansion the loader made."""
        if self.is_expanded or not any(n.type for n in self.nodes.values()):
            return self
        if self.primitive is None:
            raise ValueError("this Spec holds blocks but was not made by load_spec or parse_spec: "
                             "expand it with rnngraph.expand(spec)")
        return self.primitive

    @property
    def inputs(self) -> list:
        return [n for n in self.nodes.values() if n.role == "input"]

    @property
    def outputs(self) -> list:
        return [n for n in self.nodes.values() if n.role == "output"]

    def to_dict(self) -> dict:
        out = {"rnngraph": FORMAT_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["seed"] = self.seed
        out["dtype"] = self.dtype
        out["nodes"] = {n.name: n.to_yaml() for n in self.nodes.values()}
        out["edges"] = [e.to_yaml() for e in self.edges]
        for key in ("task", "train", "expect", "dynamics"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    def to_yaml(self) -> str:
        """YAML text that ``parse_spec`` reads back into the same network."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def with_values(self, **changes) -> "Spec":
        return replace(self, primitive=None, **changes)


def param_shape(edge, sizes) -> tuple:
    """Shape of an edge's parameter: dense (to, from), diagonal (n,), scalar ()."""
    if edge.weight == "dense":
        return (sizes[edge.target], sizes[edge.source])
    if edge.weight == "diagonal":
        return (sizes[edge.target],)
    return ()
