"""Does a simulated camera predict the real one? Tile-by-tile agreement between a batch's sessions (issue 27).

A channel profile (a preset, or one ``photoproof calibrate`` fitted to the user's camera) predicts that camera
when a session simulated with it (``capture --simulate --profile``) gives each tile the same top-1 as the camera's
own sessions about as often as those sessions agree with each other, and its clean accuracy and adversarial
success are the camera's: each within ``GOAL_POINTS`` (docs/physical-fidelity.md, "Calibration that predicts a
camera"). The camera's sessions the profile was fitted to (recorded by capture from the profile's
``calibrated_from``) are left out: a profile repeats the session it was fitted to better than the camera's next one.

A tile's top-1 is the majority vote over its good observations (:func:`analysis.metrics.vote`). A profile's
simulated sessions (several seeds, as ``bench/calibrate_loop.py --repeats`` captures them) are judged together,
on the tiles they and every reference session of the same model saw: the camera's repeat is the mean agreement
over the pairs of reference sessions, the profile's the mean over its sessions and the references, and the rates
are the profile's sessions' mean against the references'. Each difference gets a 95 % percentile bootstrap
interval that resamples source photos (a photo's tiles together: Davison & Hinkley 1997, section 3.8), with
:mod:`analysis.stats`' seeded weights. Pure numpy: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from analysis.load import Pred, ReportInput, Session, observations_by_tile
from analysis.metrics import correct, succeeded, vote
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Diff, bootstrap_weights, clustered_diff
from analysis.tables import Table
from contracts.manifest import Item

GOAL_POINTS = 5.0  # issue 27: within 5 points of the camera's repeat, clean accuracy and adversarial success
MIN_REFERENCES = 2  # sessions of the camera needed to measure its repeat

Tile = tuple[str, str]  # (item id, role)

PREDICTS = "predicts"
POINT = "close by point estimates"
NOT_SHOWN = "not shown"
DIFFERS = "differs"
NA = "n/a"


@dataclass(frozen=True)
class Prediction:
    """A profile's simulated sessions judged against the camera's sessions."""

    sessions: tuple[str, ...]  # the simulated sessions, all of one profile and model
    profile: str
    model: str
    references: tuple[str, ...]
    left_out: tuple[str, ...]  # the camera's sessions the profile was fitted to
    tiles: int
    photos: int
    repeat: float | None  # the camera's own agreement, 0..1
    agreement: float | None  # the simulated session's with the camera's sessions
    agreement_diff: Diff | None
    clean: tuple[float, float] | None  # (simulated, camera), 0..1
    clean_diff: Diff | None
    success: tuple[float, float] | None
    success_diff: Diff | None
    verdict: str
    advice: str

    def sentence(self) -> str:
        """One line for the console and the report's notes."""
        which = f"session{'s' if len(self.sessions) > 1 else ''} {', '.join(self.sessions)}"
        head = f"Prediction check, profile {self.profile} ({which}, {self.model}): {self.verdict}"
        if self.agreement_diff is None or self.repeat is None or self.agreement is None:
            return f"{head}. {self.advice}"
        rates = "; ".join(
            f"{name} {100 * a:.0f} % against the camera's {100 * b:.0f} %, {d}"
            for name, ab, d in (("clean", self.clean, self.clean_diff), ("fooled", self.success, self.success_diff))
            if ab is not None and d is not None
            for a, b in [ab]
        )
        return (
            f"{head}: same top-1 as the camera on {100 * self.agreement:.0f} % of {self.tiles} tiles "
            f"({self.photos} photos), the camera's own repeat {100 * self.repeat:.0f} %, difference "
            f"{self.agreement_diff} points; {rates}. {self.advice}"
        )


def _tiles(s: Session) -> dict[Tile, Pred]:
    return {k: vote([o.pred for o in obs]) for k, obs in observations_by_tile(s).items() if obs}


def _fitted_to(s: Session) -> tuple[str, ...]:
    v = s.config.get("calibrated_from")
    return tuple(x for x in v if isinstance(x, str)) if isinstance(v, list) else ()


