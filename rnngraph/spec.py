"""The spec: a network and its experiment, parsed and validated once, up front.

``parse_spec(text, path)`` and ``load_spec(path)`` turn YAML into a ``Spec``
(docs/spec-format.md, Part 2).  Every mistake a user can make is found here and raised
as ``SpecError`` pointing at the YAML that caused it (``SpecErrors`` when there
are several independent ones).  Nothing downstream re-validates: a ``Spec``
that exists is a network that can be built.

A ``Spec`` may still hold blocks (``type: lstm``/``gru``); ``spec.expanded()``
is the same network in primitive nodes only (``blocks.expand``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace

import yaml

from .activations import ACTIVATIONS
from .errors import DataError, SpecError, SpecErrors, a_or_an, one_of, suggest
from .io import open_regular
from .yamlsource import Source, format_where, load_yaml

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
NODE_KEYS = ("size", "role", "activation", "combine", "bias", "init", "type")
BLOCK_KEYS = ("type", "size", "role", "variant", "peepholes", "forget_bias", "init", "direction")
BLOCK_DIRECTIONS = ("forward", "backward")
EDGE_KEYS = ("from", "to", "delay", "weight", "init", "trainable", "constraint", "name")
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
              "loss_on", "early_stopping", "log_every")
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
        return out


@dataclass(frozen=True)
class Edge:
    """One edge ``source -> target`` read at ``t - delay`` (docs/spec-format.md: edges).

    ``init`` is the initializer as written (a number, a string such as
    ``"uniform(-1,1)"``, a nested list, or None for the default);
    ``named`` records whether the user gave ``name`` (expansion and printing
    keep default names implicit).
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
    _expanded: "Spec | None" = field(default=None, repr=False, compare=False)

    def error(self, where: tuple, what: str) -> SpecError:
        return self.source.error(where, what)

    def expanded(self) -> "Spec":
        """This network with every block replaced by primitive nodes (cached)."""
        if self.is_expanded:
            return self
        if self._expanded is None:
            from .blocks import expand
            self._expanded = expand(self)
        return self._expanded

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
        return replace(self, _expanded=None, **changes)


# --------------------------------------------------------------------------- entry points

def load_spec(path, overrides: dict | None = None) -> Spec:
    """Read and validate the spec file at ``path``.

    Raises
    ------
    SpecError
        If the file cannot be read or the spec is invalid; the message reads
        ``file:line:column: where: what``.
    ArgumentError
        ``path`` is not a str or os.PathLike, or ``overrides`` not a dict.
    """
    from .arguments import overrides as overrides_argument, path as path_argument
    path = path_argument("load_spec: path", path)
    overrides_argument("load_spec: overrides", overrides)
    try:
        with open_regular(path, "spec file") as fh:   # a FIFO or a device is refused, not read
            raw = fh.read(8 * 1024 * 1024 + 1)
    except DataError as exc:
        raise SpecError(str(exc).removeprefix(f"{path}: "), path=path) from None
    except FileNotFoundError:
        raise SpecError("no such file", path=path) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", path=path) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start:exc.start].decode("utf-8", "replace")) + 1
        raise SpecError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot start or continue a character",
                        path=path, line=raw.count(b"\n", 0, exc.start) + 1, column=column) from None
    return parse_spec(text, path=path, overrides=overrides)


def parse_spec(text: str, path: str | None = None, overrides: dict | None = None) -> Spec:
    """Parse and validate spec text.  ``path`` names it in messages and sets
    the default ``name`` (the file's stem) and the base of relative data paths.

    ``overrides`` maps dotted key paths to values applied before validation
    (the CLI's ``--set train.optimizer.lr=0.01``).

    Raises SpecError for an invalid spec, ArgumentError when ``text`` is not
    a str (or ``path``, ``overrides`` have the wrong type).
    """
    from .arguments import overrides as overrides_argument, path as path_argument
    if not isinstance(text, str):
        from .errors import ArgumentError
        hint = "; to read a file, use load_spec(path)" if not isinstance(text, bytes) else "; decode it first"
        raise ArgumentError(f"parse_spec: expected the spec's YAML text as a str, got {type(text).__name__}{hint}")
    if path is not None:
        path = path_argument("parse_spec: path", path)
    overrides_argument("parse_spec: overrides", overrides)
    data, source = load_yaml(text, path)
    if overrides:
        data = apply_overrides(data, overrides, source)
    return _Validator(data, source, path).spec()


