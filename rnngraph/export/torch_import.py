"""PyTorch in: the ``state_dict`` of an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` as a spec and its parameters.

``from_state_dict(state, arch, ...)`` returns ``(spec_text, params)``: a spec
of one block (``lstm``/``gru``, or a ``tanh``/``relu`` node for ``rnn``) per
layer, layer ``l`` reading layer ``l-1``'s output, with an optional linear
readout ``y``, and ``{rnngraph name: array}`` such that ``rg.build(spec)``
computes what the PyTorch module computes.  The mapping, per layer and gate
(PyTorch stacks the gates as rows of ``weight_ih_l<k>``/``weight_hh_l<k>``):

=====  ===================  ==================================================
arch   PyTorch row blocks   rnngraph parameters (block ``B`` fed by ``X``)
=====  ===================  ==================================================
lstm   i, f, g, o           ``X->B/<gate>``, ``B/h->B/<gate>``, ``B/<gate>.bias`` = b_ih + b_hh
gru    r, z, n              ``X->B/<gate>``; ``B/h->B/r``, ``B/h->B/z``, ``B/h->B/hn``;
                            ``B/r.bias``, ``B/z.bias`` = b_ih + b_hh; ``B/n.bias`` = b_in, ``B/hn.bias`` = b_hn
rnn    (one)                ``X->B``, ``B->B``, ``B.bias`` = b_ih + b_hh
=====  ===================  ==================================================

A layer fed by a bidirectional layer has one edge per direction of its
source, each taking its half of ``weight_ih``'s columns.

``import_torch(path, arch, out_dir, ...)`` reads ``torch.save(model.state_dict())``
and writes ``out_dir/spec.yaml`` and ``out_dir/params.npz``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import DataError

ARCHES = ("lstm", "gru", "rnn")
GATES = {"lstm": "ifgo", "gru": "rzn", "rnn": ""}
READOUTS = ("linear",)
_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
                  r"(?P<reverse>_reverse)?$")


def _numpy(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[key] = np.asarray(value, dtype=np.float64)
    return out


def _split_state(state: dict, arch: str, readout: str | None):
    """The recurrent weights {(layer, reverse): {kind: array}} and the readout's (weight, bias)."""
    layers: dict = {}
    prefixes, rest = set(), {}
    for key, value in state.items():
        m = _KEY.match(key)
        if m:
            prefixes.add(m["prefix"])
            layers.setdefault((int(m["layer"]), bool(m["reverse"])), {})[m["kind"]] = value
        else:
            rest[key] = value
    if not layers:
        raise DataError(f"no weight_ih_l0 in the state_dict (keys: {', '.join(sorted(state)[:8]) or 'none'}); "
                        f"expected the state_dict of an nn.{_TORCH[arch]}")
    if len(prefixes) > 1:
        raise DataError(f"the state_dict holds several recurrent modules ({', '.join(sorted(prefixes))}); "
                        f"save the one to import")
    if any("weight_hr" in kinds for kinds in layers.values()):
        raise DataError("the LSTM has proj_size > 0 (weight_hr_l0): projections have no rnngraph form yet")
    readout_weights = None
    if readout:
        weights = {k: v for k, v in rest.items() if k.endswith("weight") and v.ndim == 2}
        if len(weights) != 1:
            raise DataError(f"--readout linear: expected one nn.Linear (a 2-D '...weight') besides the "
                            f"{arch} in the state_dict, found {sorted(weights) or 'none'}")
        key, w = next(iter(weights.items()))
        bias = rest.get(key[: -len("weight")] + "bias")
        readout_weights = (w, bias)
    elif rest:
        raise DataError(f"the state_dict holds more than the {arch}: {', '.join(sorted(rest))} "
                        f"(pass --readout linear if that is an nn.Linear readout)")
    return layers, readout_weights


