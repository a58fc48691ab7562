"""Which of two attacks survives the camera better? Paired by photo, per session and ε (issue 27).

A batch crafted with several attacks (``craft --attack bim,eot``) prints every attack of a photo beside the
others, so one capture session photographs them under the same camera, light and pose. For each session and each
pair of attacks at a shared ε (the later in craft's ``--attack`` order first), on the photos whose items both
attacks have:

- **end-to-end success**: the share of items whose photographed adversarial tile is misclassified (top-1 is not
  the label, targeted attacks included), among those whose clean tile the camera kept recognised and whose
  adversarial tile was seen, under both attacks; whether or not the adversarial PNG fooled the model digitally, so
  an attack that loses digital reach is not selected away;
- **paired survival**: the same, among the items whose adversarial PNG also fooled the session's model digitally
  under both (Kurakin et al. 2016's survival, https://arxiv.org/abs/1607.02533).

Each difference is in points with a 95 % percentile bootstrap that resamples source photos (a photo's items at
every ε together: Davison & Hinkley 1997, section 3.8), and an exact two-sided sign test over photos (McNemar's
exact test on the discordant photos), since at a handful of discordant photos the percentile bootstrap is liberal
(4 photos to 0 give an interval above 0 but p = 0.125). An attack is called better only when both agree. A
camera-limited session's comparison is not a result: the camera, not the perturbation, decided it. Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from analysis.channel import FLAGGED, LIMITED
from analysis.load import ReportInput, Session
from analysis.metrics import ItemData, correct
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Diff, paired_by_photo, sign_test
from analysis.summary import session_items
from analysis.tables import Table

ALPHA = 0.05  # the sign test's level
ALL_EPS = "all"

FIRST = "first survives better"
SECOND = "second survives better"
NO_DIFF = "no difference shown"
NA = "n/a"
CAMERA = "camera-limited"
FEWEST = next(n for n in range(1, 64) if sign_test(n, 0) < ALPHA)  # photos that differ, all one way, for p < ALPHA


@dataclass(frozen=True)
class Contrast:
    """One difference, first attack minus second, on the items counted under both."""

    items: int
    photos: int
    first: float | None  # the first attack's rate on those items
    second: float | None
    diff: Diff | None
    wins: int  # photos where the first does better
    losses: int  # photos where the second does better
    p: float | None  # exact sign test over photos

    def verdict(self) -> str:
        if self.diff is None or self.p is None:
            return NA
        if self.p < ALPHA and self.diff.lo > 0:
            return FIRST
        if self.p < ALPHA and self.diff.hi < 0:
            return SECOND
        return NO_DIFF


@dataclass(frozen=True)
class Comparison:
    """Two attacks of one session at one ε (or every ε they share: ``eps`` is ``"all"``)."""

    session: str
    model: str
    channel_check: str | None
    eps: str
    first: str
    second: str
    success: Contrast
    survival: Contrast
    headline: bool = True  # the row the console reads: over every shared ε, or the only one

    @property
    def verdict(self) -> str:
        return CAMERA if self.channel_check == LIMITED else self.success.verdict()

    def sentence(self) -> str:
        c = self.success
        where = f"session {self.session} ({self.model}), " + ("every ε" if self.eps == ALL_EPS else f"ε {self.eps}")
        if c.diff is None:
            return f"Attacks compared, {where}: {self.first} against {self.second}: n/a (no photo counted under both)."
        said = {FIRST: f"{self.first} survives better", SECOND: f"{self.second} survives better"}
        head = (
            f"Attacks compared, {where}: end-to-end success {self.first} − {self.second} {c.diff} points "
            f"({c.items} items of {c.photos} photos; {c.wins} photos for {self.first}, {c.losses} for "
            f"{self.second}; exact sign test p = {c.p:.3g}): {said.get(self.verdict, self.verdict)}."
        )
        if self.verdict == CAMERA:
            return head + (
                " The camera, not the perturbation, decided this session: fix what its channel check names and capture "
                "again before comparing attacks."
            )
        if self.channel_check in FLAGGED:
            head += (
                f" The session's channel check is {self.channel_check}: its survival rates alone are not about the "
                "attack, but both attacks met the same camera on the same photos, so the difference stands within its "
                "interval."
            )
        if self.verdict != NO_DIFF:
            return head
        if c.diff.lo > 0 or c.diff.hi < 0:  # the bootstrap is liberal at a handful of photos that differ
            head += (
                f" The interval excludes 0, but {c.wins} photos to {c.losses} are too few for the sign test: it needs "
                f"at least {FEWEST} photos that differ, all one way."
            )
        differ = c.wins + c.losses
        if 0 < differ < FEWEST:
            need = math.ceil(FEWEST * c.photos / differ)
            return head + (
                f" Print and photograph more photos to tell them apart: at this session's rate of photos that differ "
                f"({differ} of {c.photos}), that takes at least {need} photos whose clean tile the camera keeps."
            )
        return head + " Print and photograph more photos to tell them apart."


def _order(inp: ReportInput) -> list[str]:
    """The batch's attacks in craft's ``--attack`` order, then any other in the order the items show them."""
    listed = list(dict.fromkeys(a for a in inp.batch.config.get("attacks", []) if isinstance(a, str)))
    seen = list(dict.fromkeys(it.attack for it in inp.batch.items))
    return [a for a in listed if a in seen] + [a for a in seen if a not in listed]


def _fools(it: ItemData, photographed: bool) -> bool:
    """The adversarial image is misclassified: photographed (the tile's vote) or digitally (the PNG)."""
    pred = it.photo_adv[0] if photographed else it.adv
    return pred is not None and not correct(pred, it.label, 1)


def _counted(it: ItemData, survival: bool) -> bool:
    ok = bool(it.photo_clean) and correct(it.photo_clean[0], it.label, 1) and bool(it.photo_adv)
    return ok and (not survival or (correct(it.clean, it.label, 1) and _fools(it, False)))


def contrast(
    first: dict[tuple[str, float], ItemData],
    second: dict[tuple[str, float], ItemData],
    survival: bool = False,
    seed: int = DEFAULT_SEED,
    key: str = "",
    resamples: int = DEFAULT_RESAMPLES,
) -> Contrast:
    """``first`` minus ``second`` on the (photo, ε) keys counted under both."""
    both = sorted(k for k in first.keys() & second.keys() if all(_counted(d[k], survival) for d in (first, second)))
    if not both:
        return Contrast(0, 0, None, None, None, 0, 0, None)
    a = np.array([float(_fools(first[k], True)) for k in both])
    b = np.array([float(_fools(second[k], True)) for k in both])
    d = paired_by_photo(a - b, [k[0] for k in both], seed, key, resamples)
    return Contrast(len(both), d.photos, float(a.mean()), float(b.mean()), d.diff, d.up, d.down, d.p)


def compare_attacks(
    inp: ReportInput, checks: dict[str, str] | None = None, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> list[Comparison]:
    """Every pair of the batch's attacks in every classifier session, per ε at which both attacked a photo and, with
    more than one, over all of them (none for attacks of different photos). ``checks``: each session's channel-check
    verdict (:mod:`analysis.channel`)."""
    attacks = _order(inp)
    if len(attacks) < 2:
        return []
    photo = {it.id: it.photo for it in inp.batch.items}
    out = []
    for s in inp.sessions:
        by: dict[str, dict[tuple[str, float], ItemData]] = {a: {} for a in attacks}
        for it in session_items(inp, s, "tile"):
            by[it.attack][(photo[it.item_id], it.eps)] = it
        for i, j in combinations(range(len(attacks)), 2):
            first, second = by[attacks[j]], by[attacks[i]]  # the later attack first: eot − bim for --attack bim,eot
            shared = sorted({e for _, e in first.keys() & second.keys()})  # ε at which both attacked a photo
            for e in [*shared, *([None] if len(shared) > 1 else [])]:
                c = _comparison(s, checks, attacks[j], attacks[i], first, second, e, seed, resamples)
                out.append(replace(c, headline=e is None or len(shared) == 1))
    return out


def _comparison(
    s: Session,
    checks: dict[str, str] | None,
    name_a: str,
    name_b: str,
    a: dict[tuple[str, float], ItemData],
    b: dict[tuple[str, float], ItemData],
    eps: float | None,
    seed: int,
    resamples: int,
) -> Comparison:
    def at(d: dict[tuple[str, float], ItemData]) -> dict[tuple[str, float], ItemData]:
        return {k: v for k, v in d.items() if eps is None or k[1] == eps}

    shown = ALL_EPS if eps is None else f"{eps:g}"
    key = f"attacks/{s.id}/{name_a}/{name_b}/{shown}"
    both = [contrast(at(a), at(b), survival=v, seed=seed, key=key, resamples=resamples) for v in (False, True)]
    return Comparison(s.id, s.model_name, (checks or {}).get(s.id), shown, name_a, name_b, both[0], both[1])


def compare_table(comps: Sequence[Comparison]) -> Table:
    """One row per session, pair of attacks and ε."""

    def pct(v: float | None) -> float | None:
        return None if v is None else round(100 * v, 1)

    def p(v: float | None) -> float | None:
        return None if v is None else float(f"{v:.3g}")

    rows = [
        {
            "session": c.session,
            "model": c.model,
            "channel_check": c.channel_check,
            "eps": c.eps,
            "first": c.first,
            "second": c.second,
            "verdict": c.verdict,
            "photos": c.success.photos,
            "items": c.success.items,
            "success_first_pct": pct(c.success.first),
            "success_second_pct": pct(c.success.second),
            "success_diff": "" if c.success.diff is None else str(c.success.diff),
            "photos_for_first": c.success.wins,
            "photos_for_second": c.success.losses,
            "sign_test_p": p(c.success.p),
            "survival_items": c.survival.items,
            "survival_first_pct": pct(c.survival.first),
            "survival_second_pct": pct(c.survival.second),
            "survival_diff": "" if c.survival.diff is None else str(c.survival.diff),
            "survival_sign_test_p": p(c.survival.p),
        }
        for c in comps
    ]
    return Table(
        "attacks_compared",
        "Attacks compared: which survives the camera better, paired by photo",
        list(rows[0]) if rows else ["session", "model", "eps", "first", "second", "verdict"],
        rows,
        [],
        "Per session and ε, each pair of attacks, the first minus the second, on the photos both were crafted from. "
        "success: the photographed adversarial tile is misclassified (top-1 is not the label), among items whose "
        "clean tile was recognised and adversarial tile seen under both attacks; survival: the same among items "
        "whose adversarial PNG also fooled the model digitally under both. Differences in points with 95 % "
        "intervals resampling photos; photos_for_first / _second: photos where one attack did better; exact sign "
        f"test over those photos. An attack survives better when its interval lies above 0 and p < {ALPHA:g}. "
        "eps 'all': every ε the two share, a photo's items together. A camera-limited session's comparison is not a "
        "result.",
    )
