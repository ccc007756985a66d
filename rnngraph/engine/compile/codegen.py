"""Writing a stage's time loops as Python source named after the graph, and compiling it.

``LoopWriter(layout)`` emits a forward and a backward function for one
``Layout``.  The code is written for few numpy calls a step: every
operation writes into preallocated buffers (``out`` passed positionally),
each view a step reads is unpacked from per-step tuples made before the
loop (``cached_views`` for buffers a workspace keeps, ``call_views`` for
arrays new at every call), and per-step work that a whole sequence can do
is left to ``runtime``.

The emitters write short indexed tokens (``A3`` a node's pre-activations,
``WT0`` a group's transposed weight, ``GAP1`` a pack's dL/da) that the
rewriting rules here match; ``_Naming`` then names every buffer and view
after its node, pack or edge group (``a_hidden``, ``v_context_t_minus_1``,
``W_lstm_h_to_lstm_i_g_f_o``), and a comment above each block of lines says
what part of the graph it computes.  The text is made from indices, numpy
calls and node names reduced to ``[A-Za-z0-9_/]``, never from other spec
text.  ``_Loop.source`` is the code as it runs.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np

from .layout import DEFERRED, DERIVATIVES, IN_PLACE, STEP_DERIVATIVES, ZERO_DERIVATIVE

# The constants the loops name, held as 0-d arrays of the run's dtype (``runtime``): a
# Python float in a ufunc call is converted on every call, which at small sizes costs
# as much as the op.
CONSTANTS = {"HALF": 0.5, "ONE": 1.0, "ZERO": 0.0}

_STEP_VIEW = re.compile(r"\b([A-Z]+\d+)\[t\](\[:, \d+:\d+\])?(\[:, None\]|\.reshape\(-1, \d+, \d+\))?")
# a delayed edge's read of a value (V) or write of a gradient (GV) at step t: the
# sequence at t - d, or before t = 0 the history (H, GH) at t + D - d
_DELAYED = re.compile(r"\(G?V\d+\[t - \d+\] if t >= \d+ else G?H\d+\[t \+ D\d+ - \d+\]\)")
# a placeholder line of the backward body: '#fold <carrier> <node>' (see LoopWriter._merge_folds)
_FOLD_MARK = "#fold"
# lines that only name a view (no array is written)
_BINDING = re.compile(r"^\w+ = [\w\[\]]+$")
# roots that are new arrays at every call (bases, outside gradients): views of them are made
# per call; every other root is a buffer a workspace keeps between calls (histories too:
# a workspace copies each call's into its own, so the delayed reads' views are made once)
_PER_CALL_ROOT = re.compile(r"\b(BSP?|GAX|GVX)\d+\b")
# ufuncs take `out` positionally faster than by keyword (at small sizes a call's overhead
# is what counts); np.maximum deprecates it
_OUT_KEYWORD = re.compile(r"\b(multiply|add|subtract|tanh|exp|sign)\((.*), out=(\w+)\)$")
_UFUNCS = ("matmul", "dot", "multiply", "add", "subtract", "tanh", "maximum", "exp", "copyto", "sign")


class _Loop:
    """One compiled time loop (forward or backward) and the per-step views it reads.

    A loop body refers to step ``t`` of buffers (``AP0[t]``, ``GA3[t][:, 0:6]``, a
    delayed read).  Making a numpy view costs as much as a small op,
    so each distinct view becomes a local unpacked from a list of per-step tuples
    made outside the loop: ``cached_views`` (views of buffers a workspace keeps, so
    made once per workspace) and ``call_views`` (views of arrays new at every call).
    """

    def __init__(self, name: str, args: list[str], preamble: list[str], body: list[str], reverse: bool,
                 per_call_root: re.Pattern, naming: "_Naming", namespace: dict | None = None):
        names: dict = {}
        used: set = set()
        # the loop as written, step t indexed in place: what numba_loops compiles
        self.args, self.preamble, self.step_body, self.reverse = args, preamble, list(body), reverse

        def local(match) -> str:
            expr = match.group(0)
            if expr not in names:
                names[expr] = naming.view(expr, used)
            return names[expr]
        code = [not line.startswith("#") for line in body]
        body = [_DELAYED.sub(local, line) if c else line for line, c in zip(body, code)]
        body = [_STEP_VIEW.sub(local, line) if c else line for line, c in zip(body, code)]
        body = [_OUT_KEYWORD.sub(r"\1(\2, \3)", line) if c else line for line, c in zip(body, code)]
        body = _without_dead_bindings(body)
        body = [line for k, line in enumerate(body)       # no comment over nothing
                if not (line.startswith("# ") and (k + 1 == len(body) or body[k + 1].startswith("# ")))]
        if any(re.search(r"\bt\b", line) for line in body if not line.startswith("#")):
            raise AssertionError(f"loop {name}: a step index is left in the loop body: {body}")
        cached = [(e, n) for e, n in names.items() if not per_call_root.search(e)]
        per_call = [(e, n) for e, n in names.items() if per_call_root.search(e)]
        steps = "range(T - 1, -1, -1)" if reverse else "range(T)"
        signature = ", ".join(args)

        def builder(fname, views):
            items = "".join(f"{e}, " for e, _ in views)
            text = [f"    return [({items}) for t in {steps}]"]
            return [f"def {fname}({signature}):", *_bindings_used(preamble, text), *text]

        def target(views):
            return "(" + "".join(f"\n            {n}," for _, n in views) + "\n        )"
        if cached and per_call:
            header = f"    for {target(cached)}, {target(per_call)} in zip(CV, PV):"
        elif cached or per_call:
            header = f"    for {target(cached or per_call)} in {'CV' if cached else 'PV'}:"
        else:
            header = "    for _ in range(T):"
        body = [header] + ["        " + b for b in body or ["pass"]]
        loop = [f"def {name}({signature}, CV, PV):", *_bindings_used(preamble, body), *body]
        self.has_cached, self.has_per_call = bool(cached), bool(per_call)
        self.cached_views = _compile(naming.rename(builder("cached_views", cached)), "cached_views")
        self.call_views = _compile(naming.rename(builder("call_views", per_call)), "call_views")
        self.run = _compile(_wrapped_def(naming.rename(loop)), name, namespace)
        self.source = self.run.source

    def __call__(self, args: tuple, cached=None):
        """Run the loop on ``args``; ``cached`` is this call's ``cached_views(*args)``
        when a workspace kept them."""
        if cached is None:
            cached = self.cached_views(*args) if self.has_cached else None
        per_call = self.call_views(*args) if self.has_per_call else None
        self.run(*args, cached, per_call)


_LOCAL = re.compile(r"^(a|v|gv|ga) = (\w+)$")     # a loop body's names for the step's current node


def _without_dead_bindings(body: list[str]) -> list[str]:
    """``body`` without the bindings of ``a``, ``v``, ``gv``, ``ga`` that nothing reads
    before the name is bound again (the emitters bind them for lines that may not come).
    A name read at the top of the body before any binding stays live across steps."""
    def reads(line):
        return set() if line.startswith("#") else set(re.findall(r"\b(a|v|gv|ga)\b", line))
    live, bound = set(), set()
    for line in body:
        match = _LOCAL.match(line)
        live |= (reads(line) if not match else {match.group(2)} & {"a", "v", "gv", "ga"}) - bound
        if match:
            bound.add(match.group(1))
    out = []
    for line in reversed(body):
        match = _LOCAL.match(line)
        if match:
            if match.group(1) not in live:
                continue
            live.discard(match.group(1))
            live |= {match.group(2)} & {"a", "v", "gv", "ga"}
        else:
            live |= reads(line)
        out.append(line)
    return out[::-1]


def _bindings_used(preamble: list[str], text: list[str]) -> list[str]:
    """The preamble's bindings (``A0 = A[0]; V0 = V[0]`` ...) that ``text`` reads."""
    used = set(re.findall(r"\b\w+\b", "\n".join(text)))
    out = []
    for line in preamble:
        kept = [b for b in line.strip().split("; ")
                if any(name.strip() in used for name in b.split(" = ")[0].split(","))]
        if kept:
            out.append("    " + "; ".join(kept))
    return out


