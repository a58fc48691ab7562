"""Does anything vary across the sheet? Clean tiles on the left against clean tiles on the right.

Counterbalanced sheets (``printouts.plan.clean_on_right``) put clean and adversarial
tiles on each side equally often, so a tilt, a lamp from one side or a focus gradient
cannot favour one role. It can still cost both roles accuracy on one side, which the
report should say: per session, the clean tiles the model gets right digitally are
split by the half of the sheet they were printed on (left or right of the sheet's
centre line), and each tile counts once (its majority vote over frames). Each tile
sits on one side only, so there are no within-tile pairs for McNemar's test; the two
sides are compared with Fisher's exact test on the 2x2 table (kept, lost) x (left,
right) (Fisher 1935, "The Design of Experiments"; two-sided, summing the tables no
more probable than the one seen). Sheets printed before counterbalancing (layout id
unknown) had every clean tile on the left: nothing to compare.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from analysis.load import Observation, Session, observations_by_tile
from analysis.metrics import correct, vote
from contracts.layout import Layout

ALPHA = 0.05  # a side effect is reported at p < 0.05


@dataclass(frozen=True)
class SideTest:
    """Clean tiles kept (right when photographed) on each side, among those right digitally; Fisher's p."""

    left_kept: int
    left_n: int
    right_kept: int
    right_n: int
    p: float | None

    @property
    def effect(self) -> bool:
        return self.p is not None and self.p < ALPHA

    def sentence(self) -> str:
        def pct(k: int, n: int) -> str:
            return f"{100 * k / n:.0f}% ({k}/{n})" if n else "n/a (0 tiles)"

        test = "n/a" if self.p is None else f"{self.p:.3g}"
        return (
            f"clean tiles kept on the left half of the sheet {pct(self.left_kept, self.left_n)}, on the right "
            f"{pct(self.right_kept, self.right_n)} (Fisher's exact test p = {test})"
        )

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "left_kept": self.left_kept,
            "left_n": self.left_n,
            "right_kept": self.right_kept,
            "right_n": self.right_n,
            "p": self.p,
        }


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of Fisher's exact test on the table ``[[a, b], [c, d]]``."""
    r1, r2, c1 = a + b, c + d, a + c
    n = r1 + r2

    def prob(x: int) -> float:
        return math.comb(r1, x) * math.comb(r2, c1 - x) / math.comb(n, c1)

    seen = prob(a)
    lo, hi = max(0, c1 - r2), min(r1, c1)
    return min(1.0, sum(q for x in range(lo, hi + 1) if (q := prob(x)) <= seen * (1 + 1e-9)))


def side_of(layouts: dict[str, Layout], lid: str | None, item: str) -> str | None:
    """``left`` or ``right``: the half of the sheet the item's clean tile was printed on (``None``: unknown)."""
    lay = layouts.get(lid) if lid is not None else None
    if lay is None:
        return None
    for s in lay.sheets:
        for t in s.tiles:
            if t.item == item and t.role == "clean":
                return "left" if t.box_mm[0] + t.box_mm[2] / 2 < s.size_mm[0] / 2 else "right"
    return None


def side_test(s: Session, layouts: dict[str, Layout], truth: dict[str, int]) -> SideTest | None:
    """The left/right test of one session's clean tiles; ``None`` when no tile's side is known or one side is empty.

    ``truth``: item id -> its true class in the session model's classes.
    """
    tiles = observations_by_tile(s)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (item, role), obs in tiles.items():
        if role != "clean":
            continue
        dig = s.digital.get((item, "clean"))
        label = truth.get(item)
        if dig is None or label is None or not correct(dig, label, 1):
            continue
        by_layout: dict[str | None, list[Observation]] = defaultdict(list)
        for o in obs:
            by_layout[o.layout_id].append(o)
        for lid, group in by_layout.items():
            side = side_of(layouts, lid, item)
            if side is None:
                continue
            counts[side][0] += correct(vote([o.pred for o in group]), label, 1)
            counts[side][1] += 1
    (lk, ln), (rk, rn) = counts["left"], counts["right"]
    if not ln or not rn:
        return None
    return SideTest(lk, ln, rk, rn, fisher_exact(lk, ln - lk, rk, rn - rk))
