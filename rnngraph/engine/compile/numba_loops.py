"""The generated time loops compiled to machine code with numba (optional extra ``fast``).

``faster(loop)`` takes a ``codegen._Loop`` (forward or backward) and returns a
``NumbaLoop`` that runs the same steps as one numba function, or ``loop``
itself when numba is not installed, ``RNNGRAPH_LOOPS=numpy`` is set, or the
loop uses something this translation does not cover (an activation called as
a Python function).  A ``NumbaLoop`` is called exactly like the ``_Loop`` it
replaces; if numba cannot compile it for a call's arrays (an unsupported
dtype, say) it falls back to that ``_Loop`` for good.

The translation works on the loop's body as the loop compiler wrote it
(``_Loop.step_body``: step ``t`` indexed in place, numpy ufuncs writing into
``out``): each ufunc becomes the same ``np.<ufunc>`` call in nopython mode,
each per-step GEMM a ``_gemm`` loop nest (numba's ``np.dot`` needs SciPy),
``copyto`` a slice assignment, and a broadcast multiply over column blocks
(``.reshape(-1, k, w)``) one multiply per block.  The arrays are bound from the
loop's argument lists by the loop's own preamble in a small Python wrapper,
which passes them, and the constants as scalars of the run's dtype, to the
kernel.

Compilation is cached across processes: the kernel's source is written to
``<cache>/numba/loops_<hash>.py`` (atomically; ``<cache>`` is
``$RNNGRAPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/rnngraph``, else
``~/.cache/rnngraph``), imported from there, and compiled with numba's
``cache=True``, which keeps the machine code beside it.  Where that directory
cannot be written, the kernel is compiled in memory for this process only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

from ...errors import DataError

ENV_BACKEND = "RNNGRAPH_LOOPS"        # numpy (default); auto: numba when installed; numba: numba or an error
ENV_CACHE = "RNNGRAPH_CACHE_DIR"
BACKENDS = ("auto", "numba", "numpy")

_UFUNC_CALL = re.compile(r"^(multiply|add|subtract|tanh|exp|sign|maximum)\((.*)\)$")
_GEMM_CALL = re.compile(r"^(dot|matmul)\((.*)\)$")
_COPY_CALL = re.compile(r"^copyto\((.*)\)$")
_FILL = re.compile(r"^[\w\[\]:, ()+\-<=>]+\.fill\(0\)$")
_BINDING = re.compile(r"^(a|v|gv|ga) = [\w\[\]:, ]+$")
# a broadcast multiply of a carrier over k equal column blocks (codegen's _merge_folds)
_BLOCKS = re.compile(r"^multiply\((?P<carrier>.+)\[:, None\], (?P<src>\w+\[t\])(?:\[:, (?P<lo>\d+):\d+\])?"
                     r"\.reshape\(-1, (?P<k>\d+), (?P<w>\d+)\), out=(?P<dst>\w+\[t\])(?:\[:, \d+:\d+\])?"
                     r"\.reshape\(-1, \d+, \d+\)\)$")
_TOKEN = re.compile(r"\b(?:[A-Z]+\d+(?:_\d+_\d+)?|HALF|ONE|ZERO)\b")
_CONSTANT_NAMES = ("HALF", "ONE", "ZERO")

# the kernels' shared helper: out = x @ w for one step, any strides (numba's np.dot needs
# SciPy and contiguous arrays); the innermost loop runs along w's and out's rows
_HELPERS = '''
@numba.njit(cache=CACHE, nogil=True)
def _gemm(x, w, out):
    rows, inner = x.shape
    cols = w.shape[1]
    for b in range(rows):
        for n in range(cols):
            out[b, n] = 0
        for k in range(inner):
            xk = x[b, k]
            for n in range(cols):
                out[b, n] += xk * w[k, n]
'''


class Unsupported(Exception):
    """The loop uses something the numba translation does not cover."""


def backend() -> str:
    """``numba`` when the loops are to be compiled with numba (asked for with
    ``RNNGRAPH_LOOPS=auto`` or ``numba``, and installed), else ``numpy``.

    Opt-in: numba's import and kernel loading cost 0.1-1 s a process, which most
    short runs do not win back.  Raises DataError for a value of ``RNNGRAPH_LOOPS``
    other than auto, numba, numpy, or ``numba`` without numba installed."""
    choice = os.environ.get(ENV_BACKEND, "").strip().lower() or "numpy"
    if choice not in BACKENDS:
        raise DataError(f"{ENV_BACKEND}={choice!r}: expected one of {', '.join(BACKENDS)}")
    if choice == "numpy":
        return "numpy"
    if _numba() is None:
        if choice == "numba":
            raise DataError(f"{ENV_BACKEND}=numba: numba is not installed (pip install 'rnngraph[fast]')")
        return "numpy"
    return "numba"


def _numba():
    """The numba module, or None when it cannot be imported."""
    try:
        import numba
    except ImportError:
        return None
    return numba


# A kernel beats the numpy loop while its steps are small: it saves each numpy call's
# overhead, but numba's tanh and exp are scalar libm calls (numpy's are vectorized) and its
# GEMM loop nest falls behind BLAS as the matrices grow (benchmarks/README.md).  Past either
# bound per step the numpy loop runs.
TRANSCENDENTALS_PER_CALL = 50        # tanh/exp evaluations per step per numpy call it saves
MAX_GEMM = 8192                      # multiply-adds per step of the per-step GEMMs
TRANSCENDENTAL = frozenset({"sigmoid", "tanh", "exp"})


def faster(loop, transcendentals_per_row: int = 0, gemm_per_row: int = 0):
    """``loop`` as a ``NumbaLoop`` when the numba backend is on and covers it, else ``loop``.
    ``transcendentals_per_row`` and ``gemm_per_row``: the loop's tanh/exp evaluations and
    GEMM multiply-adds per step and batch row, which bound the batch it runs."""
    if backend() != "numba":
        return loop
    try:
        fast = NumbaLoop(loop)
    except Unsupported:
        return loop
    fast.max_rows = min(TRANSCENDENTALS_PER_CALL * fast.calls // max(transcendentals_per_row, 1),
                        MAX_GEMM // max(gemm_per_row, 1))
    return fast


def _split_args(text: str) -> list[str]:
    """A call's arguments, split at the commas outside brackets and parentheses."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    parts.append(text[start:].strip())
    return parts


