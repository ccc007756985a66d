"""rnngraph: recurrent neural networks as YAML graphs with feedback edges.

    import rnngraph as rg
    spec = rg.load_spec("specs/elman_temporal_xor.yaml")
    net = rg.build(spec)
    out = net.forward({"x": x})                    # x: (batch, time, size)
    loss, grads = net.loss_and_grad({"x": x}, {"y": y})

A wrong argument raises the project's errors, never a Python error from
deep inside: ``DataError`` (a ``ValueError``) for a wrong value,
``ArgumentError`` (a ``DataError`` and a ``TypeError``) for a wrong type,
``SpecError`` for an invalid spec.

The package never imports textual: the terminal UI lives in ``tui``.
"""

from .errors import ArgumentError, DataError, RnngraphError, RunError, SpecError, SpecErrors

# numpy, networkx and the engine load when first used, so that ``rnngraph.cli`` starts (and
# can answer Ctrl-C) before anything slow is imported
_LAZY = {"draw": "notebook", "expand": "spec", "Network": "engine.network", "build": "engine.network",
         "Spec": "spec", "load_spec": "spec", "parse_spec": "spec", "run_sweep": "cli.sweep_runs"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnngraph' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["ArgumentError", "DataError", "Network", "RnngraphError", "RunError", "Spec", "SpecError", "SpecErrors",
           "build", "draw", "expand", "load_spec", "parse_spec", "run_sweep"]
__version__ = "0.1.0"
