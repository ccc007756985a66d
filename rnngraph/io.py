"""Reading only regular files, and writing files so that nothing is ever half-written.

``open_regular`` opens a file for reading only when it is a regular file: a
FIFO or a device given where a file belongs is refused, never waited on or
read without end.

``atomic_write`` writes to a temporary file in the same directory, flushes
and fsyncs it, then renames it over the target: a reader (or a crash) sees
the old file or the new one, never a torn one.

A set of files that belong together (a run's results) is written into a
staging folder (``staging_dir``) and swapped in whole by ``publish_dir``: a
reader sees the old set or the new one, never a mix.  ``FolderLock`` keeps
two processes from writing into one folder at once.

Files and folders are created with the permissions the umask allows
(``0o666 & ~umask``, ``0o777 & ~umask``), as ``open`` and ``mkdir`` do.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
import tempfile

from .errors import DataError


def atomic_write(path: str, write, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file, then atomically move it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale(directory, os.path.basename(path))
    # the writer's pid is in the name, so a later write can tell a dead writer's leftovers
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~umask())    # mkstemp makes 0600; a result file is as open() would make it
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
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


# --------------------------------------------------------------------------- folders published whole

def staging_dir(target: str) -> str:
    """A new empty folder beside ``target`` to write a set of files into,
    before ``publish_dir`` swaps it in.  Its name carries the pid, so staging
    folders of processes that were killed are removed here.  Raises OSError
    when the parent folder cannot be written."""
    target = os.path.abspath(target)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    _remove_stale_dirs(parent, name)
    path = tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=".staging", dir=parent)
    os.chmod(path, 0o777 & ~umask())
    return path


def publish_dir(staging: str, target: str) -> None:
    """Put the folder ``staging`` at ``target`` in one step: ``target`` holds
    its old files or the new set, never a mix, and none of the old files
    remain beside the new ones.  ``staging`` must be on the same file system
    (``staging_dir`` makes it so).

    An existing ``target`` is swapped with ``staging`` atomically where the
    system has ``renameat2(RENAME_EXCHANGE)`` (Linux), else moved aside and
    replaced by two renames; the old folder is then deleted."""
    target = os.path.abspath(target)
    _fsync_dir(staging)
    if not os.path.lexists(target):
        os.rename(staging, target)
        _fsync_dir(os.path.dirname(target))
        return
    if not os.path.isdir(target) or os.path.islink(target):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", target)
    if _exchange(staging, target):
        old = staging                       # the swap left the old files at the staging path
    else:
        old = staging + ".old"
        os.rename(target, old)
        os.rename(staging, target)
    _fsync_dir(os.path.dirname(target))
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False          # not supported here (kernel, file system): the two renames do it
    raise OSError(err, os.strerror(err), b)


def _remove_stale_dirs(parent: str, name: str) -> None:
    """Staging folders of ``name`` left by processes that were killed."""
    import glob
    for path in glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.*.staging*")):
        pid = os.path.basename(path)[len(name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


class FolderInUse(Exception):
    """Another process holds the folder's lock; ``pid`` is its process id (or None)."""

    def __init__(self, folder: str, pid: int | None):
        self.folder, self.pid = folder, pid
        super().__init__(f"{folder} is in use by another run" + (f" (pid {pid})" if pid else ""))


class FolderLock:
    """An exclusive lock on a folder, held by this process until ``release``
    (or its exit): ``.<name>.lock`` beside the folder, outside it, so that
    the lock survives the folder being swapped by ``publish_dir``.

    Raises FolderInUse when another process holds it, OSError when the lock
    file cannot be made."""

    def __init__(self, folder: str):
        folder = os.path.abspath(folder)
        parent, name = os.path.split(folder)
        os.makedirs(parent, exist_ok=True)
        self.path = os.path.join(parent, f".{name}.lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
            raise FolderInUse(folder, int(text) if text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)       # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def open_regular(path, what: str):
    """``path`` opened for reading in binary, when it is a regular file.

    A FIFO, a device (``/dev/zero``), a socket or a directory is refused with
    a DataError reading ``"{path}: is a FIFO (named pipe), not a regular file;
    give a {what}"``, without waiting on it or reading it (it is opened
    non-blocking, then checked).  A file that cannot be opened at all raises
    the OSError ``open()`` would (FileNotFoundError, PermissionError...)."""
    path = os.fspath(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a special file")
        raise DataError(f"{path}: is {kind}, not a regular file; give a {what}")
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
