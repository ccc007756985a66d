"""``rnngraph import-torch STATE.pt --arch lstm|gru|rnn ... -o DIR``: a PyTorch recurrent net as a spec
and its params.npz (rnngraph.export.torch_import)."""

from __future__ import annotations


def register(sub) -> None:
    from ..export.torch_import import ARCHES, READOUTS
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
    from ..export.torch_import import import_torch
    spec_path, params_path = import_torch(args.state, args.arch, args.out, args.layers, args.bidirectional,
                                          args.readout, args.nonlinearity)
    print(f"wrote {spec_path} and {params_path}")
    return 0
