"""The one exception type that the CLI turns into a one-line message."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the culprit and what to do.

    The CLI prints ``error: <message>`` on one line and exits with status 2,
    without a traceback.
    """


class WriteError(UserError, OSError):
    """A file could not be written (full or read-only disk, a folder in the way...).

    Both a :class:`UserError` (the CLI prints one line naming the file) and an
    ``OSError`` (code that already handles failed writes keeps doing so).
    """
