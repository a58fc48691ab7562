"""How far a session has got and what to do next: the sheets not yet seen, the tiles that keep failing a gate.

The live status line (``capture``), the phone page and the laptop's window all show
one :class:`Coverage`: "sheets seen k of N, tiles with enough good observations m of M",
then the sheets to show next (named as printed on them, "sheet 2") and the tiles that
keep failing a quality gate, with the gate in words a person holding the camera can act
on (:func:`capture.feedback.reject_reason`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from capture.pipeline import TileKey
from contracts.layout import Layout

FAILING_AFTER = 5  # rejected observations of a tile, with too few good ones, before it is named as failing
SHOW_AT_MOST = 3  # sheets or failing tiles named on the line (the rest counted)


@dataclass(frozen=True)
class Coverage:
    """The session's coverage of the layout, and what to do next."""

    sheets_seen: int
    sheets_total: int
    tiles_enough: int
    tiles_total: int
    enough: int  # good observations a tile needs to count here (--per-tile, else 1)
    unseen: list[str] = field(default_factory=list)  # "sheet 2", in layout order
    failing: list[str] = field(default_factory=list)  # "syn-01 adv on sheet 1: blurred (7 of 7)"

    def counts(self) -> str:
        good = "a good observation" if self.enough == 1 else f">= {self.enough} good observations"
        return (
            f"sheets seen {self.sheets_seen} of {self.sheets_total}, "
            f"tiles with {good} {self.tiles_enough} of {self.tiles_total}"
        )

    def next_steps(self) -> str:
        """The sheets to show and the tiles to fix, or ``""`` when there is nothing to say."""
        parts = []
        if self.unseen:
            parts.append("not yet seen: " + _some(self.unseen, self.sheets_total - self.sheets_seen))
        if self.failing:
            parts.append("keep failing: " + "; ".join(self.failing))
        return " | ".join(parts)

    def line(self) -> str:
        more = self.next_steps()
        return self.counts() + (f" | {more}" if more else "")


def _some(names: list[str], total: int) -> str:
    shown = ", ".join(names[:SHOW_AT_MOST])
    return shown + (f" and {total - SHOW_AT_MOST} more" if total > SHOW_AT_MOST else "")


class CoverageTracker:
    """Counts, per session, the sheets seen and each tile's rejections by reason.

    Args:
        layout: the printed layout (its sheets in order: "sheet k" is printed on the k-th).
        per_tile: ``--per-tile K`` (a tile has enough at K good observations), else 1.
        seen: sheet ids an earlier run of the session saw (a resumed session keeps them).
    """

    def __init__(self, layout: Layout, per_tile: int | None, seen: Iterable[str] = ()) -> None:
        self.names = {s.sheet_id: f"sheet {k + 1}" for k, s in enumerate(layout.sheets)}
        self.tiles: list[TileKey] = [(s.sheet_id, t.item, t.role) for s in layout.sheets for t in s.tiles]
        self.enough = per_tile or 1
        self.seen: set[str] = {s for s in seen if s in self.names}
        self.rejected: dict[TileKey, Counter[str]] = {}

    def saw(self, sheet_ids: Iterable[str]) -> None:
        self.seen.update(s for s in sheet_ids if s in self.names)

    def rejected_as(self, key: TileKey, reason: str) -> None:
        """One observation of ``key`` did not count, for ``reason`` (words from ``reject_reason``)."""
        self.rejected.setdefault(key, Counter())[reason] += 1

    def snapshot(self, good_counts: Mapping[TileKey, int]) -> Coverage:
        failing = []
        for key, reasons in sorted(self.rejected.items(), key=lambda kv: -sum(kv[1].values())):
            n = sum(reasons.values())
            good = int(good_counts.get(key, 0))
            if n >= FAILING_AFTER and good < self.enough:
                why, k = reasons.most_common(1)[0]
                failing.append(f"{key[1]} {key[2]} on {self.names.get(key[0], key[0])}: {why} ({k} of {n + good})")
        shown = failing[:SHOW_AT_MOST]
        if len(failing) > SHOW_AT_MOST:
            shown.append(f"{len(failing) - SHOW_AT_MOST} more")
        return Coverage(
            sheets_seen=len(self.seen),
            sheets_total=len(self.names),
            tiles_enough=sum(1 for k in self.tiles if good_counts.get(k, 0) >= self.enough),
            tiles_total=len(self.tiles),
            enough=self.enough,
            unseen=[name for sid, name in self.names.items() if sid not in self.seen],
            failing=shown,
        )