def _positional(args: list[str]) -> list[str]:
    return [a.removeprefix("out=") for a in args]


def translate_line(line: str) -> list[str]:
    """One line of a loop body as nopython-mode lines; raises Unsupported."""
    match = _BLOCKS.match(line)
    if match:
        lo, k, w = int(match["lo"] or 0), int(match["k"]), int(match["w"])
        return [f"np.multiply({match['carrier']}, {match['src']}[:, {lo + j * w}:{lo + (j + 1) * w}], "
                f"{match['dst']}[:, {lo + j * w}:{lo + (j + 1) * w}])" for j in range(k)]
    if ".reshape(" in line:
        raise Unsupported(line)
    match = _UFUNC_CALL.match(line)
    if match:
        return [f"np.{match[1]}({', '.join(_positional(_split_args(match[2])))})"]
    match = _GEMM_CALL.match(line)
    if match:
        args = _positional(_split_args(match[2]))
        if len(args) != 3:
            raise Unsupported(line)
        return [f"_gemm({', '.join(args)})"]
    match = _COPY_CALL.match(line)
    if match:
        dst, src = _split_args(match[1])
        return [f"{dst}[:] = {src}"]
    if _FILL.match(line) or _BINDING.match(line):
        return [line]
    raise Unsupported(line)


