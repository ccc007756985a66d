"""How much memory running a network will take, estimated before anything is allocated.

``estimate`` is the one estimate that data files, generated data, the CLI
commands and ``Network.forward`` / ``loss_and_grad`` are checked with;
``check`` refuses an estimate above ``limit()`` with a DataError that gives
the estimate, the limit and what to change.

The footprint of a run over ``B`` sequences of ``T`` steps is, per step,
``B * units * itemsize * factor`` (``units``: the summed sizes of the nodes
the network computes; ``factor``: the values, pre-activations, gradients and
temporaries kept per value) plus a fixed amount per step of every time loop
(the per-step bookkeeping of the recurrent loops, which dominates with small
nodes and batches).  The constants are fitted on measured peaks so that the
estimate is an upper bound; benchmarks/README.md ("Memory estimate") has the
measurements.

The limit is the smaller of 16 GiB and 80% of the machine's physical memory;
the environment variable ``RNNGRAPH_MEMORY_LIMIT`` (bytes, or a number with
K, M, G or T, such as ``32G``) replaces it.
"""

from __future__ import annotations

import functools
import os


from .errors import DataError

ENV_LIMIT = "RNNGRAPH_MEMORY_LIMIT"
DEFAULT_LIMIT = 16 * 1024 ** 3

# bytes kept per value element (one unit of one sequence at one step, of the network's dtype)
PER_ELEMENT_TRAINING = 5.0      # forward keeping what BPTT needs, then the backward pass
PER_ELEMENT_FORWARD = 4.5       # forward only (evaluation, ``forward``)
# bytes per time step of each time loop, and of each node inside one
PER_LOOP_STEP = 1536
PER_LOOP_NODE_STEP = 768

_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def limit() -> int:
    """The most memory (bytes) a run may be estimated to need."""
    text = os.environ.get(ENV_LIMIT, "").strip()
    if text:
        number = text.upper().removesuffix("IB").removesuffix("B") if len(text) > 1 else text
        suffix = number[-1:] if number[-1:] in "KMGT" else ""
        try:
            value = float(number[:len(number) - len(suffix)]) * _SUFFIXES[suffix]
        except ValueError:
            raise DataError(f"{ENV_LIMIT}={text!r}: expected a number of bytes, such as 8G or 17179869184") from None
        if not value > 0:
            raise DataError(f"{ENV_LIMIT}={text!r}: expected a positive number of bytes")
        return int(value)
    return _machine_limit()


@functools.cache
def _machine_limit() -> int:
    """The limit without ``RNNGRAPH_MEMORY_LIMIT``: asked of the machine once (every call checks it)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_LIMIT
    return int(min(DEFAULT_LIMIT, 0.8 * physical))


def gib(n: float) -> str:
    """``n`` bytes for a message: GiB, or MiB below one GiB, or KiB below one MiB."""
    if n >= 1024 ** 3:
        return f"{n / 1024 ** 3:.1f} GiB"
    return f"{n / 1024 ** 2:.0f} MiB" if n >= 1024 ** 2 else f"{n / 1024:.0f} KiB"


def estimate(net, T: int, B: int, *, grads: bool = True, data_bytes: float = 0, kept: int = 0) -> float:
    """Bytes needed to run ``net`` over ``B`` sequences of ``T`` steps (with
    ``grads``: a training step, forward and BPTT), plus ``data_bytes`` already
    held, plus the values of every node of ``kept`` whole sequences of ``T``
    steps kept afterwards (evaluation outputs)."""
    computed, every, loops, loop_nodes = net.program.sizes
    itemsize = net.dtype.itemsize
    factor = PER_ELEMENT_TRAINING if grads else PER_ELEMENT_FORWARD
    per_step = B * computed * itemsize * factor + loops * PER_LOOP_STEP + loop_nodes * PER_LOOP_NODE_STEP
    params = net.param_elements * itemsize * (4 if grads else 1)
    return float(data_bytes) + float(T) * per_step + params + float(kept) * T * every * itemsize


def check(need: float, doing: str, advice: str) -> None:
    """DataError when ``need`` bytes exceed ``limit()``: ``doing`` says what
    would need them, ``advice`` what to make smaller."""
    most = limit()
    if need > most:
        raise DataError(f"{doing} would need about {gib(need)} of memory (limit {gib(most)}; set "
                        f"{ENV_LIMIT} to change it); {advice}")