def _judge(diffs: Sequence[Diff | None]) -> tuple[str, str]:
    """The verdict of issue 27's goal on the three differences, and what to do."""
    if any(d is None for d in diffs):
        return NA, "No clean or no adversarial tile was seen by every session: capture longer."
    ds = [d for d in diffs if d is not None]
    goal = f"{GOAL_POINTS:g} points"
    if all(d.within(GOAL_POINTS) for d in ds):
        return PREDICTS, f"Every difference's 95 % interval lies within {goal}."
    if all(abs(d.points) <= GOAL_POINTS for d in ds):
        return POINT, (
            f"Every difference is within {goal}, not every interval: capture the camera again (more sessions) "
            "or print more photos to narrow them."
        )
    if any(d.lo > GOAL_POINTS or d.hi < -GOAL_POINTS for d in ds):
        return DIFFERS, (
            f"A difference lies beyond {goal} with its whole interval: the profile does not predict this camera. "
            "Calibrate it from a session of this camera (photoproof calibrate BATCH -s SESSION, or two pooled: "
            "-s A -s B) and simulate again."
        )
    return NOT_SHOWN, (
        f"A difference is beyond {goal}, but its interval reaches within: capture the camera again or print more "
        "photos before concluding, or calibrate the profile from a session of this camera."
    )


def predict(inp: ReportInput, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES) -> list[Prediction]:
    """Every profile's simulated sessions judged together against the real sessions of their model (none without a
    simulated session and a real one). Sessions of one profile (its name and the sessions it was calibrated from)
    and model form one group: each of them is compared with each reference, as the camera's repeat is over its
    pairs."""
    items = {it.id: it for it in inp.batch.items}
    groups: dict[tuple[str, str, tuple[str, ...]], list[Session]] = {}
    for s in inp.sessions:
        if s.profile is not None:  # one profile: its name and the sessions it was calibrated from
            groups.setdefault((s.profile, s.model_name, _fitted_to(s)), []).append(s)
    out = []
    for group in groups.values():
        sims = sorted(group, key=lambda s: s.id)
        fitted = {f for s in sims for f in _fitted_to(s)}
        real = [s for s in inp.sessions if s.profile is None and s.model_name == sims[0].model_name]
        if not real:
            continue  # nothing of a real camera to predict: a simulated-only batch (the demo, a bench) is not judged
        refs = [s for s in real if s.id not in fitted]
        left = tuple(s.id for s in real if s.id in fitted)
        if len(refs) < MIN_REFERENCES:
            why = (
                f"Only {len(refs)} session(s) of the camera with {sims[0].model_name} besides those the profile was "
                f"fitted to{' (' + ', '.join(left) + ')' if left else ''}: capture the camera "
                f"{MIN_REFERENCES - len(refs)} more time(s) with the same batch and model, so that its own repeat can "
                "be measured."
            )
            out.append(_empty(sims, refs, left, why))
            continue
        out.append(_compare(sims, refs, left, items, seed, resamples))
    return out


def _hit(s: Session, pred: Pred, it: Item, role: str) -> float:
    """1 when the tile's top-1 is right (clean) or the attack reached its goal (adversarial)."""
    label = s.truth(it.label.index)
    return float(correct(pred, label, 1) if role == "clean" else succeeded(pred, label, s.truth(it.target), 1))