def apply_overrides(data, overrides: dict, source: Source):
    """Set ``a.b.c = value`` in the parsed YAML, creating mappings on the way.

    A segment that is an integer indexes a list (``edges.0.delay``).  Mistakes
    in an overridden value are reported at its origin: ``overrides.sources[key]``
    when ``overrides`` is an ``Overrides`` (the CLI's ``--set``), else ``--set KEY``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return data
    sources = getattr(overrides, "sources", {})
    for dotted, value in overrides.items():
        origin = sources.get(dotted) or Source(path=f"--set {dotted}")
        parts = dotted.split(".")
        node = data
        keypath = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.lstrip("-").isdigit() or len(part) > 12 or not -len(node) <= int(part) < len(node):
                    raise SpecError(f"{part[:20]!r} is not an index of the list at "
                                    f"{'.'.join(parts[:i]) or 'the top'} (it has {len(node)} items)",
                                    path=origin.path)
                part = int(part) % len(node)
            elif not isinstance(node, dict):
                raise SpecError(f"{'.'.join(parts[:i])} is not a mapping", path=origin.path)
            keypath.append(part)
            if last:
                node[part] = value
                source.overrides[tuple(keypath)] = origin
            else:
                if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
    return data


def parse_threshold(text) -> tuple[str, float] | None:
    """``"< 0.2"`` -> ``("<", 0.2)``; None when it is not of that form or its
    number is not finite (``"> 1e999"`` is no threshold)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        op, number = "==", text
    else:
        m = EXPECT_RE.match(str(text))
        if not m:
            return None
        op, number = m.group(1), m.group(2)
    try:
        bound = float(number)
    except OverflowError:
        return None
    return (op, bound) if math.isfinite(bound) else None


# --------------------------------------------------------------------------- validation

def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about huge values."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


INIT_FORMS = re.compile(
    r"^\s*(?:(?P<zero>zeros)|(?P<xavier>xavier)|(?P<orth>orthogonal)|"
    r"uniform\(\s*(?P<ua>[^,()]+)\s*,\s*(?P<ub>[^,()]+)\s*\)|normal\(\s*(?P<ns>[^,()]+)\s*\))\s*$")


def parse_initializer(value) -> tuple:
    """An edge ``init`` as a tuple: ``("constant", x)``, ``("uniform", a, b)``,
    ``("normal", std)``, ``("xavier",)``, ``("orthogonal",)``, ``("array", nested)``
    or ``("default",)``.  Raises ValueError with a message for anything else."""
    if value is None:
        return ("default",)
    if _is_number(value):
        return ("constant", float(value))
    if isinstance(value, list):
        return ("array", value)
    if isinstance(value, str):
        m = INIT_FORMS.match(value)
        if m:
            if m.group("zero"):
                return ("constant", 0.0)
            if m.group("xavier"):
                return ("xavier",)
            if m.group("orth"):
                return ("orthogonal",)
            try:
                if m.group("ua") is not None:
                    a, b = float(m.group("ua")), float(m.group("ub"))
                    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
                        raise ValueError
                    return ("uniform", a, b)
                std = float(m.group("ns"))
                if not math.isfinite(std) or std < 0:
                    raise ValueError
                return ("normal", std)
            except ValueError:
                pass
    raise ValueError(f"init must be a number, uniform(a,b) with a <= b, normal(std) with std >= 0, "
                     f"xavier, orthogonal, zeros or a list of numbers; got {value!r}")


def out_of_range(spec: "Spec", dtype: str) -> list:
    """The numbers of ``spec`` (node inits, biases, edge inits; blocks expanded) that
    do not fit in ``dtype``, as (where, value) pairs: for building a spec in a
    narrower dtype than the one it was checked in (``build(spec, dtype="float32")``)."""
    largest, bad = LARGEST[dtype], []
    primitive = spec.expanded()
    for node in primitive.nodes.values():
        values = [("init", v) for v in (node.init.value if isinstance(node.init.value, tuple) else (node.init.value,))]
        if isinstance(node.bias, Bias):
            values.append(("bias.init", node.bias.init))
        bad += [(f"nodes.{node.name}.{key}", v) for key, v in values if abs(v) > largest]
    for edge in primitive.edges:
        if edge.init is not None:
            kind = parse_initializer(edge.init)
            numbers = _flat_numbers(edge.init) if kind[0] == "array" else kind[1:]
            bad += [(f"edge {edge.name or edge.source + '->' + edge.target}.init", v)
                    for v in numbers if abs(v) > largest]
    return bad


def _flat_numbers(value) -> list:
    """The numbers of a nested list, in order."""
    if isinstance(value, list):
        return [x for v in value for x in _flat_numbers(v)]
    return [value]


MAX_EDGE_NAME = 200


def edge_name_problem(name: str) -> str | None:
    """What makes ``name`` unfit as an edge's name (a member of params.npz), or None.

    A name is printable text of at most ``MAX_EDGE_NAME`` characters, without
    surrounding spaces or backslashes; ``/`` separates parts (as block expansion
    does: ``in/i``), none of them empty, ``.`` or ``..``."""
    if len(name) > MAX_EDGE_NAME:
        return f"is longer than {MAX_EDGE_NAME} characters"
    if not name.isprintable():
        return "holds a control character (such as NUL, a tab or a newline)"
    if name != name.strip():
        return "starts or ends with a space"
    if "\\" in name:
        return "holds a backslash"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' part between slashes"
    return None


