"""PyTorch out: a network as one standalone, readable Python file defining an ``nn.Module``.

``torch_source(net)`` prints the network's plan (``net.plan``) as PyTorch code:
the stages run in the plan's order, a time-parallel node is one expression
over the whole sequence ``(N, T, size)``, a recurrent component is a loop over
``t`` (down from ``T-1`` when its delays are negative) whose per-step edges
read the lists of earlier steps, and the edges entering it from outside are
computed for all steps before the loop.  Every variable is named after its
node, every parameter after its rnngraph name (``PARAMETERS`` maps the name to
the attribute), and each line says which part of the graph it computes.

The file needs only ``torch`` and ``numpy``; exporting needs neither.
``export_torch(net, spec, path)`` writes it (atomically), the ``export``
command's ``--format torch``.
"""

from __future__ import annotations

import keyword
import re

from ..activations import LEAKY_SLOPE
from ..errors import DataError

# the activation's value from its pre-activation ``{a}``, as a torch expression; every entry of
# activations.ACTIVATIONS needs one (a test checks), and each must have the same gradient
TORCH_ACTIVATIONS = {
    "identity": "{a}",
    "sigmoid": "torch.sigmoid({a})",
    "tanh": "torch.tanh({a})",
    "relu": "torch.relu({a})",
    "leaky_relu": "F.leaky_relu({a}, LEAKY_SLOPE)",
    "softplus": "torch.logaddexp({a}, torch.zeros_like({a}))",   # rnngraph's: no overflow, no threshold
    "softmax": "torch.softmax({a}, dim=-1)",
    "sign": "_sign({a})",
    "step": "({a} > 0).to({a}.dtype)",
    "one_minus": "1 - {a}",
    "exp": "torch.exp({a})",
    "square": "{a} * {a}",
}

# nn.Module's own attributes (torch 2.13): a parameter named like one would be shadowed by it
NN_MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
    _compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
    _forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks
    _get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
    _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
    _modules _named_members _non_persistent_buffers_set _parameters
    _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
    _save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
    _wrapped_call_impl add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())

# names the generated forward uses for itself; node variables never take them
_RESERVED = {"self", "initial", "steps", "batch_size", "N", "T", "t", "torch", "nn", "F", "np",
             "PARAMETERS", "LEAKY_SLOPE", "like", "out", "_at", "_shift", "_sign", "_symmetric",
             "_zero_diagonal", "_initial_state", "_zeros", "_stack"}


class _Names:
    """Unique Python identifiers for graph names (``lstm/h->y`` -> ``lstm_h_to_y``)."""

    def __init__(self, taken=()):
        self.taken = set(taken) | set(keyword.kwlist) | set(dir(__builtins__) if isinstance(__builtins__, dict)
                                                             else dir(__builtins__))
        self.of: dict = {}

    def __call__(self, name: str, suffix: str = "") -> str:
        key = (name, suffix)
        if key not in self.of:
            base = re.sub(r"\W", "_", name.replace("->", "_to_")) + suffix
            if not base or base[0].isdigit():
                base = "_" + base
            ident, k = base, 2
            while ident in self.taken:
                ident, k = f"{base}_{k}", k + 1
            self.taken.add(ident)
            self.of[key] = ident
        return self.of[key]


def _class_name(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name or "")
    ident = "".join(w[:1].upper() + w[1:] for w in words if w) or "Network"
    return ident if ident[0].isalpha() else "Net" + ident


def _number(x) -> str:
    return repr(float(x))


def _direction(graph, nodes) -> int:
    """+1 for a component whose delays are positive (runs up in t), -1 for negative."""
    member = set(nodes)
    delays = [d for u, v, d in graph.edges(data="delay") if u in member and v in member and d != 0]
    return -1 if delays and delays[0] < 0 else 1


