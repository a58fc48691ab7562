"""An exclusive lock file held while one process writes something (a capture session, a batch being crafted).

The operating system drops the lock when the process ends, even on SIGKILL, so a
killed writer never leaves a stale lock behind; a second writer is refused at once.
The file holds the holder's process id, only to name it in the refusal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def lock_fd(fd: int) -> None:
    """Take an exclusive, non-blocking lock on ``fd``; ``OSError`` when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class HeldElsewhere(Exception):
    """Another process holds the lock; ``holder`` is its process id when it wrote one (else "")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class ExclusiveLock:
    """Hold ``path`` locked until :meth:`release` (or the process ends).

    Raises:
        HeldElsewhere: another process holds it.
        OSError: the lock file cannot be created (a read-only or full disk).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            lock_fd(self._fd)
        except OSError:
            holder = ""
            try:
                holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
            raise HeldElsewhere(holder if holder.isdecimal() else "") from None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass  # the pid is only a courtesy for the refusal

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> ExclusiveLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
