"""Integer tokens as one-hot rows: how an input node with ``encoding: one_hot``
and a class target read ``(N, T)`` integers (docs/spec-format.md, "Task")."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def one_hot(path: str, key: str, tokens: np.ndarray, size: int, dtype) -> np.ndarray:
    """``tokens`` (N, T) of integers 0 .. size-1 as one-hot rows (N, T, size) of ``dtype``.

    DataError naming the file, the array and the (sequence, step) of the first
    value that is not such an integer (negative, too large, a float, NaN)."""
    where = f"{path}: array {key!r}"
    if tokens.dtype == bool or not (np.issubdtype(tokens.dtype, np.integer)
                                    or np.issubdtype(tokens.dtype, np.floating)):
        raise DataError(f"{where} has dtype {tokens.dtype}; tokens are integers 0 .. {size - 1}")
    if np.issubdtype(tokens.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            fractional = ~np.isfinite(tokens) | (tokens != np.round(tokens))
        if fractional.any():
            pos = tuple(int(i) for i in np.argwhere(fractional)[0])
            raise DataError(f"{where} holds {float(tokens[pos])!r} at (sequence, step) = {pos}; tokens are "
                            f"integers 0 .. {size - 1}")
        raise DataError(f"{where} has dtype {tokens.dtype}; tokens are integers 0 .. {size - 1}, stored as an "
                        f"integer array (save it as x.astype(np.int64))")
    bad = (tokens < 0) | (tokens >= size)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{where} holds {int(tokens[pos])} at (sequence, step) = {pos}; node {key!r} has size "
                        f"{size}, so its tokens are integers 0 .. {size - 1}")
    out = np.zeros(tokens.shape + (size,), dtype)                     # (N, T, size)
    np.put_along_axis(out, tokens[..., None].astype(np.intp), 1, axis=-1)
    return out
