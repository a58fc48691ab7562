"""The channel check: is a session's evidence good enough for its figures to be about the attack?

A perturbation can only be said to survive printing and photography when the
photographed *clean* image is still recognised (Kurakin, Goodfellow & Bengio 2016,
https://arxiv.org/abs/1607.02533). The verdict is :func:`contracts.verdict.judge`'s (the
one rule, shared with the live capture line; its docstring states it): on the clean
tiles' good observations, clustered by source photo, against the digital figure of the
same items and, when the session recorded it, against the digital stability baseline
(the same PNGs through a mild resampling, blur and JPEG). ``ok`` needs the loss bounded
within 10 points and at least half of the observations through the gates; too little
evidence is ``inconclusive`` with how many more photos would settle it; a loss the
baseline already explains is ``model-fragile``; a loss the camera adds is
``camera-limited``.

Beside the verdict: the per-tile view (one majority vote per tile), Kurakin's
prefiltered case (clean right digitally with confidence >= 0.8), the photos a mild
transform flips, every measured cause (:mod:`analysis.diagnosis`), the left/right side
test (:mod:`analysis.sides`) and the layouts (prints) the session read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.diagnosis import MAX_BLUR_SIGMA_PX, MAX_FRONTAL_DEG, TILE_FRACTION, diagnose
from analysis.load import ReportInput, Session, observations_by_tile
from analysis.metrics import correct, vote
from analysis.sides import SideTest, side_test
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Rate
from contracts.errors import UserError
from contracts.framing import framed_mm
from contracts.layout import Layout, load_layouts
from contracts.verdict import DROP_POINTS, FLAGGED, FRAGILE, INCONCLUSIVE, LIMITED, NA, OK, ORDER, Tally, Verdict, judge

__all__ = [
    "DROP_POINTS",
    "FLAGGED",
    "MAX_BLUR_SIGMA_PX",
    "MAX_FRONTAL_DEG",
    "ORDER",
    "TILE_FRACTION",
    "ChannelCheck",
    "check_session",
    "check_sessions",
]
PREFILTER_CONFIDENCE = 0.8  # Kurakin et al.'s prefiltered case


@dataclass(frozen=True)
class ViewCheck:
    """One view (tile or frame): digital reference and photographed clean top-1 accuracy on the same items."""

    view: str
    digital: float | None
    photo: Rate
    verdict: str
    baseline: float | None = None

    @property
    def drop(self) -> float | None:
        return None if self.digital is None or self.photo.value is None else self.digital - self.photo.value


def _rate(v: Verdict) -> Rate:
    p = v.photo
    return Rate(p.value, p.lo, p.hi, p.num, p.n, p.clusters, "cluster" if p.n else "")


def _view(name: str, t: Tally) -> tuple[ViewCheck, Verdict]:
    v = judge(t.evidence())
    return ViewCheck(name, v.digital, _rate(v), v.verdict, v.baseline), v


@dataclass(frozen=True)
class ChannelCheck:
    """A session's channel check: the verdict, the views, the camera's medians, reasons and what to do."""

    session: str
    model: str
    verdict: str
    tile: ViewCheck
    frame: ViewCheck
    quality: dict[str, Any]
    input_size: int | None
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    judged: Verdict | None = None  # contracts.verdict.judge on the frame view: the one rule
    prefiltered: ViewCheck | None = None  # Kurakin's prefiltered case (clean confidence >= 0.8)
    unstable: list[str] = field(default_factory=list)  # photos whose clean image a mild digital transform flips
    sides: SideTest | None = None
    layouts: dict[str, int] = field(default_factory=dict)  # layout id ("unknown" before ids) -> observations

    @property
    def limited(self) -> bool:
        return self.verdict == LIMITED

    @property
    def flagged(self) -> bool:
        """Not ok: the session's destruction and survival figures are not about the attack alone."""
        return self.verdict in FLAGGED

    def sentence(self) -> str:
        """One line: verdict, figures with interval, n and photos, the baseline, and the rule."""
        f = self.frame
        if self.verdict == NA or f.digital is None or f.photo.value is None:
            return (
                f"Channel check, session {self.session} ({self.model}): n/a (no clean tile both classified digitally "
                "and photographed)."
            )
        head = {OK: "passed", LIMITED: "CAMERA-LIMITED", INCONCLUSIVE: "inconclusive", FRAGILE: "MODEL-FRAGILE"}[
            self.verdict
        ]
        base = "" if f.baseline is None else f"; digital after mild resampling, blur and JPEG {_pct(f.baseline)}"
        pre = self.prefiltered
        pre_s = (
            ""
            if pre is None or pre.photo.value is None
            else f" Prefiltered (clean confidence >= {PREFILTER_CONFIDENCE}): {_fmt(pre.photo)} photographed vs "
            f"{_pct(pre.digital)} "
            f"digital{'' if pre.baseline is None else f', {_pct(pre.baseline)} after mild changes'}."
        )
        why = f" ({self.judged.why})" if self.judged is not None and self.judged.why else ""
        return (
            f"Channel check, session {self.session} ({self.model}): {head}{why}. Clean top-1 {_pct(f.digital)} "
            f"digital{base}; photographed {_fmt(f.photo)} per frame, clustered by photo (loss "
            f"{100 * (f.drop or 0):+.1f} points; per tile {_fmt(self.tile.photo)}).{pre_s} Rule: ok when the loss's "
            f"95% upper bound is at most {100 * DROP_POINTS:.0f} points and at least half of the observations passed "
            "the gates."
        )

    def consequence(self) -> str:
        if self.verdict == LIMITED:
            return (
                "The camera, not the perturbation, decides most outcomes in this session: its destruction and "
                "paired-survival figures measure the camera and are not evidence that perturbations survive or are "
                "destroyed."
            )
        if self.verdict == FRAGILE:
            return (
                "The model loses these clean photos to mild digital resampling, blur and JPEG alone: its "
                "destruction and "
                "paired-survival figures measure the model's fragility, not the camera and not the perturbation."
            )
        if self.verdict == INCONCLUSIVE:
            return (
                "Too little evidence to bound the clean loss: read this session's destruction and paired-survival "
                "figures "
                "as not about the attack until more is captured."
            )
        return ""

    def note(self) -> str:
        """The note for report.json, the page and the console."""
        parts = [self.sentence()]
        if self.flagged:
            parts += [self.consequence(), "Why: " + "; ".join(self.reasons) + "."]
            if self.unstable:
                parts.append("Photos a mild digital change already flips: " + ", ".join(self.unstable) + ".")
            parts.append("What to do: " + "; ".join(self.advice) + ".")
        elif self.verdict == OK and self.reasons:
            parts.append("Measured: " + "; ".join(self.reasons) + ".")
        if self.sides is not None and self.sides.effect:
            parts.append(
                "Side effect: "
                + self.sides.sentence()
                + ": something varies across the sheet (a lamp from one side, glare, focus); the counterbalanced "
                "layout keeps it off the roles' averages, but even the light before trusting per-tile figures."
            )
        if len([k for k in self.layouts if k != "unknown"]) > 1:
            parts.append("Layouts read: " + ", ".join(f"{k} ({n} observations)" for k, n in self.layouts.items()) + ".")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def view(v: ViewCheck | None) -> dict[str, Any] | None:
            if v is None:
                return None
            r = v.photo
            return {
                "verdict": v.verdict,
                "clean_digital": v.digital,
                "clean_baseline": v.baseline,
                "clean_photo": r.value,
                "ci_low": r.lo,
                "ci_high": r.hi,
                "n": r.n,
                "n_photos": r.n_items,
                "drop": v.drop,
            }

        j = self.judged
        return {
            "session": self.session,
            "model": self.model,
            "verdict": self.verdict,
            "why": j.why if j else "",
            "more_photos_needed": j.more_photos if j else None,
            "threshold_points": 100 * DROP_POINTS,
            "tile": view(self.tile),
            "frame": view(self.frame),
            "prefiltered": view(self.prefiltered),
            "unstable_photos": self.unstable,
            "side_test": None if self.sides is None else self.sides.to_dict(),
            "layouts": self.layouts,
            "input_size": self.input_size,
            "quality": self.quality,
            "reasons": self.reasons,
            "advice": self.advice,
        }


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt(r: Rate) -> str:
    if r.value is None:
        return "n/a (n=0)"
    ci = "" if r.lo is None or r.hi is None else f" [{100 * r.lo:.1f}–{100 * r.hi:.1f}]"
    return f"{100 * r.value:.1f}%{ci} n={r.n} ({r.n_items} photo{'s' * (r.n_items != 1)})"


