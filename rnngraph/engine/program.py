"""What the engine works out once per network, and keeps between calls.

A ``Program`` is made when a network is built and owned by it
(``net.program``).  It holds the folded graph and its plan, the facts every
call needs and that never change (node attributes, which parameters train,
the edges with weights and their constraints, the biases a fused GEMM adds,
the fused parameters' layout), and the things a call makes once and then
looks up: the histories of fixed initial states, each recurrent stage's
compiled loops, and the buffers a training step keeps for the next.  The
executor and the loops read these named fields; nothing is cached on the
graph, the plan or its stages.
"""

from __future__ import annotations

from .compile.runtime import StageCache, compiled_loops


class Program:
    """The compiled form of one network.

    Attributes
    ----------
    graph : networkx.MultiDiGraph
        The folded graph of primitive nodes.
    plan : Plan
    nodes : {node: attribute dict}
        The graph's node attributes (a plain dict: networkx's views cost a
        lookup each, dozens of times a step).
    sizes : (units computed, units of every node, time loops, nodes inside them)
        What a call's memory scales with (``budget.estimate``).
    trainable : frozenset of str
        The parameters training changes.
    weighted_edges : list of (edge key, parameter name, constraints)
        Every edge with a parameter.
    folded_biases : ({id(group): [bias name or None per edge]}, frozenset of nodes)
        The biases a dense sequence group adds inside its GEMM, and whose they are.
    flats : {key: flat.Flat}
        The fused groups' parameters laid out as one array each (``flat.lay_out``).
    constant_histories : {(node, depth, B, size, dtype): ndarray}
        Fixed initial values broadcast to (depth, B, size), read-only.
    fixed_histories : {(B, dtype): {node: Var}}
        All of a call's histories, when every one is a fixed initial value.
    stages : {id(stage): StageCache}
        The loops compiled for each recurrent stage, and the buffers they keep
        between training steps.
    lean : {observed nodes: frozenset}
        The nodes whose pre-activations no loss on those outputs reads.
    """

    def __init__(self, graph, plan):
        self.graph, self.plan = graph, plan
        self.nodes = dict(graph.nodes(data=True))
        self.trainable = frozenset(_trainable(graph))
        self.weighted_edges = [(key, data["param"], tuple(data["constraints"]))
                               for _, _, key, data in graph.edges(keys=True, data=True) if data["param"] is not None]
        self.folded_biases = _folded_biases(self.nodes, plan)
        loops = [s for s in plan.stages if s.kind == "recurrent"]
        self.sizes = (sum(d["size"] for d in self.nodes.values() if d["role"] != "input"),
                      sum(d["size"] for d in self.nodes.values()), len(loops), sum(len(s.nodes) for s in loops))
        self.flats: dict = {}
        self.constant_histories: dict = {}
        self.fixed_histories: dict = {}
        self.stages = {id(s): StageCache() for s in plan.stages if s.kind == "recurrent"}
        self.lean: dict = {}

    def release_workspaces(self) -> None:
        """Let go of the buffers training steps keep between calls."""
        for cache in self.stages.values():
            cache.workspaces.clear()

    def loops(self, stage) -> list:
        """The (forward, backward) ``CompiledLoop`` pairs made for ``stage`` so far."""
        return compiled_loops(self.stages[id(stage)])


def _trainable(graph) -> set:
    trainable = set()
    for _, _, data in graph.edges(data=True):
        if data["param"] and data["trainable"]:
            trainable.add(data["param"])
    for n, data in graph.nodes(data=True):
        if data["bias"] and data["bias_trainable"]:
            trainable.add(data["bias"])
        if data["init"].trainable:
            trainable.add(f"{n}.init")
    return trainable


def _folded_biases(nodes: dict, plan) -> tuple[dict, frozenset]:
    """Biases a dense sequence group adds in its GEMM (``ad.linear``'s ``b``): those
    of targets that take their whole hoisted input from this group alone (sum nodes,
    one sequence contribution), when every target of the group does.  Returns
    (id(group) -> [bias name or None per edge], the nodes whose bias is so added)."""
    groups, biased = {}, set()
    for g in plan.sequence_groups:
        targets = [e.target for e in g.edges]
        names = [nodes[t]["bias"] for t in targets]
        if (g.weight == "dense" and any(names) and len(set(targets)) == len(targets)
                and all(nodes[t]["combine"] == "sum" and len(plan.consumers.get(t, ())) == 1 for t in targets)):
            groups[id(g)] = names
            biased.update(t for t, name in zip(targets, names) if name)
    return groups, frozenset(biased)
