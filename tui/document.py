"""The file behind the editor: its path, the text last saved, atomic saving."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

__all__ = ["Document", "save_atomic"]


def save_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one.

    The text goes to a temporary file in the same directory, is flushed and
    fsynced, then ``os.replace`` puts it in place (atomic on POSIX), and the
    directory is fsynced so the rename itself is durable.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rnngraph-", suffix=".yaml.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
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
            with open(path, encoding="utf-8") as handle:
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
