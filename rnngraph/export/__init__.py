"""Exports: a built network written in another framework's format.

``FORMATS[name](net, spec, out_path)`` writes ``net`` (built from ``spec``,
its parameters loaded) to ``out_path``, atomically; it raises ``DataError``
for a network the format cannot express, a file it cannot write, or a
format whose packages are not installed.  Each format lives in its own module and imports its
framework only when called.  ``rnngraph export`` (cli.py) dispatches here.
"""

from __future__ import annotations


def _onnx(net, spec, out_path) -> None:
    from .onnx import export_onnx
    export_onnx(net, spec, out_path)


FORMATS = {
    "onnx": _onnx,
}

SUFFIXES = {"onnx": ".onnx", "torch": ".py"}     # the default output file: <spec stem><suffix>
