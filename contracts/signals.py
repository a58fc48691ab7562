"""SIGINT and SIGTERM: every long command stops the same way on either.

:func:`install` (called once by the CLI's entry point) turns both into
``KeyboardInterrupt``, so ``finally`` blocks run: craft folds its journal into
``batch.json``, print and report leave the old file or the new one (they write
atomically). A capture installs its own handler for the session (it finishes the
current frame, marks the session stopped and flushes) and notes the signal here.
The entry point then exits with the conventional status, 128 + the signal's
number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_received: list[int] = []


def note(signum: int) -> None:
    """Record that ``signum`` asked the process to stop."""
    _received.append(int(signum))


def received() -> str:
    """The name of the last stop signal received (``SIGTERM``), or ``""``."""
    return signal.Signals(_received[-1]).name if _received else ""


def exit_status() -> int | None:
    """128 + the last stop signal's number, or ``None`` when none was received."""
    return 128 + _received[-1] if _received else None


def _interrupt(signum: int, _frame: Any) -> None:
    note(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, _interrupt)
