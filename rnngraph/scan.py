"""The time loop of one recurrent component, as a single autodiff op.

``scan`` runs a recurrent ``Stage`` of a ``Plan`` forward over ``T`` steps and
records one VJP that runs the loop backward (BPTT).  At step ``t``
(SPEC.md semantics, restricted to the component)::

    C_g(t) = W_g(v_s(t - d))                for each inner group g (source s, delay d)
    a_n(t) = base_n(t) + sum_k C_{g,k}(t)   (sum nodes; base = hoisted edges + bias)
           | base_n(t) * prod_k C_{g,k}(t)  (product nodes; base = hoisted factors)
    v_n(t) = f_n(a_n(t))

Per-step Python overhead is what limits small recurrent nets, so each stage
is compiled once into a specialised loop: ``_Compiler`` writes the Python
source of a forward and a backward function for this stage's structure (the
text is made only from indices and numpy calls, never from user strings) and
``compile()`` turns it into code.  Inside the loops every operation writes
into preallocated buffers (positional ``out``), the views each step reads
are unpacked from tuples made before the loop, per-step contributions that
feed a single sum node are computed straight into its pre-activation,
and weight gradients are one GEMM per group after the backward loop.  A
training step passes a workspace: the buffers and the per-step views then
live from one step to the next instead of being made at every call.

Large stages (``LARGE_STAGE_BYTES``) are laid out for memory, small ones for
the fewest numpy calls per step.  Small: activations' derivatives are
computed for the whole sequence before the backward loop.  Large: they are
computed per step from the values (no (T, B, n) array, rows in cache);
dL/dv needed only at its own step and the next is two rows used in turn
(``_Compiler.rolling``); and in a training step a hoisted input becomes its
node's or pack's pre-activation buffer, over which a pack's dL/da is then
written step by step (``_Compiler.recycled``).  Either way, values and
gradients that are only needed at their own step (``_Compiler.transient``;
dL/dv and dL/da no gradient reads after the loop) share one (B, n) row
across steps through a stride-0 view.  The values are ``StepVar``s: a dense
readout hands back their dL/dv as g @ W (``ad.Deferred``), which a small
stage computes straight into its dL/dv buffer and a large one a row at a
time in the loop (no (T, B, n) array of it).

Shapes: sequences are time-major ``(T, B, size)``; histories ``(D, B, size)``
hold a node's values at times ``-D .. -1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS
from . import autodiff as ad
from .autodiff import Var, _tape_of

# the compiler's tables, derived from each activation's one definition (activations.py):
# whole-sequence derivatives written into `out` (no temporaries: at large sizes every extra
# pass over (T, B, n) costs), per-step derivatives from the value (large sequences: no
# (T, B, n) derivative array, and the step's rows are in cache), in-place forward calls
_DERIVATIVES = {name: f.derivative for name, f in ACTIVATIONS.items() if f.derivative is not None}
_ZERO_DERIVATIVE = tuple(name for name, f in ACTIVATIONS.items() if f.zero_derivative)
_STEP_DERIVATIVES = {name: f.step_derivative for name, f in ACTIVATIONS.items() if f.from_value is not None}
_INPLACE = {name: list(f.in_place) for name, f in ACTIVATIONS.items() if f.in_place}
# activations whose derivative needs only the value v (or nothing): their pre-activation
# can share v's buffer when no one reads it
LEAN_ACTIVATIONS = frozenset(name for name, f in ACTIVATIONS.items() if f.needs_only_value)

# A stage whose sequences (T x B x all its nodes' sizes) take at least this many bytes is
# laid out for memory: derivatives per step, and in a training step each pack's hoisted
# input becomes its pre-activation buffer.  Well below it the extra per-step ops and views
# cost more than they save (13% at LSTM (8,32,16,50), 0.5 MB); between 2 and 8 MB the two
# layouts time the same (RNN and LSTM, min of interleaved runs); above, large is 3-7% faster.
LARGE_STAGE_BYTES = 4 << 20

# ext_v[i] when node i's dL/dv from outside is an ``ad.Deferred`` (g @ W of a dense readout):
# a rolling node computes it a row at a time, others write it into their dL/dv buffer
DEFERRED = 2

# Constants the loops use, as 0-d arrays of the run's dtype: a Python float in a
# ufunc call is converted on every call, which at small sizes costs as much as the op.
_CONSTANT_NAMES = ("HALF", "ONE", "ZERO")
_CONSTANT_VALUES = (0.5, 1.0, 0.0)


_CONSTANTS: dict = {}


def _constants(dtype) -> tuple:
    found = _CONSTANTS.get(dtype)     # a dtype, or anything np.dtype takes
    if found is None:
        found = _CONSTANTS[dtype] = tuple(np.array(c, dtype) for c in _CONSTANT_VALUES)
    return found


def _weight_grad(kind, g_seq, x_seq):
    """dL/dW summed over all steps: one GEMM for dense edges."""
    if kind == "dense":
        return g_seq.reshape(-1, g_seq.shape[-1]).T @ x_seq.reshape(-1, x_seq.shape[-1])
    if kind == "diagonal":
        return np.einsum("tbn,tbn->n", g_seq, x_seq)
    return np.asarray(np.vdot(g_seq, x_seq), dtype=g_seq.dtype)


def _multiply_in(out, factor) -> None:
    """``out *= factor`` for a whole-sequence factor (T, B, n), or for a source as a
    delayed edge reads it, (sequence, history, delay): the history before t = delay,
    the sequence shifted by delay after (no shifted copy is made)."""
    if not isinstance(factor, tuple):
        np.multiply(out, factor, out=out)
        return
    seq, hist, delay = factor
    T, D = out.shape[0], hist.shape[0]
    k = min(delay, T)
    np.multiply(out[:k], hist[D - delay:D - delay + k], out=out[:k])
    if T > delay:
        np.multiply(out[delay:], seq[:T - delay], out=out[delay:])


class FusedOutput:
    """The output of a fused sequence group, ``(T, B, width)``, split into its
    targets' columns only when someone needs a piece on its own."""

    def __init__(self, var: Var, offsets: list):
        self.var, self.offsets, self._pieces = var, offsets, None

    @property
    def unsplit(self) -> bool:
        return self._pieces is None

    def piece(self, k: int) -> Var:
        if self._pieces is None:
            self._pieces = ad.split(self.var, self.offsets)
        return self._pieces[k]