def kernel_source(loop) -> tuple[str, list[str], int]:
    """The numba kernel of ``loop`` (a function ``kernel(T, <tokens>)``), its tokens in
    the order it takes them, and the numpy calls per step it replaces."""
    from .codegen import _without_dead_bindings

    body = [line for line in _without_dead_bindings(loop.step_body) if not line.startswith("#")]
    lines = [new for line in body for new in translate_line(line)]
    tokens = sorted(set(_TOKEN.findall("\n".join(lines))))
    steps = "range(T - 1, -1, -1)" if loop.reverse else "range(T)"
    text = ["@numba.njit(cache=CACHE, nogil=True)",
            f"def kernel(T, {', '.join(tokens)}):" if tokens else "def kernel(T):",
            f"    for t in {steps}:",
            *("        " + line for line in lines or ["pass"])]
    return "\n".join(text) + "\n", tokens, sum(not _BINDING.match(line) for line in body)


def cache_dir() -> Path:
    """Where compiled loops are kept between processes (see the module docstring)."""
    root = os.environ.get(ENV_CACHE, "").strip()
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache"),
                            "rnngraph")
    return Path(root) / "numba"


def _module_text(kernel: str, cache: bool) -> str:
    return ("import numpy as np\nimport numba\n\nCACHE = " + repr(cache) + "\n" + _HELPERS + "\n\n" + kernel)


def _load_kernel(kernel: str):
    """The compiled kernel function of ``kernel`` (source): from a module in the cache
    directory (written once, atomically), else compiled in memory."""
    numba = _numba()
    digest = hashlib.sha256((numba.__version__ + _module_text(kernel, True)).encode()).hexdigest()[:20]
    name = f"rnngraph_loops_{digest}"
    try:
        folder = cache_dir()
        path = folder / f"loops_{digest}.py"
        loaded = sys.modules.get(name)
        if loaded is not None and loaded.__file__ == str(path):
            return loaded.kernel
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".loops_", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(_module_text(kernel, True))
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except OSError:
        namespace: dict = {}
        exec(compile(_module_text(kernel, False), f"<rnngraph numba loop {digest}>", "exec"), namespace)
        return namespace["kernel"]
    sys.modules[name] = module
    return module.kernel


class NumbaLoop:
    """A ``_Loop`` run as one numba function; called as the ``_Loop`` is.

    ``source`` is the numpy loop's (what ``rnngraph plan --source`` prints),
    ``kernel_source`` the numba kernel's; ``failure`` is why it fell back to the
    numpy loop for good, once it has.  Calls with more than ``max_rows`` batch
    rows run the numpy loop (see ``faster``)."""

    def __init__(self, loop, max_rows: int = 1 << 62):
        from .codegen import _bindings_used, _compile

        self.loop = loop
        self.max_rows = max_rows
        # the numpy loop runs batches of more rows: a workspace keeps its views
        self.has_cached = loop.has_cached
        self.source = loop.source
        self.kernel_source, tokens, self.calls = kernel_source(loop)
        self.failure: str | None = None
        self.kernel_runs = 0            # calls the kernel ran (the others ran the numpy loop)
        self._kernel = None
        passed = [f"{tok}[()]" if tok in _CONSTANT_NAMES else tok for tok in tokens]
        call = [f"    kernel(T{''.join(', ' + p for p in passed)})"]
        signature = ", ".join(loop.args)
        lines = [f"def call(kernel, {signature}):", *_bindings_used(loop.preamble, call), *call]
        self._call = _compile(lines, "call")

    def cached_views(self, *args):
        return self.loop.cached_views(*args)

    def __call__(self, args: tuple, cached=None):
        if self.failure is None and _rows(args) <= self.max_rows:
            if self._kernel is None:
                self._kernel = _load_kernel(self.kernel_source)
            try:
                self._call(self._kernel, *args)
                self.kernel_runs += 1
                return
            except _numba().core.errors.NumbaError as error:   # raised while compiling, before any step ran
                self.failure = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.loop(args, cached)


def _rows(args: tuple) -> int:
    """The batch size of a loop call: the second axis of its first (T, B, size) value."""
    return next(v.shape[1] for v in args[2] if v is not None)
