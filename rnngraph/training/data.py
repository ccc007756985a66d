"""Data for a spec's experiment: built-in generators or ``.npz`` files (docs/spec-format.md, "Task").

A ``Dataset`` holds arrays keyed by node name, batch-major:
inputs and targets ``(N, T, size)``, masks ``(N, T)``, initial states
``(N, size)``.  Token data, ``(N, T)`` integers for an input node with
``encoding: one_hot`` or class targets of a softmax output trained with
``cross_entropy``, is made one-hot here: the engine only sees ``(N, T, size)``.  ``load_npz`` refuses anything it cannot trust (not a zip, a
pickle inside, wrong shapes or dtypes, NaN) with a message naming the file,
the array and what was expected.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError, suggest
from ..npz import npz_headers, read_npz
from ..tokens import one_hot
from ..spec import HOPFIELD_RULES


DEFAULT_BATCH_SIZE = 32   # sequences per training step where neither the spec nor its task says


@dataclass
class Dataset:
    """Arrays for one split, keyed by node name.

    ``task_data`` is the generator's ``TaskData`` when the data came from a
    built-in task (its metrics need it), else None.
    """

    inputs: dict
    targets: dict
    masks: dict = field(default_factory=dict)
    initial: dict = field(default_factory=dict)
    task_data: object = None
    source: str = ""          # the file it came from, for messages

    @property
    def n(self) -> int:
        for group in (self.inputs, self.targets, self.initial):
            for value in group.values():
                return value.shape[0]
        return 0

    @property
    def steps(self) -> int:
        for group in (self.inputs, self.targets):
            for value in group.values():
                return value.shape[1]
        return 0

    def subset(self, index) -> "Dataset":
        """The samples ``index`` (an index array or slice) of every array."""
        pick = lambda d: {k: v[index] for k, v in d.items()}   # noqa: E731
        return Dataset(pick(self.inputs), pick(self.targets), pick(self.masks), pick(self.initial), self.task_data)

    def window(self, start: int, stop: int) -> "Dataset":
        """Time steps ``start:stop`` (for truncated BPTT)."""
        cut = lambda d: {k: v[:, start:stop] for k, v in d.items()}   # noqa: E731
        return Dataset(cut(self.inputs), cut(self.targets), cut(self.masks), {}, self.task_data)


def bind_task(spec, net, data) -> Dataset:
    """A generator's ``TaskData`` as arrays keyed by the spec's nodes."""
    task = spec.task
    inputs = net.input_nodes
    outputs = [n for n in net.output_nodes]
    x = task.get("input") or (inputs[0] if inputs else None)
    y = task.get("output") or (outputs[0] if outputs else None)
    y = net.blocks.get(y, y)
    ds = Dataset(inputs={x: data.inputs} if x else {}, targets={y: data.targets} if y else {}, task_data=data)
    if data.mask is not None and y:
        ds.masks[y] = data.mask
    return ds


def task_splits(spec, net, seed: int):
    """(train, eval, task) from the spec's generator, deterministic in ``seed``."""
    from .tasks import get_task
    task = get_task(spec.task["generator"])
    params = {k: v for k, v in spec.task.items() if k not in ("generator", "input", "output", "metrics")}
    check_generated_size(task, params)
    train, evald = task.generate_splits(params, np.random.default_rng(seed))
    return bind_task(spec, net, train), bind_task(spec, net, evald), task


def _steps(name: str, p: dict) -> float:
    """About how many time steps one generated sequence has."""
    if name == "adding":
        return p["T"] * 1.1
    if name == "copy":
        return 2 * p["length"] + p["delay"] + 1
    if name == "anbn":
        return 2 * max(p.get("n_max", 1), p.get("n_eval_max") or 0) + 2
    if name == "embedded_reber":
        return 60
    if name in ("temporal_xor", "parity", "sine"):
        return p["length"]
    return 1


def check_generated_size(task, params: dict) -> None:
    """Refuse, before generating, data that would not fit in memory (``budget.limit()``)."""
    from .. import budget
    n_in, n_out = task.sizes(params)
    if task.name == "patterns":
        n = params.get("n_cues") or (params.get("n_train", 0) + params.get("n_eval", 0))
        need = (params["count"] + 2 * n) * params["size"] * 8.0 * 2
    elif task.name == "temporal_xor":
        need = 2 * params["length"] * (n_in + n_out + 1) * 8.0 * 2
    else:
        n = params.get("n_train", 0) + params.get("n_eval", 0)
        need = n * _steps(task.name, params) * (n_in + n_out + 1) * 8.0 * 2
    budget.check(need, f"task {task.name!r} with these parameters generating its data", "use smaller sizes")


