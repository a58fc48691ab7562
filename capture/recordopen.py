"""Opening a session's capture database: the writer's exclusive lock, and one line for each way it fails.

:class:`capture.record.Recorder` takes ``captures/<session>.lock`` (:func:`session_lock`) before it
opens ``captures/<session>.sqlite``; a database that cannot be created or opened is named in one
line (:func:`open_failure`), and a failed write stops the session with :class:`RecordingFailed`.
The names stay importable from ``capture.record``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from contracts.errors import UserError
from contracts.lock import ExclusiveLock, HeldElsewhere


def open_failure(path: Path, e: sqlite3.Error) -> str:
    """One line for a capture database that cannot be created or opened: a failed write is named as such.

    SQLite reports a full disk (or a file-size limit) while creating the file as
    ``SQLITE_IOERR_WRITE`` "disk I/O error", which reads like a broken disk.
    """
    name = str(getattr(e, "sqlite_errorname", ""))
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        return (
            f"{path}: writing the new capture database failed (SQLite: {e}): the disk is full, a file-size limit was "
            "reached or the device failed; free disk space, or capture into a batch on another disk, and re-run"
        )
    if name in ("SQLITE_CANTOPEN", "SQLITE_PERM") or name.startswith("SQLITE_READONLY"):
        return (
            f"{path}: cannot write it: the file or its folder is read-only (SQLite: {e}); make the batch's captures/ "
            f"folder writable, or capture into a copy of the batch on a writable disk"
        )
    return f"{path}: cannot open it as a capture database ({e}); choose another --session, or free disk space"


class RecordingFailed(UserError):
    """Writing to the capture database failed (disk full, read-only disk...): the session stops.

    Everything committed before the failure stays in the database.
    """


def session_lock(path: Path) -> ExclusiveLock:
    """The exclusive lock on ``captures/<session>.lock``, held while a capture writes the session.

    The operating system drops it when the process ends, even on SIGKILL
    (:mod:`contracts.lock`). A second writer is refused in one line.
    """
    try:
        return ExclusiveLock(path)
    except HeldElsewhere as e:
        who = f" (process {e.holder})" if e.holder else ""
        raise UserError(
            f"{path.with_suffix('.sqlite')}: this session is being recorded by another capture{who}; "
            "choose another --session, or wait until that capture stops"
        ) from None
