"""The rnngraph column: build the benchmark specs and map parameters by name.

The specs in ``benchmarks/specs/`` are ordinary rnngraph spec files; the
harness rewrites their sizes and dtype per configuration and passes the text
to ``rg.parse_spec``. Parameters go in and gradients come out under the names
SPEC.md section 3/4 gives them:

=======  ==========================================================
canon    rnn name / lstm names (gate blocks i, f, g, o of the rows)
=======  ==========================================================
W_ih     ``x->h``   / ``x->lstm/i``, ``x->lstm/f``, ``x->lstm/g``, ``x->lstm/o``
W_hh     ``h->h``   / ``lstm/h->lstm/i`` ... ``lstm/h->lstm/o``
b        ``h.bias`` / ``lstm/i.bias`` ... ``lstm/o.bias``
W_out    ``h->y``   / ``lstm/h->y``
b_out    ``y.bias`` / ``y.bias``
=======  ==========================================================

:func:`available` says whether rnngraph can be used at all, and why not.
"""

from __future__ import annotations

import pathlib

import numpy as np
import yaml

SPEC_DIR = pathlib.Path(__file__).parent / "specs"
LSTM_GATES = ("i", "f", "g", "o")  # canonical (PyTorch) order of the row blocks
HIDDEN = {"rnn": "h", "lstm": "lstm"}


def spec_text(cell, input_size, hidden_size, output_size, dtype):
    """The YAML of ``specs/<cell>.yaml`` with its sizes and dtype replaced."""
    doc = yaml.safe_load((SPEC_DIR / f"{cell}.yaml").read_text())
    doc["dtype"] = np.dtype(dtype).name
    nodes = doc["nodes"]
    nodes["x"]["size"] = int(input_size)
    nodes[HIDDEN[cell]]["size"] = int(hidden_size)
    nodes["y"]["size"] = int(output_size)
    return yaml.safe_dump(doc, sort_keys=False)


def names(cell):
    """The rnngraph parameter names a benchmark network of ``cell`` must have."""
    if cell == "rnn":
        return ["x->h", "h->h", "h.bias", "h->y", "y.bias"]
    per_gate = [f"{fmt.format(g)}" for fmt in ("x->lstm/{}", "lstm/h->lstm/{}", "lstm/{}.bias") for g in LSTM_GATES]
    return per_gate + ["lstm/h->y", "y.bias"]


def to_named(cell, params):
    """Canonical parameters -> ``{rnngraph name: array}``."""
    if cell == "rnn":
        return {
            "x->h": params["W_ih"],
            "h->h": params["W_hh"],
            "h.bias": params["b"],
            "h->y": params["W_out"],
            "y.bias": params["b_out"],
        }
    H = params["W_hh"].shape[1]
    named = {}
    for k, gate in enumerate(LSTM_GATES):
        rows = slice(k * H, (k + 1) * H)
        named[f"x->lstm/{gate}"] = params["W_ih"][rows]
        named[f"lstm/h->lstm/{gate}"] = params["W_hh"][rows]
        named[f"lstm/{gate}.bias"] = params["b"][rows]
    named["lstm/h->y"] = params["W_out"]
    named["y.bias"] = params["b_out"]
    return named


def from_named(cell, named):
    """``{rnngraph name: array}`` -> canonical names (the inverse of :func:`to_named`)."""
    if cell == "rnn":
        return {
            "W_ih": named["x->h"],
            "W_hh": named["h->h"],
            "b": named["h.bias"],
            "W_out": named["h->y"],
            "b_out": named["y.bias"],
        }
    cat = lambda fmt: np.concatenate([np.asarray(named[fmt.format(g)]) for g in LSTM_GATES])  # noqa: E731
    return {
        "W_ih": cat("x->lstm/{}"),
        "W_hh": cat("lstm/h->lstm/{}"),
        "b": cat("lstm/{}.bias"),
        "W_out": named["lstm/h->y"],
        "b_out": named["y.bias"],
    }


class RnngraphImpl:
    """An rnngraph network holding the canonical parameters; same interface as the baselines.

    Raises whatever rnngraph raises when it cannot build or load the network;
    the harness turns that into a skipped column with the message.
    """

    def __init__(self, rg, cell, params, dtype=np.float32):
        self.cell = cell
        self.dtype = np.dtype(dtype)
        H = params["W_hh"].shape[1]
        I = params["W_ih"].shape[1]
        O = params["W_out"].shape[0]
        self.spec = rg.parse_spec(spec_text(cell, I, H, O, self.dtype))
        self.net = rg.build(self.spec)
        named = to_named(cell, params)
        have = set(self.net.params)
        missing = sorted(set(named) - have)
        if missing:
            raise KeyError(f"net.params lacks {missing}; it has {sorted(have)}")
        self.extra = sorted(have - set(named))  # reported, e.g. frozen identity parameters
        for name, value in named.items():
            target = self.net.params[name]
            if np.shape(target) != np.shape(value):
                raise ValueError(f"{name}: net.params shape {np.shape(target)}, expected {np.shape(value)}")
            target[...] = value  # in place: net.params is live
        self.net_dtype = np.asarray(self.net.params[next(iter(named))]).dtype

    def loss_and_grad(self, x, y):
        inputs = {"x": np.asarray(x, self.dtype)}
        targets = {"y": np.asarray(y, self.dtype)}
        loss, grads = self.net.loss_and_grad(inputs, targets)
        missing = [n for n in names(self.cell) if n not in grads]
        if missing:
            raise KeyError(f"grads lacks {missing}; it has {sorted(grads)}")
        return float(loss), {k: np.array(v) for k, v in from_named(self.cell, grads).items()}
