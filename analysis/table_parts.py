"""A table too wide for the page or the PDF split into parts that fit, each repeating the columns that name a row.

Used by :mod:`analysis.html` and :mod:`analysis.pdf` on the tables of :mod:`analysis.tables`.
"""

from __future__ import annotations

from collections.abc import Callable

from analysis.tables import Table, fmt_cell

MAX_KEY_COLUMNS = 6  # columns repeated in every part of a split table
ROW_KEYS = ("session", "source_model", "model", "item", "role", "attack", "eps", "case", "topk")
RATE_CHARS = 16  # "62.5% n=21" over "[41.0–80.2]"


def key_columns(t: Table) -> list[str]:
    """The columns that name a row (session, model, attack, ε, top-k, ...) the table has, else its first
    column; at most ``MAX_KEY_COLUMNS``."""
    known = [c for c in t.columns if c in ROW_KEYS]
    if not known:
        known = [c for c in t.columns[:1] if c not in t.rate_columns]
    return known[:MAX_KEY_COLUMNS]


def text_width(t: Table, column: str, cap: int = 40) -> int:
    """A column's natural width in characters: its longest cell (a rate's two lines), its header up to 14."""
    if column in t.rate_columns:
        return RATE_CHARS
    return min(cap, max([len(fmt_cell(r.get(column))) for r in t.rows] + [min(len(t.label(column)), 14), 1]))


def column_parts(t: Table, width: Callable[[str], float], room: float) -> list[list[str]]:
    """Split a table too wide for ``room`` into parts that fit, each repeating the key columns.

    Columns are kept in order, none is dropped: a wide table is read part by part (wrapped
    or split, never with hidden columns). ``width(column)`` is the column's natural width.
    """
    keys = key_columns(t)
    rest = [c for c in t.columns if c not in keys]
    parts: list[list[str]] = []
    current: list[str] = []
    used = sum(width(c) for c in keys)
    for c in rest:
        if current and used + width(c) > room:
            parts.append(current)
            current, used = [], sum(width(k) for k in keys)
        current.append(c)
        used += width(c)
    if current or not parts:
        parts.append(current)
    if len(parts) == 1:
        return [list(t.columns)]
    return [[c for c in t.columns if c in keys or c in part] for part in parts]
