"""The TUI in a web browser: ``rnngraph tui --serve`` (textual-serve, an optional extra).

Each browser tab that opens the page gets its own app process, started by the
same command a terminal user types (``python -m rnngraph tui SPEC``), so what a
class sees in the browser is the terminal app, screen for screen.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys


class ServeError(Exception):
    """The server cannot start: the message says why and what to do."""


def serve_command(path: str | None) -> str:
    """The shell command textual-serve runs for each browser tab."""
    argv = [sys.executable, "-m", "rnngraph", "tui"]
    if path is not None:
        argv.append(os.path.abspath(path))
    return shlex.join(argv)


def check_port(host: str, port: int) -> None:
    """ServeError when ``host:port`` cannot be listened on (taken, or not an address here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                             f"(another program may use the port: pick one with --port)") from None


def serve(path: str | None, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve the app on ``http://host:port`` until interrupted; the exit status."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ServeError("rnngraph tui --serve needs textual-serve: pip install -e '.[serve]'") from None
    check_port(host, port)
    title = f"rnngraph {os.path.basename(path)}" if path else "rnngraph"
    server = Server(serve_command(path), host=host, port=port, title=title)
    print(f"rnngraph: serving the TUI on http://{host}:{port} (Ctrl+C stops)", file=sys.stderr, flush=True)
    server.serve()
    return 0