def input_size(s: Session) -> int | None:
    """The session model's input side in pixels, from the capture config (preprocessing spec or crop size)."""
    pre = s.config.get("preprocess")
    for v in ((pre or {}).get("input_size") if isinstance(pre, dict) else None, s.config.get("crop_size")):
        if isinstance(v, (int, float)) and v > 0:
            return int(v)
        if isinstance(v, (list, tuple)) and v and isinstance(v[0], (int, float)):
            return int(max(v))
    return None


def _tallies(inp: ReportInput, s: Session, prefilter: bool) -> tuple[Tally, Tally]:
    """(frame view, tile view) tallies of the session's clean evidence; ``prefilter``: Kurakin's prefiltered items "
    "only."""
    truth = {it.id: s.truth(it.label.index) for it in inp.batch.items}
    cluster = {it.id: it.photo for it in inp.batch.items}
    right: dict[str, bool] = {}
    for it in inp.batch.items:
        d = s.digital.get((it.id, "clean"))
        if d is None or (prefilter and not (d.top1 == truth[it.id] and d.top1_prob >= PREFILTER_CONFIDENCE)):
            continue
        right[it.id] = correct(d, truth[it.id], 1)
    photos = len(set(cluster.values()))
    frame = Tally(cluster, truth, right, s.stability, photos)
    tile = Tally(cluster, truth, right, s.stability, photos)
    for t in (frame, tile):
        t.n_obs, t.n_good = s.n_obs, s.n_good
    for (item, role), obs in observations_by_tile(s).items():
        if role != "clean":
            continue
        for o in obs:
            frame.add_clean(item, correct(o.pred, truth[item], 1))
        tile.add_clean(item, correct(vote([o.pred for o in obs]), truth[item], 1))
    return frame, tile