class _Naming:
    """Readable names for the generated loops: every buffer after its node, pack or
    edge group (``a_hidden``, ``W_lstm_h_to_lstm_i_g_f_o``, ``dv_context``), and every
    per-step view after what it shows (``v_context_t_minus_1``, ``a_lstm_i_t``).

    The compiler writes code with short indexed tokens (``A3``, ``WT2``, ``GAP0``),
    which its rewriting rules match; ``rename`` turns them into these names last.
    Names are made from node names with every character but ``[A-Za-z0-9_]``
    replaced, so they are identifiers whatever a spec calls its nodes."""

    # token prefix -> name prefix, for node (i), group (g) and pack (p) indices
    NODE = {"A": "a", "V": "v", "BS": "base", "H": "hist", "D": "depth", "F": "f", "GV": "dv", "GA": "da",
            "GH": "dhist", "DER": "fprime", "GAX": "da_out", "TP": "tmp", "DN": "fprime_row", "GVX": "dv_out",
            "GVW": "dv_out_w", "GVT": "dv_out_row"}
    GROUP = {"W": "W", "WT": "WT", "C": "c", "GC": "dc", "TMP": "tmp"}
    PACK = {"AP": "a", "VP": "v", "BSP": "base", "GVP": "dv", "GAP": "da", "DERP": "fprime", "DS": "fprime_row",
            "SC": "scale", "SF": "shift", "DM": "dscale", "DC": "dshift"}
    _TOKEN = re.compile(r"\b([A-Z]+)(\d+)(?:_(\d+)_(\d+))?\b")
    # the loops' arguments: a list per kind of buffer (indexed as the tokens are), the
    # ufuncs, the packs' scales, and the per-step views made outside the loop
    ARGS = {"A": "pre", "V": "values", "BS": "bases", "H": "histories", "D": "depths", "W": "weights",
            "WT": "weights_t", "C": "contributions", "F": "activations", "AP": "packed_pre",
            "VP": "packed_values", "BSP": "packed_bases", "K": "constants", "S": "pack_scales",
            "CV": "kept_views", "PV": "call_views", "GV": "dvalues", "GA": "dpre", "GC": "dcontributions",
            "GH": "dhistories", "DER": "derivatives", "GAX": "dpre_outside", "TMP": "scratch", "TP": "tmp",
            "GVP": "packed_dvalues", "GAP": "packed_dpre", "DERP": "packed_derivatives",
            "DS": "packed_derivative_rows", "DN": "derivative_rows", "GVX": "dvalues_outside",
            "GVW": "dvalues_outside_w", "GVT": "dvalues_outside_rows"}
    _ARG = re.compile(r"\b(" + "|".join(sorted(ARGS, key=len, reverse=True)) + r")\b")

    def __init__(self, nodes: list, groups: list, packs: list):
        self.group_members = [list(zip((e.target for e in g.edges), g.offsets, g.offsets[1:])) for g in groups]
        self.pack_members = [[(nodes[i], lo, hi) for i, lo, hi in members] for _, members, _ in packs]
        self.names, used = {}, set(self.ARGS.values()) | set(CONSTANTS)
        tables = [(self.NODE, [_identifier(n) for n in nodes]),
                  (self.GROUP, [f"{_identifier(g.source)}_to_{self.parts([e.target for e in g.edges])}"
                                for g in groups]),
                  (self.PACK, [self.parts([n for n, _, _ in members]) for members in self.pack_members])]
        for prefixes, names in tables:
            for token, kind in prefixes.items():
                for k, name in enumerate(names):
                    self.names[f"{token}{k}"] = _unique(f"{kind}_{name}", used)
        self.taken = frozenset(self.names.values())

    @staticmethod
    def parts(nodes: list) -> str:
        """``lstm/i, lstm/g`` -> ``lstm_i_g``: one block's parts under its name once."""
        blocks = {n.rpartition("/")[0] for n in nodes}
        if len(nodes) > 1 and len(blocks) == 1 and "" not in blocks:
            return _identifier(blocks.pop()) + "_" + "_".join(_identifier(n.rpartition("/")[2]) for n in nodes)
        return "_".join(_identifier(n) for n in nodes)

    def _token(self, match) -> str:
        name = self.names.get(f"{match.group(1)}{match.group(2)}")
        if name is None:
            return match.group(0)
        return name if match.group(3) is None else f"{name}_{match.group(3)}_{match.group(4)}"

    def rename(self, lines: list[str]) -> list[str]:
        """``lines`` with every token and argument replaced by its name (comments as they are)."""
        return [line if line.lstrip().startswith("#") else
                self._ARG.sub(lambda m: self.ARGS[m.group(1)], self._TOKEN.sub(self._token, line))
                for line in lines]

    def view(self, expr: str, used: set) -> str:
        """A name, new in ``used``, for a per-step view ``expr``: what it shows, at step t or t - d."""
        delayed = re.match(r"\((G?V\d+)\[t - (\d+)\]", expr)
        if delayed:
            name = f"{self.names[delayed.group(1)]}_t_minus_{delayed.group(2)}"
        else:
            root = re.match(r"([A-Z]+)(\d+)\[t\](?:\[:, (\d+):(\d+)\])?", expr)
            prefix, k = root.group(1), int(root.group(2))
            name = self.names[f"{prefix}{k}"]
            members = self.pack_members[k] if prefix in self.PACK else \
                self.group_members[k] if prefix in self.GROUP else None
            if members is not None and root.group(3) is not None:   # some columns: the members they hold
                lo, hi = int(root.group(3)), int(root.group(4))
                inside = [n for n, mlo, mhi in members if lo <= mlo and mhi <= hi]
                name = name.split("_", 1)[0] + "_" + (self.parts(inside) if inside else f"{lo}_{hi}")
            name += "_t"
            if expr.endswith("[:, None]"):
                name += "_col"
            elif expr.endswith(")"):
                name += "_blocks"
        name = _unique(name, used | self.taken)
        used.add(name)
        return name


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name, flags=re.ASCII)


