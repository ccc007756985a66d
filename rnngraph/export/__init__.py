"""Exports: a network in another framework's terms.

``FORMATS[name](net, spec, out_path)`` writes ``net`` (a ``Network`` with its
parameters loaded, built from ``spec``) to ``out_path`` in format ``name``.
"""

from __future__ import annotations


def _torch(net, spec, out_path) -> None:
    from .torch import export_torch
    export_torch(net, spec, out_path)


FORMATS = {"torch": _torch}
