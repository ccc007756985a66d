"""Exports: a built network written in another framework's format.

``FORMATS[name](net, spec, out_path)`` writes ``net`` (built from ``spec``,
its parameters loaded) to ``out_path``, atomically, and returns notes for
the user (where the file computes something other than the spec says), or
None.  It raises ``DataError``
for a network the format cannot express, a file it cannot write, or a
format whose packages are not installed.  Each format lives in its own module and imports its
framework only when called.  ``rnngraph export`` (cli/export.py) dispatches here.
"""

from __future__ import annotations


def _onnx(net, spec, out_path) -> list:
    from .onnx import export_onnx
    return export_onnx(net, spec, out_path)


def _torch(net, spec, out_path) -> None:
    from .torch import export_torch
    export_torch(net, spec, out_path)


FORMATS = {
    "onnx": _onnx,
    "torch": _torch,
}

SUFFIXES = {"onnx": ".onnx", "torch": ".py"}     # the default output file: <spec stem><suffix>
