"""The one exception type that the CLI turns into a one-line message.

Library code validates its arguments and raises :class:`UserError`, a
:class:`ValueError`: a caller of the library catches it as any bad value, and
the CLI edge (``app.main``) prints it as ``error: <message>`` and exits with
status 2. So its message is phrased for the command line: it names the file or
the option (``--eps 300: ...``) and says what to do. Errors that a user cannot
cause (a broken invariant) stay plain exceptions and keep their traceback.

A handler that catches ``ValueError`` around code that raises :class:`UserError`
must let it through (``except UserError: raise`` first) so that its message is
not rewritten.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: the message names the culprit and what to do.

    A :class:`ValueError`, so library callers need not know the CLI. The CLI prints
    ``error: <message>`` on one line and exits with status 2, without a traceback.
    """


class WriteError(UserError, OSError):
    """A file could not be written (full or read-only disk, a folder in the way...).

    Both a :class:`UserError` (the CLI prints one line naming the file) and an
    ``OSError`` (code that already handles failed writes keeps doing so).
    """
