"""Fused parameters: the weights (or folded biases) of a fused dense group laid
out as row blocks of one array, so the group reads them as one leaf.

A fused group (an LSTM's ``x -> lstm/{i,g,f,o}``) multiplies its source by
the row-wise concatenation of its edges' weights.  Built the plain way, that
concatenation is an op at every call and its VJP a split: at small sizes
each costs as much as the GEMM.  ``lay_out`` instead makes one array per
such group at build time and puts views of its row blocks into
``net.params`` under the usual names, so the concatenation *is* the array.

``net.params`` stays live: writing into a view writes the fused array.  A
name given a new array is simply no longer part of it (``Flat.intact`` is
then false and the executor concatenates as before), so nothing a user can
do to ``net.params`` makes the two disagree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flat:
    """One fused array and the parameters that are row blocks of it.

    array : (sum of the members' rows, ...) the fused value
    names : the members' parameter names, in the group's edge order
    views : the arrays ``net.params`` held for them when laid out
    spans : (lo, hi) rows of each member
    trainable : whether training changes them (the same for every member)
    """

    array: np.ndarray
    names: tuple
    views: tuple
    spans: tuple
    trainable: bool

    def intact(self, params: dict) -> bool:
        """Whether ``params`` still holds the views (nobody assigned a new array)."""
        return all(params.get(name) is view for name, view in zip(self.names, self.views))


def lay_out(plan, graph, params: dict, infos: dict, bias_groups: dict) -> dict:
    """Lay out the fused groups' parameters; replaces their entries in ``params`` by views.

    Returns ``{id(group): Flat}`` for fused dense weights and ``{("bias", id(group)):
    Flat}`` for the biases a group adds in its GEMM (``bias_groups``: id(group) ->
    bias name per edge, see ``executor.folded_biases``).  A group qualifies when its
    parameters are distinct, unconstrained, alike in ``trainable`` and each used by
    this one edge only (the spec format gives every edge its own parameter; the check keeps
    a parameter with other uses, whose gradient has other sources, out)."""
    uses = Counter(data["param"] for _, _, data in graph.edges(data=True) if data["param"] is not None)
    groups = list(plan.sequence_groups) + [g for stage in plan.stages for g in stage.inner]
    flats = {}
    for g in groups:
        if g.weight != "dense" or len(g.edges) < 2:
            continue
        flat = _fuse([e.param for e in g.edges], params, infos, uses)
        if flat is not None:
            flats[id(g)] = flat
        names = bias_groups.get(id(g))
        if names is not None and len(names) > 1 and all(names):
            flat = _fuse(names, params, infos, Counter(names))
            if flat is not None:
                flats[("bias", id(g))] = flat
    return flats


def _fuse(names: list, params: dict, infos: dict, uses: Counter) -> Flat | None:
    if any(n is None for n in names) or len(set(names)) < len(names) or any(uses[n] != 1 for n in names):
        return None
    members = [infos[n] for n in names]
    if any(m.constraints for m in members) or len({m.trainable for m in members}) > 1:
        return None
    values = [params[n] for n in names]
    if len({v.shape[1:] for v in values}) > 1 or len({v.dtype for v in values}) > 1:
        return None
    array = np.concatenate(values, axis=0)
    ends = np.cumsum([v.shape[0] for v in values]).tolist()
    spans = tuple(zip([0] + ends[:-1], ends))
    views = tuple(array[lo:hi] for lo, hi in spans)
    for name, view in zip(names, views):
        params[name] = view
    return Flat(array, tuple(names), views, spans, members[0].trainable)
