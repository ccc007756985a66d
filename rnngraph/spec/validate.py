"""Validation: parsed YAML in, a ``Spec`` out, every independent mistake collected.

``Validator.spec()`` checks the spec as written (keys, types, ranges, names,
references, the task and the training settings); the loader then checks the
expanded network (``parameter_names``, ``primitive.check_primitive``).
"""

from __future__ import annotations

import os

from ..activations import ACTIVATIONS
from ..errors import SpecError, SpecErrors, a_or_an, one_of, suggest
from .model import (BLOCK_KEYS, BLOCK_TYPES, COMBINES, CONSTRAINTS, DTYPES, DYNAMICS_KEYS, EDGE_KEYS, ENCODINGS,
                    EXPANDED_NAME_RE, FORMAT_VERSION, GRU_VARIANTS, HOPFIELD_METRICS, HOPFIELD_RULES, LARGEST,
                    LOSSES, LOSS_ACTIVATIONS, LOSS_NEEDS, LOSS_ON, LSTM_VARIANTS, MAX_DELAY, MAX_NODE_SIZE,
                    NAME_RE, NODE_KEYS, OPTIMIZERS, ROLES, TOP_KEYS, TRAIN_KEYS, TRAIN_METHODS, WEIGHTS, Bias,
                    Edge, Init, Node, Spec)
from .schedule import schedule_problems
from .source import Source, format_where
from .tasks import BUILTIN_METRICS, signature
from .values import (_flat_numbers, array_shape, edge_name_problem, parse_initializer, parse_threshold,
                     _is_int, _is_number, _short)