def _wrapped_def(lines: list[str], width: int = 100) -> list[str]:
    """``lines`` with a ``def`` line longer than ``width`` split after its commas."""
    head, rest = lines[0], lines[1:]
    if len(head) <= width:
        return lines
    name, _, args = head.partition("(")
    wrapped = textwrap.wrap(args.removesuffix("):"), width - 8, break_long_words=False, break_on_hyphens=False)
    return [f"{name}(", *("        " + part for part in wrapped), "):", *rest]


def _unique(name: str, used: set) -> str:
    """``name``, or ``name_2``, ``name_3``... the first not in ``used`` (which it joins, when a set)."""
    found, k = name, 2
    while found in used:
        found, k = f"{name}_{k}", k + 1
    if isinstance(used, set):
        used.add(found)
    return found

# the numpy functions the loops call, without the __array_function__ dispatcher where
# there is one (np.dot, np.copyto), which costs as much as a small op; the loops only
# ever pass plain ndarrays, which that protocol would hand straight to these anyway
_LOOP_NAMESPACE = {k: getattr(getattr(np, k), "_implementation", getattr(np, k)) for k in _UFUNCS}


_matmul = np.matmul


def _replica_gemm(x, w, out):
    """``out = x @ w`` for replicas whose rows are folded (``replica_scan``): x
    (R * B, k), w (R, k, m) (each replica's own weight), out (R * B, m), any strides.
    Splitting the row axis into (R, B) is always a view, so ``out`` is written."""
    R = w.shape[0]
    _matmul(x.reshape(R, -1, x.shape[-1]), w, out=out.reshape(R, -1, out.shape[-1]))