def _compare(
    sims: list[Session], refs: list[Session], left: tuple[str, ...], items: dict[str, Item], seed: int, resamples: int
) -> Prediction:
    by_id = {s.id: s for s in [*sims, *refs]}
    got = {sid: _tiles(s) for sid, s in by_id.items()}
    common = sorted(set.intersection(*(set(t) for t in got.values())) & {k for k in got[sims[0].id] if k[0] in items})
    if not common:
        return _empty(sims, refs, left, "No tile was seen by every session: capture longer.")
    photos = {p: j for j, p in enumerate(sorted({items[i].photo for i, _ in common}))}
    pidx = np.array([photos[items[i].photo] for i, _ in common])
    weights = bootstrap_weights(len(photos), seed, "prediction/" + ",".join(s.id for s in sims), resamples)
    pairs = list(combinations([r.id for r in refs], 2))
    rep = np.array([np.mean([got[a][k].top1 == got[b][k].top1 for a, b in pairs]) for k in common])
    agr = np.array([np.mean([got[s.id][k].top1 == got[r.id][k].top1 for s in sims for r in refs]) for k in common])
    rates: list[tuple[tuple[float, float] | None, Diff | None]] = []
    for role in ("clean", "adv"):
        idx = [i for i, k in enumerate(common) if k[1] == role]
        if not idx:
            rates.append((None, None))
            continue

        def mean_hit(group: list[Session], k: Tile, role: str = role) -> float:
            return float(np.mean([_hit(s, got[s.id][k], items[k[0]], role) for s in group]))

        a = np.array([mean_hit(sims, common[i]) for i in idx])
        b = np.array([mean_hit(refs, common[i]) for i in idx])
        rates.append(((float(a.mean()), float(b.mean())), clustered_diff(a - b, pidx[idx], weights)))
    adiff = clustered_diff(agr - rep, pidx, weights)
    verdict, advice = _judge([adiff, rates[0][1], rates[1][1]])
    return Prediction(
        tuple(s.id for s in sims),
        sims[0].profile or "",
        sims[0].model_name,
        tuple(r.id for r in refs),
        left,
        len(common),
        len(photos),
        float(rep.mean()),
        float(agr.mean()),
        adiff,
        rates[0][0],
        rates[0][1],
        rates[1][0],
        rates[1][1],
        verdict,
        advice,
    )


def _empty(sims: Sequence[Session], refs: Sequence[Session], left: tuple[str, ...], why: str) -> Prediction:
    return Prediction(
        tuple(s.id for s in sims), sims[0].profile or "", sims[0].model_name, tuple(r.id for r in refs), left, 0, 0,
        None, None, None, None, None, None, None, NA, why,
    )  # fmt: skip


def prediction_table(preds: Sequence[Prediction]) -> Table:
    """One row per profile: its sessions' agreement with the camera against the camera's repeat, and their rates."""

    def pct(v: float | None) -> float | None:
        return None if v is None else round(100 * v, 1)

    def diff(d: Diff | None) -> str:
        return "" if d is None else str(d)

    rows = [
        {
            "profile": p.profile,
            "sessions": ", ".join(p.sessions),
            "model": p.model,
            "verdict": p.verdict,
            "references": ", ".join(p.references),
            "left_out": ", ".join(p.left_out),
            "tiles": p.tiles,
            "photos": p.photos,
            "camera_repeat_pct": pct(p.repeat),
            "agreement_pct": pct(p.agreement),
            "agreement_minus_repeat": diff(p.agreement_diff),
            "clean_pct": pct(p.clean[0] if p.clean else None),
            "camera_clean_pct": pct(p.clean[1] if p.clean else None),
            "clean_minus_camera": diff(p.clean_diff),
            "fooled_pct": pct(p.success[0] if p.success else None),
            "camera_fooled_pct": pct(p.success[1] if p.success else None),
            "fooled_minus_camera": diff(p.success_diff),
            "advice": p.advice,
        }
        for p in preds
    ]
    cols = list(rows[0]) if rows else ["profile", "sessions", "model", "verdict"]
    return Table(
        "prediction",
        "Prediction check: does the simulated camera give the tiles the camera's verdicts?",
        cols,
        rows,
        [],
        "Per tile, the majority top-1 of its good observations, on the tiles every compared session saw. "
        "camera_repeat: how often two sessions of the camera (profile none) agree, over every pair; agreement: how "
        "often the simulated session agrees with each of them; clean and fooled: clean accuracy and attack success, "
        "the camera's as the mean over its sessions. Differences in points with 95 % intervals resampling source "
        f"photos. predicts: every interval within {GOAL_POINTS:g} points; close by point estimates: every "
        f"difference within {GOAL_POINTS:g}; differs: a whole interval beyond; not shown: otherwise. Sessions a "
        "calibrated profile was fitted to are left out (left_out).",
    )
