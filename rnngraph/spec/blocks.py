"""Blocks are macros: ``lstm`` and ``gru`` nodes expand into primitive nodes.

``expand(spec)`` returns a spec with no blocks (docs/spec-format.md, "Blocks").  Nothing
downstream knows what an LSTM is: the expansion below is the whole definition,
written with the same nodes and edges a user could write by hand.

Part names inside a block ``B`` (primitive node ``"B/<part>"``):

LSTM: gates ``i``, ``f``, ``o`` (sigmoid), candidate ``g`` (tanh), the
products ``ig = i * g`` and ``fc = f * c(t-1)``, the cell ``c = fc + ig``,
``tc = tanh(c)`` and the output ``h = o * tc``.

GRU: gates ``r``, ``z`` (sigmoid), ``zc = 1 - z``, candidate ``n`` (tanh),
``zn = zc * n``, ``zh = z * h(t-1)``, output ``h = zn + zh``; ``reset_after``
adds ``hn = U_n h(t-1) + b_hn`` and ``rhn = r * hn`` feeding ``n``;
``reset_before`` adds ``rh = r * h(t-1)`` feeding ``n`` through a dense edge.
"""

from __future__ import annotations

from .model import Bias, Edge, Init, Node, Spec


def input_parts(block: Node) -> list[str]:
    """The parts an edge ``to:`` the block feeds, each with its own weight."""
    if block.type == "gru":
        return ["r", "z", "n"]
    variant = block.option("variant")
    parts = ["i", "f", "o", "g"]
    if variant == "nig":
        parts.remove("i")
    if variant in ("nfg", "cifg"):
        parts.remove("f")
    if variant == "nog":
        parts.remove("o")
    return parts


class _Builder:
    def __init__(self, block: Node):
        self.block = block
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []

    def name(self, part: str) -> str:
        return f"{self.block.name}/{part}"

    def node(self, part, activation="identity", combine="sum", bias=False, role="hidden", init=Init()):
        self.nodes.append(Node(name=self.name(part), size=self.block.size, role=role, activation=activation,
                               combine=combine, bias=bias, init=init, block=self.block.name, part=part,
                               where=self.block.where))

    def edge(self, src, dst, delay=0, weight="identity", init=None):
        s, d = self.name(src), self.name(dst)
        self.edges.append(Edge(source=s, target=d, delay=delay, weight=weight, init=init,
                               trainable=weight != "identity", name=f"{s}->{d}", where=self.block.where))


def _lstm(block: Node) -> _Builder:
    b = _Builder(block)
    variant = block.option("variant")
    state_init = block.init
    role = block.role
    gates = [p for p in input_parts(block) if p != "g"]
    for gate in ("i", "f", "o"):
        if gate in gates:
            bias = Bias(init=block.option("forget_bias", 1.0)) if gate == "f" else Bias()
            b.node(gate, activation="sigmoid", bias=bias)
    if variant == "cifg":   # coupled input and forget gates: f = 1 - i
        b.node("f", activation="one_minus")
        b.edge("i", "f")
    b.node("g", activation="identity" if variant == "niaf" else "tanh", bias=Bias())
    for part in input_parts(block):
        b.edge("h", part, delay=1, weight="dense")
    if variant == "fgr":    # full gate recurrence: every gate's previous value feeds every gate
        for src in ("i", "f", "o"):
            for dst in ("i", "f", "o"):
                b.edge(src, dst, delay=1, weight="dense")
    # the cell: c = f * c(t-1) + i * g (minus what the variant drops)
    has_i = variant != "nig"
    has_f = variant != "nfg"
    if has_i:
        b.node("ig", combine="product")
        b.edge("i", "ig")
        b.edge("g", "ig")
    if has_f:
        b.node("fc", combine="product")
        b.edge("f", "fc")
        b.edge("c", "fc", delay=1)
    b.node("c", init=state_init)
    b.edge("ig" if has_i else "g", "c")
    b.edge("fc" if has_f else "c", "c", delay=0 if has_f else 1)
    # the output: h = o * tanh(c)
    if variant == "nog":
        b.node("h", activation="tanh", role=role, init=state_init)
        b.edge("c", "h")
    elif variant == "noaf":
        b.node("h", combine="product", role=role, init=state_init)
        b.edge("o", "h")
        b.edge("c", "h")
    else:
        b.node("tc", activation="tanh")
        b.edge("c", "tc")
        b.node("h", combine="product", role=role, init=state_init)
        b.edge("o", "h")
        b.edge("tc", "h")
    if block.option("peepholes"):
        for gate in ("i", "f"):
            if gate in gates:
                b.edge("c", gate, delay=1, weight="diagonal")
        if "o" in gates:
            b.edge("c", "o", delay=0, weight="diagonal")
    return b