class Columns:
    """A node's base as a deferred value: columns ``k`` of a fused group's output,
    plus the node's bias.  ``scan`` takes a pack's base straight from the fused
    output when the columns line up with the pack (no split, no concatenation:
    ``x -> lstm/{i,f,o,g}`` plus the four biases is the pack's base as it is)."""

    def __init__(self, fused: FusedOutput, k: int, bias: Var | None = None):
        self.fused, self.k, self.bias = fused, k, bias

    @property
    def span(self) -> tuple:
        return self.fused.offsets[self.k], self.fused.offsets[self.k + 1]

    def var(self) -> Var:
        v = self.fused.piece(self.k)
        return ad.add(v, self.bias) if self.bias is not None else v


def _var(base) -> Var:
    return base.var() if isinstance(base, Columns) else base


def _pack_base(parts: list, spans: list, width: int, dtype) -> tuple[Var, bool]:
    """The base of a pack (T, B, width) from its members' bases (Vars or Columns),
    and whether its array is the pack's own: made for it alone, read by no one
    else, and by no VJP (so the loop may write into it)."""
    fused = parts[0].fused if isinstance(parts[0], Columns) else None
    if (fused is not None and fused.offsets[-1] == width
            and all(isinstance(b, Columns) and b.fused is fused and b.span == span for b, span in zip(parts, spans))):
        # the GEMM's output feeds this pack alone (unless split) and its VJP reads only its inputs
        if all(b.bias is None for b in parts):
            return fused.var, fused.unsplit
        biases = [b.bias if b.bias is not None else ad.const(np.zeros(hi - lo, dtype))
                  for b, (lo, hi) in zip(parts, spans)]
        # the biases go into it in place, saving a (T, B, width) array
        add = ad.add_into if fused.unsplit else ad.add
        return add(fused.var, ad.concat(biases, axis=0)), True
    return ad.concat([_var(b) for b in parts], axis=-1), True


_STEP_VIEW = re.compile(r"\b([A-Z]+\d+)\[t\](\[:, \d+:\d+\])?(\[:, None\]|\.reshape\(-1, \d+, \d+\))?")
# a delayed edge's read of a value (V) or write of a gradient (GV) at step t: the
# sequence at t - d, or before t = 0 the history (H, GH) at t + D - d
_DELAYED = re.compile(r"\(G?V\d+\[t - \d+\] if t >= \d+ else G?H\d+\[t \+ D\d+ - \d+\]\)")
# a placeholder line of the backward body: '#fold <carrier> <node>' (see _Compiler._merge_folds)
_FOLD_MARK = "#fold"
# lines that only name a view (no array is written)
_BINDING = re.compile(r"^\w+ = [\w\[\]]+$")
# roots that are new arrays at every call (bases, outside gradients): views of them are made
# per call; every other root is a buffer a workspace keeps between calls (histories too:
# a workspace copies each call's into its own, so the delayed reads' views are made once)
_PER_CALL_ROOT = re.compile(r"\b(BSP?|GAX|GVX)\d+\b")
# ufuncs take `out` positionally faster than by keyword (~50 ns a call at small sizes);
# np.maximum deprecates it
_OUT_KEYWORD = re.compile(r"\b(multiply|add|subtract|tanh|exp|sign)\((.*), out=(\w+)\)$")
_UFUNCS = ("matmul", "dot", "multiply", "add", "subtract", "tanh", "maximum", "exp", "copyto", "sign")


@dataclass
class LoopLayout:
    """What the loop compiler decided for one recurrent stage, and why: a row per
    node, per edge group run inside the loop and per pack (fused pre-activations),
    each ``(what, [reasons])``.  ``str()`` prints it."""

    nodes: list
    groups: list
    packs: list
    large: bool

    def __str__(self) -> str:
        lines = ["layout for " + ("large sequences (memory first)" if self.large else "small sequences (fewest calls)")]
        for title, rows in (("nodes", self.nodes), ("edges run each step", self.groups), ("packs", self.packs)):
            if rows:
                lines.append(f"  {title}:")
                for k, (what, why) in enumerate(rows):
                    label = f"pack {k}: {what}" if title == "packs" else what
                    lines.append(f"    {label}")
                    lines += [f"      - {reason}" for reason in why]
        return "\n".join(lines)


class _Loop:
    """One compiled time loop (forward or backward) and the per-step views it reads.

    A loop body refers to step ``t`` of buffers (``AP0[t]``, ``GA3[t][:, 0:6]``, a
    delayed read).  Making a numpy view costs ~0.1-0.2 us, as much as a small op,
    so each distinct view becomes a local unpacked from a list of per-step tuples
    made outside the loop: ``cached_views`` (views of buffers a workspace keeps, so
    made once per workspace) and ``call_views`` (views of arrays new at every call).
    """

    def __init__(self, name: str, args: list[str], preamble: list[str], body: list[str], reverse: bool,
                 per_call_root: re.Pattern, naming: "_Naming"):
        names: dict = {}
        used: set = set()

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
            raise AssertionError(f"scan {name}: a step index is left in the loop body: {body}")
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
        self.run = _compile(naming.rename(loop), name)
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

    def __init__(self, nodes: list, groups: list, packs: list):
        self.group_members = [list(zip((e.target for e in g.edges), g.offsets, g.offsets[1:])) for g in groups]
        self.pack_members = [[(nodes[i], lo, hi) for i, lo, hi in members] for _, members, _ in packs]
        self.names, used = {}, set()
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
        """``lines`` with every token replaced by its name (comments as they are)."""
        return [line if line.lstrip().startswith("#") else self._TOKEN.sub(self._token, line) for line in lines]

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


def _unique(name: str, used: set) -> str:
    """``name``, or ``name_2``, ``name_3``... the first not in ``used`` (which it joins, when a set)."""
    found, k = name, 2
    while found in used:
        found, k = f"{name}_{k}", k + 1
    if isinstance(used, set):
        used.add(found)
    return found

# the numpy functions the loops call, without the __array_function__ dispatcher where
# there is one (np.dot, np.copyto): ~0.25 us a call, a third of a small np.dot; the loops
# only ever pass plain ndarrays, which that protocol would hand straight to these anyway
_LOOP_NAMESPACE = {k: getattr(getattr(np, k), "_implementation", getattr(np, k)) for k in _UFUNCS}


def _compile(lines: list[str], name: str):
    source = "\n".join(lines)
    namespace = dict(_LOOP_NAMESPACE)
    exec(compile(source, f"<rnngraph scan {name}>", "exec"), namespace)   # our generated code, not user text
    fn = namespace[name]
    fn.source = source
    return fn