class Validator:
    """Turns parsed YAML into a ``Spec``, collecting every independent error."""

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
        encoding = body.get("encoding")
        if "encoding" in body:
            if not isinstance(encoding, str) or encoding not in ENCODINGS:
                self.fail(where + ("encoding",), f"encoding must be {one_of(ENCODINGS)}, got {_short(encoding)}"
                                                 f"{suggest(encoding, ENCODINGS) if isinstance(encoding, str) else ''}")
                ok = False
            elif role != "input":
                self.fail(where + ("encoding",), f"encoding: {encoding} is for input nodes (it says how data "
                                                 f"feeds the node); {name!r} has role {role!r}")
                ok = False
        bias = self.bias(body, where, combine)
        init = self.init(body.get("init", 0.0), where + ("init",), size) if "init" in body else Init()
        if size is None or bias == "error" or init is None or not ok:
            return None
        return Node(name=name, size=size, role=role, activation=activation, combine=combine,
                    bias=bias, init=init, where=where, encoding=encoding)

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
            if edge.name in taken and edge.named:   # two unnamed ones: check_primitive says which edge repeats
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
        if not _is_int(delay) or delay < 0:
            self.fail(where + ("delay",), f"delay must be an integer >= 0, got {delay!r}")
            ok = False
        elif delay > MAX_DELAY:
            self.fail(where + ("delay",), f"delay {delay} is larger than {MAX_DELAY:,}")
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
                    if kind[0] == "array" and array_shape(init) is None:
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
        dropout = body.get("dropout", 0.0)
        if not _is_number(dropout) or not 0 <= dropout < 1:
            self.fail(where + ("dropout",), f"dropout must be a number p with 0 <= p < 1 (the probability of "
                                            f"dropping each unit while training), got {_short(dropout)}")
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
                            named=name is not None, where=where, dropout=float(dropout)))
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
        if "schedule" in raw:
            for where, what, key in schedule_problems(raw["schedule"]):
                self.fail(("train", "schedule") + where, what, key=key)
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
        self.task_metrics(raw)
        if has_file:
            # a storage rule reads patterns from the file and makes n_eval cues from them, as the
            # patterns generator does (and reports its metrics)
            stores = spec.train.get("method") in HOPFIELD_RULES
            known = ("file", "n_eval", "metrics") if stores else ("file", "eval_file", "eval_split", "metrics")
            for key in raw:
                if stores and key in ("eval_file", "eval_split"):
                    self.fail(("task", key), "a Hopfield network reads only `file` (the patterns to store); its "
                                             f"cues are made from them, `n_eval` of them (drop {key})", key=True)
                elif key == "n_eval" and not stores:
                    self.fail(("task", key), "unknown key 'n_eval' for a data-file task (file, eval_file, "
                                             "eval_split, metrics): to hold out the file's last sequences use "
                                             "eval_split: FRACTION; n_eval (cues made from the file's patterns) "
                                             "is for a storage rule, train.method: hebbian, storkey or "
                                             "pseudoinverse", key=True)
                elif key not in known:
                    kind = "a data-file task with a storage rule" if stores else "a data-file task"
                    self.fail(("task", key), f"unknown key {key!r} for {kind} ({', '.join(known)})", key=True)
            if "n_eval" in raw and (not _is_int(raw["n_eval"]) or raw["n_eval"] < 1):
                self.fail(("task", "n_eval"), f"n_eval must be an integer >= 1, got {_short(raw['n_eval'])}")
            if "eval_split" in raw and not stores:
                split = raw["eval_split"]
                if "eval_file" in raw:
                    self.fail(("task", "eval_split"), "eval_split holds out part of `file`, but the task already "
                                                      "has an eval_file: give one or the other", key=True)
                elif not _is_number(split) or not 0 < split < 1:
                    self.fail(("task", "eval_split"), f"eval_split must be a number between 0 and 1 (the fraction "
                                                      f"of the file's sequences held out, the last ones), got "
                                                      f"{_short(split)}")
            if stores:
                self.task_signature = signature("patterns")
            for key in ("file", "eval_file"):   # whether the file exists and fits is for check and run
                if key in raw and (not isinstance(raw[key], str) or not raw[key] or "\0" in raw[key]):
                    self.fail(("task", key), f"{key} must be a path to an .npz file")
            return dict(raw)
        name = raw["generator"]
        params = {k: v for k, v in raw.items() if k not in ("generator", "input", "output", "metrics")}
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
            task = signature(name)
            params = task.validate(params)
        except ValueError as exc:
            where = getattr(exc, "where", "") or "task"
            path = tuple(where.split(".")) if where.split(".")[-1] in raw else ("task",)
            self.fail(path, getattr(exc, "what", str(exc)))
            return dict(raw)
        self.task_signature = task
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
        return {"generator": name, **{k: raw[k] for k in ("input", "output", "metrics") if k in raw}, **params}

    def task_metrics(self, raw: dict) -> None:
        """``task.metrics``: a list of built-in metric names (``BUILTIN_METRICS``)."""
        if "metrics" not in raw:
            return
        names = raw["metrics"]
        if not isinstance(names, list):
            self.fail(("task", "metrics"), f"metrics must be a list of metric names such as [mse, accuracy] "
                                           f"(known: {', '.join(BUILTIN_METRICS)}), got {_short(names)}")
            return
        for i, name in enumerate(names):
            if not isinstance(name, str) or name not in BUILTIN_METRICS:
                hint = suggest(name, BUILTIN_METRICS) if isinstance(name, str) else ""
                self.fail(("task", "metrics", i), f"unknown metric {_short(name)}{hint}; known: "
                                                  f"{', '.join(BUILTIN_METRICS)}")
            elif name in names[:i]:
                self.fail(("task", "metrics", i), f"metric {name!r} is listed twice")

    def metrics_and_loss(self, spec: Spec) -> None:
        """What a run of ``spec`` computes must be what ``expect:`` and early stopping
        read, and its loss must suit the output's activation."""
        task = self.task_signature
        settings = dict(task.default_train if task is not None else {})
        settings.update(spec.train)
        method = settings.get("method", "bptt")
        loss = settings.get("loss", "mse")
        if task is None and "generator" in spec.task:   # the generator itself was refused
            return
        if not isinstance(method, str) or not isinstance(loss, str):   # refused by train()
            return
        listed = spec.task.get("metrics")
        listed = {m for m in listed if isinstance(m, str)} if isinstance(listed, list) else set()
        if method in HOPFIELD_RULES:
            every_epoch = set(task.metric_names if task else ()) | HOPFIELD_METRICS | listed
            final = every_epoch | {"epochs", "seconds"}
        else:
            every_epoch = set(task.metric_names if task else ()) | {"train_loss"} | listed
            if task is not None or "eval_file" in spec.task or "eval_split" in spec.task:
                every_epoch.add("eval_loss")
            final = every_epoch | {"epochs", "seconds"}
            if task is not None and task.name == "linear":
                final.add("normal_equation_gap")
        source = f"task {task.name!r}" if task is not None else "a data-file task"

        def listable(name):   # a built-in metric the task could list
            return "; add it to task.metrics to compute it" if name in BUILTIN_METRICS else ""
        for name in spec.expect:
            if name not in final:
                self.fail(("expect", name), f"metric {name!r} is not computed{suggest(name, final)}: "
                                            f"{source} gives {', '.join(sorted(final))}{listable(name)}", key=True)
        es = spec.train.get("early_stopping")
        if isinstance(es, dict) and isinstance(es.get("metric"), str) and es["metric"] not in every_epoch:
            self.fail(("train", "early_stopping", "metric"),
                      f"metric {es['metric']!r} is not computed at each evaluation"
                      f"{suggest(es['metric'], every_epoch)}: {source} gives {', '.join(sorted(every_epoch))}"
                      f"{listable(es['metric'])}")
        schedule = spec.train.get("schedule")
        if isinstance(schedule, dict) and schedule.get("name") == "plateau":
            metric = schedule.get("metric", "eval_loss")
            if isinstance(metric, str) and metric not in every_epoch:
                self.fail(("train", "schedule", "metric") if "metric" in schedule else ("train", "schedule"),
                          f"the plateau schedule reads {metric!r}, which is not computed at each evaluation"
                          f"{suggest(metric, every_epoch)}: {source} gives {', '.join(sorted(every_epoch))}"
                          f"{listable(metric)}")
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