def torch_source(net, source: str | None = None) -> str:
    """The exported module's Python source for ``net`` (a ``Network``).

    ``source`` (the spec's path) goes into the file's docstring.  Raises
    ``DataError`` for an activation with no PyTorch form."""
    graph, plan = net.graph, net.plan
    nodes = graph.nodes
    dtype = net.dtype.name
    for n in graph.nodes:
        if nodes[n]["activation"] not in TORCH_ACTIVATIONS:
            raise DataError(f"node {n!r}: activation {nodes[n]['activation']!r} has no PyTorch form in the export")

    attr = _Names(_RESERVED | NN_MODULE_ATTRIBUTES | {"load_npz", "save_npz", "inputs", "outputs", "dtype"})
    params = {name: attr(name) for name in net.param_info}
    var = _Names(_RESERVED | set(params.values()))
    value = {n: var(n) for n in graph.nodes}                 # (N, T, size) once known
    inputs = list(net.input_nodes)
    outputs = list(net.output_nodes) or [n for n in graph.nodes if nodes[n]["role"] != "input"]
    edges = {k: (u, v, d) for u, v, k, d in graph.edges(keys=True, data=True)}
    incoming = {n: [k for k, (u, v, d) in edges.items() if v == n] for n in graph.nodes}
    delayed = [n for n in graph.nodes if any(d["delay"] != 0 for _, _, d in graph.out_edges(n, data=True))]
    init = {n: var(n, "_init") for n in delayed}             # (N, size): v_n outside 0 .. T-1
    buffers = {n: attr(n, "_init_value") for n in delayed
               if nodes[n]["init"].kind == "value" and not nodes[n]["init"].trainable}
    weight = {}                                               # edge -> the expression of its weight

    lines = []
    emit = lines.append

    # ---- header
    name = net.spec.name or "network"
    cls = _class_name(name)
    emit(f'"""{_doc(name)}: exported from rnngraph by `rnngraph export --format torch`'
         + (f" ({_doc(str(source))})" if source else "") + ".")
    emit("")
    emit("A standalone PyTorch module computing what rnngraph computes for this spec: the same")
    emit("parameters (PARAMETERS maps each rnngraph name to its attribute) and the same outputs.")
    emit("")
    emit(f"    model = {cls}()")
    emit('    model.load_npz("params.npz")               # the parameters rnngraph saved')
    call = ", ".join(f"{value[n]}=..." for n in inputs) or "steps=T"
    emit(f"    out = model({call})   # inputs (N, T, size) -> {{output node: (N, T, size)}}")
    emit("")
    emit("A node's value before t = 0 (or after T - 1, for edges with negative delays) is its init;")
    emit("`initial={node: (N, size)}` overrides it and is required for nodes with `init: input`.")
    emit('"""')
    emit("")
    emit("import numpy as np")
    emit("import torch")
    emit("from torch import nn")
    leaky = any(nodes[n]["activation"] == "leaky_relu" for n in graph.nodes)
    if leaky:
        emit("import torch.nn.functional as F")
        emit("")
        emit(f"LEAKY_SLOPE = {LEAKY_SLOPE!r}")
    emit("")
    emit("# rnngraph parameter name -> attribute of the module")
    emit("PARAMETERS = {")
    for p, a in params.items():
        emit(f"    {p!r}: {a!r},")
    emit("}")
    emit("")
    emit("")
    emit(_HELPERS)
    emit("")
    emit("")
    emit(f"class {cls}(nn.Module):")
    emit(f'    """{_doc(" ".join((net.spec.description or name).split()))}"""')
    emit("")
    emit(f"    inputs = {tuple(inputs)!r}")
    emit(f"    outputs = {tuple(outputs)!r}")
    emit("")
    emit(f"    def __init__(self, dtype=torch.{dtype}):")
    emit("        super().__init__()")
    for p, info in net.param_info.items():
        shape = ", ".join(map(str, info.shape))
        grad = "" if info.trainable else ", requires_grad=False"
        note = "" if info.trainable else "   # frozen"
        emit(f"        self.{params[p]} = nn.Parameter(torch.zeros(({shape}{',' if len(info.shape) == 1 else ''}),"
             f" dtype=dtype){grad})   # {p!r} {_shape_note(info)}{note}")
    for n, b in buffers.items():
        v = nodes[n]["init"].value
        literal = f"[{', '.join(map(_number, v))}]" if isinstance(v, tuple) else f"[{_number(v)}] * {nodes[n]['size']}"
        emit(f"        self.register_buffer({b!r}, torch.tensor({literal}, dtype=dtype))   # {n}'s init")
    if not inputs:
        emit("        self.register_buffer('_like', torch.zeros((), dtype=dtype))   # dtype and device of new tensors")
    emit("")
    emit(_LOAD_SAVE)
    emit("")

    # ---- forward
    args = ", ".join(value[n] for n in inputs)
    if inputs:
        emit(f"    def forward(self, {args}, initial=None):")
        shapes = ", ".join(f"{value[n]} (N, T, {nodes[n]['size']})" for n in inputs)
        emit(f'        """Inputs {shapes}; '
             f'returns {{output: (N, T, size)}}."""')
        emit(f"        N, T = {value[inputs[0]]}.shape[:2]")
        emit(f"        like = {value[inputs[0]]}")
    else:
        emit("    def forward(self, steps, batch_size=1, initial=None):")
        emit('        """No inputs: runs `steps` steps; returns {output: (N, T, size)}."""')
        emit("        N, T = batch_size, steps")
        emit("        like = self._like")
    emit("        initial = initial or {}")
    for n in delayed:
        node = nodes[n]
        if node["init"].kind == "input":
            default = "None"
        elif node["init"].trainable:
            default = f"self.{params[f'{n}.init']}"
        else:
            default = f"self.{buffers[n]}"
        emit(f"        {init[n]} = _initial_state(initial, {n!r}, {default}, N, {node['size']})")
    for k, (u, v, d) in edges.items():
        p = d["param"]
        if p is None:
            continue
        w = f"self.{params[p]}"
        for c in ("symmetric", "zero_diagonal"):
            if c in d["constraints"]:
                w = f"_{c}({w})"
        if w != f"self.{params[p]}":
            wv = var(k, "_weight")
            emit(f"        {wv} = {w}   # {k!r} with its constraints")
            w = wv
        weight[k] = w

    stage_of = {}
    for i, stage in enumerate(plan.stages):
        for n in stage.nodes:
            stage_of[n] = i

    def contribution(k, src: str) -> str:
        u, v, d = edges[k]
        kind = d["weight"]
        if kind == "dense":
            return f"{src} @ {weight[k]}.T"
        if kind in ("diagonal", "scalar"):
            return f"{src} * {weight[k]}"
        return src

    def combined(n, terms: list, bias_expr: str | None, shape: str) -> str:
        if nodes[n]["combine"] == "product":
            return " * ".join(_factor(t) for t in terms)
        parts = (terms or [f"_zeros(like, {shape})"]) + ([bias_expr] if bias_expr else [])
        return " + ".join(parts)

    def activated(n, a: str) -> str:
        template = TORCH_ACTIVATIONS[nodes[n]["activation"]]
        if template == "{a}":
            return a
        called = template.startswith(("torch.", "F.", "_")) and template.count("{a}") == 1
        return template.format(a=a if called or " " not in a else f"({a})")

    def sequence_read(k) -> str:
        u, v, d = edges[k]
        delay = d["delay"]
        return value[u] if delay == 0 else f"_shift({value[u]}, {delay}, {init[u]})"

    def describe(n, ks, with_bias) -> str:
        parts = [k + (f" (delay {edges[k][2]['delay']})" if edges[k][2]["delay"] else "") for k in ks]
        op = " * " if nodes[n]["combine"] == "product" else " + "
        body = op.join(parts + (["bias"] if with_bias else [])) or "0"
        act = nodes[n]["activation"]
        return body if act == "identity" else f"{act}({body})"

    for stage in plan.stages:
        if stage.kind == "input":
            continue
        if stage.kind == "parallel":
            n = stage.nodes[0]
            bias = f"self.{params[nodes[n]['bias']]}" if nodes[n]["bias"] else None
            terms = [contribution(k, sequence_read(k)) for k in incoming[n]]
            emit(f"        # {n} = {describe(n, incoming[n], bias)}, all steps at once")
            size = nodes[n]["size"]
            emit(f"        {value[n]} = {activated(n, combined(n, terms, bias, f'N, T, {size}'))}   # (N, T, {size})")
            continue
        # a recurrent component: hoist what enters from outside, loop over the rest
        member = set(stage.nodes)
        direction = _direction(graph, stage.nodes)
        emit(f"        # time loop over {', '.join(stage.nodes)}"
             + (" (negative delays: t runs down from T-1)" if direction < 0 else ""))
        steps = {n: var(n, "_steps") for n in stage.nodes}
        now = {n: var(n, "_t") for n in stage.nodes}
        outside = {}
        for n in stage.nodes:
            ks = [k for k in incoming[n] if edges[k][0] not in member]
            bias = f"self.{params[nodes[n]['bias']]}" if nodes[n]["bias"] else None
            if ks:
                outside[n] = var(n, "_from_outside")
                terms = [contribution(k, sequence_read(k)) for k in ks]
                if nodes[n]["combine"] == "product":
                    expr = combined(n, terms, None, "")
                else:
                    expr = " + ".join(terms + ([bias] if bias else []))
                emit(f"        {outside[n]} = {expr}   # what enters {n} from outside the loop, all steps")
        for n in stage.nodes:
            emit(f"        {steps[n]} = [None] * T   # {n} at each step")
        emit("        for t in " + ("range(T):" if direction > 0 else "reversed(range(T)):"))
        for n in stage.nodes:
            ks = [k for k in incoming[n] if edges[k][0] in member]
            terms = []
            for k in ks:
                u, _, d = edges[k]
                delay = d["delay"]
                src = now[u] if delay == 0 else f"_at({steps[u]}, t - {delay}, {init[u]})" if delay > 0 \
                    else f"_at({steps[u]}, t + {-delay}, {init[u]})"
                terms.append(contribution(k, src))
            if n in outside:
                terms.insert(0, f"{outside[n]}[:, t]")
            bias = f"self.{params[nodes[n]['bias']]}" if nodes[n]["bias"] and n not in outside else None
            a = combined(n, terms, bias, f"N, {nodes[n]['size']}")
            emit(f"            {now[n]} = {activated(n, a)}   # {describe(n, incoming[n], bool(nodes[n]['bias']))}")
            emit(f"            {steps[n]}[t] = {now[n]}")
        for n in stage.nodes:
            emit(f"        {value[n]} = _stack({steps[n]}, like, N, {nodes[n]['size']})   # (N, T, {nodes[n]['size']})")
    emit("        return {" + ", ".join(f"{n!r}: {value[n]}" for n in outputs) + "}")
    return "\n".join(lines) + "\n"


