"""The CLI's own console. Library code logs; only CLI commands print here.

On a terminal it is rich's console. Piped to a file or a CI log, rich would wrap every line
and table at 80 columns; this console prints tables as plain aligned text instead, one row
per line, and never wraps a message. Emoji codes are never expanded (``:factory:`` stays
text); user text in a message still goes through :func:`rich.markup.escape`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text


def _plain(cell: Any) -> str:
    """A table cell as plain text: markup strings rendered (and unescaped), Text as its text."""
    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = Text.from_markup(cell, emoji=False).plain
    else:
        text = "" if cell is None else str(cell)
    return " ".join(text.split("\n"))


def plain_table(table: Table) -> str:
    """``table`` as plain text: its title, the header, a rule, one line per row (columns aligned, right-justified
    ones to the right), its caption."""
    headers = [_plain(c.header) for c in table.columns]
    cols = [[_plain(x) for x in c.cells] for c in table.columns]
    n_rows = max((len(c) for c in cols), default=0)
    cols = [c + [""] * (n_rows - len(c)) for c in cols]
    widths = [max([cell_len(h), *(cell_len(x) for x in c)]) for h, c in zip(headers, cols, strict=True)]

    def line(values: list[str]) -> str:
        parts = []
        for v, w, c in zip(values, widths, table.columns, strict=True):
            pad = " " * (w - cell_len(v))
            parts.append(pad + v if c.justify == "right" else v + pad)
        return "  ".join(parts).rstrip()

    out = [_plain(table.title)] if table.title else []
    if table.show_header:
        out += [line(headers), line(["-" * w for w in widths])]
    out += [line([c[i] for c in cols]) for i in range(n_rows)]
    if table.caption:
        out.append(_plain(table.caption))
    return "\n".join(out)


class PlainWhenPiped(Console):
    """rich's Console; when its output is not a terminal, tables print as :func:`plain_table` and lines never wrap."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        kwargs.setdefault("soft_wrap", True)
        if not any(isinstance(o, Table) for o in objects):
            super().print(*objects, **kwargs)
            return
        for o in objects:
            if isinstance(o, Table):
                super().print(plain_table(o), markup=False, highlight=False, emoji=False, soft_wrap=True)
            else:
                super().print(o, **kwargs)


console = PlainWhenPiped(highlight=False, emoji=False)
err_console = PlainWhenPiped(stderr=True, highlight=False, emoji=False)


@contextmanager
def live_status(first: str) -> Iterator[Callable[[str], None]]:
    """A status of one or more lines, shown by the callable it yields.

    On a terminal it is redrawn in place (rich's ``Live``). Piped to a file or a CI log, rich's
    ``Live`` would crop each line at 80 columns and end without a newline, so the next message
    ran on after it; there the last status shown is printed once, whole, when the block ends.
    """
    text = Text(first)
    if console.is_terminal:
        with Live(text, console=console, refresh_per_second=4, transient=False) as live:

            def show(status: str) -> None:
                text.plain = status
                live.update(text)

            yield show
        return

    last: list[str] = []

    def keep(status: str) -> None:
        last[:] = [status]

    try:
        yield keep
    finally:
        if last:  # not the placeholder of a run that never started (an error before the first status)
            console.print(last[0], markup=False, highlight=False, soft_wrap=True)


def help_markup() -> Literal["rich"] | None:
    """typer's ``rich_markup_mode``: boxed help on a terminal, click's plain text when piped to a file or a CI log."""
    return "rich" if console.is_terminal else None
