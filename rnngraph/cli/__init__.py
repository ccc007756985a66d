"""The ``rnngraph`` command (the README lists the commands).

Exit status: 0 success; 1 the run failed (diverged, a metric missed its
threshold, gradients disagree); 2 bad usage or an invalid spec or data.
A user's mistake prints one clear message per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DataError, RunError, SpecError, SpecErrors

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _print_spec_error(exc: SpecError) -> None:
    errors = exc.errors if isinstance(exc, SpecErrors) else [exc]
    for e in errors:
        print(e.format(), file=sys.stderr)


def cmd_check(args) -> int:
    import numpy as np

    from ..engine.graph import folded_graph
    from ..engine.params import param_infos
    from ..engine.plan import make_plan
    from ..spec import load_spec
    status = EXIT_OK
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            _print_spec_error(exc)
            status = EXIT_USAGE
            continue
        graph = folded_graph(spec)      # what build() does, without allocating parameters
        make_plan(graph)
        if spec.task and "file" in spec.task:   # data files must fit the network too
            from ..training.data import file_splits
            from ..engine.network import build
            try:
                file_splits(spec, build(spec))   # a file that does not fit: a SpecError at its task key
            except SpecError as exc:
                _print_spec_error(exc)
                status = EXIT_USAGE
                continue
        count = sum(int(np.prod(info.shape, dtype=np.int64)) for info in param_infos(graph).values())
        print(f"{path}: ok ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges, "
              f"{count} parameters)")
    return status


def cmd_expand(args) -> int:
    from ..spec import load_spec
    spec = load_spec(args.spec)
    sys.stdout.write(spec.expanded().to_yaml())
    return EXIT_OK


def cmd_unroll(args) -> int:
    from ..engine.network import build
    from ..engine.render import FORMATS
    from ..spec import load_spec
    if args.T < 0:
        raise _Usage("-T must be >= 0")
    if args.T > 10_000:
        raise _Usage(f"-T {args.T} would print a huge graph; at most 10000 steps")
    from .lossmarks import unroll_marks
    spec = load_spec(args.spec)
    net = build(spec)
    dag = net.unroll(args.T, initial=True)
    sys.stdout.write(FORMATS[args.format](net.graph, dag, unroll_marks(spec, net, args.T)))
    return EXIT_OK


def cmd_gradcheck(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..engine.gradcheck import gradcheck, summary
    from ..engine.network import build
    from ..spec import load_spec
    net = build(load_spec(args.spec), dtype="float64")
    results = gradcheck(net, T=args.T, B=args.batch, seed=args.seed)
    table = Table(title=f"gradcheck {args.spec} (T={args.T}, batch={args.batch}, float64)")
    for col in ("parameter", "entries", "max |abs err|", "max rel err", ""):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, str(r.checked), f"{r.max_abs:.2e}", f"{r.max_rel:.2e}",
                      ("[yellow]ok (all zero)[/]" if r.zero else "[green]ok[/]") if r.ok else "[red]MISMATCH[/]")
    console = Console()
    console.print(table)
    bad = [r.name for r in results if not r.ok]
    console.print(f"[red]{summary(results)}[/]" if bad else summary(results))
    return EXIT_FAILED if bad else EXIT_OK


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("rnngraph")
    except PackageNotFoundError:
        from .. import __version__
        return __version__


def cmd_schema(args) -> int:
    from ..spec.schema import schema_text
    sys.stdout.write(schema_text())
    return EXIT_OK


def at_least(low: int):
    """An argparse ``type``: an integer >= ``low``; anything else is a usage
    error (argparse prints the usage and exits 2)."""
    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return integer


def port_number(text: str) -> int:
    """An argparse ``type``: a TCP port, 1 to 65535."""
    value = at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


class _Usage(Exception):
    pass


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnngraph", description="Recurrent neural networks as YAML graphs.")
    parser.add_argument("--version", action="version", version=f"rnngraph {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", help="validate specs; print file:line:column: ... per error")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("expand", help="print the spec with every block expanded into primitive nodes")
    p.add_argument("spec", metavar="SPEC")
    p.set_defaults(func=cmd_expand)

    p = sub.add_parser("unroll", help="print the time-indexed DAG")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-T", type=at_least(0), required=True, help="number of time steps")
    p.add_argument("--format", choices=("text", "dot", "mermaid", "json"), default="text")
    p.set_defaults(func=cmd_unroll)

    p = sub.add_parser("gradcheck", help="compare the engine's gradients with finite differences")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-T", type=at_least(1), default=5, help="time steps (default 5)")
    p.add_argument("--batch", type=at_least(1), default=3, help="batch size (default 3)")
    p.add_argument("--seed", type=at_least(0), default=0)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format (for editors)")
    p.set_defaults(func=cmd_schema)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _register_run(sub):
    from .run import register
    register(sub)


def cmd_tui(args) -> int:
    try:
        from tui.app import run   # the only place rnngraph reaches for textual
    except ImportError as exc:
        print(f"rnngraph tui needs the terminal UI's packages ({exc.name}): pip install -e .", file=sys.stderr)
        return EXIT_USAGE
    if args.spec is not None:
        import os
        if os.path.isdir(args.spec):
            raise _Usage(f"{args.spec} is a directory; give a spec file (or nothing, for a new spec)")
    if args.serve:
        from tui.serve import ServeError, serve
        try:
            return serve(args.spec, host=args.host, port=args.port)
        except ServeError as exc:
            raise _Usage(str(exc)) from None
    return run(args.spec)


def _register_tui(sub):
    p = sub.add_parser("tui", help="open the terminal editor: edit, unroll, step through and train a graph")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="a spec file (opened, or created on save)")
    p.add_argument("--serve", action="store_true",
                   help="serve the app to web browsers instead (needs the serve extra: pip install -e '.[serve]')")
    p.add_argument("--port", type=port_number, default=8000, help="with --serve: the port (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="with --serve: the address to listen on (default 127.0.0.1; 0.0.0.0 for a classroom)")
    p.set_defaults(func=cmd_tui)


def _register_bench(sub):
    p = sub.add_parser("bench", help="time one training step (forward + BPTT + all gradients) of a spec")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-T", type=at_least(1), default=50, help="time steps (default 50)")
    p.add_argument("--batch", type=at_least(1), default=16, help="batch size (default 16)")
    p.add_argument("--repeat", type=at_least(1), default=20, help="timed repetitions (default 20)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="override the spec's dtype")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from .bench import cmd_bench
    return cmd_bench(args)


def _register_plan(sub):
    from .plan import register
    register(sub)


def _register_grads(sub):
    from .grads import register
    register(sub, at_least)


def _register_sweep(sub):
    from .sweep import register
    register(sub)


def _register_predict(sub):
    from .predict import register
    register(sub)


def _register_export(sub):
    from .export import register
    register(sub)


def _register_import_torch(sub):
    from .import_torch import register
    register(sub)


_EXTRA_COMMANDS: list = [_register_run, _register_tui, _register_bench, _register_plan, _register_grads,
                         _register_predict, _register_export, _register_import_torch, _register_sweep]


def main(argv=None) -> int:
    # Ctrl-C or SIGTERM while the commands' modules load waits for the loading to end (an exception
    # raised inside an extension module's import can surface as an ImportError), then exits 130
    import signal
    signals = []
    previous = {s: signal.signal(s, lambda signum, frame: signals.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        parser = make_parser()
        args = parser.parse_args(argv)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signals:
        print("interrupted", file=sys.stderr)
        return 130
    args.argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    try:
        return args.func(args)
    except SpecError as exc:
        _print_spec_error(exc)
        return EXIT_USAGE
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Usage as exc:
        print(f"rnngraph {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `rnngraph unroll ... | head`
        sys.stderr.close()
        return EXIT_OK

