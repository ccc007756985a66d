"""``rnngraph grads SPEC``: the vanishing-gradient picture, |dL/dv_n(t)| per node and step.

On one evaluation batch (the first ``train.batch_size`` sequences of the
task's evaluation data, else of its training data) it runs
``Network.backward_trace`` (BPTT's dL/dv for every node and step, the TUI Step
screen's backward view) and prints, per non-input node and step, the norm
of that gradient over the batch and the node's units.  A loss read only at
the last step (many-to-one) shows how far back its gradient reaches; one
read everywhere shows the sum of every later step's share.

Formats: ``text`` (a table, a row per step), ``csv`` (the same numbers) and
``png`` (a heat map, nodes by steps, log scale; needs matplotlib, the
``plot`` extra).
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import DataError

FORMATS = ("text", "csv", "png")


def evaluation_batch(spec, net, steps: int | None = None):
    """(Dataset, masks, loss) of one evaluation batch of ``spec``'s task, cut to
    its first ``steps`` steps when given."""
    from ..training.data import file_splits, task_splits
    from ..training.train import loss_masks, resolve_config
    if spec.task is None:
        raise DataError(f"{spec.path or 'the spec'}: no `task:`, so there is no evaluation batch to differentiate")
    if "generator" in spec.task:
        train, evald, task = task_splits(spec, net, spec.seed)
    else:
        (train, evald), task = file_splits(spec, net), None
    config = resolve_config(spec, task)
    if config.method not in ("bptt", "rtrl"):
        raise DataError(f"train.method {config.method!r} stores patterns: there is no loss gradient to show")
    data = evald if evald is not None and evald.n else train
    batch = data.subset(slice(0, max(1, min(config.batch_size, data.n))))
    if steps is not None:
        if steps > batch.steps:
            raise DataError(f"-T {steps}: the evaluation sequences have only {batch.steps} steps")
        initial = batch.initial
        batch = batch.window(0, steps)
        batch.initial = initial
    return batch, loss_masks(config, batch), config.loss


def gradient_norms(net, batch, masks: dict, loss: str) -> tuple[list, np.ndarray, float]:
    """(nodes, norms (T, len(nodes)), the loss): |dL/dv_n(t)| over the batch and
    units for every non-input primitive node, in the plan's order."""
    loss_value, _ = net.loss_and_grad(batch.inputs, batch.targets, loss=loss, initial=batch.initial or None,
                                      mask=masks or None, steps=batch.steps)
    trace = net.backward_trace(batch.inputs, batch.targets, loss=loss, initial=batch.initial or None,
                               mask=masks or None, steps=batch.steps)
    nodes = [n for n in net.plan.order if net.graph.nodes[n]["role"] != "input"]
    norms = np.stack([np.sqrt((trace[n].astype(np.float64) ** 2).sum(axis=(0, 2))) for n in nodes], axis=1)
    return nodes, norms, loss_value


def to_text(nodes, norms, title: str) -> str:
    width = max(9, *(len(n) for n in nodes))
    lines = [title, "   t  " + " ".join(n.rjust(width) for n in nodes)]
    for t, row in enumerate(norms):
        lines.append(f"{t:>4}  " + " ".join(f"{x:>{width}.2e}" for x in row))
    return "\n".join(lines) + "\n"


def to_csv(nodes, norms) -> str:
    lines = ["t," + ",".join(nodes)]
    lines += [f"{t}," + ",".join(f"{x:.6e}" for x in row) for t, row in enumerate(norms)]
    return "\n".join(lines) + "\n"


def write_png(nodes, norms, title: str, path: str) -> None:
    """A heat map of log10 |dL/dv|, nodes by steps (zeros shown blank)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--format png needs matplotlib: pip install 'rnngraph[plot]' (or use --format text|csv)") \
            from None
    from ..io import atomic_write
    with np.errstate(divide="ignore"):
        logs = np.where(norms > 0, np.log10(np.where(norms > 0, norms, 1.0)), np.nan).T   # (nodes, T)
    T = norms.shape[0]
    fig, ax = plt.subplots(figsize=(min(16, 3 + 0.12 * T), 1.2 + 0.3 * len(nodes)), dpi=100)
    image = ax.imshow(np.ma.masked_invalid(logs), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_xlabel("time step t")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="log10 |dL/dv(t)|")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    plt.close(fig)


def cmd_grads(args) -> int:
    from ..io import atomic_write_text
    from ..engine.network import build
    from ..spec import load_spec
    if args.format == "png" and not args.out:
        raise DataError("--format png writes a file: give --out FILE.png")
    spec = load_spec(args.spec)
    net = build(spec)
    if args.params:
        net.load(args.params)
    if not net.output_nodes:
        raise DataError(f"{args.spec}: no output node, so no loss to differentiate")
    batch, masks, loss = evaluation_batch(spec, net, args.T)
    if masks and not any(m.any() for m in masks.values()):
        raise DataError(f"-T {batch.steps}: the loss counts at none of these steps (the task reads it later), "
                        f"so every gradient would be 0; raise -T to reach the counted steps")
    nodes, norms, value = gradient_norms(net, batch, masks, loss)
    which = f"params {args.params}" if args.params else "initial parameters"
    title = (f"|dL/dv(t)| of {spec.name} ({which}; {loss} loss {value:.4g} on a batch of {batch.n}, "
             f"T = {batch.steps})")
    if args.format == "png":
        write_png(nodes, norms, title, args.out)
        print(f"wrote {args.out}")
        return 0
    text = to_text(nodes, norms, "# " + title) if args.format == "text" else to_csv(nodes, norms)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def register(sub, at_least) -> None:
    p = sub.add_parser("grads", help="print |dL/dv(t)| per node and step on one evaluation batch "
                                     "(the vanishing-gradient picture)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--params", metavar="P", help="the parameters to use (a params.npz; default: the initial ones)")
    p.add_argument("-T", type=at_least(1), default=None, help="only the first T steps (default: the whole sequence)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--out", metavar="FILE", help="write here instead of printing (required for png)")
    p.set_defaults(func=cmd_grads)