# the loops of replicas (``replica_scan``): the same code, each replica's GEMM with its own weight
REPLICA_NAMESPACE = {**_LOOP_NAMESPACE, "dot": _replica_gemm, "matmul": _replica_gemm}


def _compile(lines: list[str], name: str, namespace: dict | None = None):
    source = "\n".join(lines)
    namespace = dict(_LOOP_NAMESPACE if namespace is None else namespace)
    exec(compile(source, f"<rnngraph loop {name}>", "exec"), namespace)   # our generated code, not user text
    fn = namespace[name]
    fn.source = source
    return fn


def _gemm(x: str, w: str, out: str, contiguous: bool = True) -> str:
    """``out = x @ w`` for one step: np.dot takes half the time of np.matmul on
    small matrices, but only writes into a C-contiguous ``out``."""
    return f"dot({x}, {w}, {out})" if contiguous else f"matmul({x}, {w}, out={out})"


class LoopWriter:
    """Writes the forward and backward loops of a ``Layout`` and compiles them.

    ``forward`` and ``backward`` are the compiled ``_Loop``s.  The emitters read
    the layout's decisions as their own attributes (``self.packs``,
    ``self.alias`` ...: ``__getattr__`` passes them to the layout); what they
    keep while writing (which gradients a step has written so far) is theirs.
    With ``replicas`` the loops' GEMMs take each replica's own weight
    (``REPLICA_NAMESPACE``; the code is the same).
    """

    def __init__(self, layout, replicas: bool = False):
        self.layout = layout
        self.namespace = REPLICA_NAMESPACE if replicas else None
        n_nodes = len(self.nodes)
        seeded, seeded_nodes = self.seeded, self.seeded_nodes
        # buffers that are new at every call (views of them are made per call): the seeded
        # packs' AP and VP, their members' A and V, and aliases reading those; recycled
        # packs' dL/da and their members' (their AP)
        new_roots = set()
        for p in seeded:
            new_roots |= {f"AP{p}", f"VP{p}"}
        for p in self.recycled:
            new_roots |= {f"GAP{p}"} | {f"GA{i}" for i, _, _ in self.packs[p][1]}
        for i in range(n_nodes):
            if i in seeded_nodes or (self.pack_of[i] is not None and self.pack_of[i][0] in seeded):
                new_roots |= {f"A{i}", f"V{i}"}
            elif self.alias[i] is not None and f"V{self.alias[i]}" in new_roots:
                new_roots |= {f"A{i}", f"V{i}"} if self.act[i] == "identity" else {f"A{i}"}
        self.per_call_root = _PER_CALL_ROOT if not new_roots else re.compile(
            _PER_CALL_ROOT.pattern + "|" + r"\b(" + "|".join(sorted(new_roots)) + r")\b")
        self.naming = _Naming(self.nodes, self.groups, self.packs)
        self.forward = self._forward_loop()
        self.backward = self._backward_loop()

    def __getattr__(self, name):
        return getattr(self.layout, name)

    # ------------------------------------------------------------------ helpers
    def _pack_slice(self, p: int, lo: int, hi: int) -> str:
        """Step t of a pack buffer, columns lo:hi (the whole row, contiguous, if that is all)."""
        return "[t]" if (lo, hi) == (0, self.groups[self.packs[p][0]].width) else f"[t][:, {lo}:{hi}]"

    def _src_expr(self, gi: int) -> str:
        """The source value an inner group reads at step t."""
        g, s = self.groups[gi], self.src[gi]
        if g.delay == 0:
            return f"V{s}[t]"
        return f"(V{s}[t - {g.delay}] if t >= {g.delay} else H{s}[t + D{s} - {g.delay}])"

    def _run_group(self, gi: int) -> list[str]:
        g = self.groups[gi]
        if self.identity[gi]:
            return []                     # read in place where it is used
        src = self._src_expr(gi)
        p = self.packed_group[gi]
        if p in self.seeded:              # AP(t) holds the hoisted input already
            return [_gemm(src, f"WT{gi}", f"C{gi}"), f"add(AP{p}[t], C{gi}, out=AP{p}[t])"]
        if p is not None:
            lines = [_gemm(src, f"WT{gi}", f"AP{p}[t]")]
            if self.packs[p][2]:
                lines.append(f"add(AP{p}[t], BSP{p}[t], out=AP{p}[t])")
            return lines
        tgt = self.index[g.edges[0].target]
        seeded = self.direct[gi] and tgt in self.seeded_nodes   # A(t) holds the hoisted input already
        out = f"A{tgt}[t]" if self.direct[gi] and not seeded else (f"C{gi}[t]" if self.keep[gi] else f"C{gi}")
        lines = [_gemm(src, f"WT{gi}", out)] if g.weight == "dense" else [f"multiply({src}, W{gi}, out={out})"]
        return lines + ([f"add(A{tgt}[t], {out}, out=A{tgt}[t])"] if seeded else [])

    def _contrib_expr(self, gi: int, lo: int, hi: int) -> str:
        """A group's output for one target at step t."""
        if self.identity[gi]:
            return self._src_expr(gi)
        base = f"C{gi}[t]" if self.keep[gi] else f"C{gi}"
        return base if hi - lo == self.groups[gi].width else f"{base}[:, {lo}:{hi}]"

    # ------------------------------------------------------------------ forward
    FORWARD_ARGS = ["T", "A", "V", "BS", "H", "D", "W", "WT", "C", "F", "AP", "VP", "BSP", "K", "S"]

    def _forward_loop(self) -> _Loop:
        lines = ["    " + "; ".join(f"{k} = K[{j}]" for j, k in enumerate(CONSTANTS))]
        for i in range(len(self.nodes)):
            lines.append(f"    A{i} = A[{i}]; V{i} = V[{i}]; BS{i} = BS[{i}]; H{i} = H[{i}]; D{i} = D[{i}]; F{i} = F[{i}]")
        for gi in range(len(self.groups)):
            lines.append(f"    W{gi} = W[{gi}]; WT{gi} = WT[{gi}]; C{gi} = C[{gi}]")
        for p in range(len(self.packs)):
            lines.append(f"    AP{p} = AP[{p}]; VP{p} = VP[{p}]; BSP{p} = BSP[{p}]")
            if self.mixed[p]:
                lines.append(f"    SC{p}, SF{p} = S[{p}][:2]")
        body = []
        for gi, g in enumerate(self.groups):
            if g.delay > 0:
                body += self._commented(self.edge_note(gi), self._run_group(gi))
        for i in range(len(self.nodes)):
            body += self._commented(self._node_note(i), self._node_forward(i))
            for gi in self.consumers[i]:
                if self.groups[gi].delay == 0:
                    body += self._commented(self.edge_note(gi), self._run_group(gi))
        return _Loop("forward", self.FORWARD_ARGS, lines, body, reverse=False, per_call_root=self.per_call_root,
                     naming=self.naming, namespace=self.namespace)

    # ------------------------------------------------------------------ provenance
    @staticmethod
    def _commented(note: str, lines: list[str]) -> list[str]:
        """``lines`` under a comment saying what part of the graph they compute (none
        for no lines).  Names are stripped to ``[\\w/]`` so no spec text becomes code."""
        if not lines:
            return lines
        return ["# " + re.sub(r"[^\w/ ,()\-:=+*.>]", "_", note, flags=re.ASCII)] + lines

    def _node_note(self, i: int) -> str:
        combine = "product" if self.product[i] else "sum"
        run = self.run_of[i]
        if run is None or run[3] != i:
            return f"{self.nodes[i]}(t) = {self.act[i]}({combine} of its inputs)"
        members = sorted((j for j, r in enumerate(self.run_of) if r is not None and r[3] == i),
                         key=lambda j: self.pack_of[j][1])      # activated together, in column order
        acts = "/".join(dict.fromkeys(self.act[j] for j in members))
        return f"{', '.join(self.nodes[j] for j in members)}(t) = {acts}(their pre-activations, in one pass)"

    def _node_forward(self, i: int) -> list[str]:
        out = []
        packed = self.pack_of[i] is not None
        if self.alias[i] is None:         # an alias's a(t) is its source's value already
            seeded = i in self.seeded_nodes       # a(t) holds the hoisted input already
            terms = [f"BS{i}[t]"] if (self.has_base[i] and not packed and not seeded) else []
            ready = packed or seeded or any(self.direct[gi] for gi, _, _ in self.contribs[i])
            terms += [self._contrib_expr(gi, lo, hi) for gi, lo, hi in self.contribs[i]
                      if not self.direct[gi] and self.packed_group[gi] is None]
            if terms:
                out.append(f"a = A{i}[t]")
            op = "multiply" if self.product[i] else "add"
            if ready:                         # a(t) already holds the direct or packed group's output
                out += [f"{op}(a, {term}, out=a)" for term in terms]
            elif len(terms) == 1:
                out.append(f"copyto(a, {terms[0]})")
            else:
                out.append(f"{op}({terms[0]}, {terms[1]}, out=a)")
                out += [f"{op}(a, {term}, out=a)" for term in terms[2:]]
        act = self.act[i]
        if act == "identity":             # V is A (the same buffer)
            return out
        run = self.run_of[i]
        if run is not None:
            p, lo, hi, head = run
            if head != i:
                return out                # activated with its run's head
            sl = self._pack_slice(p, lo, hi)
            out += [f"a = AP{p}{sl}", f"v = VP{p}{sl}"]
            if self.mixed[p]:
                # sigmoid(a) = tanh(a/2)/2 + 1/2 and tanh(a) in one pass each: scale SC{p} is
                # 1/2 on sigmoid columns and 1 on tanh ones, shift SF{p} 1/2 and 0.  A prescaled
                # pack's a(t) is SC{p} a already (exactly: the scales are powers of two)
                scaled = ["tanh(a, out=v)"] if p in self.prescaled else [f"multiply(a, SC{p}, out=v)", "tanh(v, out=v)"]
                out += scaled + [f"multiply(v, SC{p}, out=v)", f"add(v, SF{p}, out=v)"]
            else:
                out += IN_PLACE[act]
            return out
        out += [f"a = A{i}[t]", f"v = V{i}[t]"]
        out += IN_PLACE[act] if act in IN_PLACE else [f"v[...] = F{i}(a)"]
        return out

    BACKWARD_ARGS = ["T", "A", "V", "BS", "H", "D", "W", "WT", "C", "GV", "GA", "GC", "GH", "DER", "GAX", "TMP", "F",
                     "TP", "GVP", "GAP", "DERP", "DS", "VP", "DN", "GVX", "GVW", "GVT", "K", "S"]

    def _backward_loop(self) -> _Loop:
        lines = ["    " + "; ".join(f"{k} = K[{j}]" for j, k in enumerate(CONSTANTS))]
        for i in range(len(self.nodes)):
            lines.append(f"    A{i} = A[{i}]; V{i} = V[{i}]; BS{i} = BS[{i}]; D{i} = D[{i}]; GV{i} = GV[{i}]; "
                         f"TP{i} = TP[{i}]; H{i} = H[{i}]; GA{i} = GA[{i}]; GH{i} = GH[{i}]; DER{i} = DER[{i}]; "
                         f"GAX{i} = GAX[{i}]; F{i} = F[{i}]; DN{i} = DN[{i}]; GVX{i} = GVX[{i}]; "
                         f"GVW{i} = GVW[{i}]; GVT{i} = GVT[{i}]")
        for gi in range(len(self.groups)):
            lines.append(f"    W{gi} = W[{gi}]; C{gi} = C[{gi}]; GC{gi} = GC[{gi}]; TMP{gi} = TMP[{gi}]")
        for p in range(len(self.packs)):
            lines.append(f"    GVP{p} = GVP[{p}]; GAP{p} = GAP[{p}]; DERP{p} = DERP[{p}]; VP{p} = VP[{p}]")
            if self.mixed[p]:
                lines.append(f"    DM{p}, DC{p} = S[{p}][2:]")
        body = []
        self._written = set()             # fresh nodes whose dL/dv(t) this step has been written
        self._written_before = set()      # rolling nodes whose dL/dv(t - 1) this step has been written
        self._scratch = set()             # (pack, lo, hi): columns of DS the step derivatives use
        for i in reversed(range(len(self.nodes))):
            for gi in self.consumers[i]:
                if self.groups[gi].delay == 0:
                    body += self._commented("back through " + self.edge_note(gi), self._send(gi))
            body += self._commented(f"dL/da of {self.nodes[i]}(t)", self._node_backward(i))
        for gi, g in enumerate(self.groups):
            if g.delay > 0:
                body += self._commented("back through " + self.edge_note(gi), self._send(gi))
        lines += [f"    {self._scratch_name(p, lo, hi)} = DS[{p}][:, {lo}:{hi}]" for p, lo, hi in sorted(self._scratch)]
        body = self._merge_folds(body)
        return _Loop("backward", self.BACKWARD_ARGS, lines, body, reverse=True, per_call_root=self.per_call_root,
                     naming=self.naming, namespace=self.namespace)

    def _gv_name(self, i: int) -> str:
        """The buffer holding node i's dL/dv (through gradient aliases)."""
        tgt = self.galias[i]
        return f"GV{i}" if tgt is None else self._ga_name(tgt)

    def _ga_name(self, i: int) -> str:
        """The buffer holding node i's dL/da."""
        return self._gv_name(i) if self.ga_is_gv(i) else f"GA{i}"

    def _merge_folds(self, body: list[str]) -> list[str]:
        """Write out the folded nodes' dL/da (placeholders from _identity_backward).

        Each is one multiply: carrier (its product's dL/da) times its folded derivative.
        Consecutive ones (nothing but names bound between them) with one carrier into
        adjacent equal-width columns of one pack become one broadcast multiply: an
        LSTM's i, f and g all take dL/dc, so one call writes 3H columns."""
        out, block = [], []

        def flush():
            by_carrier: dict = {}
            for carrier, m in block:
                key = (carrier, self.pack_of[m][0] if self.pack_of[m] is not None else None)
                by_carrier.setdefault(key, []).append(m)
            for (carrier, p), members in by_carrier.items():
                spans = sorted(self.pack_of[m][1:] for m in members) if p is not None else []
                widths = {hi - lo for lo, hi in spans}
                if len(members) > 1 and len(widths) == 1 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])):
                    (w,), lo, hi = widths, spans[0][0], spans[-1][1]
                    cols = f"{self._pack_slice(p, lo, hi)}.reshape(-1, {len(members)}, {w})"
                    out.append(f"multiply({carrier}[:, None], DERP{p}{cols}, out=GAP{p}{cols})")
                    continue
                for m in members:
                    if p is None:
                        out.append(f"multiply({carrier}, DER{m}[t], out=GA{m}[t])")
                    else:
                        sl = self._pack_slice(*self.pack_of[m])
                        out.append(f"multiply({carrier}, DERP{p}{sl}, out=GAP{p}{sl})")
            block.clear()

        written = set()                  # what the block's writes write: a later carrier may not be one
        for line in body:
            if line.startswith(_FOLD_MARK):
                _, carrier, m = line.split()
                m = int(m)
                dst = f"GA{m}[t]"
                if carrier in written:
                    flush()
                    written.clear()
                block.append((carrier, m))
                written.add(dst)
            elif not _BINDING.match(line) and not line.startswith("# "):   # a comment: as if not there
                flush()
                written.clear()
                out.append(line)
            else:
                out.append(line)
        flush()
        return out

    def _scratch_name(self, p: int, lo: int, hi: int) -> str:
        self._scratch.add((p, lo, hi))
        return f"DS{p}_{lo}_{hi}"

    def _step_derivative(self, p: int, lo: int, hi: int):
        """Lines computing the derivative of pack p's columns lo:hi at step t
        into scratch, and the expression holding it; None if some column's
        derivative is computed for the whole sequence instead."""
        spans = [s for s in self.step_spans if s[0] == p and lo <= s[1] and s[2] <= hi]
        if sum(h - l for _, l, h, _ in spans) != hi - lo:
            return None
        lines, factor = [], None
        for _, dlo, dhi, act in spans:
            v, d = f"VP{p}{self._pack_slice(p, dlo, dhi)}", self._scratch_name(p, dlo, dhi)
            if act == "mixed":
                new, factor = [f"subtract(DM{p}, {v}, out={d})", f"multiply({d}, {v}, out={d})",
                               f"add({d}, DC{p}, out={d})"], d
            else:
                new, factor = STEP_DERIVATIVES[act](v, d)
            lines += new
        if len(spans) > 1:
            assert all(STEP_DERIVATIVES[a]("v", "d")[1] == "d" for _, _, _, a in spans)
            factor = self._scratch_name(p, lo, hi)
        return lines, factor

    def _node_backward(self, i: int) -> list[str]:
        act = self.act[i]
        run = self.run_of[i]
        if run is not None:
            p, lo, hi, head = run
            if head != i or self.fold_into[i] is not None:
                return []                 # its run's head (last in reverse order) differentiates the run
            sl = self._pack_slice(p, lo, hi)
            step = self._step_derivative(p, lo, hi)
            if act == "one_minus":
                # 0 - g, not negative(): numpy 2.4.6's in-place negative is wrong at some strides
                out = [f"subtract(ZERO, GVP{p}{sl}, out=GAP{p}{sl})"]
            elif step is not None:
                out = step[0] + [f"multiply(GVP{p}{sl}, {step[1]}, out=GAP{p}{sl})"]
            else:
                out = [f"multiply(GVP{p}{sl}, DERP{p}{sl}, out=GAP{p}{sl})"]
            for j in range(len(self.nodes)):
                if self.run_of[j] is not None and self.run_of[j][3] == i and self.ext_a[j]:
                    out.append(f"add(GA{j}[t], GAX{j}[t], out=GA{j}[t])")
            return out
        out = [f"gv = GV{i}[t]"]
        if self.rolling[i] and self.ext_v[i] == DEFERRED:   # dL/dv from outside = g @ W, a row at a time
            out += [_gemm(f"GVX{i}[t]", f"GVW{i}", f"GVT{i}"), f"add(gv, GVT{i}, out=gv)"]
        elif self.rolling[i] and self.ext_v[i]:
            out.append(f"add(gv, GVX{i}[t], out=gv)")     # dL/dv from outside, step by step
        if self.ga_is_gv(i):
            out.append("ga = gv")
        else:
            out.append(f"ga = GA{i}[t]")
            if self.fold_into[i] is not None:
                pass                      # its product wrote dL/da (see _find_folds)
            elif act == "identity":
                out.append("copyto(ga, gv)")
            elif act == "one_minus":
                out.append("subtract(ZERO, gv, out=ga)")   # not negative(): wrong at some strides in numpy 2.4.6
            elif act in ZERO_DERIVATIVE:
                out.append("ga.fill(0)")
            elif self.step_der[i]:
                # ga may be gv (one buffer): the derivative goes to scratch
                packed = self.pack_of[i]
                d = self._scratch_name(*packed) if packed is not None else f"DN{i}"
                lines, factor = STEP_DERIVATIVES[act](f"V{i}[t]", d)
                out += lines + [f"multiply(gv, {factor}, out=ga)"]
            elif act in DERIVATIVES:
                out.append(f"multiply(gv, DER{i}[t], out=ga)")
            else:
                out.append(f"ga[...] = F{i}(gv, A{i}[t], V{i}[t])")
            if self.ext_a[i]:
                out.append(f"add(ga, GAX{i}[t], out=ga)")
        # folded sources last: their placeholders then run on into the next node's (_merge_folds)
        for gi, lo, hi in sorted(self.contribs[i], key=lambda c: self.fold_into[self.src[c[0]]] is not None):
            if self.direct[gi] or self.packed_group[gi] is not None:
                continue                  # their gradient is this node's GA, read in place
            if self.identity[gi]:
                out += self._identity_backward(i, gi, lo)
                continue
            dst = f"GC{gi}[t]" if hi - lo == self.groups[gi].width else f"GC{gi}[t][:, {lo}:{hi}]"
            if not self.product[i]:
                out.append(f"copyto({dst}, ga)")
                continue
            factors = self._factors_except(i, gi, lo)
            if not factors:
                out.append(f"copyto({dst}, ga)")
            else:
                out.append(f"multiply(ga, {factors[0]}, out={dst})")
                out += [f"multiply({dst}, {f}, out={dst})" for f in factors[1:]]
        return out

    def _factors_except(self, i: int, gi: int, lo: int) -> list[str]:
        factors = [f"BS{i}[t]"] if self.has_base[i] else []
        return factors + [self._factor_expr(gj, lj, hj) for gj, lj, hj in self.contribs[i] if (gj, lj) != (gi, lo)]

    def _factor_expr(self, gi: int, lo: int, hi: int) -> str:
        """A product node's factor at step t (kept group outputs, or identity sources)."""
        if self.identity[gi]:
            return self._src_expr(gi)
        return f"C{gi}[t]" if hi - lo == self.groups[gi].width else f"C{gi}[t][:, {lo}:{hi}]"

    def _into_source(self, gi: int, produce) -> list[str]:
        """Lines that compute a gradient for group gi's source and accumulate
        it; ``produce(out)`` writes it into the buffer ``out``.  The first
        writer of a fresh source writes its dL/dv(t) directly."""
        first = self._first_writer(gi)
        if first is not None:
            return produce(first)
        return produce(f"TMP{gi}") + self._add_to_source(gi, f"TMP{gi}")

    def _first_writer(self, gi: int) -> str | None:
        """Where group gi's gradient for its source can be written outright (it is
        the step's first contribution to that buffer), else None: then it is added."""
        g, s = self.groups[gi], self.src[gi]
        if g.delay == 0:
            if self.fresh[s] and s not in self._written:
                self._written.add(s)
                return f"GV{s}[t]"
            return None
        if self._assigns_delayed(s) and s not in self._written_before:
            self._written_before.add(s)
            return self._earlier(gi)
        return None

    def _assigns_delayed(self, s: int) -> bool:
        """Whether the first delayed consumer of s to send at step t writes dL/dv(t - d)
        outright.  Step t is the first to reach that row when every delayed consumer has
        the same delay d (same-step consumers come at step t - d, later), and the row holds
        nothing yet when no outside gradient was copied into it (a rolling node adds its
        own at its step)."""
        delays = {self.groups[gi].delay for gi in self.consumers[s]} - {0}
        return self.galias[s] is None and (self.rolling[s] or not self.ext_v[s]) and len(delays) == 1

    def _earlier(self, gi: int) -> str:
        """dL/dv of group gi's source at the step its delayed edge reads (or its history)."""
        d, s = self.groups[gi].delay, self.src[gi]
        return f"(GV{s}[t - {d}] if t >= {d} else GH{s}[t + D{s} - {d}])"

    def _add_to_source(self, gi: int, gx: str) -> list[str]:
        g, s = self.groups[gi], self.src[gi]
        if self.galias[s] is not None:
            self._written.add(s)
            return []                     # its GV is the target's GA: nothing to send
        first = self._first_writer(gi)
        if first is not None:
            return [f"copyto({first}, {gx})"]
        dst = f"GV{s}[t]" if g.delay == 0 else self._earlier(gi)
        return [f"add({dst}, {gx}, out={dst})"]

    def _identity_backward(self, i: int, gi: int, lo: int) -> list[str]:
        """An identity edge's gradient goes straight to its source (no buffer)."""
        s = self.src[gi]
        if self.fold_into[s] == (i, gi):
            self._written.add(s)
            return [f"{_FOLD_MARK} {self._ga_name(i)}[t] {s}"]   # see _merge_folds
        factors = self._factors_except(i, gi, lo) if self.product[i] else []
        if not factors:
            return self._add_to_source(gi, "ga")

        def produce(out):
            return [f"multiply(ga, {factors[0]}, out={out})"] + [f"multiply({out}, {f}, out={out})"
                                                                 for f in factors[1:]]
        first = self._first_writer(gi)
        if first is not None:
            return produce(first)
        return produce(f"TP{i}") + self._add_to_source(gi, f"TP{i}")

    def _send(self, gi: int) -> list[str]:
        """Pass group gi's gradient at step t back to its source."""
        g = self.groups[gi]
        if self.identity[gi]:
            return []                     # sent by the target node itself
        p = self.packed_group[gi]
        tgt = self.index[g.edges[0].target]
        if p is not None:
            gc = f"GAP{p}[t]"
        elif self.direct[gi]:
            gc = ("GV" if self.ga_is_gv(tgt) else "GA") + f"{tgt}[t]"
        else:
            gc = f"GC{gi}[t]"
        if g.weight != "dense":
            return self._into_source(gi, lambda out: [f"multiply({gc}, W{gi}, out={out})"])
        # a pack member's GV is a column slice, not C-contiguous: np.dot cannot write into it
        contiguous = self.pack_of[self.src[gi]] is None
        return self._into_source(gi, lambda out: [_gemm(gc, f"W{gi}", out, contiguous or out.startswith("TMP"))])