def check_file_memory(spec, net, headers: dict, eval_headers: dict | None = None, path: str = "data") -> None:
    """DataError, before the data files are read, when reading them and training
    on them would need more memory than ``budget.limit()``: their arrays as
    stored and converted to the network's dtype, then the larger of a training
    step over a batch (or a truncation window) and the evaluation (chunks of up
    to 256 sequences, whose outputs are all kept)."""
    from .. import budget

    tokens = token_nodes(net)

    def sizes(found):
        data = sum(float(np.prod(shape, dtype=np.float64)) * (dtype.itemsize + net.dtype.itemsize)
                   for shape, dtype in found.values())
        data += sum(float(np.prod(shape, dtype=np.float64)) * net.size(key) * net.dtype.itemsize   # made one-hot
                    for key, (shape, dtype) in found.items() if key in tokens and len(shape) == 2)
        nt = next((shape[:2] for key, (shape, dtype) in found.items()
                   if len(shape) == 3 or (key in tokens and len(shape) == 2)), (1, 1))
        return data, int(nt[0]), int(nt[1])
    data, N, T = sizes(headers)
    evaluated = (N, T)
    if eval_headers:
        more, *evaluated = sizes(eval_headers)
        data += more
    train = spec.train or {}
    bs = max(1, min(int(train.get("batch_size") or DEFAULT_BATCH_SIZE), N))
    window = int(train.get("truncate") or 0)
    k = window if 0 < window < T else T
    Ne, Te = evaluated
    # a training step; then the evaluation, its outputs and the training step's value buffers,
    # which stay allocated for the next epoch
    need = data + max(budget.estimate(net, k, bs),
                      budget.estimate(net, Te, min(Ne, 256), grads=False, kept=Ne + bs))
    budget.check(need, f"{path}: training on its {N} sequences of {T} steps in batches of {bs}",
                 "use smaller batches, shorter sequences or `train: {truncate: K}`")


def load_npz(path: str, net, what: str = "data file") -> Dataset:
    """Read a data file for ``net``: one ``(N, T, size)`` array per input and
    output node, optional ``"<output>.mask"`` ``(N, T)`` and
    ``"<node>.init"`` ``(N, size)``.

    Raises DataError naming the file and the array for anything unexpected.
    """
    ds = dataset_from_arrays(read_npz(path, what), net, path)
    ds.source = path
    return ds


