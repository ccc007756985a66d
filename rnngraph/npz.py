"""Reading ``.npz`` files a user hands us: headers first, nothing unpickled,
nothing huge allocated, every problem a DataError naming the file and the array."""

from __future__ import annotations

import zipfile

import numpy as np

from . import budget
from .errors import DataError
from .io import open_regular


def _open_file(path, what: str):
    """``open_regular``, with a DataError naming the file when it cannot be opened."""
    try:
        return open_regular(path, what)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def _usable_member(path: str, info: zipfile.ZipInfo) -> None:
    """DataError when a zip member cannot be read by this reader."""
    if info.flag_bits & 0x1:
        raise DataError(f"{path}: member {info.filename!r} is encrypted; save the arrays unencrypted "
                        f"(numpy.savez or numpy.savez_compressed)")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DataError(f"{path}: member {info.filename!r} uses zip compression method {info.compress_type}, "
                        f"which is not read (only stored or deflated members, as numpy.savez and "
                        f"numpy.savez_compressed write them)")


def npz_headers(path: str, what: str = "data file", limit: int | None = None, text: tuple = ()) -> dict:
    """``{array name: (shape, dtype)}`` of an ``.npz``, from its members' headers
    alone (nothing is decompressed beyond them).  DataError naming the file
    and the array when it is not a regular file, not a zip, a member is
    encrypted or compressed in a way not read, not a ``.npy``, holds Python
    objects or non-real numbers, or the arrays together exceed ``limit``
    bytes (default ``budget.limit()``).  The arrays named in ``text`` may
    also be unicode strings."""
    limit = budget.limit() if limit is None else limit
    headers, total = {}, 0
    with _open_file(path, what) as fh:
        if not zipfile.is_zipfile(fh):
            raise DataError(f"{path}: not an .npz {what} (it is not a zip archive)")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as archive:
                for info in archive.infolist():
                    member = info.filename
                    key = member[:-4] if member.endswith(".npy") else member
                    if not member.endswith(".npy"):
                        raise DataError(f"{path}: member {member!r} is not a .npy array")
                    _usable_member(path, info)
                    with archive.open(info) as mfh:
                        try:
                            version = np.lib.format.read_magic(mfh)
                            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                      else np.lib.format.read_array_header_2_0)
                            shape, _, dtype = header(mfh)
                        except ValueError as exc:
                            raise DataError(f"{path}: array {key!r} is not a .npy array ({exc})") from None
                    if dtype.hasobject:
                        raise DataError(f"{path}: array {key!r} holds Python objects (a pickle); only numeric "
                                        f"arrays are read")
                    if np.issubdtype(dtype, np.complexfloating):
                        raise DataError(f"{path}: array {key!r} is complex ({dtype}); expected real numbers")
                    if key in text:
                        if dtype.kind != "U":
                            raise DataError(f"{path}: array {key!r} has dtype {dtype}; expected a string")
                    elif not (np.issubdtype(dtype, np.number) or dtype == bool):
                        raise DataError(f"{path}: array {key!r} has dtype {dtype}; expected numbers")
                    total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                    if total > limit:
                        raise DataError(f"{path}: array {key!r} of shape {shape} ({dtype}) would need "
                                        f"{budget.gib(total)} when read (limit {budget.gib(limit)}; set "
                                        f"{budget.ENV_LIMIT} to change it)")
                    headers[key] = (shape, dtype)
        except DataError:
            raise
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            raise DataError(f"{path}: damaged .npz {what} ({type(exc).__name__}: {exc})") from None
    return headers


def read_npz(path: str, what: str = "data file", limit: int | None = None, text: tuple = ()) -> dict:
    """Every array of an ``.npz``, read only after its header says it is a
    plain numeric array of a sane size (``npz_headers``: nothing is unpickled,
    nothing huge is allocated).  Raises DataError naming the file and the array."""
    headers = npz_headers(path, what, limit, text)
    arrays = {}
    try:
        with _open_file(path, what) as fh, zipfile.ZipFile(fh) as archive:
            for key, (shape, dtype) in headers.items():
                with archive.open(key + ".npy") as mfh:
                    value = np.lib.format.read_array(mfh, allow_pickle=False)
                if value.shape != tuple(shape) or value.dtype != dtype:
                    raise DataError(f"{path}: array {key!r} changed while it was read")
                arrays[key] = value
    except DataError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError,
            MemoryError) as exc:
        raise DataError(f"{path}: damaged .npz {what} ({type(exc).__name__}: {exc})") from None
    return arrays