def _sheet(layouts: dict[str, Layout], s: Session) -> tuple[tuple[float, float], float] | None:
    """What fills the frame (the paper, or one pair and its markers on a dense sheet) and the tile width, of the
    layout the session started with (or the current one)."""
    lay = layouts.get(s.layout_id or "") or next(iter(layouts.values()), None)
    if lay is None or not lay.sheets:
        return None
    w, h = framed_mm(lay)
    return (w, h), float(lay.tile_mm)


def _layouts(inp: ReportInput) -> dict[str, Layout]:
    try:
        return load_layouts(inp.batch_dir)
    except UserError:  # no layout.json here (a report from copied databases): no side test, no camera bound
        return {}


def check_session(
    inp: ReportInput,
    s: Session,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    layouts: dict[str, Layout] | None = None,
) -> ChannelCheck:
    """The channel check of one session (the rule: :func:`contracts.verdict.judge`).

    ``seed`` and ``resamples`` are accepted for the report's signature: the check's
    intervals are analytic (clustered Wilson), not bootstrapped.
    """
    layouts = _layouts(inp) if layouts is None else layouts
    frame_t, tile_t = _tallies(inp, s, prefilter=False)
    frame, judged = _view("frame", frame_t)
    tile, _ = _view("tile", tile_t)
    pre_frame, _ = _tallies(inp, s, prefilter=True)
    pre, _ = _view("prefiltered", pre_frame)
    size = input_size(s)
    truth = {it.id: s.truth(it.label.index) for it in inp.batch.items}
    digital_right = {i for i in truth if correct(s.digital.get((i, "clean")), truth[i], 1)}
    seen = {o.item_id for o in s.observations}
    flips: dict[str, tuple[str, set[str]]] = {}  # a photo's items share its clean image: one entry per photo
    for it in inp.batch.items:
        if it.id in s.unstable and it.id in digital_right and it.id in seen:
            flips.setdefault(it.photo, (it.source.file, set()))[1].update(s.unstable[it.id])
    unstable = sorted(f"{name} ({', '.join(sorted(ts))})" for name, ts in flips.values())
    d = diagnose(
        s.quality,
        size,
        s.model_name,
        f"photoproof print {inp.batch_dir} --frame-size {_cam(s)} --model {s.model_name}",
        _sheet(layouts, s),
        judged.fragility,
        unstable,
    )
    if judged.verdict in FLAGGED:
        reasons = (
            d.off + ["measured: " + "; ".join(d.facts)]
            if d.off
            else ["none of the measured causes is out of range (" + "; ".join(d.facts) + ")"]
        )
        if judged.verdict == INCONCLUSIVE:
            reasons.insert(0, judged.why)
    else:
        reasons = ["; ".join(d.facts)] if d.facts else []
    advice = list(d.todo)
    if judged.verdict == INCONCLUSIVE and judged.more_photos:
        advice.insert(
            0,
            f"capture about {judged.more_photos} more photos' clean tiles (craft and print more items, or another "
            "session)",
        )
    if not advice:
        advice.append(
            f"measure the channel with photoproof calibrate {inp.batch_dir} --session {s.id} and compare with a "
            "careful-lab capture"
        )
    kept = {("unknown" if k is None else k): n for k, n in s.layouts.items()}
    return ChannelCheck(
        s.id,
        s.model_name,
        judged.verdict,
        tile,
        frame,
        dict(s.quality),
        size,
        reasons,
        advice,
        judged,
        pre if pre.photo.n else None,
        unstable,
        side_test(s, layouts, truth),
        kept,
    )


def _cam(s: Session) -> str:
    q = s.quality
    return f"{q['frame_w']}x{q['frame_h']}" if q.get("frame_w") else "WIDTHxHEIGHT"


def check_sessions(
    inp: ReportInput, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, ChannelCheck]:
    """The channel check of every session, by session id."""
    layouts = _layouts(inp)
    return {s.id: check_session(inp, s, seed, resamples, layouts) for s in inp.sessions}
