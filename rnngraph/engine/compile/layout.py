"""The layout of one recurrent stage's time loops: what the loop compiler decides.

``Layout(stage, graph, ...)`` works out, from the stage's structure alone
(its nodes, the edge groups run each step, which nodes have a hoisted input
and which take gradients from outside), where every value and gradient lives
and which work can be skipped.  It does not depend on T, B or dtype, so one
layout serves every call.  ``codegen.LoopWriter`` writes the loops of a
layout; ``runtime`` allocates its buffers and runs them.  ``report()`` says
what was decided and why (``rnngraph plan SPEC --source`` prints it).

The decisions that save work inside the loop:

- *direct*: a group with one edge into a sum node computes straight into
  that node's ``a(t)``; its gradient is that node's ``dL/da``.
- *packs*: the targets of a fused dense group (LSTM gates i, g, f, o)
  share one pre-activation buffer, so the group's GEMM and the bias add
  are one call each, and consecutive members with the same activation
  are activated (and differentiated) by one call (*runs*).
- *aliases*: a sum node whose only input is an identity edge of delay 0
  (Elman's context, ``tanh(c)``) uses its source's buffer as its ``a``;
  *gradient aliases*: a source whose one consumer is such an edge reads
  its target's ``dL/da`` as its ``dL/dv``.
- *folds* (backward only, small stages, no trace): a node whose one consumer
  is a product has the product's other factors multiplied into its derivative
  for all steps before the loop; the product then writes the node's ``dL/da``
  in one call.
- *large* stages are laid out for memory: derivatives per step from the
  values, ``dL/dv`` needed at t and t + 1 only in two rows (*rolling*),
  values needed at their own step only in one row (*transient*), hoisted
  inputs as pre-activation buffers (*seeded*) over which a pack's ``dL/da``
  is written (*recycled*).

Indices: nodes ``i`` in the stage's order, groups ``gi`` in ``stage.inner``,
packs ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...activations import ACTIVATIONS

# the compiler's tables, derived from each activation's one definition (activations.py):
# whole-sequence derivatives written into `out` (no temporaries: at large sizes every extra
# pass over (T, B, n) costs), per-step derivatives from the value (large sequences: no
# (T, B, n) derivative array, and the step's rows are in cache), in-place forward calls
DERIVATIVES = {name: f.derivative for name, f in ACTIVATIONS.items() if f.derivative is not None}
ZERO_DERIVATIVE = tuple(name for name, f in ACTIVATIONS.items() if f.zero_derivative)
STEP_DERIVATIVES = {name: f.step_derivative for name, f in ACTIVATIONS.items() if f.from_value is not None}
IN_PLACE = {name: list(f.in_place) for name, f in ACTIVATIONS.items() if f.in_place}
# activations whose derivative needs only the value v (or nothing): their pre-activation
# can share v's buffer when no one reads it
LEAN_ACTIVATIONS = frozenset(name for name, f in ACTIVATIONS.items() if f.needs_only_value)

# ext_v[i] when node i's dL/dv from outside is an ``ad.Deferred`` (g @ W of a dense readout):
# a rolling node computes it a row at a time, others write it into their dL/dv buffer
DEFERRED = 2


@dataclass
class NodeLayout:
    """Where one node of a time loop keeps its values and gradients, and the work saved."""

    name: str
    activation: str
    combine: str
    hoisted: bool = False                 # its edges from outside the loop arrive as one array
    pack: int | None = None               # its pre-activation is columns of this pack
    columns: tuple | None = None          # (lo, hi) in the pack
    activated_with: tuple = ()            # pack members activated by the same calls, itself included
    direct: bool = False                  # its one per-step group writes straight into a(t)
    alias_of: str | None = None           # a(t) is that node's value
    seeded: bool = False                  # its hoisted input array is its a buffer
    gradient_alias_of: str | None = None  # its dL/dv is that node's dL/da
    fresh: bool = False                   # dL/dv(t) written by its first same-step consumer
    rolling: bool = False                 # dL/dv in two rows used in turn
    transient: bool = False               # its value is needed at its own step only
    folded_into: str | None = None        # that product's other factors are in its derivative
    derivative: str = ""                  # "per step", "whole sequence" or "" (none needed, or folded)
    outside_gradient: str | None = None   # "deferred" (g @ W of a readout), "array", or None
    gradient_read_after: bool = False     # its dL/da is read after the loop (keeps every step)

    def reasons(self) -> list[str]:
        why = []
        if self.hoisted:
            why.append("its edges from outside the loop arrive as one array computed before the loop (hoisted)")
        if self.pack is not None:
            why.append(f"pre-activation is columns {self.columns[0]}:{self.columns[1]} of pack {self.pack}")
        if len(self.activated_with) > 1:
            why.append(f"activated with {', '.join(n for n in self.activated_with if n != self.name)} "
                       f"by the same calls")
        if self.alias_of:
            why.append(f"a(t) is {self.alias_of}'s value (one identity input at delay 0): no copy")
        if self.direct:
            why.append("its one per-step GEMM writes straight into a(t)")
        if self.seeded:
            why.append("its hoisted input array is its pre-activation buffer (large stage, training step)")
        if self.gradient_alias_of:
            why.append(f"dL/dv is {self.gradient_alias_of}'s dL/da (one identity consumer at delay 0): no copy")
        elif self.fresh:
            why.append("dL/dv(t) is written by its first same-step consumer: no zeroing, no add")
        if self.rolling:
            why.append("dL/dv lives in two rows used in turn (needed at t and t + 1 only)")
        if self.transient:
            why.append("its value is needed only at its own step")
        if self.folded_into:
            why.append(f"the other factors of {self.folded_into} are multiplied into its derivative "
                       f"before the loop, and that product writes its dL/da")
        elif self.derivative == "per step":
            why.append("derivative computed in the loop from the step's value (large stage)")
        elif self.derivative == "whole sequence":
            why.append("derivative computed for the whole sequence before the backward loop")
        if self.outside_gradient:
            why.append("takes a gradient from outside the loop (a loss or a later stage)"
                       + (", as g @ W of a dense readout" if self.outside_gradient == "deferred" else ""))
        return why


@dataclass
class PackLayout:
    """The targets of a fused dense group sharing one pre-activation buffer."""

    members: tuple                        # node names, in column order
    with_base: bool
    mixed: bool = False                   # sigmoid and tanh columns, one pass each
    prescaled: bool = False               # sigmoid columns of its weights and base come halved
    seeded: bool = False                  # its hoisted input array is its buffer
    recycled: bool = False                # each step's dL/da written over its values

    def reasons(self) -> list[str]:
        why = [f"one pre-activation buffer for {', '.join(self.members)} (the columns of their fused GEMM), "
               f"so the GEMM{' and the bias add are' if self.with_base else ' is'} one call a step"]
        if self.mixed:
            why.append("sigmoid and tanh columns activated and differentiated in one pass each")
        if self.prescaled:
            why.append("sigmoid columns of its weights and base come halved, saving a call a step "
                       "(exact: a power of two)")
        if self.seeded:
            why.append("its hoisted input array is its pre-activation buffer (large stage, training step)")
        if self.recycled:
            why.append("each step's dL/da is written over its values, which nothing reads again")
        return why


@dataclass
class GroupLayout:
    """An edge group run each step: how, and whether its output is kept."""

    edges: str                            # what it computes, e.g. "dense h(t - 1) -> i, g, f, o"
    how: str
    kept: bool = False                    # its output kept for every step (a product reads it again)

    def reasons(self) -> list[str]:
        return [self.how] + (["its output is kept for every step: a product needs it again in the backward pass"]
                             if self.kept else [])


@dataclass
class LoopLayout:
    """What the loop compiler decided for one recurrent stage, and why: per node,
    per edge group run inside the loop and per pack.  ``str()`` prints it."""

    large: bool                           # laid out for memory rather than for the fewest calls
    nodes: list                           # NodeLayout, in the loop's step order
    groups: list                          # GroupLayout
    packs: list                           # PackLayout

    def node(self, name: str) -> NodeLayout:
        return next(n for n in self.nodes if n.name == name)

    def __str__(self) -> str:
        lines = ["layout for " + ("large sequences (memory first)" if self.large else "small sequences (fewest calls)")]
        sections = [("nodes", [(f"{n.name}: {n.activation}, {n.combine}", n.reasons()) for n in self.nodes]),
                    ("edges run each step", [(g.edges, g.reasons()) for g in self.groups]),
                    ("packs", [(f"pack {k}: {', '.join(p.members)}", p.reasons()) for k, p in enumerate(self.packs)])]
        for title, rows in sections:
            if rows:
                lines.append(f"  {title}:")
                for what, why in rows:
                    lines.append(f"    {what}")
                    lines += [f"      - {reason}" for reason in why]
        return "\n".join(lines)


class Layout:
    """What the loop compiler decided for one recurrent stage (see the module docstring).

    The structure depends on the stage, on which nodes have a base (hoisted
    input) and on which outputs receive gradients from outside; it does not
    depend on T, B or dtype, so one compilation serves every call.

    Three layouts save work inside the loop:

    - *direct*: a group with one edge into a sum node computes straight into
      that node's ``a(t)``; its gradient is that node's ``dL/da``.
    - *packs*: the targets of a fused dense group (LSTM gates i, g, f, o)
      share one pre-activation buffer, so the group's GEMM and the bias add
      are one call each, and consecutive members with the same activation
      are activated (and differentiated) by one call.
    - *aliases*: a sum node whose only input is an identity edge of delay 0
      (Elman's context, ``tanh(c)``) uses its source's buffer as its ``a``.
    - *folds* (backward only, small stages, no trace): a node whose one consumer
      is a product has the product's other factors multiplied into its derivative
      for all steps before the loop; the product then writes the node's ``dL/da``
      in one call (``_find_folds``, ``_merge_folds``).
    """

    def __init__(self, stage, graph, has_base: tuple, ext_a: tuple = (), ext_v: tuple = (),
                 step_derivatives: bool = False, seeded: frozenset = frozenset(),
                 seeded_nodes: frozenset = frozenset(), fold: bool = False,
                 prescaled: frozenset = frozenset()):
        self.nodes = list(stage.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.groups = stage.inner
        n_nodes = len(self.nodes)
        self.size = [graph.nodes[n]["size"] for n in self.nodes]
        self.act = [graph.nodes[n]["activation"] for n in self.nodes]
        self.product = [graph.nodes[n]["combine"] == "product" for n in self.nodes]
        self.has_base = has_base
        self.large = step_derivatives      # laid out for memory (see LARGE_STAGE_BYTES)
        self.ext_a = ext_a or (False,) * n_nodes
        self.ext_v = ext_v or (False,) * n_nodes
        # nodes whose activation's derivative the backward loop computes per step (see
        # STEP_DERIVATIVES); the others' is computed for the whole sequence before it
        self.step_der = [step_derivatives and a in STEP_DERIVATIVES for a in self.act]
        # seeded packs and nodes (not in packs, sum): their hoisted input arrives as their
        # pre-activation buffer, AP or A (see runtime.scan), and the loop adds to it
        self.seeded, self.seeded_nodes = seeded, seeded_nodes
        # prescaled packs (mixed, see _node_forward): their weights' and base's columns come
        # multiplied by the pack's scale, so a(t) arrives as the scale times the pre-activation
        self.prescaled = prescaled
        self.contribs = [[] for _ in self.nodes]          # node -> [(group, lo, hi)]
        for gi, g in enumerate(self.groups):
            for k, e in enumerate(g.edges):
                self.contribs[self.index[e.target]].append((gi, g.offsets[k], g.offsets[k + 1]))
        self.src = [self.index[g.source] for g in self.groups]
        self.consumers = [[gi for gi in range(len(self.groups)) if self.src[gi] == i] for i in range(n_nodes)]
        self.identity = [g.weight == "identity" for g in self.groups]
        self._find_packs()
        # pack columns whose activations' derivative is one call: adjacent members with the
        # same activation (an LSTM's i, f, o: one call over 3H columns, not three); computed
        # for the whole sequence before the backward loop (der_spans) or in it (step_spans)
        self.der_spans, self.step_spans = [], []           # (pack, lo, hi, activation)
        for p, (gi, members, _) in enumerate(self.packs):
            for i, lo, hi in sorted(members, key=lambda m: m[1]):
                act = self.act[i]
                if act not in DERIVATIVES and not self.step_der[i]:
                    continue
                spans = self.step_spans if self.step_der[i] else self.der_spans
                last = spans[-1] if spans else None
                if last is not None and last[0] == p and last[2] == lo and last[3] == act:
                    spans[-1] = (p, last[1], hi, act)
                else:
                    spans.append((p, lo, hi, act))
        # a mixed sigmoid/tanh pack: one derivative for all its columns, (DM - v) v + DC,
        # which is v (1 - v) where DM = 1, DC = 0 and 1 - v^2 where DM = 0, DC = 1 (the same
        # roundings as each alone): three calls over the row, not two per span of columns
        for p, (gi, _, _) in enumerate(self.packs):
            if self.mixed[p]:
                for spans in (self.der_spans, self.step_spans):
                    if any(sp[0] == p for sp in spans):
                        spans[:] = [sp for sp in spans if sp[0] != p] + [(p, 0, self.groups[gi].width, "mixed")]
        self.direct = []
        taken = {i for i in range(n_nodes) if self.pack_of[i] is not None}
        for gi, g in enumerate(self.groups):
            tgt = self.index[g.edges[0].target]
            ok = len(g.edges) == 1 and not self.product[tgt] and tgt not in taken and not self.identity[gi]
            if ok:
                taken.add(tgt)
            self.direct.append(ok)
        # group outputs are kept for every step where a product node needs them back as factors
        self.keep = [not self.identity[gi] and self.packed_group[gi] is None and
                     any(self.product[self.index[e.target]] for e in g.edges) for gi, g in enumerate(self.groups)]
        self.alias = [None] * n_nodes                      # node -> the node whose value is its a
        for i in range(n_nodes):
            parts = self.contribs[i]
            if (not self.product[i] and not has_base[i] and self.pack_of[i] is None and len(parts) == 1
                    and self.identity[parts[0][0]] and self.groups[parts[0][0]].delay == 0):
                self.alias[i] = self.src[parts[0][0]]
        # fresh: dL/dv(t) comes only from consumers at the same step t, and none from outside,
        # so the first of them writes the buffer (no zeroing, no add)
        self.fresh = [bool(outs) and not self.ext_v[i] and all(self.groups[gi].delay == 0 for gi in outs)
                      for i, outs in enumerate(self.consumers)]
        # gradient aliases: a source whose one consumer is an identity delay-0 edge into a sum
        # node has dL/dv = that node's dL/da (Elman's context, an LSTM's i*g and f*c feeding c):
        # it reads the target's buffer instead of receiving a copy each step
        self.galias = [None] * n_nodes                     # node -> the node whose GA is its GV
        for gi, g in enumerate(self.groups):
            s, tgt = self.src[gi], self.index[g.edges[0].target]
            if (len(self.consumers[s]) == 1 and self.identity[gi] and g.delay == 0 and self.fresh[s] and not self.product[tgt]
                    and self.pack_of[s] is None and self.pack_of[tgt] is None):
                self.galias[s] = tgt
        # ga_after: the node's dL/da buffer is read after the loop, by its base's or a direct
        # group's weight gradient, or as the dL/da of a gradient alias (its dL/dv) that is
        self.ga_after = []
        for i in range(n_nodes):   # gradient aliases' sources come first in the step order
            self.ga_after.append(self.has_base[i] or any(self.direct[gi] for gi, _, _ in self.contribs[i])
                                 or any(self.galias[s] == i and self.ga_is_gv(s) and self.ga_after[s]
                                        for s in range(i)))
        # rolling: dL/dv(t) comes from consumers at steps t and t + 1 (and from outside) and
        # nothing reads it after the loop, so two rows used in turn can hold it.  Within step
        # t + 1 the delayed consumers write after the node has read its own slot; the first
        # of them overwrites what step t + 2 left there, the rest add; at step t the same-step
        # consumers add, then the outside gradient is added.  (Correct for full arrays too, as
        # a trace has.)  Large stages only: in small ones the per-step add of the outside
        # gradient costs more than a copy of the whole sequence.
        self.rolling = []
        for i in range(n_nodes):
            delays = [self.groups[gi].delay for gi in self.consumers[i]]
            self.rolling.append(step_derivatives and self.pack_of[i] is None and self.galias[i] is None and 1 in delays
                                and max(delays) == 1 and not (self.ga_is_gv(i) and self.ga_after[i]))
        # transient: nothing in the loop reads the value after its own step (an identity node
        # feeding only same-step sums through identity edges: an LSTM's i*g and f*c, which
        # only make c).  When no one outside reads it either, one (B, size) row serves all steps.
        self.transient = []
        for i, outs in enumerate(self.consumers):
            targets = [self.index[self.groups[gi].edges[0].target] for gi in outs]
            self.transient.append(
                self.act[i] == "identity" and self.pack_of[i] is None and self.alias[i] is None and bool(outs)
                and all(self.identity[gi] and self.groups[gi].delay == 0 for gi in outs)
                and not any(self.product[t] or self.alias[t] == i for t in targets))
        # recycled packs (large stages' training steps): each step's dL/da of the pack is
        # written over its values, which nothing reads after that step: no member is read
        # after the loop (as a weight gradient's input or a product base's factor) and
        # only same-step consumers send it gradients (so its dL/dv can be one row)
        read_after = {self.src[gi] for gi in range(len(self.groups)) if not self.identity[gi]}
        for i in range(n_nodes):
            if self.product[i] and has_base[i]:
                read_after |= {self.src[gi] for gi, _, _ in self.contribs[i] if self.identity[gi]}
        self.recycled = frozenset(p for p in seeded if all(
            self.fresh[i] and i not in read_after for i, _, _ in self.packs[p][1]))
        self.fold_into = self._find_folds() if fold and not step_derivatives else [None] * n_nodes
        self._lean: dict = {}
        self._transient: dict = {}
        self.total_size = sum(self.size)

    def report(self, forward: "Layout | None" = None) -> LoopLayout:
        """What this compilation decided, per node, edge group and pack, and why;
        ``forward``: the compilation whose forward loop ran with it, where that is
        another (it alone knows which packs come prescaled)."""
        prescaled = (forward or self).prescaled
        nodes = self.nodes
        packs = [PackLayout(members=tuple(nodes[i] for i, _, _ in sorted(members, key=lambda m: m[1])),
                            with_base=with_base, mixed=self.mixed[p], prescaled=p in prescaled,
                            seeded=p in self.seeded, recycled=p in self.recycled)
                 for p, (gi, members, with_base) in enumerate(self.packs)]
        node_rows = []
        for i, n in enumerate(nodes):
            run = self.run_of[i]
            together = [j for j, r in enumerate(self.run_of) if run is not None and r is not None and r[3] == run[3]]
            fold = self.fold_into[i]
            node_rows.append(NodeLayout(
                name=n, activation=self.act[i], combine="product" if self.product[i] else "sum",
                hoisted=bool(self.has_base[i]),
                pack=self.pack_of[i][0] if self.pack_of[i] is not None else None,
                columns=tuple(self.pack_of[i][1:]) if self.pack_of[i] is not None else None,
                activated_with=tuple(nodes[j] for j in sorted(together, key=lambda j: self.pack_of[j][1])),
                direct=any(self.direct[gi] for gi, _, _ in self.contribs[i]),
                alias_of=nodes[self.alias[i]] if self.alias[i] is not None else None,
                seeded=i in self.seeded_nodes,
                gradient_alias_of=nodes[self.galias[i]] if self.galias[i] is not None else None,
                fresh=self.fresh[i], rolling=self.rolling[i], transient=self.transient[i],
                folded_into=nodes[fold[0]] if fold is not None else None,
                derivative="" if fold is not None else "per step" if self.step_der[i] else
                "whole sequence" if self.act[i] in DERIVATIVES else "",
                outside_gradient="deferred" if self.ext_v[i] == DEFERRED else
                "array" if self.ext_v[i] or self.ext_a[i] else None,
                gradient_read_after=self.ga_after[i]))
        groups = []
        for gi, g in enumerate(self.groups):
            if self.identity[gi]:
                how = "no op: its target reads the source's buffer in place"
            elif self.packed_group[gi] is not None:
                how = f"one GEMM a step into pack {self.packed_group[gi]}"
            elif self.direct[gi]:
                how = (f"one {'GEMM' if g.weight == 'dense' else 'multiply'} a step straight into "
                       f"{g.edges[0].target}'s a(t)")
            else:
                how = "one op a step into a row of its own"
            groups.append(GroupLayout(edges=self.edge_note(gi), how=how, kept=self.keep[gi]))
        return LoopLayout(large=self.large, nodes=node_rows, groups=groups, packs=packs)

    def transient_indices(self, stage, lean: frozenset) -> frozenset:
        """The transient nodes (indices) that are in ``lean`` (names: no loss reads them)
        and that no later stage reads."""
        found = self._transient.get(lean)
        if found is None:
            read_later = {g.source for g in stage.produces}
            found = self._transient[lean] = frozenset(
                i for i, n in enumerate(self.nodes) if self.transient[i] and n in lean and n not in read_later)
        return found

    def lean_indices(self, lean: frozenset) -> frozenset:
        """The nodes of ``lean`` (names) whose activation lets A share V's buffer."""
        found = self._lean.get(lean)
        if found is None:
            found = self._lean[lean] = frozenset(i for i, n in enumerate(self.nodes)
                                                 if n in lean and self.act[i] in LEAN_ACTIVATIONS)
        return found

    def _find_packs(self):
        n_nodes = len(self.nodes)
        self.pack_of = [None] * n_nodes                    # node -> (pack, lo, hi)
        self.packed_group = [None] * len(self.groups)      # group -> pack
        self.packs = []                                    # (group, [(node, lo, hi)], has base)
        for gi, g in enumerate(self.groups):
            targets = [self.index[e.target] for e in g.edges]
            if g.weight != "dense" or len(targets) < 2 or len(set(targets)) < len(targets):
                continue
            if any(self.product[i] or self.pack_of[i] is not None for i in targets):
                continue
            if len({self.has_base[i] for i in targets}) != 1:
                continue
            p = len(self.packs)
            members = [(i, g.offsets[k], g.offsets[k + 1]) for k, i in enumerate(targets)]
            self.packs.append((gi, members, self.has_base[targets[0]]))
            self.packed_group[gi] = p
            for i, lo, hi in members:
                self.pack_of[i] = (p, lo, hi)
        # runs: pack members activated by one set of calls.  A whole pack is one run when
        # nothing but its group feeds its members and their activations are one in-place
        # activation, or a mix of sigmoid and tanh (see _node_forward); otherwise runs are
        # members adjacent in the layout and in the step order with the same activation.
        self.run_of = [None] * n_nodes                     # node -> (pack, lo, hi, head node)
        self.mixed = [False] * len(self.packs)             # pack -> activated by the sigmoid/tanh mix
        for p, (gi, members, _) in enumerate(self.packs):
            acts = {self.act[i] for i, _, _ in members}
            if all(len(self.contribs[i]) == 1 for i, _, _ in members) and (
                    (len(acts) == 1 and acts <= set(IN_PLACE)) or acts == {"sigmoid", "tanh"}):
                head = min(i for i, _, _ in members)   # first in the step order: the group has run
                for i, _, _ in members:
                    self.run_of[i] = (p, 0, self.groups[gi].width, head)
                self.mixed[p] = len(acts) > 1
                continue
            run = []
            for i, lo, hi in members + [(None, None, None)]:
                fits = (run and i is not None and i == run[-1][0] + 1 and lo == run[-1][2]
                        and self.act[i] == self.act[run[0][0]] and len(self.contribs[i]) == 1)
                if fits:
                    run.append((i, lo, hi))
                    continue
                if len(run) > 1:
                    for j, _, _ in run:
                        self.run_of[j] = (p, run[0][1], run[-1][2], run[0][0])
                run = [(i, lo, hi)] if (i is not None and self.act[i] in IN_PLACE
                                        and len(self.contribs[i]) == 1) else []

    def _find_folds(self) -> list:
        """node -> (product node, group) for the nodes whose derivative takes in their
        product's other factors before the backward loop, else None.

        A node qualifies when its dL/dv(t) has one writer, an identity delay-0 edge into a
        product node: then dL/da(t) = dL/da_product(t) * (other factors(t) * f'(a(t))), and
        the bracket is known once the forward pass is done.  Multiplying it out for the
        whole sequence at once (``reset``) saves the loop one op per node and step, and
        leaves a pack's members one carrier each (``_merge_folds``).  Pack members of a run
        qualify together or not at all: the run differentiates them in one call."""
        folds = [None] * len(self.nodes)
        for i, outs in enumerate(self.consumers):
            if len(outs) != 1 or self.act[i] not in DERIVATIVES or self.step_der[i] or self.ext_a[i]:
                continue
            gi = outs[0]
            P = self.index[self.groups[gi].edges[0].target]
            if (self.identity[gi] and self.groups[gi].delay == 0 and self.product[P] and self.fresh[i]
                    and sum(self.src[gj] == i for gj, _, _ in self.contribs[P]) == 1):
                folds[i] = (P, gi)
        for head in {run[3] for run in self.run_of if run is not None}:
            members = [j for j, run in enumerate(self.run_of) if run is not None and run[3] == head]
            if any(folds[j] is None for j in members):
                for j in members:
                    folds[j] = None
        return folds

    def product_factors(self, P: int, V, C, H, skip: int | None = None) -> list:
        """The contributions of product node P's groups but ``skip``, as factors for
        ``_multiply_in``: whole sequences (T, B, size), or (sequence, history, delay)
        for delayed identity edges.  Its base's gradient takes them all in; a folded
        node's derivative all but its own group's (``fold_factors``)."""
        factors = []
        for gj, lo, hi in self.contribs[P]:
            if gj == skip:
                continue
            if self.identity[gj]:
                s, d = self.src[gj], self.groups[gj].delay
                factors.append((V[s], H[s], d) if d else V[s])
            else:
                factors.append(C[gj] if hi - lo == self.groups[gj].width else C[gj][:, :, lo:hi])
        return factors

    def fold_factors(self, i: int, V, BS, C, H) -> list:
        """The other factors of folded node i's product: its base and every group but i's."""
        P, gi = self.fold_into[i]
        return ([BS[P]] if self.has_base[P] else []) + self.product_factors(P, V, C, H, skip=gi)

    def pack_scales(self, dtype) -> list:
        """Per pack, the rows of a mixed sigmoid/tanh pack, else None: (scale, shift)
        for the activation (1/2 and 1/2 on sigmoid columns, 1 and 0 on tanh ones) and
        (DM, DC) for its derivative (1 and 0 on sigmoid columns, 0 and 1 on tanh ones)."""
        cache = self.__dict__.setdefault("_scales", {})
        if dtype not in cache:
            cache[dtype] = self._pack_scale_rows(dtype)
        return cache[dtype]

    def _pack_scale_rows(self, dtype) -> list:
        rows = []
        for p, (gi, members, _) in enumerate(self.packs):
            if not self.mixed[p]:
                rows.append(None)
                continue
            scale = np.ones(self.groups[gi].width, dtype)
            shift = np.zeros(self.groups[gi].width, dtype)
            for i, lo, hi in members:
                if self.act[i] == "sigmoid":
                    scale[lo:hi] = 0.5
                    shift[lo:hi] = 0.5
            is_sigmoid = (shift == 0.5).astype(dtype)
            rows.append((scale, shift, is_sigmoid, 1 - is_sigmoid))
        return rows

    # ------------------------------------------------------------------ backward
    def ga_is_gv(self, i: int) -> bool:
        return self.act[i] == "identity" and not self.ext_a[i] and self.pack_of[i] is None

    def _into_seed(self, gi: int) -> bool:
        """Whether group gi adds its output to a seeded buffer (through a (B, width) row)."""
        if self.packed_group[gi] is not None:
            return self.packed_group[gi] in self.seeded
        return self.direct[gi] and self.index[self.groups[gi].edges[0].target] in self.seeded_nodes

    def buffered(self, gi: int) -> bool:
        """Whether group gi's output (and its gradient) has a buffer of its own:
        not written into its target's a, a pack, or read in place (identity)."""
        return not (self.direct[gi] or self.identity[gi] or self.packed_group[gi] is not None)




    def edge_note(self, gi: int) -> str:
        g = self.groups[gi]
        when = f"(t - {g.delay})" if g.delay else "(t)"
        targets = ", ".join(e.target for e in g.edges)
        return f"{g.weight} {g.source}{when} -> {targets}" + (" (one fused GEMM)" if len(g.edges) > 1 else "")

