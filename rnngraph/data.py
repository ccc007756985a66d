"""Data for a spec's experiment: built-in generators or ``.npz`` files (SPEC.md section 2).

A ``Dataset`` holds arrays keyed by node name, batch-major:
inputs and targets ``(N, T, size)``, masks ``(N, T)``, initial states
``(N, size)``.  ``load_npz`` refuses anything it cannot trust (not a zip, a
pickle inside, wrong shapes or dtypes, NaN) with a message naming the file,
the array and what was expected.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, SpecError


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
    params = {k: v for k, v in spec.task.items() if k not in ("generator", "input", "output")}
    train, evald = task.generate_splits(params, np.random.default_rng(seed))
    return bind_task(spec, net, train), bind_task(spec, net, evald), task


MAX_DATA_BYTES = 8 * 1024 ** 3


def load_npz(path: str, net, what: str = "data file") -> Dataset:
    """Read a data file for ``net``: one ``(N, T, size)`` array per input and
    output node, optional ``"<output>.mask"`` ``(N, T)`` and
    ``"<node>.init"`` ``(N, size)``.

    Raises DataError naming the file and the array for anything unexpected.
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: {what} not found")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz file (it is not a zip archive)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read it as .npz: {exc}") from None
    with archive:
        names = list(archive.files)
        arrays = {}
        total = 0
        for key in names:
            try:
                info = archive.zip.getinfo(key + ".npy")
                total += info.file_size
            except KeyError:
                pass
            if total > MAX_DATA_BYTES:
                raise DataError(f"{path}: the arrays would need more than {MAX_DATA_BYTES / 1024 ** 3:.0f} GiB")
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise DataError(f"{path}: array {key!r} holds Python objects (a pickle); only numeric arrays "
                                    f"are read") from None
                raise DataError(f"{path}: array {key!r} cannot be read: {exc}") from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{path}: array {key!r} is damaged: {exc}") from None
    return dataset_from_arrays(arrays, net, path)


def dataset_from_arrays(arrays: dict, net, path: str = "<arrays>") -> Dataset:
    ds = Dataset({}, {})
    known = set(net.input_nodes) | set(net.output_nodes) | set(net.blocks)
    init_nodes = {n for n in net.graph.nodes if net.graph.nodes[n]["init"].kind == "input"}
    N = T = None

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
        elif key in known:
            arr = numeric(key, value, 3, f"(N, T, {net.size(key)})")
            if arr.shape[2] != net.size(key):
                raise DataError(f"{path}: array {key!r} has shape {arr.shape}; node {key!r} has size "
                                f"{net.size(key)}, so expected (N, T, {net.size(key)})")
            (ds.inputs if key in net.input_nodes else ds.targets)[net.blocks.get(key, key)] = arr
        else:
            from .spec import suggest
            raise DataError(f"{path}: array {key!r} is not an input or output node of this network"
                            f"{suggest(key, known)} (arrays: {', '.join(sorted(known))})")
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
                raise DataError(f"{path}: array {key!r} has {arr.shape[0]} sequences of {arr.shape[1]} steps, "
                                f"others have {N} of {T}")
    for key, arr in ds.masks.items():
        if key not in ds.targets:
            raise DataError(f"{path}: array '{key}.mask' has no targets {key!r} to mask")
        if arr.shape != (N, T):
            raise DataError(f"{path}: array '{key}.mask' has shape {arr.shape}; expected {(N, T)}")
    for key, arr in ds.initial.items():
        if N is not None and arr.shape[0] != N:
            raise DataError(f"{path}: array '{key}.init' has {arr.shape[0]} rows; the data has {N} sequences")
        if arr.shape[1] != net.size(key):
            raise DataError(f"{path}: array '{key}.init' has shape {arr.shape}; expected (N, {net.size(key)})")
    if N == 0:
        raise DataError(f"{path}: the data holds no sequences")
    return ds


def file_splits(spec, net):
    """(train, eval or None) from ``task: {file:, eval_file:}`` (paths relative to the spec)."""
    base = os.path.dirname(os.path.abspath(spec.path)) if spec.path else os.getcwd()

    def resolve(key):
        p = spec.task[key]
        return p if os.path.isabs(p) else os.path.join(base, p)
    try:
        train = load_npz(resolve("file"), net)
        evald = load_npz(resolve("eval_file"), net, "eval file") if "eval_file" in spec.task else None
    except DataError as exc:
        raise exc
    if not train.targets and net.output_nodes:
        raise SpecError(f"data file {spec.task['file']} holds no targets for the output nodes "
                        f"{', '.join(net.output_nodes)}", path=spec.path)
    return train, evald
