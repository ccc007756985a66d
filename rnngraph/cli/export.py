"""``rnngraph export SPEC --params P --format NAME [-o FILE]``: a trained network for another framework."""

from __future__ import annotations

import os

DEFAULT_SUFFIX = {"torch": ".py", "onnx": ".onnx"}


def register(sub) -> None:
    from ..export import FORMATS
    p = sub.add_parser("export", help="write a network with its parameters for another framework")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--params", required=True, metavar="P", help="params.npz of the network (from rnngraph run)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("-o", "--out", metavar="FILE", help="output file (default: the spec's name with the format's suffix)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..errors import DataError
    from ..engine.network import build
    from ..spec import load_spec
    from ..export import FORMATS
    spec = load_spec(args.spec)
    if not os.path.isfile(args.params):
        raise DataError(f"--params {args.params}: no such file")
    net = build(spec).load(args.params)
    out = args.out or os.path.splitext(os.path.basename(args.spec))[0] + DEFAULT_SUFFIX.get(args.format, "")
    if os.path.isdir(out):
        raise DataError(f"-o {out} is a directory; give a file name")
    FORMATS[args.format](net, spec, out)
    print(f"wrote {out}")
    return 0