def _gru(block: Node) -> _Builder:
    b = _Builder(block)
    variant = block.option("variant")
    b.node("r", activation="sigmoid", bias=Bias())
    b.node("z", activation="sigmoid", bias=Bias())
    b.edge("h", "r", delay=1, weight="dense")
    b.edge("h", "z", delay=1, weight="dense")
    b.node("zc", activation="one_minus")
    b.edge("z", "zc")
    if variant == "reset_after":   # n = tanh(W_n x + b_n + r * (U_n h(t-1) + b_hn)), as torch.nn.GRU
        b.node("hn", bias=Bias())
        b.edge("h", "hn", delay=1, weight="dense")
        b.node("rhn", combine="product")
        b.edge("r", "rhn")
        b.edge("hn", "rhn")
        b.node("n", activation="tanh", bias=Bias())
        b.edge("rhn", "n")
    else:                          # n = tanh(W_n x + U_n (r * h(t-1)) + b_n), Cho et al. (2014)
        b.node("rh", combine="product")
        b.edge("r", "rh")
        b.edge("h", "rh", delay=1)
        b.node("n", activation="tanh", bias=Bias())
        b.edge("rh", "n", weight="dense")
    # h = (1 - z) * n + z * h(t-1)
    b.node("zn", combine="product")
    b.edge("zc", "zn")
    b.edge("n", "zn")
    b.node("zh", combine="product")
    b.edge("z", "zh")
    b.edge("h", "zh", delay=1)
    b.node("h", role=block.role, init=block.init)
    b.edge("zn", "h")
    b.edge("zh", "h")
    return b


def expand(spec: Spec) -> Spec:
    """The same network with every block replaced by its primitive nodes.

    User edges ``to:`` a block become one edge per input part
    (``X->B/i``, ``X->B/f``, ...; a named edge ``e`` becomes ``e/i``, ...);
    edges ``from:`` a block read ``B/h``.
    """
    if not isinstance(spec, Spec):
        from ..errors import ArgumentError
        raise ArgumentError(f"expand: expected a Spec (from rg.load_spec or rg.parse_spec), got {type(spec).__name__}")
    blocks = {n.name: n for n in spec.nodes.values() if n.type}
    if not blocks:
        return spec.with_values(is_expanded=True)
    nodes: dict[str, Node] = {}
    internal: list[Edge] = []
    for node in spec.nodes.values():
        if node.type:
            built = _lstm(node) if node.type == "lstm" else _gru(node)
            for part in built.nodes:
                nodes[part.name] = part
            internal.extend(built.edges)
        else:
            nodes[node.name] = node
    edges: list[Edge] = []
    for edge in spec.edges:
        source = f"{edge.source}/h" if edge.source in blocks else edge.source
        if edge.target in blocks:
            for part in input_parts(blocks[edge.target]):
                target = f"{edge.target}/{part}"
                name = f"{edge.name}/{part}" if edge.named else f"{source}->{target}"
                edges.append(Edge(source=source, target=target, delay=edge.delay, weight=edge.weight,
                                  init=edge.init, trainable=edge.trainable, constraints=edge.constraints,
                                  name=name, named=edge.named, where=edge.where, dropout=edge.dropout))
        else:
            name = edge.name if edge.named else f"{source}->{edge.target}"
            edges.append(Edge(source=source, target=edge.target, delay=edge.delay, weight=edge.weight,
                              init=edge.init, trainable=edge.trainable, constraints=edge.constraints,
                              name=name, named=edge.named, where=edge.where, dropout=edge.dropout))
    return spec.with_values(nodes=nodes, edges=edges + internal, is_expanded=True)