def dataset_from_arrays(arrays: dict, net, path: str = "<arrays>") -> Dataset:
    ds = Dataset({}, {})
    known = set(net.input_nodes) | set(net.output_nodes) | set(net.blocks)
    init_nodes = {n for n in net.graph.nodes if net.graph.nodes[n]["init"].kind == "input"}
    N = T = None
    tokens = token_nodes(net)

    def numeric(key, value, ndim, layout):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            raise DataError(f"{path}: array {key!r} has dtype {value.dtype}; expected numbers")
        if value.ndim != ndim:
            raise DataError(f"{path}: array {key!r} has shape {value.shape}; expected {layout}")
        value = value.astype(net.dtype)
        if not np.all(np.isfinite(value)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise DataError(f"{path}: array {key!r} holds NaN or infinite values (first at index {bad})")
        return value

    for key, value in arrays.items():
        if key.endswith(".mask"):
            node = key[:-5]
            ds.masks[net.blocks.get(node, node)] = numeric(key, value, 2, "(N, T)")
        elif key.endswith(".init"):
            node = key[:-5]
            if node not in init_nodes:
                raise DataError(f"{path}: array {key!r}: node {node!r} does not have `init: input`")
            ds.initial[node] = numeric(key, value, 2, f"(N, {net.size(node)})")
        elif key in known and value.ndim == 2:
            if key not in tokens:
                raise DataError(f"{path}: array {key!r} has shape {value.shape}; expected (N, T, {net.size(key)})"
                                f"{_token_hint(net, key)}")
            arr = one_hot(path, key, value, net.size(key), net.dtype)
            (ds.inputs if key in net.input_nodes else ds.targets)[net.blocks.get(key, key)] = arr
        elif key in known:
            arr = numeric(key, value, 3, f"(N, T, {net.size(key)})")
            if arr.shape[2] != net.size(key):
                raise DataError(f"{path}: array {key!r} has shape {arr.shape}; node {key!r} has size "
                                f"{net.size(key)}, so expected (N, T, {net.size(key)})")
            (ds.inputs if key in net.input_nodes else ds.targets)[net.blocks.get(key, key)] = arr
        else:
            raise DataError(_unexpected_array(path, key, arrays, net, known, init_nodes))
    for n in net.input_nodes:
        if n not in ds.inputs:
            raise DataError(f"{path}: missing array {n!r} for input node {n!r} (shape (N, T, {net.size(n)}))")
    for n in init_nodes:
        if n not in ds.initial:
            raise DataError(f"{path}: missing array '{n}.init' (N, {net.size(n)}) for node {n!r} with `init: input`")
    for group in (ds.inputs, ds.targets):
        for key, arr in group.items():
            if N is None:
                N, T = arr.shape[:2]
            elif arr.shape[:2] != (N, T):
                hint = ""
                if key in ds.targets and arr.shape[0] == N and arr.shape[1] == 1 and T > 1:
                    hint = (f"; a target for the last step only still needs all {T} steps: store it at "
                            f"[:, -1] of an (N, {T}, size) array and set train.loss_on: last (or add "
                            f"'{key}.mask' (N, {T}), 1 at the last step, with train.loss_on: mask)")
                raise DataError(f"{path}: array {key!r} has {arr.shape[0]} sequences of {arr.shape[1]} steps, "
                                f"others have {N} of {T}{hint}")
    for key, arr in ds.masks.items():
        if key not in ds.targets:
            raise DataError(f"{path}: array '{key}.mask' has no targets {key!r} to mask")
        if arr.shape != (N, T):
            raise DataError(f"{path}: array '{key}.mask' has shape {arr.shape}; expected {(N, T)}")
        if np.any(arr < 0) or np.any(arr > 1):
            raise DataError(f"{path}: array '{key}.mask' has values outside [0, 1] (1 where the loss counts, "
                            f"0 where it does not)")
    for key, arr in ds.initial.items():
        if N is not None and arr.shape[0] != N:
            raise DataError(f"{path}: array '{key}.init' has {arr.shape[0]} rows; the data has {N} sequences")
        if arr.shape[1] != net.size(key):
            raise DataError(f"{path}: array '{key}.init' has shape {arr.shape}; expected (N, {net.size(key)})")
    if N == 0:
        raise DataError(f"{path}: the data holds no sequences")
    if T == 0:
        raise DataError(f"{path}: the sequences have no time steps (shape (N, 0, size))")
    return ds


def token_nodes(net) -> set:
    """The nodes whose data may be ``(N, T)`` integers: input nodes with
    ``encoding: one_hot`` and, when the spec's loss is ``cross_entropy``,
    softmax output nodes (class targets); blocks never."""
    nodes = {n for n in net.input_nodes if net.primitive.nodes[n].encoding == "one_hot"}
    if net.spec.train.get("loss") == "cross_entropy":
        nodes |= {n for n in net.output_nodes if net.graph.nodes[n]["activation"] == "softmax"
                  and n not in net.blocks.values()}
    return nodes


def _token_hint(net, key) -> str:
    """Why ``key`` does not read (N, T) integers, and how it could."""
    if key in net.input_nodes:
        return f" (to feed integer tokens, give node {key!r} `encoding: one_hot`)"
    return (f" (integer class targets need a softmax output trained with train.loss: cross_entropy; "
            f"node {key!r} has activation {net.graph.nodes[net.blocks.get(key, key)]['activation']!r} and the "
            f"loss is {net.spec.train.get('loss', 'mse')!r})")


def _unexpected_array(path, key, arrays, net, known, init_nodes) -> str:
    """The message for an array no node of ``net`` reads: the file's arrays
    and the names this network reads, listed apart."""
    expected = sorted(set(net.input_nodes) | set(net.output_nodes)) + \
        [f"{n}.mask" for n in net.output_nodes] + [f"{n}.init" for n in sorted(init_nodes)]
    held = ", ".join(map(repr, sorted(arrays)))
    reads = ", ".join(map(repr, expected)) or "nothing (it has no input or output nodes)"
    text = (f"{path}: array {key!r} is not an input or output node of this network{suggest(key, known)} "
            f"(the file holds {held}; this network reads {reads})")
    if key in net.graph and np.ndim(arrays[key]) == 2:
        from ..engine.hopfield import memory_edge
        try:
            memory_edge(net)
        except DataError:
            return text
        text += "; to store patterns in a Hopfield network, set train.method: hebbian, storkey or pseudoinverse"
    return text


HOPFIELD_FILE_NOISE = 0.1   # fraction of units flipped in the cues made from a file's patterns


def hopfield_file_splits(path: str, net, seed: int, n_cues: int = 100):
    """(train, eval) for a Hopfield network from a file of patterns.

    The file holds one array under the state node's name (the memory edge's
    source), ``(P, size)`` of +-1: the memories to store.  The cues are made
    from them as the ``patterns`` generator makes its own: ``n_cues`` per
    split, cue ``i`` memory ``i mod P`` with 10% of its units flipped, drawn
    from ``seed``.  Both splits carry the generator's ``TaskData``, so the
    run stores, settles and measures recall exactly as for
    ``task: {generator: patterns}``."""
    from ..engine.hopfield import state_node
    from .tasks import get_task
    try:
        node = state_node(net)
    except DataError as exc:
        raise DataError(f"{path}: a Hopfield storage rule (train.method) reads patterns, but {exc}") from None
    size = net.size(node)
    arrays = read_npz(path, "patterns file")
    want = f"the patterns to store, (P, {size}) of -1 and +1, under the state node's name {node!r}"
    if node not in arrays:
        held = ", ".join(map(repr, sorted(arrays))) or "no arrays"
        raise DataError(f"{path}: missing array {node!r}: {want} (the file holds {held})")
    others = sorted(k for k in arrays if k != node)
    if others:
        raise DataError(f"{path}: array {others[0]!r} is not read by this Hopfield network: its file holds "
                        f"only {want}")
    X = arrays[node]
    if X.ndim != 2 or X.shape[1] != size or X.shape[0] == 0:
        raise DataError(f"{path}: array {node!r} has shape {X.shape}; expected {want}")
    X = X.astype(np.float64)
    if not np.all(np.isin(X, (-1.0, 1.0))):
        bad = tuple(int(i) for i in np.argwhere(~np.isin(X, (-1.0, 1.0)))[0])
        raise DataError(f"{path}: array {node!r} holds {X[bad]:g} at index {bad}; patterns are -1 and +1")
    task = get_task("patterns")
    params = {"count": X.shape[0], "size": size, "noise": HOPFIELD_FILE_NOISE, "n_train": n_cues,
              "n_eval": n_cues}
    train, evald = task.generate_splits(params, np.random.default_rng(seed), world=(X, None, None))
    return Dataset({}, {}, task_data=train, source=path), Dataset({}, {}, task_data=evald, source=path)


def file_splits(spec, net, seed: int | None = None):
    """(train, eval or None) from ``task: {file:, eval_file:}`` (paths relative to the spec).

    With a Hopfield storage rule as ``train.method`` the file holds patterns
    (``hopfield_file_splits``; ``seed``, default the spec's, draws the cues).
    A file that cannot be read or does not fit the network is a ``SpecError``
    at the ``task`` key that names it, with the file's own message."""
    base = os.path.dirname(os.path.abspath(spec.path)) if spec.path else os.getcwd()

    def resolve(key):
        p = spec.task[key]
        return p if os.path.isabs(p) else os.path.join(base, p)
    has_eval = "eval_file" in spec.task
    if spec.train.get("method") in HOPFIELD_RULES:
        if has_eval:
            with _located(spec, "eval_file"):
                raise DataError(f"{resolve('eval_file')}: a Hopfield network reads only `file` (the patterns to "
                                f"store); its cues are made from them, `n_eval` of them (drop eval_file)")
        with _located(spec, "file"):
            return hopfield_file_splits(resolve("file"), net, spec.seed if seed is None else seed,
                                        spec.task.get("n_eval", 100))
    with _located(spec, "file"):
        headers = npz_headers(resolve("file"))
    eval_headers = None
    if has_eval:
        with _located(spec, "eval_file"):
            eval_headers = npz_headers(resolve("eval_file"), "eval file")
    with _located(spec, "file"):
        check_file_memory(spec, net, headers, eval_headers, resolve("file"))
        train = load_npz(resolve("file"), net)
        missing = [n for n in net.output_nodes if n not in train.targets]
        if missing:
            shapes = ", ".join(f"{n!r} (N, T, {net.size(n)})" for n in missing)
            raise DataError(f"{resolve('file')}: missing the target array of output {shapes}")
    evald = None
    if has_eval:
        with _located(spec, "eval_file"):
            evald = load_npz(resolve("eval_file"), net, "eval file")
    elif "eval_split" in spec.task:
        with _located(spec, "eval_split"):
            train, evald = hold_out(train, spec.task["eval_split"])
    return train, evald


def hold_out(data: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    """(the first sequences, the last ``fraction`` of them): ``round(N * fraction)``
    sequences are held out.  DataError when either part would be empty."""
    N = data.n
    k = int(round(N * fraction))
    if not 0 < k < N:
        raise DataError(f"{data.source}: eval_split {fraction:g} of its {N} sequences holds out {k}; "
                        f"both parts need at least one sequence (the file needs more sequences, or another "
                        f"eval_split)")
    train, evald = data.subset(slice(0, N - k)), data.subset(slice(N - k, N))
    train.source = evald.source = data.source
    return train, evald


@contextlib.contextmanager
def _located(spec, key: str):
    """A ``DataError`` about the file at ``task.<key>`` becomes a ``SpecError`` there."""
    try:
        yield
    except DataError as exc:
        raise spec.error(("task", key), str(exc)) from None
