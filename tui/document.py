"""The file behind the editor: its path, the text last saved, atomic saving,
and the backup of unsaved edits.

The backup is what survives a crash or a killed terminal: while the text
differs from the file, the app writes it (atomically, a moment after the
last keystroke) to ``.<name>.rnngraph-backup`` beside the spec, or under the
per-user state directory (``$XDG_STATE_HOME/rnngraph``, by default
``~/.local/state/rnngraph``) for a spec not saved yet or in a directory the
user cannot write.  Saving, or quitting and discarding, removes it; the next
start on the same spec finds it (``Document.pending_backup``) when it is
newer than the file and differs from it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass

__all__ = ["Document", "save_atomic", "state_dir", "remove_file", "BACKUP_SUFFIX"]

BACKUP_SUFFIX = ".rnngraph-backup"
UNTITLED = "untitled.yaml"


def state_dir() -> str:
    """Where per-user state goes: ``$XDG_STATE_HOME/rnngraph`` or ``~/.local/state/rnngraph``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "rnngraph")


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save_atomic(path: str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one.

    The text goes to a temporary file in the same directory, is flushed and
    fsynced, then ``os.replace`` puts it in place (atomic on POSIX), and the
    directory is fsynced so the rename itself is durable.  The file keeps
    its permissions; a new one gets ``mode`` (default: as ``open`` would
    give it under the umask).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rnngraph-", suffix=".yaml.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else _default_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


@dataclass
class Document:
    """The spec file being edited; ``saved`` is its text as last read or written."""

    path: str | None = None
    saved: str = ""

    @classmethod
    def open(cls, path: str | None) -> "Document":
        if path and os.path.exists(path):
            from rnngraph.io import open_regular   # a FIFO or a device is refused, not read
            with io.TextIOWrapper(open_regular(path, "spec file"), encoding="utf-8") as handle:
                return cls(path=path, saved=handle.read())
        return cls(path=path, saved="")

    @property
    def name(self) -> str:
        return os.path.basename(self.path) if self.path else "untitled.yaml"

    def save(self, text: str, path: str | None = None) -> str:
        target = path or self.path
        if not target:
            raise ValueError("no file name to save to")
        save_atomic(target, text)
        self.path = target
        self.saved = text
        return target

    # -- backup of unsaved edits ---------------------------------------------------------
    def backup_paths(self) -> list[str]:
        """Where this document's backup may be: beside the file, then the state directory."""
        if not self.path:
            return [os.path.join(state_dir(), UNTITLED + BACKUP_SUFFIX)]
        full = os.path.abspath(self.path)
        name = os.path.basename(full)
        digest = hashlib.sha1(full.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        return [os.path.join(os.path.dirname(full), f".{name}{BACKUP_SUFFIX}"),
                os.path.join(state_dir(), f"{name}.{digest}{BACKUP_SUFFIX}")]

    def write_backup(self, text: str) -> str:
        """Write ``text`` as the backup (atomically); the path written.  Raises OSError."""
        error: OSError | None = None
        for path in self.backup_paths():
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                save_atomic(path, text, mode=0o600)   # private, like an editor's swap file
            except OSError as err:   # e.g. a read-only directory: try the next place
                error = err
                continue
            for other in self.backup_paths():   # one backup only
                if other != path:
                    remove_file(other)
            return path
        assert error is not None
        raise error

    def remove_backup(self) -> None:
        """Forget the backup (saved, or the edits were discarded)."""
        for path in self.backup_paths():
            remove_file(path)

    def pending_backup(self) -> tuple[str, str] | None:
        """``(path, text)`` of a backup left by an earlier session, when worth offering.

        Offered when it is newer than the file (or there is no file) and its
        text differs from the file's; unreadable backups are ignored.
        """
        file_time = None
        if self.path and os.path.exists(self.path):
            try:
                file_time = os.stat(self.path).st_mtime
            except OSError:
                file_time = None
        for path in self.backup_paths():
            try:
                if not os.path.isfile(path):
                    continue
                if file_time is not None and os.stat(path).st_mtime < file_time:
                    continue
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError):
                continue
            if text != self.saved:
                return path, text
        return None


def remove_file(path: str) -> None:
    """Delete ``path`` if it is there; never raises."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass
