"""Checks of the arguments of the public Python API.

Each function returns the argument converted (an ``int``, a path string, an
array) or raises ``ArgumentError`` (a ``DataError`` and a ``TypeError``) for
a wrong type and ``DataError`` (a ``ValueError``) for a wrong value; the
message names the argument and says what was expected.  The entry points of
``network``, ``hopfield`` and ``spec`` call them first, so a user's mistake
never surfaces as a Python error from deep inside.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .errors import ArgumentError, DataError, suggest


def _got(value) -> str:
    """``value`` for a message: a short repr and its type (just the type for containers and arrays)."""
    if value is not None and not isinstance(value, (str, bytes, bool, int, float, np.generic)):
        return f"a {type(value).__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def integer(name: str, value, low: int | None = 0) -> int:
    """``value`` as an int >= ``low``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        bound = f" >= {low}" if low is not None else ""
        raise ArgumentError(f"{name}: expected an integer{bound}, got {_got(value)}")
    if low is not None and value < low:
        raise DataError(f"{name}: expected an integer >= {low}, got {value}")
    return int(value)


def seed(name: str, value) -> int | None:
    """A random seed: None or an int >= 0 (what numpy's generators accept)."""
    return None if value is None else integer(name, value, 0)


def flag(name: str, value) -> bool:
    """``True`` or ``False`` (numpy bools too); anything else is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name}: expected True or False, got {_got(value)}")
    return bool(value)


def choice(name: str, value, choices) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        hint = suggest(value, choices) if isinstance(value, str) else ""
        kind = DataError if isinstance(value, str) else ArgumentError
        raise kind(f"{name}: expected one of {', '.join(map(repr, choices))}, got {_got(value)}{hint}")
    return value


def path(name: str, value) -> str:
    """A file path: a ``str`` or ``os.PathLike`` (not bytes), not empty."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise ArgumentError(f"{name}: expected a file path (str or os.PathLike), got {_got(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ArgumentError(f"{name}: expected a file path (str or os.PathLike), got {_got(value)}")
    if not text:
        raise DataError(f"{name}: the path is empty")
    if "\0" in text:
        raise DataError(f"{name}: the path {text!r} holds a NUL character, which no file name can")
    return text


def mapping(name: str, value, expected: str) -> dict:
    """A dict (None is an empty one); ``expected`` describes its keys and values.
    The keys are not checked here: the caller names an unknown key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentError(f"{name}: expected a dict {expected}, got {_got(value)}")
    return value


def overrides(name: str, value) -> dict:
    """``--set``-style overrides: None or a dict of dotted key paths (str) to values."""
    value = mapping(name, value, "{dotted key path: value}")
    for key in value:
        if not isinstance(key, str):
            raise ArgumentError(f"{name}: keys are dotted key paths such as 'train.epochs', got {_got(key)}")
    return value


def array(name: str, value, dtype=np.float64, shape: str = "", ndim: int | None = None) -> np.ndarray:
    """``value`` as a real numeric array of ``dtype``.

    Refused: anything numpy cannot read as real numbers (strings, None,
    objects, complex numbers, ragged lists), a wrong number of dimensions
    (``shape`` describes the layout expected, as ``(batch, size)``), and
    NaN or infinity (the message gives the index of the first)."""
    layout = f" {shape}" if shape else ""
    raw = real_array(name, value, layout)
    if ndim is not None and raw.ndim != ndim:
        raise DataError(f"{name}: expected a {ndim}-d array{layout}, got shape {raw.shape}")
    arr = raw.astype(dtype, copy=False)
    if raw.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise DataError(f"{name}: NaN or infinite value at index {bad}")
    return arr


def real_array(name: str, value, layout: str = "") -> np.ndarray:
    """``np.asarray(value)`` when it holds real numbers (bool, int or float);
    ArgumentError for anything else (strings, objects, complex, ragged lists)."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{name}: expected a numeric array{layout}, got {_got(value)} ({exc})") from None
    if raw.dtype.kind not in "biuf":
        what = "complex numbers" if raw.dtype.kind == "c" else f"dtype {raw.dtype}"
        raise ArgumentError(f"{name}: expected an array of real numbers{layout}, got {what} "
                            f"(from {type(value).__name__})")
    return raw


def finite_number(name: str, value) -> float:
    """A real, finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{name}: expected a number, got {_got(value)}")
    if not math.isfinite(value):
        raise DataError(f"{name}: expected a finite number, got {value}")
    return float(value)
