"""``rnngraph export SPEC --params P --format NAME [-o FILE]``: a trained network for another framework."""

from __future__ import annotations

import os

DEFAULT_SUFFIX = {"torch": ".py", "onnx": ".onnx"}


def register(sub) -> None:
    from . import FORMATS
    p = sub.add_parser("export", help="write a network with its parameters for another framework")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--params", required=True, metavar="P", help="params.npz of the network (from rnngraph run)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("-o", "--out", metavar="FILE", help="output file (default: the spec's name with the format's suffix)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..errors import DataError
    from ..network import build
    from ..spec import load_spec
    from . import FORMATS
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


def register_import(sub) -> None:
    from ..torch_import import ARCHES, READOUTS
    p = sub.add_parser("import-torch", help="turn a PyTorch nn.LSTM/GRU/RNN state_dict into a spec and params.npz")
    p.add_argument("state", metavar="STATE.pt", help="torch.save(model.state_dict(), 'STATE.pt')")
    p.add_argument("--arch", required=True, choices=ARCHES)
    p.add_argument("--layers", type=int, metavar="L", help="number of layers (checked against the state_dict)")
    p.add_argument("--bidirectional", action="store_true", help="the module has bidirectional=True")
    p.add_argument("--readout", choices=READOUTS, help="the state_dict also holds an nn.Linear reading the last layer")
    p.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh", help="nn.RNN's (default tanh)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="writes DIR/spec.yaml and DIR/params.npz")
    p.set_defaults(func=cmd_import_torch)


def cmd_import_torch(args) -> int:
    from ..torch_import import import_torch
    spec_path, params_path = import_torch(args.state, args.arch, args.out, args.layers, args.bidirectional,
                                          args.readout, args.nonlinearity)
    print(f"wrote {spec_path} and {params_path}")
    return 0