def _array_shape(value):
    """Shape of a nested list of numbers, or None when ragged / non-numeric."""
    if _is_number(value):
        return ()
    if isinstance(value, list) and value:
        shapes = {_array_shape(v) for v in value}
        if len(shapes) == 1 and None not in shapes:
            return (len(value),) + shapes.pop()
    return None


class _Validator:
    """Turns parsed YAML into a ``Spec``, collecting every independent error."""

    def __init__(self, data, source: Source, path: str | None):
        self.data = data
        self.source = source
        self.path = path
        self.errors: list[SpecError] = []
        self.dtype = "float32"      # until the spec's own is read
        self.written: set = set()   # every node name written under nodes:, valid or not
        self.complete = True        # whether every node written is valid
        self.task_object = None     # the generator, once task: is checked

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
        self.parameter_names(spec.expanded())
        self.raise_if_errors()
        # checks on the primitive network: sizes after expansion, cycles, memory
        from .graph import check_network
        check_network(spec.expanded())
        return spec

    # ---- nodes
    def nodes(self, raw) -> dict:
        if raw is None:
            self.fail(("nodes",) if "nodes" in self.data else (), "missing `nodes:` (a mapping of node names to nodes)")
            return {}
        if not isinstance(raw, dict) or not raw:
            self.fail(("nodes",), "nodes must be a non-empty mapping such as `{x: {role: input, size: 1}}`")
            return {}
        nodes = {}
        self.written = {str(name) for name in raw}
        for name, body in raw.items():
            node = self.node(str(name), body, ("nodes", name))
            if node is not None:
                nodes[node.name] = node
        # a block's expansion makes "B/i" etc.; a user node with such a name would collide
        for node in list(nodes.values()):
            if node.type:
                for other in nodes:
                    if other.startswith(node.name + "/"):
                        self.fail(("nodes", other), f"node name {other!r} collides with the parts of block "
                                                    f"{node.name!r}", key=True)
        return nodes

    def node(self, name: str, body, where) -> Node | None:
        if not (NAME_RE.match(name) or EXPANDED_NAME_RE.match(name)):
            self.fail(where, f"invalid node name {name!r}: use letters, digits and _, not starting with a digit",
                      key=True)
            return None
        if not isinstance(body, dict):
            self.fail(where, f"node {name!r} must be a mapping such as `{{size: 4, activation: tanh}}`, "
                             f"got {body!r}")
            return None
        if "type" in body:
            return self.block(name, body, where)
        ok = True
        for key in body:
            if key not in NODE_KEYS:
                hint = suggest(key, NODE_KEYS)
                if not hint and key in BLOCK_KEYS:
                    hint = " (only blocks, with `type: lstm` or `gru`, take it)"
                self.fail(where + (key,), f"unknown node key {key!r}{hint}", key=True)
                ok = False
        size = self.size(body, where)
        role = body.get("role", "hidden")
        if role not in ROLES:
            self.fail(where + ("role",), f"role must be {one_of(ROLES)}, got {role!r}{suggest(role, ROLES)}")
            ok = False
        activation = body.get("activation", "identity")
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            self.fail(where + ("activation",), f"unknown activation {activation!r}{suggest(activation, ACTIVATIONS)}; "
                                               f"known: {', '.join(ACTIVATIONS)}")
            ok = False
        combine = body.get("combine", "sum")
        if combine not in COMBINES:
            self.fail(where + ("combine",), f"combine must be {one_of(COMBINES)}, got {combine!r}")
            ok = False
        if role == "input":
            for key in ("activation", "combine", "bias"):
                if key in body and not (key == "activation" and activation == "identity") \
                        and not (key == "bias" and body[key] is False):
                    self.fail(where + (key,), f"input nodes take their values from data: remove {key!r}")
                    ok = False
        bias = self.bias(body, where, combine)
        init = self.init(body.get("init", 0.0), where + ("init",), size) if "init" in body else Init()
        if size is None or bias == "error" or init is None or not ok:
            return None
        return Node(name=name, size=size, role=role, activation=activation, combine=combine,
                    bias=bias, init=init, where=where)

    def size(self, body, where):
        if "size" not in body:
            self.fail(where, "missing `size` (the number of units, an integer >= 1)")
            return None
        size = body["size"]
        if not _is_int(size) or size < 1:
            self.fail(where + ("size",), f"size must be an integer >= 1, got {size!r}")
            return None
        if size > MAX_NODE_SIZE:
            self.fail(where + ("size",), f"size {size} is larger than the {MAX_NODE_SIZE:,} units rnngraph allows "
                                         f"for one node")
            return None
        return size

    def bias(self, body, where, combine):
        if "bias" not in body:
            return None
        raw = body["bias"]
        w = where + ("bias",)
        if raw is False:
            return False
        if combine == "product":
            self.fail(w, "product nodes have no bias (a bias is added after a sum)")
            return "error"
        if raw is True:
            return Bias()
        if _is_number(raw):
            return Bias(init=float(raw)) if self.fits([raw], w) else "error"
        if isinstance(raw, dict):
            extra = [k for k in raw if k not in ("init", "trainable")]
            for k in extra:
                self.fail(w + (k,), f"unknown bias key {k!r}; a bias takes init and trainable", key=True)
            init = raw.get("init", 0.0)
            trainable = raw.get("trainable", True)
            if not _is_number(init):
                self.fail(w + ("init",), f"bias init must be a number, got {init!r}")
                return "error"
            if not isinstance(trainable, bool):
                self.fail(w + ("trainable",), f"trainable must be true or false, got {trainable!r}")
                return "error"
            if not self.fits([init], w + ("init",)):
                return "error"
            return "error" if extra else Bias(init=float(init), trainable=trainable)
        self.fail(w, f"bias must be true, false, a number or {{init: ..., trainable: ...}}, got {raw!r}")
        return "error"

    def init(self, raw, w, size) -> Init | None:
        if raw == "input":
            return Init(kind="input", value=0.0)
        trainable = False
        if isinstance(raw, dict):
            extra = [k for k in raw if k not in ("value", "trainable")]
            for k in extra:
                self.fail(w + (k,), f"unknown init key {k!r}; a node init takes value and trainable", key=True)
            if "value" not in raw:
                self.fail(w, "init mapping needs `value:`")
                return None
            trainable = raw.get("trainable", False)
            if not isinstance(trainable, bool):
                self.fail(w + ("trainable",), f"trainable must be true or false, got {trainable!r}")
                return None
            if extra:
                return None
            raw, w = raw["value"], w + ("value",)
        if _is_number(raw):
            return Init(value=float(raw), trainable=trainable) if self.fits([raw], w) else None
        if isinstance(raw, list):
            if not all(_is_number(v) for v in raw):
                self.fail(w, "init list must hold numbers only")
                return None
            if size is not None and len(raw) != size:
                self.fail(w, f"init list has {len(raw)} numbers but the node has size {size}")
                return None
            if not self.fits(raw, w):
                return None
            return Init(value=tuple(float(v) for v in raw), trainable=trainable)
        self.fail(w, f"init must be a number, a list of size numbers, `input` or {{value: ..., trainable: true}}, "
                     f"got {raw!r}")
        return None

    def block(self, name, body, where) -> Node | None:
        kind = body["type"]
        if kind not in BLOCK_TYPES:
            self.fail(where + ("type",), f"unknown block type {kind!r}{suggest(kind, BLOCK_TYPES)}; "
                                         f"blocks are {one_of(BLOCK_TYPES)}")
            return None
        ok = True
        for key in body:
            if key not in BLOCK_KEYS or (kind == "gru" and key in ("peepholes", "forget_bias")):
                allowed = [k for k in BLOCK_KEYS if kind == "lstm" or k not in ("peepholes", "forget_bias")]
                self.fail(where + (key,), f"unknown key {key!r} for {a_or_an(kind)} {kind} block"
                                          f"{suggest(key, allowed)}; it takes {', '.join(allowed)}", key=True)
                ok = False
        if not NAME_RE.match(name):
            self.fail(where, f"block name {name!r} must not contain '/'", key=True)
            ok = False
        size = self.size(body, where)
        role = body.get("role", "hidden")
        if role not in ("hidden", "output"):
            self.fail(where + ("role",), f"a block's role is 'hidden' or 'output' (its h is the output), got {role!r}")
            ok = False
        variants = LSTM_VARIANTS if kind == "lstm" else GRU_VARIANTS
        variant = body.get("variant", variants[0])
        if variant not in variants:
            self.fail(where + ("variant",), f"unknown {kind} variant {variant!r}{suggest(variant, variants)}; "
                                            f"known: {', '.join(variants)}")
            ok = False
        options = {"variant": variant}
        direction = body.get("direction", "forward")
        if direction not in BLOCK_DIRECTIONS:
            self.fail(where + ("direction",), f"direction must be {one_of(BLOCK_DIRECTIONS)}, got {direction!r}"
                                              f"{suggest(direction, BLOCK_DIRECTIONS)}")
            ok = False
        elif direction == "backward":    # forward, the default, is left implicit when printed
            options["direction"] = direction
        if kind == "lstm":
            peep = body.get("peepholes", False)
            if not isinstance(peep, bool):
                self.fail(where + ("peepholes",), f"peepholes must be true or false, got {peep!r}")
                ok = False
            fb = body.get("forget_bias", 1.0)
            if not _is_number(fb):
                self.fail(where + ("forget_bias",), f"forget_bias must be a number, got {fb!r}")
                ok = False
            elif not self.fits([fb], where + ("forget_bias",)):
                ok = False
            elif variant in ("nfg", "cifg") and "forget_bias" in body:
                self.fail(where + ("forget_bias",), f"variant {variant!r} has no forget-gate bias")
                ok = False
            if variant == "nfg" and peep is True:
                pass  # peepholes feed i and o only: nothing to refuse
            options.update(peepholes=peep, forget_bias=float(fb) if _is_number(fb) else 1.0)
        init = self.init(body["init"], where + ("init",), size) if "init" in body else Init()
        if not ok or size is None or init is None:
            return None
        return Node(name=name, size=size, role=role, type=kind, options=tuple(sorted(options.items())),
                    init=init, where=where)

    def parameter_names(self, primitive: Spec) -> None:
        """Every parameter of the built network has its own name: an edge's ``name``
        may not be one rnngraph gives to another parameter (``h.bias``, ``h.init``, or
        what a block's expansion makes, such as ``B/i.bias``), or two parameters
        would share one array."""
        taken = {}
        for node in primitive.nodes.values():
            for kind in ("bias", "init"):
                taken[f"{node.name}.{kind}"] = f"the {kind} of node {node.name!r}"
        for edge in sorted(primitive.edges, key=lambda e: e.named):   # a clash is the named edge's
            if edge.name in taken and edge.named:   # two unnamed ones: check_network says which edge repeats
                self.fail(edge.where + ("name",),
                          f"edge name {edge.name!r} is already {taken[edge.name]}, a parameter rnngraph makes; "
                          f"choose another name")
            else:
                taken[edge.name] = f"the name of edge {edge.source} -> {edge.target}"

    # ---- edges
    def edges(self, raw, nodes) -> list:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.fail(("edges",), "edges must be a list such as `- {from: x, to: h}`")
            return []
        edges: list[Edge] = []
        seen: dict[str, Edge] = {}
        for i, body in enumerate(raw):
            for edge in self.edge(body, ("edges", i), nodes):
                if edge.name in seen:
                    first = seen[edge.name]
                    line, _ = self.source.position(first.where)
                    at = f" (line {line})" if line else ""
                    if edge.named:
                        what = f"edge name {edge.name!r} is already used by edges[{first.where[1]}]{at}"
                    else:
                        what = (f"a second edge {edge.source} -> {edge.target}: edges[{first.where[1]}]{at} "
                                f"already joins them; give one of them a `name:` to keep both")
                    self.fail(edge.where, what)
                    continue
                seen[edge.name] = edge
                edges.append(edge)
        return edges

    def edge(self, body, where, nodes) -> list[Edge]:
        if not isinstance(body, dict):
            self.fail(where, f"an edge is a mapping such as `{{from: x, to: h}}`, got {body!r}")
            return []
        ok = True
        for key in body:
            if key not in EDGE_KEYS:
                self.fail(where + (key,), f"unknown edge key {key!r}{suggest(key, EDGE_KEYS)}", key=True)
                ok = False
        ends = {}
        for key in ("from", "to"):
            if key not in body:
                self.fail(where, f"edge is missing `{key}:`")
                ok = False
                continue
            raw = body[key]
            names = raw if isinstance(raw, list) else [raw]
            if not names:
                self.fail(where + (key,), f"`{key}` list is empty")
                ok = False
            for j, n in enumerate(names):
                w = where + (key, j) if isinstance(raw, list) else where + (key,)
                if isinstance(n, bool):
                    self.fail(w, f"`{key}` must name a node, got {n!r}: YAML reads on/off/yes/no/true/false "
                                 f"as booleans; quote the name (for example '{'off' if n is False else 'on'}')")
                    ok = False
                elif not isinstance(n, str):
                    self.fail(w, f"`{key}` must name a node, got {n!r}")
                    ok = False
                elif n not in nodes:
                    if n not in self.written:    # a written but invalid node has its own error
                        self.fail(w, f"unknown node {n!r}{suggest(n, self.written)}")
                    ok = False
            ends[key] = names
        delay = body.get("delay", 0)
        if not _is_int(delay):
            self.fail(where + ("delay",), f"delay must be an integer (negative: read a later step), got {delay!r}")
            ok = False
        elif abs(delay) > MAX_DELAY:
            self.fail(where + ("delay",), f"delay {delay} is larger than {MAX_DELAY:,} in magnitude")
            ok = False
        weight = body.get("weight", "dense")
        if weight not in WEIGHTS:
            self.fail(where + ("weight",), f"weight must be {one_of(WEIGHTS)}, got {weight!r}{suggest(weight, WEIGHTS)}")
            ok = False
        init = body.get("init")
        if init is not None:
            if weight == "identity":
                self.fail(where + ("init",), "identity edges have no parameter to initialise; remove init "
                                             "(or use weight: scalar or diagonal)")
                ok = False
            else:
                try:
                    kind = parse_initializer(init)
                except ValueError as exc:
                    self.fail(where + ("init",), str(exc))
                    ok = False
                else:
                    if kind[0] == "array" and _array_shape(init) is None:
                        self.fail(where + ("init",), "init list must be a rectangular list of numbers")
                        ok = False
                    elif not self.fits(_flat_numbers(init) if kind[0] == "array" else kind[1:], where + ("init",)):
                        ok = False
        trainable = body.get("trainable", weight != "identity")
        if not isinstance(trainable, bool):
            self.fail(where + ("trainable",), f"trainable must be true or false, got {trainable!r}")
            ok = False
        elif trainable and weight == "identity" and "trainable" in body:
            self.fail(where + ("trainable",), "identity edges have no parameter, so they cannot be trainable; "
                                              "use weight: scalar or diagonal for a trainable copy")
            ok = False
        raw_c = body.get("constraint", [])
        constraints = raw_c if isinstance(raw_c, list) else [raw_c]
        for c in constraints:
            if c not in CONSTRAINTS:
                self.fail(where + ("constraint",), f"unknown constraint {c!r}{suggest(c, CONSTRAINTS)}; "
                                                   f"known: {', '.join(CONSTRAINTS)}")
                ok = False
        if constraints and weight != "dense":
            self.fail(where + ("constraint",), "constraints apply to dense (square) edges only")
            ok = False
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            self.fail(where + ("name",), f"name must be a non-empty string, got {name!r}")
            ok = False
        elif name is not None and edge_name_problem(name):
            self.fail(where + ("name",), f"edge name {name!r} {edge_name_problem(name)}; a name is printable "
                                         f"text whose '/'-separated parts are not empty, '.' or '..' (it "
                                         f"becomes a member path in params.npz)")
            ok = False
        if not ok:
            return []
        pairs = [(s, t) for s in ends["from"] for t in ends["to"]]
        if name is not None and len(pairs) > 1:
            self.fail(where + ("name",), f"this edge makes {len(pairs)} edges (from/to lists), which cannot "
                                         f"share one name")
            return []
        out = []
        for s, t in pairs:
            src, dst = nodes[s], nodes[t]
            if dst.role == "input":
                self.fail(where + ("to",), f"{t!r} is an input node: inputs take their values from data and "
                                           f"have no incoming edges")
                continue
            if weight in ("diagonal", "scalar", "identity") and src.size != dst.size:
                self.fail(where + ("weight",), f"{a_or_an(weight)} {weight} edge needs equal sizes, but {s!r} "
                                               f"has size {src.size} and {t!r} has size {dst.size} (use dense)")
                continue
            if constraints and src.size != dst.size:
                self.fail(where + ("constraint",), f"constraint {', '.join(constraints)} needs a square weight, "
                                                   f"but {s!r} has size {src.size} and {t!r} has size {dst.size}")
                continue
            out.append(Edge(source=s, target=t, delay=delay, weight=weight, init=init, trainable=trainable,
                            constraints=tuple(constraints), name=name or f"{s}->{t}",
                            named=name is not None, where=where))
        return out

    # ---- experiment sections
    def section(self, raw, key) -> dict | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.fail((key,), f"{key} must be a mapping")
            return None
        return raw

    def train(self, raw) -> dict:
        raw = self.section(raw, "train") or {}
        out = dict(raw)
        for key in raw:
            if key not in TRAIN_KEYS:
                self.fail(("train", key), f"unknown train key {key!r}{suggest(key, TRAIN_KEYS)}", key=True)
        method = raw.get("method", "bptt")
        if method not in TRAIN_METHODS:
            self.fail(("train", "method"), f"method must be {one_of(TRAIN_METHODS)}, got {method!r}"
                                           f"{suggest(method, TRAIN_METHODS)}")
        loss = raw.get("loss", "mse")
        if loss not in LOSSES:
            self.fail(("train", "loss"), f"loss must be {one_of(LOSSES)}, got {loss!r}{suggest(loss, LOSSES)}")
        loss_on = raw.get("loss_on", "all")
        if loss_on not in LOSS_ON:
            self.fail(("train", "loss_on"), f"loss_on must be {one_of(LOSS_ON)}, got {loss_on!r}")
        opt = raw.get("optimizer", {"name": "adam"})
        if isinstance(opt, str):
            opt = {"name": opt}
        if not isinstance(opt, dict):
            self.fail(("train", "optimizer"), "optimizer must be a mapping such as {name: adam, lr: 0.01}")
            opt = {"name": "adam"}
        opt = dict(opt)
        oname = opt.get("name", "adam")
        if not isinstance(oname, str) or oname not in OPTIMIZERS:
            self.fail(("train", "optimizer", "name"), f"unknown optimizer {oname!r}{suggest(oname, OPTIMIZERS)}; "
                                                      f"known: {', '.join(OPTIMIZERS)}")
        else:
            for key, value in opt.items():
                w = ("train", "optimizer", key)
                if key == "name":
                    continue
                if key not in OPTIMIZERS[oname]:
                    self.fail(w, f"{oname} takes {', '.join(OPTIMIZERS[oname])}, not {key!r}"
                                 f"{suggest(key, OPTIMIZERS[oname])}", key=True)
                elif key == "nesterov":
                    if not isinstance(value, bool):
                        self.fail(w, "nesterov must be true or false")
                elif key == "betas":
                    if not (isinstance(value, list) and len(value) == 2 and all(_is_number(b) and 0 <= b < 1 for b in value)):
                        self.fail(w, f"betas must be two numbers in [0, 1), got {value!r}")
                elif not _is_number(value) or value < 0 or (key == "lr" and value == 0):
                    self.fail(w, f"{key} must be a {'positive' if key == 'lr' else 'non-negative'} number, got {value!r}")
        if "optimizer" in raw:
            opt["name"] = oname
            out["optimizer"] = opt
        for key, low in (("epochs", 0), ("batch_size", 1), ("truncate", 0), ("log_every", 1)):
            if key in raw and (not _is_int(raw[key]) or raw[key] < low):
                self.fail(("train", key), f"{key} must be an integer >= {low}, got {raw[key]!r}")
        if "clip" in raw and raw["clip"] is not None and (not _is_number(raw["clip"]) or raw["clip"] <= 0):
            self.fail(("train", "clip"), f"clip must be a positive number (the largest gradient norm), got {raw['clip']!r}")
        es = raw.get("early_stopping")
        if es is not None:
            if not isinstance(es, dict) or not isinstance(es.get("metric"), str):
                self.fail(("train", "early_stopping"), "early_stopping must be {metric: NAME, threshold: \"< 0.1\"} "
                                                       "or {metric: NAME, patience: N}")
            else:
                for k in es:
                    if k not in ("metric", "threshold", "patience", "every"):
                        self.fail(("train", "early_stopping", k), f"unknown early_stopping key {k!r}", key=True)
                if "threshold" in es and parse_threshold(es["threshold"]) is None:
                    self.fail(("train", "early_stopping", "threshold"),
                              f"threshold must read like \"< 0.1\" or \">= 0.95\", got {es['threshold']!r}")
                for k in ("patience", "every"):
                    if k in es and (not _is_int(es[k]) or es[k] < 1):
                        self.fail(("train", "early_stopping", k), f"{k} must be an integer >= 1")
        return out

    def task(self, raw, spec: Spec) -> dict | None:
        raw = self.section(raw, "task")
        if raw is None:
            return None
        has_gen, has_file = "generator" in raw, "file" in raw
        if has_gen == has_file:
            self.fail(("task",), "task needs exactly one of `generator: NAME` or `file: data.npz`")
            return dict(raw)
        if has_file:
            # a storage rule reads patterns from the file and makes n_eval cues from them, as the
            # patterns generator does (and reports its metrics)
            stores = spec.train.get("method") in HOPFIELD_RULES
            known = ("file", "n_eval") if stores else ("file", "eval_file")
            for key in raw:
                if stores and key == "eval_file":
                    self.fail(("task", key), "a Hopfield network reads only `file` (the patterns to store); its "
                                             "cues are made from them, `n_eval` of them (drop eval_file)", key=True)
                elif key == "n_eval" and not stores:
                    self.fail(("task", key), "unknown key 'n_eval' for a data-file task (file, eval_file): n_eval "
                                             "(cues made from the file's patterns) is for a storage rule, "
                                             "train.method: hebbian, storkey or pseudoinverse", key=True)
                elif key not in known:
                    kind = "a data-file task with a storage rule" if stores else "a data-file task"
                    self.fail(("task", key), f"unknown key {key!r} for {kind} ({', '.join(known)})", key=True)
            if "n_eval" in raw and (not _is_int(raw["n_eval"]) or raw["n_eval"] < 1):
                self.fail(("task", "n_eval"), f"n_eval must be an integer >= 1, got {_short(raw['n_eval'])}")
            if stores:
                from .tasks import get_task
                self.task_object = get_task("patterns")
            for key in ("file", "eval_file"):   # whether the file exists and fits is for check and run
                if key in raw and (not isinstance(raw[key], str) or not raw[key] or "\0" in raw[key]):
                    self.fail(("task", key), f"{key} must be a path to an .npz file")
            return dict(raw)
        name = raw["generator"]
        params = {k: v for k, v in raw.items() if k not in ("generator", "input", "output")}
        for key in ("input", "output"):
            if key in raw and not isinstance(raw[key], str):
                self.fail(("task", key), f"{key} must name a node, got {raw[key]!r}")
                return dict(raw)
            if key in raw and raw[key] not in spec.nodes:
                if raw[key] not in self.written:
                    self.fail(("task", key), f"unknown node {raw[key]!r}{suggest(raw[key], self.written)}")
            elif key in raw and spec.nodes[raw[key]].role != key:
                self.fail(("task", key), f"node {raw[key]!r} has role {spec.nodes[raw[key]].role!r}, but the task "
                                         f"feeds its {key}s to it: add `role: {key}` to node {raw[key]!r}")
        try:
            from .tasks import get_task
        except ImportError:  # the generators are not installed: nothing more to check here
            return dict(raw)
        try:
            task = get_task(name)
            params = task.validate(params)
        except ValueError as exc:
            where = getattr(exc, "where", "") or "task"
            path = tuple(where.split(".")) if where.split(".")[-1] in raw else ("task",)
            self.fail(path, getattr(exc, "what", str(exc)))
            return dict(raw)
        self.task_object = task
        n_in, n_out = task.sizes(params)
        for key, role, size in (("input", "input", n_in), ("output", "output", n_out)):
            candidates = [n for n in spec.nodes.values() if n.role == role]
            node = spec.nodes.get(raw.get(key)) if key in raw else (candidates[0] if len(candidates) == 1 else None)
            if not self.complete and node is None:   # the node may be among the invalid ones
                continue
            if key not in raw and len(candidates) != 1 and not (name == "patterns"):
                self.fail(("task",), f"task {name!r} feeds one {role} node, but the network has "
                                     f"{len(candidates)}; say which with `{key}: NODE`")
            elif node is not None and node.size != size and name != "patterns":
                self.fail(("task", key) if key in raw else ("nodes", node.name, "size"),
                          f"task {name!r} with these parameters has {role}s of size {size}, but node "
                          f"{node.name!r} has size {node.size}")
        return {"generator": name, **{k: raw[k] for k in ("input", "output") if k in raw}, **params}

    def metrics_and_loss(self, spec: Spec) -> None:
        """What a run of ``spec`` computes must be what ``expect:`` and early stopping
        read, and its loss must suit the output's activation."""
        task = self.task_object
        settings = dict(task.default_train if task is not None else {})
        settings.update(spec.train)
        method = settings.get("method", "bptt")
        loss = settings.get("loss", "mse")
        if task is None and "generator" in spec.task:   # the generator itself was refused
            return
        if not isinstance(method, str) or not isinstance(loss, str):   # refused by train()
            return
        if method in HOPFIELD_RULES:
            every_epoch = set(task.metric_names if task else ()) | HOPFIELD_METRICS
            final = every_epoch | {"epochs", "seconds"}
        else:
            every_epoch = set(task.metric_names if task else ()) | {"train_loss"}
            if task is not None or "eval_file" in spec.task:
                every_epoch.add("eval_loss")
            final = every_epoch | {"epochs", "seconds"}
            if task is not None and task.name == "linear":
                final.add("normal_equation_gap")
        source = f"task {task.name!r}" if task is not None else "a data-file task"
        for name in spec.expect:
            if name not in final:
                self.fail(("expect", name), f"metric {name!r} is not computed{suggest(name, final)}: "
                                            f"{source} gives {', '.join(sorted(final))}", key=True)
        es = spec.train.get("early_stopping")
        if isinstance(es, dict) and isinstance(es.get("metric"), str) and es["metric"] not in every_epoch:
            self.fail(("train", "early_stopping", "metric"),
                      f"metric {es['metric']!r} is not computed at each evaluation"
                      f"{suggest(es['metric'], every_epoch)}: {source} gives {', '.join(sorted(every_epoch))}")
        if method in HOPFIELD_RULES or method == "none":
            return
        fits = LOSS_ACTIVATIONS.get(loss)
        if fits is None:
            return
        if task is not None:
            wanted = spec.task.get("output")
            outputs = [spec.nodes[wanted]] if wanted in spec.nodes else spec.outputs[:1]
        else:
            outputs = spec.outputs
        chosen = "train.loss" if "loss" in spec.train or task is None else f"task {task.name!r}'s loss"
        for node in outputs:
            if node.type or node.activation not in fits:
                what = f"is {a_or_an(node.type)} {node.type} block" if node.type else \
                    f"has activation {node.activation!r}"
                where = ("train", "loss") if "loss" in spec.train else node.where + ("activation",)
                self.fail(where, f"{chosen} is {loss!r}, which needs {LOSS_NEEDS[loss]}, but output node "
                                 f"{node.name!r} {what}, whose values are not (the loss goes negative or NaN); "
                                 f"use activation: {fits[0]} on {node.name!r}, or loss: mse")

    def expect(self, raw) -> dict:
        raw = self.section(raw, "expect") or {}
        for key, value in raw.items():
            if parse_threshold(value) is None:
                self.fail(("expect", key), f"a threshold reads like \"< 0.2\" or \">= 0.95\" with a finite "
                                           f"number, got {_short(value)}")
        return dict(raw)

    def dynamics(self, raw) -> dict:
        raw = self.section(raw, "dynamics") or {}
        out = {"update": "async", "sweeps": 100, "until_stable": True}
        for key, value in raw.items():
            w = ("dynamics", key)
            if key not in DYNAMICS_KEYS:
                self.fail(w, f"unknown dynamics key {key!r}{suggest(key, DYNAMICS_KEYS)}", key=True)
            elif key == "update" and value not in ("sync", "async"):
                self.fail(w, f"update must be 'sync' or 'async', got {value!r}")
            elif key == "sweeps" and (not _is_int(value) or not 1 <= value <= 1_000_000):
                self.fail(w, f"sweeps must be an integer from 1 to 1,000,000, got {value!r}")
            elif key == "until_stable" and not isinstance(value, bool):
                self.fail(w, "until_stable must be true or false")
            else:
                out[key] = value
        return out if raw else {}


def where_of(path: tuple) -> str:
    return format_where(path)
