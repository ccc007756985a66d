"""Teacher forcing (Jordan 1986; Williams & Zipser 1989): while training, a
delayed edge leaving an output node reads that node's target instead of its value.

The forced network is the same network with each such edge moved onto a new
input node, the output's *shadow*, which the target sequence feeds: the
executors already read every node at ``t - d``, so the target reaches the edge
at exactly the step the output would have, and the values, the gradient (BPTT
or RTRL) and its check by finite differences need nothing new.  Before ``t = 0``
the shadow holds the output's initial state.  The edges keep their names, so
the two networks share every parameter (the same arrays).  Evaluation and
prediction use the network itself, which reads its own outputs.
"""

from __future__ import annotations

import numpy as np
import yaml

from ..errors import DataError


def forced_edges(primitive) -> list:
    """The edges teacher forcing redirects: delay > 0, leaving an output node."""
    return [e for e in primitive.edges if e.delay > 0 and primitive.nodes[e.source].role == "output"]


def _shadow_name(output: str, taken) -> str:
    base = output.replace("/", "_") + "_target"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}{k}", k + 1
    return name


def forced_spec(spec):
    """(the forced network's spec, {output node: its shadow input node})."""
    from ..spec import parse_spec
    primitive = spec.expanded()
    moved = forced_edges(primitive)
    data = primitive.to_dict()
    shadows = {}
    for e in moved:
        if e.source not in shadows:
            shadows[e.source] = _shadow_name(e.source, set(data["nodes"]) | set(shadows.values()))
    for output, shadow in shadows.items():
        data["nodes"][shadow] = {"role": "input", "size": primitive.nodes[output].size, "init": "input"}
    redirected = {id(e) for e in moved}
    for edge, written in zip(primitive.edges, data["edges"]):
        if id(edge) in redirected:
            written["from"] = shadows[edge.source]
            written["name"] = edge.name          # the parameter keeps its name
    train = {k: v for k, v in spec.train.items() if k in ("loss",)}
    data = {k: v for k, v in data.items() if k not in ("task", "expect", "train")}
    if train:
        data["train"] = train
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return parse_spec(text), shadows


class TeacherForced:
    """``net`` as training sees it with teacher forcing on: ``evaluate`` and
    ``loss_and_grad`` take the same arguments as the network's and feed each
    fed-back output's target to the edges that read it late.

    ``network`` is the forced ``Network``; its parameters are ``net``'s arrays
    (re-linked at every call, so a parameter the user replaced is seen)."""

    def __init__(self, net):
        from .network import Network
        spec, self.shadows = forced_spec(net.spec)
        if not self.shadows:
            raise DataError("teacher forcing: no delayed edge leaves an output node, so there is nothing to force")
        self.net = net
        self.network = Network(spec, dtype=net.dtype, engine=net.engine)

    def _link(self) -> None:
        params = self.network.params
        for name, value in self.net.params.items():
            params[name] = value

    def feed(self, inputs: dict | None, targets: dict, initial: dict | None) -> tuple[dict, dict]:
        """Inputs and initial states of the forced network: the targets of the
        fed-back outputs as their shadows' inputs; each shadow's state before
        t = 0 is its output's (``initial``'s, else the output's ``init``)."""
        inputs = dict(inputs or {})
        initial = dict(initial or {})
        blocks = self.net.blocks
        by_node = {blocks.get(k, k): v for k, v in targets.items()}
        for output, shadow in self.shadows.items():
            if output not in by_node:
                raise DataError(f"teacher forcing: targets for {output!r} are needed (its delayed edges read them)")
            y = np.asarray(by_node[output])
            inputs[shadow] = y
            if output in initial:
                initial[shadow] = initial[output]
            else:
                initial[shadow] = np.broadcast_to(self._init_value(output), (y.shape[0], y.shape[2]))
        return inputs, initial

    def _init_value(self, output: str) -> np.ndarray:
        info = self.net.program.nodes[output]["init"]
        if info.kind == "input":
            raise DataError(f"node {output!r} has `init: input`: its initial state must be supplied per sample, as "
                            f"initial={{{output!r}: array of shape (batch, {self.net.size(output)})}}")
        if info.trainable:
            return np.asarray(self.net.params[f"{output}.init"], self.net.dtype)
        return np.asarray(info.value, self.net.dtype)

    def train_step(self, inputs, targets, initial=None, **options):
        """``Network.train_step`` of the forced network."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        return self.network.train_step(inputs, targets, initial=initial, **options)

    def loss_and_grad(self, inputs, targets, initial=None, **options):
        """``Network.loss_and_grad`` of the forced network: the training loss with forcing."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        return self.network.loss_and_grad(inputs, targets, initial=initial, **options)

    def rtrl_online(self, inputs, targets, initial=None, **options):
        """``Network.rtrl_online`` of the forced network."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        yield from self.network.rtrl_online(inputs, targets, initial=initial, **options)
