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
    for output, shadow in shadows.items():   # before t = 0 the shadow shows its output's initial state
        node = primitive.nodes[output]
        data["nodes"][shadow] = {"role": "input", "size": node.size, "init": node.init.to_yaml()}
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

    ``network`` is the forced ``Network`` (built from ``forced_spec(net.spec)``, whose
    ``shadows`` map each fed-back output to the input node its target feeds); its parameters are ``net``'s arrays
    (re-linked at every call, so a parameter the user replaced is seen).  A shadow's
    trainable initial state ``"<shadow>.init"`` is its output's ``"<output>.init"``:
    the same array, and its gradient is added to the output's."""

    def __init__(self, net, network, shadows: dict):
        self.net, self.network, self.shadows = net, network, shadows
        self.shared_inits = {f"{shadow}.init": f"{output}.init" for output, shadow in self.shadows.items()
                             if f"{shadow}.init" in self.network.params}

    def _link(self) -> None:
        params = self.network.params
        for name, value in self.net.params.items():
            params[name] = value
        for shadow_init, output_init in self.shared_inits.items():
            params[shadow_init] = self.net.params[output_init]

    def _merged(self, grads: dict | None) -> dict | None:
        """``grads`` by the network's parameter names: a shadow's init's gradient
        goes to its output's init."""
        if grads is not None:
            for shadow_init, output_init in self.shared_inits.items():
                g = grads.pop(shadow_init)
                grads[output_init] = grads[output_init] + g if output_init in grads else g
        return grads

    def feed(self, inputs: dict | None, targets: dict, initial: dict | None) -> tuple[dict, dict]:
        """Inputs and initial states of the forced network: the targets of the
        fed-back outputs as their shadows' inputs; an output's state in ``initial``
        is its shadow's too."""
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
            elif self.net.program.nodes[output]["init"].kind == "input":
                raise DataError(f"node {output!r} has `init: input`: its initial state must be supplied per sample, "
                                f"as initial={{{output!r}: array of shape (batch, {self.net.size(output)})}}")
        return inputs, initial

    def train_step(self, inputs, targets, initial=None, **options):
        """``Network.train_step`` of the forced network."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        step = self.network.train_step(inputs, targets, initial=initial, **options)
        return step._replace(grads=self._merged(step.grads))

    def loss_and_grad(self, inputs, targets, initial=None, **options):
        """``Network.loss_and_grad`` of the forced network: the training loss with forcing,
        and its gradient for every trainable parameter of ``net``."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        loss, grads = self.network.loss_and_grad(inputs, targets, initial=initial, **options)
        return loss, self._merged(grads)

    def rtrl_online(self, inputs, targets, initial=None, **options):
        """``Network.rtrl_online`` of the forced network."""
        self._link()
        inputs, initial = self.feed(inputs, targets, initial)
        for t, loss_t, grads_t in self.network.rtrl_online(inputs, targets, initial=initial, **options):
            yield t, loss_t, self._merged(grads_t)