_TORCH = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def from_state_dict(state: dict, arch: str, layers: int | None = None, bidirectional: bool = False,
                    readout: str | None = None, nonlinearity: str = "tanh", name: str | None = None,
                    dtype: str = "float32") -> tuple[str, dict]:
    """``(spec_text, params)`` computing the module whose ``state_dict`` is ``state``
    (tensors or arrays).  Raises ``DataError`` when the state does not fit the options."""
    if arch not in ARCHES:
        raise DataError(f"--arch {arch!r}: expected one of {', '.join(ARCHES)}")
    state = _numpy(state)
    weights, head = _split_state(state, arch, readout)
    found = sorted({layer for layer, _ in weights})
    count = len(found)
    if found != list(range(count)):
        raise DataError(f"the state_dict's layers are {found}; expected 0 .. {count - 1}")
    reverse = any(rev for _, rev in weights)
    if reverse and not bidirectional:
        raise DataError("the state_dict holds reverse-direction weights (`_reverse`): it is a bidirectional "
                        "module; pass --bidirectional")
    if bidirectional and not reverse:
        raise DataError("--bidirectional: the state_dict has no reverse-direction weights (`weight_ih_l0_reverse`)")
    if bidirectional and not backward_blocks():
        raise DataError("--bidirectional needs backward blocks (`direction: backward`, negative delays), "
                        "which this rnngraph does not have yet; a one-direction module imports without it")
    if layers is not None and layers != count:
        raise DataError(f"--layers {layers}: the state_dict has {count} layer{'s' * (count != 1)}")
    n_gates = max(len(GATES[arch]), 1)
    first = weights[(0, False)]
    if "weight_ih" not in first or "weight_hh" not in first:
        raise DataError("layer 0 lacks weight_ih_l0 or weight_hh_l0")
    hidden = first["weight_hh"].shape[1]
    if first["weight_hh"].shape[0] != n_gates * hidden:
        raise DataError(f"weight_hh_l0 has {first['weight_hh'].shape[0]} rows; an nn.{_TORCH[arch]} of hidden "
                        f"size {hidden} has {n_gates * hidden} (is --arch right?)")
    inputs = first["weight_ih"].shape[1]

    # layer l's blocks: arch<l> and, when bidirectional, arch<l>_reverse (PyTorch's order in a layer's output)
    directions = (False, True) if bidirectional else (False,)
    blocks = [[f"{arch}{layer}" + ("_reverse" if rev else "") for rev in directions] for layer in range(count)]
    params: dict = {}
    sources = ["x"]
    for layer in range(count):
        for rev, block in zip(directions, blocks[layer]):
            if (layer, rev) not in weights:
                raise DataError(f"the state_dict lacks weight_ih_l{layer}{'_reverse' * rev}")
            _layer_params(params, arch, block, sources, hidden, weights[(layer, rev)])
        sources = [_output_name(arch, b) for b in blocks[layer]]
    title = f"{'bidirectional ' if bidirectional else ''}nn.{_TORCH[arch]}"
    lines = [f"# imported by `rnngraph import-torch --arch {arch}` from the state_dict of a {title}"
             + (" with an nn.Linear readout" if readout else ""),
             "rnngraph: 1", f"name: {name or arch}",
             f"description: a {title} ({count} layer{'s' * (count != 1)}, hidden size {hidden}) "
             f"imported from PyTorch", f"dtype: {dtype}", "nodes:", f"  x: {{role: input, size: {inputs}}}"]
    for layer in range(count):
        role = ", role: output" if layer == count - 1 and not readout else ""
        for rev, block in zip(directions, blocks[layer]):
            if arch == "rnn":
                lines.append(f"  {block}: {{size: {hidden}, activation: {nonlinearity}{role}}}")
            else:
                back = ", direction: backward" if rev else ""
                lines.append(f"  {block}: {{type: {arch}, size: {hidden}{back}{role}}}")
    if readout:
        w, b = head
        if w.shape[1] != hidden * len(directions):
            raise DataError(f"the readout's weight is {w.shape}; it should read the {hidden * len(directions)} "
                            f"units of the last layer")
        lines.append(f"  y: {{role: output, size: {w.shape[0]}{'' if b is not None else ', bias: false'}}}")
        for k, src in enumerate(sources):
            params[f"{src}->y"] = w[:, k * hidden:(k + 1) * hidden]
        if b is not None:
            params["y.bias"] = b
    lines.append("edges:")
    previous = ["x"]
    for layer in range(count):
        for rev, block in zip(directions, blocks[layer]):
            lines.append(f"  - {{from: {_names(previous)}, to: {block}}}")
            if arch == "rnn":
                lines.append(f"  - {{from: {block}, to: {block}, delay: {-1 if rev else 1}}}")
        previous = blocks[layer]
    if readout:
        lines.append(f"  - {{from: {_names(previous)}, to: y}}")
    return "\n".join(lines) + "\n", params


def backward_blocks() -> bool:
    """Whether this rnngraph has backward blocks (SPEC 6.1's ``direction``)."""
    from ..spec.model import BLOCK_KEYS
    return "direction" in BLOCK_KEYS


def _names(names: list) -> str:
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


def _output_name(arch: str, block: str) -> str:
    """The primitive node an edge from the layer reads."""
    return block if arch == "rnn" else f"{block}/h"