def _doc(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring: backslashes doubled, no closing quotes."""
    return text.replace("\\", "\\\\").replace('"', "'")


def _factor(term: str) -> str:
    """``term`` as a factor of a product: parenthesised unless it is a name, an index or an ``_at`` call."""
    return term if re.fullmatch(r"[\w.]+(\[:, t\])?|_at\([^()]*\)", term) else f"({term})"


def _shape_note(info) -> str:
    kind = {2: "dense (to, from)", 1: "", 0: "scalar"}[len(info.shape)]
    if info.kind == "bias":
        return "bias"
    if info.kind == "init":
        return "initial state"
    return kind or "diagonal"


_HELPERS = '''
def _at(steps, s, init):
    """v(s) from the list of a loop's steps, or the init (N, size) when s lies outside 0 .. T-1."""
    return steps[s] if 0 <= s < len(steps) else init


def _shift(v, delay, init):
    """v (N, T, size) read `delay` steps late (early when negative): v(t - delay), init outside."""
    N, T, size = v.shape
    d = min(abs(delay), T)
    fill = init.unsqueeze(1).expand(N, d, size)
    return torch.cat([fill, v[:, :T - d]], 1) if delay > 0 else torch.cat([v[:, d:], fill], 1)


def _stack(steps, like, N, size):
    """A loop's steps as (N, T, size)."""
    return torch.stack(steps, 1) if steps else like.new_zeros((N, 0, size))


def _zeros(like, *shape):
    return like.new_zeros(shape)


def _sign(a):
    """+1 where a >= 0, else -1; no gradient flows through."""
    return torch.where(a >= 0, torch.ones_like(a), -torch.ones_like(a))


def _symmetric(w):
    return (w + w.T) * 0.5


def _zero_diagonal(w):
    return w - torch.diag(torch.diagonal(w))


def _initial_state(initial, node, default, N, size):
    """The node's value outside 0 .. T-1, (N, size): initial[node], else its init."""
    if node in initial:
        state = initial[node]
        if tuple(state.shape) != (N, size):
            raise ValueError(f"initial[{node!r}]: expected shape ({N}, {size}), got {tuple(state.shape)}")
        return state
    if default is None:
        raise ValueError(f"node {node!r} has `init: input`: pass initial={{{node!r}: tensor (N, {size})}}")
    return default.expand(N, size)
'''.strip("\n")

_LOAD_SAVE = '''
    def load_npz(self, path):
        """Copy the parameters of an rnngraph params.npz (keyed by rnngraph name) into this module."""
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in PARAMETERS if name not in data.files]
            if missing:
                raise KeyError(f"{path}: no parameter {missing[0]!r} (it holds {sorted(data.files)})")
            with torch.no_grad():
                for name, attribute in PARAMETERS.items():
                    param = getattr(self, attribute)
                    value = torch.as_tensor(np.asarray(data[name]))
                    if tuple(value.shape) != tuple(param.shape):
                        raise ValueError(f"{path}: {name!r} has shape {tuple(value.shape)}, "
                                         f"the module needs {tuple(param.shape)}")
                    param.copy_(value)
        return self

    def save_npz(self, path):
        """Write the parameters as an rnngraph params.npz (`rnngraph run SPEC --init path` reads it)."""
        np.savez(path, **{name: getattr(self, attribute).detach().cpu().numpy()
                          for name, attribute in PARAMETERS.items()})
'''.strip("\n")


def export_torch(net, spec, out_path: str) -> None:
    """Write ``net`` (its parameters are not in the file: ``load_npz`` reads them)
    as a PyTorch module to ``out_path``, atomically."""
    from ..io import atomic_write_text
    atomic_write_text(str(out_path), torch_source(net, getattr(spec, "path", None)))
