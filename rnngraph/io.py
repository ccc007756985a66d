"""Writing files so that nothing is ever half-written.

``atomic_write`` writes to a temporary file in the same directory, flushes
and fsyncs it, then renames it over the target: a reader (or a crash) sees
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, write, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file, then atomically move it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale(directory, os.path.basename(path))
    # the writer's pid is in the name, so a later write can tell a dead writer's leftovers
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:   # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def _remove_stale(directory: str, name: str) -> None:
    """Temporary files of ``name`` left by writers that were killed mid-write."""
    import glob
    for tmp in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.tmp")):
        pid = os.path.basename(tmp)[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
