"""``rnngraph plan SPEC [--source]``: how rnngraph will compute a spec.

Prints the schedule: which nodes run over whole sequences at once and which
recurrent components loop over time, with the edges hoisted out of the loops
and the dense edges fused into one GEMM.  With ``--source``, for each time
loop also what the loop compiler decided for every node and edge (and why)
and the forward and backward loops it generated, named after the graph.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plan", help="print the schedule; with --source the time loops' layout and generated code")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--source", action="store_true", help="also the layout and generated code of each time loop")
    p.add_argument("-T", type=int, default=5, help="time steps of the training step compiled for --source (default 5)")
    p.add_argument("--batch", type=int, default=2, help="its batch size (default 2)")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from ..errors import DataError
    from ..engine.network import build
    from ..spec import load_spec
    for flag, value in (("-T", args.T), ("--batch", args.batch)):
        if not 1 <= value <= 100_000:
            raise DataError(f"{flag} must be between 1 and 100000, not {value}")
    net = build(load_spec(args.spec))
    print(net.describe(source=args.source, T=args.T, batch=args.batch))
    return 0