def _gemm(x: str, w: str, out: str, contiguous: bool = True) -> str:
    """``out = x @ w`` for one step: np.dot takes half the time of np.matmul on
    small matrices, but only writes into a C-contiguous ``out``."""
    return f"dot({x}, {w}, {out})" if contiguous else f"matmul({x}, {w}, out={out})"


class _Compiler:
    """Writes and compiles the forward and backward loops of one stage.

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
        # _STEP_DERIVATIVES); the others' is computed for the whole sequence before it
        self.step_der = [step_derivatives and a in _STEP_DERIVATIVES for a in self.act]
        # seeded packs and nodes (not in packs, sum): their hoisted input arrives as their
        # pre-activation buffer, AP or A (see scan), and the loop adds to it
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
                if act not in _DERIVATIVES and not self.step_der[i]:
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
        # gradient costs more than a copy of the whole sequence (5% of a tiny RNN step).
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
        self.fold_into = self._find_folds() if fold and not step_derivatives else [None] * n_nodes
        self.naming = _Naming(self.nodes, self.groups, self.packs)
        self.forward = self._forward_loop()
        self.backward = self._backward_loop()
        self.F = [ACTIVATIONS[a].forward for a in self.act]        # forward functions, for the generic path
        self.FV = [ACTIVATIONS[a].vjp for a in self.act]       # and their VJPs
        self._lean: dict = {}
        self._transient: dict = {}
        self.total_size = sum(self.size)

    def layout(self, forward: "_Compiler | None" = None) -> "LoopLayout":
        """What this compilation decided, per node, edge group and pack, and why;
        ``forward``: the compilation whose forward loop ran with it, where that is
        another (it alone knows which packs come prescaled)."""
        prescaled = (forward or self).prescaled
        nodes = self.nodes
        packs = []
        for p, (gi, members, with_base) in enumerate(self.packs):
            why = [f"one pre-activation buffer for {', '.join(nodes[i] for i, _, _ in members)} (the columns of "
                   f"their fused GEMM), so the GEMM{' and the bias add are' if with_base else ' is'} one call a step"]
            if self.mixed[p]:
                why.append("sigmoid and tanh columns activated and differentiated in one pass each")
            if p in prescaled:
                why.append("sigmoid columns of its weights and base come halved, saving a call a step "
                           "(exact: a power of two)")
            if p in self.seeded:
                why.append("its hoisted input array is its pre-activation buffer (large stage, training step)")
            if p in self.recycled:
                why.append("each step's dL/da is written over its values, which nothing reads again")
            packs.append((", ".join(nodes[i] for i, _, _ in members), why))
        node_rows = []
        for i, n in enumerate(nodes):
            why = []
            if self.has_base[i]:
                why.append("its edges from outside the loop arrive as one array computed before the loop (hoisted)")
            if self.pack_of[i] is not None:
                p, lo, hi = self.pack_of[i]
                why.append(f"pre-activation is columns {lo}:{hi} of pack {p}")
            if self.alias[i] is not None:
                why.append(f"a(t) is {nodes[self.alias[i]]}'s value (one identity input at delay 0): no copy")
            if any(self.direct[gi] for gi, _, _ in self.contribs[i]):
                why.append("its one per-step GEMM writes straight into a(t)")
            if i in self.seeded_nodes:
                why.append("its hoisted input array is its pre-activation buffer (large stage, training step)")
            if self.galias[i] is not None:
                why.append(f"dL/dv is {nodes[self.galias[i]]}'s dL/da (one identity consumer at delay 0): no copy")
            elif self.fresh[i]:
                why.append("dL/dv(t) is written by its first same-step consumer: no zeroing, no add")
            if self.rolling[i]:
                why.append("dL/dv lives in two rows used in turn (needed at t and t + 1 only)")
            if self.transient[i]:
                why.append("its value is needed only at its own step")
            if self.fold_into[i] is not None:
                why.append(f"the other factors of {nodes[self.fold_into[i][0]]} are multiplied into its derivative "
                           f"before the loop, and that product writes its dL/da")
            elif self.step_der[i]:
                why.append("derivative computed in the loop from the step's value (large stage)")
            elif self.act[i] in _DERIVATIVES:
                why.append("derivative computed for the whole sequence before the backward loop")
            if self.ext_v[i] or self.ext_a[i]:
                why.append("takes a gradient from outside the loop (a loss or a later stage)")
            node_rows.append((f"{n}: {self.act[i]}, {'product' if self.product[i] else 'sum'}", why))
        group_rows = []
        for gi, g in enumerate(self.groups):
            if self.identity[gi]:
                why = ["no op: its target reads the source's buffer in place"]
            elif self.packed_group[gi] is not None:
                why = [f"one GEMM a step into pack {self.packed_group[gi]}"]
            elif self.direct[gi]:
                why = [f"one {'GEMM' if g.weight == 'dense' else 'multiply'} a step straight into "
                       f"{g.edges[0].target}'s a(t)"]
            else:
                why = ["one op a step into a row of its own"]
            if self.keep[gi]:
                why.append("its output is kept for every step: a product needs it again in the backward pass")
            group_rows.append((self._edge_note(gi), why))
        return LoopLayout(nodes=node_rows, groups=group_rows, packs=packs, large=self.large)

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
                    (len(acts) == 1 and acts <= set(_INPLACE)) or acts == {"sigmoid", "tanh"}):
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
                run = [(i, lo, hi)] if (i is not None and self.act[i] in _INPLACE
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
            if len(outs) != 1 or self.act[i] not in _DERIVATIVES or self.step_der[i] or self.ext_a[i]:
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

    # ------------------------------------------------------------------ helpers
    def _pack_slice(self, p: int, lo: int, hi: int) -> str:
        """Step t of a pack buffer, columns lo:hi (the whole row, contiguous, if that is all)."""
        return "[t]" if (lo, hi) == (0, self.groups[self.packs[p][0]].width) else f"[t][:, {lo}:{hi}]"

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
        lines = ["    " + "; ".join(f"{k} = K[{j}]" for j, k in enumerate(_CONSTANT_NAMES))]
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
                body += self._commented(self._edge_note(gi), self._run_group(gi))
        for i in range(len(self.nodes)):
            body += self._commented(self._node_note(i), self._node_forward(i))
            for gi in self.consumers[i]:
                if self.groups[gi].delay == 0:
                    body += self._commented(self._edge_note(gi), self._run_group(gi))
        return _Loop("forward", self.FORWARD_ARGS, lines, body, reverse=False, per_call_root=self.per_call_root,
                     naming=self.naming)

    # ------------------------------------------------------------------ provenance
    @staticmethod
    def _commented(note: str, lines: list[str]) -> list[str]:
        """``lines`` under a comment saying what part of the graph they compute (none
        for no lines).  Names are stripped to ``[\\w/]`` so no spec text becomes code."""
        if not lines:
            return lines
        return ["# " + re.sub(r"[^\w/ ,()\-:=+*.>]", "_", note, flags=re.ASCII)] + lines

    def _edge_note(self, gi: int) -> str:
        g = self.groups[gi]
        when = f"(t - {g.delay})" if g.delay else "(t)"
        targets = ", ".join(e.target for e in g.edges)
        return f"{g.weight} {g.source}{when} -> {targets}" + (" (one fused GEMM)" if len(g.edges) > 1 else "")

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
                out += _INPLACE[act]
            return out
        out += [f"a = A{i}[t]", f"v = V{i}[t]"]
        out += _INPLACE[act] if act in _INPLACE else [f"v[...] = F{i}(a)"]
        return out

    # ------------------------------------------------------------------ backward
    def ga_is_gv(self, i: int) -> bool:
        return self.act[i] == "identity" and not self.ext_a[i] and self.pack_of[i] is None

    BACKWARD_ARGS = ["T", "A", "V", "BS", "H", "D", "W", "WT", "C", "GV", "GA", "GC", "GH", "DER", "GAX", "TMP", "F",
                     "TP", "GVP", "GAP", "DERP", "DS", "VP", "DN", "GVX", "GVW", "GVT", "K", "S"]

    def _backward_loop(self) -> _Loop:
        lines = ["    " + "; ".join(f"{k} = K[{j}]" for j, k in enumerate(_CONSTANT_NAMES))]
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
                    body += self._commented("back through " + self._edge_note(gi), self._send(gi))
            body += self._commented(f"dL/da of {self.nodes[i]}(t)", self._node_backward(i))
        for gi, g in enumerate(self.groups):
            if g.delay > 0:
                body += self._commented("back through " + self._edge_note(gi), self._send(gi))
        lines += [f"    {self._scratch_name(p, lo, hi)} = DS[{p}][:, {lo}:{hi}]" for p, lo, hi in sorted(self._scratch)]
        body = self._merge_folds(body)
        return _Loop("backward", self.BACKWARD_ARGS, lines, body, reverse=True, per_call_root=self.per_call_root,
                     naming=self.naming)

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
                new, factor = _STEP_DERIVATIVES[act](v, d)
            lines += new
        if len(spans) > 1:
            assert all(_STEP_DERIVATIVES[a]("v", "d")[1] == "d" for _, _, _, a in spans)
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
            elif act in _ZERO_DERIVATIVE:
                out.append("ga.fill(0)")
            elif self.step_der[i]:
                # ga may be gv (one buffer): the derivative goes to scratch
                packed = self.pack_of[i]
                d = self._scratch_name(*packed) if packed is not None else f"DN{i}"
                lines, factor = _STEP_DERIVATIVES[act](f"V{i}[t]", d)
                out += lines + [f"multiply(gv, {factor}, out=ga)"]
            elif act in _DERIVATIVES:
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
        g, s = self.groups[gi], self.src[gi]
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

    # ------------------------------------------------------------------ buffers
    def forward_buffers(self, T, B, dtype, lean: frozenset = frozenset(), transient: frozenset = frozenset()):
        """A, V (per node, views into packs or aliases where laid out so),
        AP (pack pre-activations), VP (pack values), C (kept group outputs).

        Nodes in ``lean`` (indices) compute their activation in place: their A
        is their V.  Only for nodes whose derivative needs nothing but v (see
        ``LEAN_ACTIVATIONS``) and whose pre-activation no one reads.  Nodes in
        ``transient`` (indices; see ``self.transient``) get one (B, size) row
        that every step's view shares (a stride-0 time axis): the loops are
        unchanged, and after the loop the array holds only the last step.

        A seeded pack's AP (and its VP when computed in place) is left None,
        as are the views into it: ``with_seeds`` fills them at each call."""
        n_nodes = len(self.nodes)
        AP, VP = [], []
        for p, (gi, members, has_base) in enumerate(self.packs):
            width = self.groups[gi].width
            AP.append(None if p in self.seeded else np.empty((T, B, width), dtype))
            in_place = all(self.act[i] == "identity" or i in lean for i, _, _ in members)
            VP.append(AP[-1] if in_place else np.empty((T, B, width), dtype))
        A, V = [None] * n_nodes, [None] * n_nodes
        for i in range(n_nodes):
            if self.pack_of[i] is not None:
                continue
            if i in transient:
                A[i] = V[i] = _sequence(T, B, self.size[i], dtype, one_row=True)
                continue
            if self.alias[i] is None and i not in self.seeded_nodes:
                A[i] = np.empty((T, B, self.size[i]), dtype)
                if self.act[i] == "identity" or i in lean:
                    V[i] = A[i]
            if i in self.seeded_nodes and (self.act[i] == "identity" or i in lean):
                continue                  # A and V both the seed
            if V[i] is None and self.act[i] != "identity":
                V[i] = np.empty((T, B, self.size[i]), dtype)
        self._views(A, V, AP, VP)
        C = [np.empty((T, B, g.width), dtype) if self.keep[gi] else
             (np.empty((B, g.width), dtype) if self.buffered(gi) or self._into_seed(gi) else None)
             for gi, g in enumerate(self.groups)]
        return A, V, AP, VP, C

    def _into_seed(self, gi: int) -> bool:
        """Whether group gi adds its output to a seeded buffer (through a (B, width) row)."""
        if self.packed_group[gi] is not None:
            return self.packed_group[gi] in self.seeded
        return self.direct[gi] and self.index[self.groups[gi].edges[0].target] in self.seeded_nodes

    def _views(self, A, V, AP, VP) -> None:
        """Fill in A and V of pack members (views into AP, VP) and of aliases
        (their source's V), where those buffers are there."""
        for i in range(len(self.nodes)):   # sources of aliases come first in the step order
            if self.pack_of[i] is not None:
                p, lo, hi = self.pack_of[i]
                A[i] = AP[p][:, :, lo:hi] if AP[p] is not None else None
                V[i] = A[i] if self.act[i] == "identity" else (VP[p][:, :, lo:hi] if VP[p] is not None else None)
            elif self.alias[i] is not None:
                A[i] = V[self.alias[i]]
                if self.act[i] == "identity":
                    V[i] = A[i]

    def with_seeds(self, buffers, seeds: dict, node_seeds: dict):
        """``buffers`` (from ``forward_buffers``) with each seeded pack's AP the
        array ``seeds[p]`` hands over (its hoisted input, which the loop then
        adds to), and VP too where the pack is activated in place; likewise
        each seeded node's A (and V) from ``node_seeds[i]``."""
        A, V, AP, VP, C = (list(b) for b in buffers)
        for p, array in seeds.items():
            if VP[p] is None:
                VP[p] = array
            AP[p] = array
        for i, array in node_seeds.items():
            if V[i] is None:
                V[i] = array
            A[i] = array
        self._views(A, V, AP, VP)
        return A, V, AP, VP, C

    def buffered(self, gi: int) -> bool:
        """Whether group gi's output (and its gradient) has a buffer of its own:
        not written into its target's a, a pack, or read in place (identity)."""
        return not (self.direct[gi] or self.identity[gi] or self.packed_group[gi] is not None)




class _Ring:
    """Two (B, size) rows that a loop's steps use in turn: ``ring[t]`` is row t % 2."""

    def __init__(self, B, size, dtype):
        self.rows = (np.empty((B, size), dtype), np.empty((B, size), dtype))

    def __getitem__(self, t: int) -> np.ndarray:
        return self.rows[t & 1]

    def fill(self, value) -> None:
        for row in self.rows:
            row.fill(value)


def _sequence(T, B, size, dtype, one_row: bool = False) -> np.ndarray:
    """A (T, B, size) buffer; with ``one_row``, every step's view is the same (B, size)
    row (a stride-0 time axis), for values only needed at their own step."""
    if not one_row:
        return np.empty((T, B, size), dtype)
    row = np.empty((B, size), dtype)
    return np.lib.stride_tricks.as_strided(row, (T, B, size), (0, *row.strides))


class _BackwardBuffers:
    """The backward loop's arrays for one (T, B, dtype) and one pattern of
    outside gradients: dL/dv (GV, GVP), dL/da (GA, GAP), derivatives (DER,
    DERP), group gradients (GC), history gradients (GH) and per-step scratch
    (TMP, TP).  ``reset`` readies them for a call; a workspace reuses them."""

    def __init__(self, prog: _Compiler, T, B, dtype, H, AP, trace: bool):
        n_nodes, groups = len(prog.nodes), prog.groups
        self.prog = prog
        # a recycled pack's dL/dv is one row and its dL/da goes into its values' buffer (reset)
        self.GVP = [_sequence(T, B, groups[gi].width, dtype, p in prog.recycled)
                    for p, (gi, _, _) in enumerate(prog.packs)]
        # each step's dL/da of a pack overwrites its dL/dv in place, which nothing reads
        # again (unless a trace keeps dL/dv): one (T, B, width) array fewer
        self.GAP = [np.empty_like(g) for g in self.GVP] if trace else list(self.GVP)
        self.DERP = [np.empty_like(a) if any(s[0] == p for s in prog.der_spans) else None for p, a in enumerate(AP)]
        self.DS = [np.empty((B, groups[gi].width), dtype) if any(s[0] == p for s in prog.step_spans) else None
                   for p, (gi, _, _) in enumerate(prog.packs)]
        self.zeroed = [g for (gi, members, _), g in zip(prog.packs, self.GVP)
                       if not all(prog.fresh[i] for i, _, _ in members)]
        GV, GA, DER = [], [], []
        for i in range(n_nodes):
            act = prog.act[i]
            if prog.pack_of[i] is not None:
                p, lo, hi = prog.pack_of[i]
                GV.append(self.GVP[p][:, :, lo:hi])
                GA.append(self.GAP[p][:, :, lo:hi])
                DER.append(self.DERP[p][:, :, lo:hi] if self.DERP[p] is not None else None)
                continue
            # dL/da is read after the loop by base and weight gradients; dL/dv of a fresh
            # node is written and read at its own step only: without a trace, one row does
            ga_row = not trace and not prog.ga_after[i]
            gv_row = not trace and prog.fresh[i] and (ga_row or not prog.ga_is_gv(i))
            rolling = prog.rolling[i] and not trace
            if prog.galias[i] is not None:   # its dL/dv is its target's dL/da (set below)
                GV.append(None)
            elif rolling:
                GV.append(_Ring(B, prog.size[i], dtype))
                self.zeroed.append(GV[i])
            else:
                GV.append(_sequence(T, B, prog.size[i], dtype, gv_row))
                if not prog.fresh[i] and (not prog.ext_v[i] or prog.rolling[i]):
                    self.zeroed.append(GV[i])
            # each step's dL/da may overwrite its dL/dv, which nothing reads again (unless a
            # trace keeps it, or dL/dv is someone else's dL/da)
            share = prog.ga_is_gv(i) or (not trace and prog.galias[i] is None and not rolling and gv_row == ga_row)
            GA.append(GV[i] if share else _sequence(T, B, prog.size[i], dtype, ga_row))
            DER.append(np.empty((T, B, prog.size[i]), dtype) if act in _DERIVATIVES and not prog.step_der[i] else None)
        self.outside = list(GV)          # where dL/dv from outside the loop is copied in
        for i in reversed(range(n_nodes)):   # targets first: aliases can chain (h -> m -> n)
            if prog.galias[i] is not None:
                tgt = prog.galias[i]
                GV[i] = GV[tgt] if prog.ga_is_gv(tgt) else GA[tgt]
                if prog.ga_is_gv(i):
                    GA[i] = GV[i]
        self.GV, self.GA, self.DER = GV, GA, DER
        self.GC = [np.empty((T, B, g.width), dtype) if prog.buffered(gi) else None
                   for gi, g in enumerate(groups)]
        self.zeroed += [g for g in self.GC if g is not None]
        # C-contiguous (a history may be any view): np.dot may write a step's row
        self.GH = [np.empty(h.shape, h.dtype) if h is not None else None for h in H]
        self.zeroed += [g for g in self.GH if g is not None]
        self.TMP = [np.empty((B, prog.size[prog.src[gi]]), dtype) for gi in range(len(groups))]
        self.TP = [np.empty((B, prog.size[i]), dtype) if prog.product[i] else None for i in range(n_nodes)]
        self.DN = [np.empty((B, prog.size[i]), dtype) if prog.step_der[i] and prog.pack_of[i] is None else None
                   for i in range(n_nodes)]
        # a row for each step's g @ W of a deferred outside gradient that a rolling node adds
        self.GVT = [np.empty((B, prog.size[i]), dtype) if prog.rolling[i] and prog.ext_v[i] == DEFERRED else None
                    for i in range(n_nodes)]
        self.cached_views = None
        # what reset does at every call, decided once: copy in dL/dv from outside (a rolling
        # node adds it step by step), whole-sequence derivatives, folds
        self.copy_in = [(2 * i + 1, self.outside[i]) for i in range(n_nodes) if prog.ext_v[i] and not prog.rolling[i]]
        self.node_derivatives = [(_DERIVATIVES[prog.act[i]], i) for i in range(n_nodes)
                                 if self.DER[i] is not None and prog.pack_of[i] is None]
        self.folded = [i for i, fold in enumerate(prog.fold_into) if fold is not None]

    def release(self) -> None:
        """Drop this call's arrays (recycled packs' AP), which a workspace must not keep alive."""
        for p in self.prog.recycled:
            self.GAP[p] = None
            for i, _, _ in self.prog.packs[p][1]:
                self.GA[i] = None

    def reset(self, A, V, AP, VP, BS, C, H, out_grads) -> None:
        """Point recycled packs' dL/da at this call's AP, zero what accumulates,
        copy in dL/dv from outside, compute the whole-sequence derivatives (with
        their products' other factors multiplied in, for folded nodes)."""
        prog = self.prog
        for p in prog.recycled:
            self.GAP[p] = AP[p]
            for i, lo, hi in prog.packs[p][1]:
                self.GA[i] = AP[p][:, :, lo:hi]
        for g in self.zeroed:
            g.fill(0)
        for k, outside in self.copy_in:
            g_v = out_grads[k]
            if isinstance(g_v, ad.Deferred):
                g_v.into(outside)
            else:
                np.copyto(outside, g_v)
        for derivative, i in self.node_derivatives:
            derivative(A[i], V[i], self.DER[i])
        for p, lo, hi, act in prog.der_spans:
            if act == "mixed":   # see _Compiler.__init__
                _, _, dm, dc = prog.pack_scales(self.DERP[p].dtype)[p]
                np.subtract(dm, VP[p], out=self.DERP[p])
                np.multiply(self.DERP[p], VP[p], out=self.DERP[p])
                np.add(self.DERP[p], dc, out=self.DERP[p])
            else:
                _DERIVATIVES[act](AP[p][:, :, lo:hi], VP[p][:, :, lo:hi], self.DERP[p][:, :, lo:hi])
        for i in self.folded:
            for factor in prog.fold_factors(i, V, BS, C, H):
                _multiply_in(self.DER[i], factor)


def _compiled(stage, graph, has_base: tuple, ext_a: tuple, ext_v: tuple = (),
              step_derivatives: bool = False, seeded: frozenset = frozenset(),
              seeded_nodes: frozenset = frozenset(), fold: bool = False,
              prescaled: frozenset = frozenset()) -> _Compiler:
    cache = stage.__dict__.setdefault("_compiled", {})
    key = (id(graph), has_base, ext_a, ext_v, step_derivatives, seeded, seeded_nodes, fold, prescaled)
    if key not in cache:
        cache[key] = _Compiler(stage, graph, has_base, ext_a, ext_v, step_derivatives, seeded, seeded_nodes, fold,
                               prescaled)
    return cache[key]


class _Workspace:
    """Buffers of one stage at one (T, B, dtype) kept between calls, with the
    per-step views the loops read.  Reusing them saves allocating (and the
    kernel zeroing) the sequence arrays and making the views at every step."""

    def __init__(self, forward_buffers):
        self.forward = forward_buffers
        self.forward_views = None
        self.history = None           # node -> (D, B, size) copy of this call's history
        self.history_from: list = []  # node -> the array that copy was made from, when read-only
        self.zero_history: list = []  # node -> whether the copy is all zeros
        self.backward: dict = {}      # (ext_a, ext_v) -> _BackwardBuffers


WORKSPACES_PER_STAGE = 2   # e.g. full batches and the last, smaller one


def _workspace(store: dict, stage, key: tuple, make) -> _Workspace:
    per_stage = store.setdefault(id(stage), {})
    ws = per_stage.pop(key, None)
    if ws is None:
        ws = _Workspace(make())
        while len(per_stage) >= WORKSPACES_PER_STAGE:
            per_stage.pop(next(iter(per_stage)))
    per_stage[key] = ws             # most recently used last
    return ws


class _Calls:
    """A stage's calls with one pattern of bases (which nodes have one), and what
    they share: the layout's compiled loops (``probe``: no outside gradients yet)
    and a ``_CallPlan`` per signature.  At small sizes a step is mostly Python
    bookkeeping, so a call looks its decisions up here rather than making them."""

    def __init__(self, stage, graph, has_base: tuple):
        self.probe = _compiled(stage, graph, has_base, (False,) * len(stage.nodes))
        self.pack_parts = [(gi, [stage.nodes[i] for i, _, _ in members], [(lo, hi) for _, lo, hi in members],
                            self.probe.groups[gi].width, with_base)
                           for gi, members, with_base in self.probe.packs]
        self.plans: dict = {}


def _calls(stage, graph, has_base: tuple) -> _Calls:
    per_stage = stage.__dict__.get("_calls")
    if per_stage is None:
        per_stage = stage.__dict__["_calls"] = {}
    key = (id(graph), has_base)
    found = per_stage.get(key)
    if found is None:
        found = per_stage[key] = _Calls(stage, graph, has_base)
    return found


class _CallPlan:
    """What ``scan`` decides from a call's signature alone: which pack bases are their
    own arrays (``owns``), the layout (``large``), dtype, lean and owned nodes and
    whether a workspace keeps buffers.  Holds the loops to run and the index lists
    the call and its VJP walk; ``workspace_key`` names the buffers this signature uses."""

    def __init__(self, stage, graph, calls: _Calls, has_base: tuple, owns: tuple, large: bool, dtype,
                 lean: frozenset, owned: frozenset, workspace: bool, hist: dict):
        nodes = stage.nodes
        probe = calls.probe
        self.lean_idx = probe.lean_indices(lean)
        transient, seeded, seeded_nodes = frozenset(), frozenset(), frozenset()
        if workspace:
            transient = probe.transient_indices(stage, lean)
            if large:
                # a large stage in a training step: a hoisted input whose array is its pack's or
                # sum node's own becomes that pre-activation buffer (one (T, B, n) array fewer)
                seeded = frozenset(p for p, own in enumerate(owns) if own)
                seeded_nodes = frozenset(i for i, n in enumerate(nodes) if n in owned and probe.pack_of[i] is None
                                         and not probe.product[i] and i not in transient)
        # a mixed pack whose pre-activation no one reads takes its weights' and base's columns
        # prescaled (a call a step fewer); its base is scaled in place, so must be its own array
        self.prescaled = prescaled = frozenset(
            p for p, (gi, members, with_base) in enumerate(probe.packs)
            if probe.mixed[p] and all(i in self.lean_idx for i, _, _ in members) and (not with_base or owns[p]))
        if large or prescaled:
            probe = _compiled(stage, graph, has_base, (False,) * len(nodes), (), large, seeded, seeded_nodes,
                              prescaled=prescaled)
        self.stage, self.graph, self.probe, self.large = stage, graph, probe, large
        self.has_base, self.transient, self.seeded, self.seeded_nodes = has_base, transient, seeded, seeded_nodes
        groups = probe.groups
        self.base_nodes = [n for i, n in enumerate(nodes) if has_base[i] and probe.pack_of[i] is None]
        self.base_index = [probe.index[n] for n in self.base_nodes]
        self.based_packs = [p for p, (_, _, with_base) in enumerate(probe.packs) if with_base]
        self.scales = probe.pack_scales(dtype)
        self.prescale = [(p, self.scales[p][0]) for p in sorted(prescaled) if p in self.based_packs]
        # the nodes with histories: those delayed edges read, fixed by the plan
        self.hist_nodes = [n for n in nodes if n in hist]
        self.hist_index = [probe.index[n] for n in self.hist_nodes]
        self.depths = [hist[n].shape[0] if n in hist else 0 for n in nodes]
        self.group_ids = [id(g) for g in groups]
        self.weight_groups = [gi for gi, g in enumerate(groups) if g.weight != "identity"]
        # the per-step GEMM reads W^T: a C-contiguous copy is markedly faster than a transposed
        # view (a prescaled pack's scaled in the same pass)
        self.transposed = [(gi, None if probe.packed_group[gi] not in prescaled else self.scales[probe.packed_group[gi]][0])
                           for gi, g in enumerate(groups) if g.weight == "dense"]
        self.workspace_key = (has_base, np.dtype(dtype).str, self.lean_idx, large, transient, seeded, seeded_nodes,
                              prescaled)
        self.no_grads = (None,) * len(nodes)
        self.vjps: dict = {}         # (ext_a, ext_v, trace) -> _VjpPlan


class _VjpPlan:
    """The backward program of a ``_CallPlan`` for one pattern of outside gradients:
    the compiled loop and the index lists its VJP walks."""

    def __init__(self, cp: _CallPlan, ext_a: tuple, ext_v: tuple, trace: bool):
        # a trace reports every node's dL/dv, which folded nodes never hold
        prog = _compiled(cp.stage, cp.graph, cp.has_base, ext_a, ext_v, cp.large, cp.seeded, cp.seeded_nodes,
                         fold=not trace)
        self.prog = prog
        self.any_ext_a = any(ext_a)
        self.rolling_ext = [i for i, e in enumerate(ext_v) if e and prog.rolling[i]]
        groups = prog.groups
        self.gc_packed = [(gi, prog.packed_group[gi]) for gi in range(len(groups)) if prog.packed_group[gi] is not None]
        self.gc_direct = [(gi, prog.index[groups[gi].edges[0].target]) for gi in range(len(groups))
                          if prog.packed_group[gi] is None and prog.direct[gi]]
        # product nodes with a base: (position among the base gradients, node)
        self.products = [(k, i) for k, i in enumerate(cp.base_index) if prog.product[i]]
        self.weight_grads = [(gi, groups[gi].weight, prog.src[gi], groups[gi].delay) for gi in cp.weight_groups]


def scan(stage, graph, base: dict, weights: dict, hist: dict, T: int, B: int, dtype,
         workspace: dict | None = None, lean: frozenset = frozenset(), owned: frozenset = frozenset()):
    """Run ``stage`` for ``T`` steps.

    Parameters
    ----------
    base : node -> Var (T, B, size), Columns or None
        What the node gets from outside the loop: for sum nodes the hoisted
        edges plus bias, for product nodes the product of hoisted factors.
        ``Columns`` (a piece of a fused sequence GEMM plus a bias) lets a pack
        take its base without splitting and concatenating.
    weights : id(group) -> Var
        The (fused) weight of each inner group; absent for identity groups.
    hist : node -> Var (D, B, size)
        Values before t = 0 of nodes read by delayed inner edges.
    workspace : dict, optional
        Where buffers are kept between calls.  With it, the returned values
        are overwritten by the next call with the same (T, B, dtype): only
        for callers that are done with them by then (a training step).
    lean : node names whose pre-activation no one reads; where their
        activation allows (``LEAN_ACTIVATIONS``), their returned A is their V.
        With a workspace, lean nodes that nothing after the stage reads and
        that the loop needs only at their own step (``_Compiler.transient``)
        keep no sequence at all: their returned values are not their values.
    owned : node names whose base array is theirs alone (new, read by no one else
        and by no VJP): with a workspace, a large stage writes into it.

    Returns
    -------
    dict node -> (A, V): Vars of shape (T, B, size), pre-activation and value.
    """
    nodes = stage.nodes
    has_base = tuple([base.get(n) is not None for n in nodes])
    calls = _calls(stage, graph, has_base)
    pack_bases = [_pack_base([base[n] for n in names], spans, width, dtype) if with_base else (None, False)
                  for _, names, spans, width, with_base in calls.pack_parts]
    owns = tuple([own for _, own in pack_bases])
    large = T * B * dtype.itemsize * calls.probe.total_size >= LARGE_STAGE_BYTES
    key = (owns, large, dtype, lean, owned, workspace is not None)
    cp = calls.plans.get(key)
    if cp is None:
        cp = calls.plans[key] = _CallPlan(stage, graph, calls, has_base, owns, large, dtype, lean, owned,
                                          workspace is not None, hist)
    probe = cp.probe
    groups = probe.groups
    base_vars = [_var(base[n]) for n in cp.base_nodes]
    BS = [None] * len(nodes)
    for i, b in zip(cp.base_index, base_vars):
        BS[i] = b.value
    pack_vars = [b for b, _ in pack_bases]
    BSP = [b.value if b is not None else None for b in pack_vars]
    for p, scale in cp.prescale:
        np.multiply(BSP[p], scale, out=BSP[p])
    ws = None
    if workspace is not None:
        ws = _workspace(workspace, stage, (cp.workspace_key, T, B),
                        lambda: probe.forward_buffers(T, B, dtype, cp.lean_idx, cp.transient))
        A, V, AP, VP, C = ws.forward
        if cp.seeded or cp.seeded_nodes:
            A, V, AP, VP, C = probe.with_seeds(ws.forward, {p: BSP[p] for p in cp.seeded},
                                               {i: BS[i] for i in cp.seeded_nodes})
    else:
        A, V, AP, VP, C = probe.forward_buffers(T, B, dtype, cp.lean_idx)
    hist_vars = [hist[n] for n in cp.hist_nodes]
    H = [None] * len(nodes)
    for i, h in zip(cp.hist_index, hist_vars):
        H[i] = h.value
    if ws is not None:
        if ws.history is None:
            ws.history = [np.empty(h.shape, dtype) if h is not None else None for h in H]
            ws.history_from, ws.zero_history = [None] * len(H), [False] * len(H)
        for i in cp.hist_index:
            # a node's fixed initial value is one read-only array made once (executor's
            # _constant_history): the copy already holds it, and whether it is all zeros
            if H[i] is not ws.history_from[i]:
                np.copyto(ws.history[i], H[i])
                ws.history_from[i] = None if H[i].flags.writeable else H[i]
                ws.zero_history[i] = not ws.history[i].any()
        H = ws.history
    D = cp.depths
    weight_vars = [weights[cp.group_ids[gi]] for gi in cp.weight_groups]
    W = [None] * len(groups)
    for gi, w in zip(cp.weight_groups, weight_vars):
        W[gi] = w.value
    WT = [None] * len(groups)
    for gi, scale in cp.transposed:
        WT[gi] = np.ascontiguousarray(W[gi].T) if scale is None else np.multiply(W[gi].T, scale, order="C")
    K = _constants(dtype)
    if T:
        args = (T, A, V, BS, H, D, W, WT, C, probe.F, AP, VP, BSP, K, cp.scales)
        if ws is not None and ws.forward_views is None and probe.forward.has_cached:
            ws.forward_views = probe.forward.cached_views(*args)
        probe.forward(args, ws.forward_views if ws is not None else None)

    inputs = base_vars + [pack_vars[p] for p in cp.based_packs] + weight_vars + hist_vars
    tape = _tape_of(inputs)
    A_vars = [Var(a, tape) for a in A]
    V_vars = [ad.StepVar(v, tape) for v in V]   # the backward loop takes dL/dv from dense readouts as g @ W
    if tape is None:
        return dict(zip(nodes, zip(A_vars, V_vars)))
    outputs = [None] * (2 * len(nodes))
    outputs[0::2], outputs[1::2] = A_vars, V_vars
    outputs = tuple(outputs)

    def vjp(out_grads):
        ext_a = tuple([g is not None for g in out_grads[0::2]])
        ext_v = tuple([0 if g is None else DEFERRED if isinstance(g, ad.Deferred) else 1 for g in out_grads[1::2]])
        key = (ext_a, ext_v, tape.trace)
        vp = cp.vjps.get(key)
        if vp is None:
            vp = cp.vjps[key] = _VjpPlan(cp, ext_a, ext_v, tape.trace)
        prog = vp.prog
        reuse = ws is not None and not tape.trace
        bufs = ws.backward.get((ext_a, ext_v)) if reuse else None
        if bufs is None:
            bufs = _BackwardBuffers(prog, T, B, dtype, H, AP, tape.trace)
            if reuse:
                ws.backward[(ext_a, ext_v)] = bufs
        bufs.reset(A, V, AP, VP, BS, C, H, out_grads)
        GV, GA, GC, GH, GAP = bufs.GV, bufs.GA, list(bufs.GC), bufs.GH, bufs.GAP
        GAX = [np.asarray(g, dtype) if g is not None else None for g in out_grads[0::2]] if vp.any_ext_a \
            else cp.no_grads
        GVX, GVW = cp.no_grads, cp.no_grads
        if vp.rolling_ext:   # added step by step, in the loop
            GVX, GVW = list(GVX), list(GVW)
            for i in vp.rolling_ext:
                g = out_grads[2 * i + 1]
                if isinstance(g, ad.Deferred):
                    GVX[i], GVW[i] = np.asarray(g.g, dtype), np.asarray(g.w, dtype)   # np.dot's out: one dtype
                else:
                    GVX[i] = np.asarray(g, dtype)
        if T:
            args = (T, A, V, BS, H, D, W, WT, C, GV, GA, GC, GH, bufs.DER, GAX, bufs.TMP, prog.FV, bufs.TP,
                    bufs.GVP, GAP, bufs.DERP, bufs.DS, VP, bufs.DN, GVX, GVW, bufs.GVT, K, cp.scales)
            if reuse and bufs.cached_views is None and prog.backward.has_cached:
                bufs.cached_views = prog.backward.cached_views(*args)
            prog.backward(args, bufs.cached_views if reuse else None)
        for gi, p in vp.gc_packed:
            GC[gi] = GAP[p]
        for gi, i in vp.gc_direct:
            GC[gi] = GA[i]
        if tape.trace:   # dL/dv for every step, recurrent paths included (T, B, size)
            for i, n in enumerate(nodes):
                tape.traced[n] = GV[i]

        grads = [GA[i] for i in cp.base_index]
        for k, i in vp.products:
            others = np.ones((T, B, prog.size[i]), dtype)
            for factor in prog.product_factors(i, V, C, H):
                _multiply_in(others, factor)
            grads[k] = GA[i] * others
        grads += [GAP[p] for p in cp.based_packs]
        for (gi, kind, s, delay), w in zip(vp.weight_grads, weight_vars):
            if not w.needs_grad:
                grads.append(None)
                continue
            d = min(delay, T)
            # dW = sum_t dC(t)^T v_s(t - d): steps t >= d read the sequence, earlier ones the history
            gw = _weight_grad(kind, GC[gi][d:], V[s][:T - d])
            if d and not (ws is not None and ws.zero_history[s]):   # zeros before t = 0 add nothing
                gw = gw + _weight_grad(kind, GC[gi][:d], H[s][H[s].shape[0] - delay:][:d])
            grads.append(gw)
        for i in cp.hist_index:
            grads.append(GH[i])
        bufs.release()
        return grads

    tape.record(outputs, tuple(inputs), vjp)
    return dict(zip(nodes, zip(A_vars, V_vars)))


def compiled_loops(stage) -> list:
    """The (forward compilation, backward compilation) pairs ``scan`` has made for
    ``stage`` so far, in the order made: a network built afresh and run once has one."""
    found = []
    for calls in stage.__dict__.get("_calls", {}).values():
        for cp in calls.plans.values():
            for vp in cp.vjps.values():
                found.append((cp.probe, vp.prog))
            if not cp.vjps:
                found.append((cp.probe, None))
    return found
