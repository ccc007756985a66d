"""``rg.draw(net, T=None)``: a network's picture for Jupyter (``engine.pictures``)."""

from __future__ import annotations

from .engine.network import Network
from .engine.pictures import Drawing, folded, unrolled


def draw(net, T: int | None = None) -> Drawing:
    """``net``'s folded graph, or with ``T`` its unrolled DAG over ``T`` steps
    (initial states included); displays inline in Jupyter.  ArgumentError when
    ``net`` is not a network (a spec, a path: build it with ``rg.build(spec)``)."""
    if not isinstance(net, Network):
        from .arguments import _got
        from .errors import ArgumentError
        raise ArgumentError(f"draw: net: expected a network from rg.build(spec), got {_got(net)}")
    if T is None:
        return folded(net.graph)
    return unrolled(net.graph, net.unroll(T, initial=True))
