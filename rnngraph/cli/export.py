"""``rnngraph export SPEC --params P --format onnx|... [-o FILE]``: a trained network in another format.

The formats are ``rnngraph.export.FORMATS``; each writes its file whole or
not at all.  Without ``-o`` the file is ``<spec stem><suffix>`` in the
current folder.
"""

from __future__ import annotations

import os
import sys


def register(sub) -> None:
    from ..export import FORMATS
    p = sub.add_parser("export", help="write a network with its parameters in another framework's format")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--params", required=True, metavar="P", help="the parameters (params.npz, as `run` writes it)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("-o", dest="out", metavar="FILE", help="the file to write (default: <spec stem>.onnx / .py here)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..engine.network import build
    from ..errors import DataError
    from ..export import FORMATS, SUFFIXES
    from ..spec import load_spec
    spec = load_spec(args.spec)
    suffix = SUFFIXES[args.format]
    out = args.out or os.path.splitext(os.path.basename(args.spec))[0] + suffix
    if os.path.isdir(out):
        raise DataError(f"-o {out}: is a directory; give a file name, such as {os.path.join(out, 'model' + suffix)}")
    net = build(spec).load(args.params)
    for note in FORMATS[args.format](net, spec, out) or ():
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {out} ({args.format})")
    return 0