def _layer_params(params: dict, arch: str, block: str, sources: list, hidden: int, w: dict) -> None:
    """One layer's parameters into ``params``.  ``sources`` are the primitive nodes feeding it
    (``x``, or the layer below's one or two directions), each reading its share of
    ``weight_ih``'s columns, in order."""
    zeros = np.zeros(len(GATES[arch] or "1") * hidden)
    b_ih, b_hh = w.get("bias_ih", zeros), w.get("bias_hh", zeros)
    width = w["weight_ih"].shape[1] // len(sources)

    def columns(a, k):
        return a[:, k * width:(k + 1) * width]

    if arch == "rnn":
        for k, src in enumerate(sources):
            params[f"{src}->{block}"] = columns(w["weight_ih"], k)
        params[f"{block}->{block}"] = w["weight_hh"]
        params[f"{block}.bias"] = b_ih + b_hh
        return

    def rows(a, k):
        return a[k * hidden:(k + 1) * hidden]

    for g, gate in enumerate(GATES[arch]):
        for k, src in enumerate(sources):
            params[f"{src}->{block}/{gate}"] = columns(rows(w["weight_ih"], g), k)
        recurrent = "hn" if arch == "gru" and gate == "n" else gate
        params[f"{block}/h->{block}/{recurrent}"] = rows(w["weight_hh"], g)
        if arch == "gru" and gate == "n":
            params[f"{block}/n.bias"] = rows(b_ih, g)
            params[f"{block}/hn.bias"] = rows(b_hh, g)
        else:
            params[f"{block}/{gate}.bias"] = rows(b_ih, g) + rows(b_hh, g)


def load_state_dict(path: str) -> dict:
    """``torch.load`` of a saved ``state_dict`` (tensors only; nothing is unpickled)."""
    try:
        import torch
    except ImportError:
        raise DataError("import-torch needs PyTorch: pip install 'rnngraph[torch]'") from None
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:      # a pickled module, a corrupt file: torch says why
        raise DataError(f"{path}: not a state_dict torch can load safely ({str(exc).splitlines()[0]}); "
                        f"save one with torch.save(model.state_dict(), path)") from None
    if not isinstance(state, dict) or not all(hasattr(v, "detach") for v in state.values()):
        raise DataError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    dtypes = {str(v.dtype) for v in state.values()}
    state = dict(state)
    state["__dtype__"] = "float64" if dtypes == {"torch.float64"} else "float32"
    return state


def import_torch(path: str, arch: str, out_dir: str, layers: int | None = None, bidirectional: bool = False,
                 readout: str | None = None, nonlinearity: str = "tanh") -> tuple[str, str]:
    """Write ``out_dir/spec.yaml`` and ``out_dir/params.npz`` for the state_dict at ``path``;
    returns their paths.  The spec is checked by building it with the parameters."""
    from ..io import atomic_write_text
    from ..engine.network import build
    from ..spec import parse_spec
    state = load_state_dict(path)
    dtype = state.pop("__dtype__")
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", os.path.splitext(os.path.basename(path))[0]) or arch
    text, params = from_state_dict(state, arch, layers, bidirectional, readout, nonlinearity, name=name, dtype=dtype)
    spec_path, params_path = os.path.join(out_dir, "spec.yaml"), os.path.join(out_dir, "params.npz")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DataError(f"-o {out_dir}: not a folder (a file of that name exists); give a folder for "
                        f"spec.yaml and params.npz")
    for p in (spec_path, params_path):
        if os.path.exists(p):
            raise DataError(f"{p} exists; choose another -o DIR or remove it")
    net = build(parse_spec(text, path=spec_path))
    missing = set(net.params) ^ set(params)
    if missing:      # the mapping above and the block expansion disagree: a bug, not a user's mistake
        raise AssertionError(f"import-torch: parameters differ from the spec's: {sorted(missing)}")
    for key, value in params.items():
        if net.params[key].shape != value.shape:
            raise DataError(f"{path}: {key!r} would have shape {value.shape}, the spec needs "
                            f"{net.params[key].shape} (are the layers' sizes consistent?)")
        net.params[key][...] = value
    made = not os.path.isdir(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
        net.save(params_path)
        atomic_write_text(spec_path, text)
    except OSError as exc:
        _remove_partial(out_dir, made, (params_path, spec_path))
        raise DataError(f"-o {out_dir}: cannot write it ({exc.strerror or exc})") from None
    return spec_path, params_path


def _remove_partial(out_dir: str, made: bool, paths) -> None:
    """Undo a half-done import: the files written so far, and ``out_dir`` if the import made it.
    Each file was written whole (atomically), so what exists is ours to remove."""
    for p in paths:
        try:
            os.remove(p)
        except OSError:
            pass
    if made:
        try:
            os.rmdir(out_dir)
        except OSError:
            pass
