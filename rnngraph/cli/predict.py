"""``rnngraph predict``: run a trained network on data; print a summary, write the arrays with ``--out``.

Prints each array's shape and the metrics; with ``--out FILE.npz`` it also
writes every array there (atomically), each metric as a 0-d array
``"metrics.<name>"``.  Without ``--out`` nothing is written: a command that
is asked a question answers it, and a file appears only where a user names it.
What is computed is ``rnngraph.training.predict``.
"""

from __future__ import annotations

import os
import sys

import numpy as np

EXIT_OK = 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="run a trained network on data; print or write its outputs and metrics")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--params", required=True, metavar="P", help="the trained parameters (a run's params.npz)")
    p.add_argument("--data", metavar="D.npz", help="the data (default: the task's evaluation data)")
    p.add_argument("--nodes", metavar="all|N,...", default="outputs",
                   help="which nodes' values: the outputs (default), all, or names separated by commas")
    p.add_argument("--out", metavar="OUT.npz",
                   help="write the arrays and metrics here (without it, only the summary is printed)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..errors import DataError
    from ..io import atomic_write
    from ..spec import load_spec
    from ..training.predict import predict
    nodes = args.nodes
    if nodes not in ("outputs", "all"):
        nodes = [n.strip() for n in nodes.split(",") if n.strip()]
        if not nodes:
            raise DataError("--nodes: expected all or node names separated by commas")
    if args.out is not None and os.path.isdir(args.out):
        raise DataError(f"--out {args.out}: is a folder; give a file name such as "
                        f"{os.path.join(args.out, 'predictions.npz')}")
    spec = load_spec(args.spec)
    result = predict(spec, args.params, args.data, nodes)
    if args.out is not None:
        try:
            atomic_write(args.out, lambda fh: np.savez(fh, **result.to_npz()), binary=True)
        except OSError as exc:
            raise DataError(f"--out {args.out}: cannot write it ({exc.strerror or exc})") from None
    console = Console()
    console.print(f"{spec.name}: predictions on {result.source}", soft_wrap=True)
    table = Table()
    table.add_column("array")
    table.add_column("shape", justify="right")
    for name, value in result.arrays.items():
        table.add_row(name, "(" + ", ".join(map(str, value.shape)) + ")")
    console.print(table)
    if result.metrics:
        shown = Table(title="metrics")
        shown.add_column("metric")
        shown.add_column("value", justify="right")
        for name, value in result.metrics.items():
            shown.add_row(name, f"{value:.6g}")
        console.print(shown)
    if args.out is not None:
        console.print(f"wrote {args.out}")
    else:
        print("nothing written: add --out FILE.npz to save the arrays", file=sys.stderr)
    return EXIT_OK
