"""Checks of a spec's network: its nodes, blocks and edges (and, once blocks are
expanded, the parameter names they make)."""

from __future__ import annotations


from ..activations import ACTIVATIONS
from ..errors import a_or_an, one_of, suggest
from .model import (BLOCK_DIRECTIONS, BLOCK_KEYS, BLOCK_TYPES, COMBINES, CONSTRAINTS, EDGE_KEYS, ENCODINGS,
                    EXPANDED_NAME_RE, GRU_VARIANTS, LSTM_VARIANTS, MAX_DELAY, MAX_NODE_SIZE, NAME_RE,
                    NODE_KEYS, ROLES, WEIGHTS, Bias, Edge, Init, Node, Spec)
from .values import (_flat_numbers, array_shape, edge_name_problem, parse_initializer, _is_int, _is_number,
                     _short)
from .checks import Checks


class NetworkChecks(Checks):
    """``nodes:`` and ``edges:``; ``written`` and ``complete`` say which node names
    were written and whether every node was valid, for the sections that refer to them."""

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
