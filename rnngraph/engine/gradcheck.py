"""Compare the engine's gradients with central finite differences.

``gradcheck(net)`` draws random inputs and targets (float64), computes
``loss_and_grad`` and, for every trainable parameter, central differences
``(L(p + h) - L(p - h)) / 2h`` on up to ``max_entries`` of its entries.
``summary(results)`` says what the comparison shows, including when it shows
nothing: a parameter whose gradient is zero both ways (behind a ``sign`` or
``step`` activation, say) agrees trivially.  A network with dropout edges is
checked as training runs it: with dropout masks drawn from ``seed``, the same
for the gradient and every difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ParamCheck:
    name: str
    checked: int          # entries compared
    max_abs: float        # largest |analytic - numeric|
    max_rel: float        # largest |a - n| / max(|a|, |n|, 1e-8)
    ok: bool
    zero: bool = False    # analytic and numeric gradients both exactly zero on every entry checked


def random_problem(net, T: int = 5, B: int = 3, seed: int = 0):
    """Inputs, targets (all outputs, or every non-input node when there are
    none), initial states for ``init: input`` nodes, and the loss to use."""
    rng = np.random.default_rng(seed)
    inputs = {n: rng.normal(size=(B, T, net.size(n))) for n in net.input_nodes}
    outputs = net.output_nodes or [n for n in net.graph.nodes if net.graph.nodes[n]["role"] != "input"]
    loss = net.spec.train.get("loss", "mse")
    targets = {}
    for n in outputs:
        size = net.size(n)
        if loss == "cross_entropy":
            targets[n] = np.eye(size)[rng.integers(0, size, size=(B, T))]
        else:
            targets[n] = rng.uniform(0.05, 0.95, size=(B, T, size))
    initial = {n: rng.normal(size=(B, net.size(n))) for n in net.graph.nodes
               if net.graph.nodes[n]["init"].kind == "input"}
    return inputs, targets, initial, loss


def problem_bytes(net, T: int, B: int) -> float:
    """Bytes of ``random_problem``'s arrays (float64)."""
    nodes = net.graph.nodes
    outputs = net.output_nodes or [n for n in nodes if nodes[n]["role"] != "input"]
    units = (sum(net.size(n) for n in net.input_nodes) * T + sum(net.size(n) for n in outputs) * T
             + sum(net.size(n) for n in nodes if nodes[n]["init"].kind == "input"))
    return float(B) * units * 8


def gradcheck(net, T: int = 5, B: int = 3, seed: int = 0, h: float = 1e-6, max_entries: int = 40,
              rtol: float = 1e-5, atol: float = 1e-7) -> list[ParamCheck]:
    """Check ``net`` (built with dtype float64) parameter by parameter.

    Raises DataError, before allocating, when the problem would need more
    memory than ``budget.limit()``."""
    from .. import budget
    budget.check(budget.estimate(net, T, B, data_bytes=problem_bytes(net, T, B)),
                 f"checking gradients over {B} sequences of {T} steps",
                 "use fewer steps (-T) or a smaller batch (--batch)")
    inputs, targets, initial, loss = random_problem(net, T, B, seed)
    any_node = not net.output_nodes
    masks = net.dropout_masks(B, T, seed) if net.dropout else None

    def L():
        return net.eval_loss(inputs, targets, loss=loss, initial=initial, any_node=any_node,
                             dropout_masks=masks).loss
    grads = net.train_step(inputs, targets, loss=loss, initial=initial, keep_values=True, any_node=any_node,
                           dropout_masks=masks).grads
    rng = np.random.default_rng(seed + 1)
    results = []
    for name in net.trainable:
        p = net.params[name]
        flat = p.reshape(-1)
        idx = np.arange(flat.size) if flat.size <= max_entries else rng.choice(flat.size, max_entries, replace=False)
        analytic = grads[name].reshape(-1)[idx]
        numeric = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            lp = L()
            flat[i] = old - h
            lm = L()
            flat[i] = old
            numeric[j] = (lp - lm) / (2 * h)
        diff = np.abs(analytic - numeric)
        rel = diff / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-8)
        ok = bool(np.all(diff <= atol + rtol * np.abs(numeric)))
        zero = bool(len(idx)) and not np.any(analytic) and not np.any(numeric)
        results.append(ParamCheck(name, len(idx), float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), ok,
                                  zero))
    return results


def summary(results: list[ParamCheck]) -> str:
    """One line on what ``gradcheck``'s results show."""
    if not results:
        return "no trainable parameters: nothing to check"
    bad = [r.name for r in results if not r.ok]
    if bad:
        return f"gradients disagree with finite differences for {', '.join(bad)}"
    zero = [r.name for r in results if r.zero]
    text = f"all {len(results)} parameters agree with finite differences"
    if zero:
        which = "every parameter" if len(zero) == len(results) else ", ".join(zero)
        text += (f"; but for {which} both gradients are exactly zero (no loss gradient reaches it, e.g. "
                 f"through a sign or step activation), so that agreement is trivially true and checks nothing")
    return text
