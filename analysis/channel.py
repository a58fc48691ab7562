"""The channel check: is a session's camera good enough for its figures to be about the attack?

A perturbation can only be said to survive printing and photography when the
photographed *clean* image is still recognised (Kurakin, Goodfellow & Bengio 2016,
https://arxiv.org/abs/1607.02533, compare photographed clean accuracy with the
digital one before reading any destruction rate). Per session, this module
compares the model's clean top-1 accuracy on the photographed tiles with its
clean top-1 accuracy on the saved PNGs *of the same items*, per tile (majority
vote) and per frame.

Rule (``DROP_POINTS`` = 10 points): a view is

- ``camera-limited`` when the photographed accuracy is more than 10 points below
  digital *and* its whole 95% interval lies below digital, i.e. the drop is
  larger than the allowed few points and more than sampling noise;
- ``inconclusive`` when the point estimate drops by more than 10 points but the
  interval still reaches the digital figure (too few items to tell);
- ``ok`` otherwise.

The session takes the worst verdict of its two views; ``n/a`` when nothing can
be compared. Why 10 points: a careful set-up (the sheet filling the frame,
near-frontal, steady, even light: the setting of Kurakin et al.) is meant to
lose at most a few points of clean accuracy, with room left for sampling noise;
a larger loss means the camera, not the perturbation, decides most outcomes, and
a destruction rate or paired survival rate then measures the camera. The digital figure is the reference, not a
sample: both figures are over the same items, and only the photograph is random.

Items that share a source photo (the same photo crafted at several ε) are one
cluster in the interval (item bootstrap widened to the Wilson interval on the
effective n, :mod:`analysis.stats`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from analysis.load import ReportInput, Session
from analysis.metrics import ItemData, correct
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Rate, bootstrap_weights, rate_from_counts
from analysis.summary import session_items
from analysis.tables import CHECK_COLUMN, Table

DROP_POINTS = 0.10  # the largest clean-accuracy drop (digital -> photographed) a session may show
TILE_FRACTION = 0.75  # tiles smaller than this fraction of the model's input side lose detail the model needs
MAX_FRONTAL_DEG = 30.0  # README: hold the camera within about 30 degrees of square to the page
MAX_BLUR_SIGMA_PX = 1.5  # median edge blur of the sheet (Gaussian sigma, camera px) beyond which the frame is soft
MAX_CLIPPED = 0.01  # median share of clipped pixels in a clean tile
MIN_GOOD_FRACTION = 0.5  # under half of the observations passing the gates points at the camera set-up

OK, LIMITED, INCONCLUSIVE, NA = "ok", "camera-limited", "inconclusive", "n/a"
ORDER = {NA: 0, OK: 1, INCONCLUSIVE: 2, LIMITED: 3}


@dataclass(frozen=True)
class ViewCheck:
    """One view (tile or frame): digital reference and photographed clean top-1 accuracy on the same items."""

    view: str
    digital: float | None
    photo: Rate
    verdict: str

    @property
    def drop(self) -> float | None:
        return None if self.digital is None or self.photo.value is None else self.digital - self.photo.value


@dataclass(frozen=True)
class ChannelCheck:
    """A session's channel check: the verdict, both views, the camera's medians, reasons and what to do."""

    session: str
    model: str
    verdict: str
    tile: ViewCheck
    frame: ViewCheck
    quality: dict[str, Any]
    input_size: int | None
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def limited(self) -> bool:
        return self.verdict == LIMITED

    @property
    def flagged(self) -> bool:
        """Camera-limited or inconclusive: the session's destruction and survival figures are not about the attack
        alone.
        """
        return self.verdict in (LIMITED, INCONCLUSIVE)

    def sentence(self) -> str:
        """One line: verdict, figures with interval and n, and the threshold."""
        t = self.tile
        if t.digital is None or t.photo.value is None:
            return (
                f"Channel check, session {self.session} ({self.model}): n/a (no clean tile both classified digitally "
                "and photographed)."
            )
        head = {OK: "passed", LIMITED: "CAMERA-LIMITED", INCONCLUSIVE: "inconclusive"}[self.verdict]
        return (
            f"Channel check, session {self.session} ({self.model}): {head}. Clean top-1 {_pct(t.digital)} digital vs "
            f"{_rate(t.photo)} photographed per tile (drop {100 * (t.drop or 0):+.1f} points; per frame "
            f"{_rate(self.frame.photo)} vs {_pct(self.frame.digital)}). Threshold: a drop of more than "
            f"{100 * DROP_POINTS:.0f} points with the 95% interval wholly below digital."
        )

    def consequence(self) -> str:
        if self.verdict == LIMITED:
            return (
                "The camera, not the perturbation, decides most outcomes in this session: its destruction and "
                "paired-survival figures measure the camera and are not evidence that perturbations survive or are "
                "destroyed."
            )
        if self.verdict == INCONCLUSIVE:
            return (
                "Clean accuracy drops by more than the threshold but too few tiles were seen to be sure: read this "
                "session's destruction and paired-survival figures as camera-limited until more items are captured."
            )
        return ""

    def note(self) -> str:
        """The note for report.json, the page and the console."""
        parts = [self.sentence()]
        if self.flagged:
            parts += [
                self.consequence(),
                "Why: " + "; ".join(self.reasons) + ".",
                "What to do: " + "; ".join(self.advice) + ".",
            ]
        elif self.verdict == OK and self.reasons:
            parts.append("Camera: " + "; ".join(self.reasons) + ".")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def view(v: ViewCheck) -> dict[str, Any]:
            r = v.photo
            return {
                "verdict": v.verdict,
                "clean_digital": v.digital,
                "clean_photo": r.value,
                "ci_low": r.lo,
                "ci_high": r.hi,
                "n": r.n,
                "n_items": r.n_items,
                "drop": v.drop,
            }

        return {
            "session": self.session,
            "model": self.model,
            "verdict": self.verdict,
            "threshold_points": 100 * DROP_POINTS,
            "tile": view(self.tile),
            "frame": view(self.frame),
            "input_size": self.input_size,
            "quality": self.quality,
            "reasons": self.reasons,
            "advice": self.advice,
        }


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _rate(r: Rate) -> str:
    if r.value is None:
        return "n/a (n=0)"
    ci = "" if r.lo is None or r.hi is None else f" [{100 * r.lo:.1f}–{100 * r.hi:.1f}]"
    return f"{100 * r.value:.1f}%{ci} n={r.n}"


def input_size(s: Session) -> int | None:
    """The session model's input side in pixels, from the capture config (preprocessing spec or crop size)."""
    pre = s.config.get("preprocess")
    for v in ((pre or {}).get("input_size") if isinstance(pre, dict) else None, s.config.get("crop_size")):
        if isinstance(v, (int, float)) and v > 0:
            return int(v)
        if isinstance(v, (list, tuple)) and v and isinstance(v[0], (int, float)):
            return int(max(v))
    return None


def _verdict(digital: float | None, photo: Rate) -> str:
    if digital is None or photo.value is None:
        return NA
    if digital - photo.value <= DROP_POINTS + 1e-12:
        return OK
    return LIMITED if photo.hi is not None and photo.hi < digital else INCONCLUSIVE


def _view(inp: ReportInput, items: list[ItemData], view: str, key: str, seed: int, resamples: int) -> ViewCheck:
    """Clean photographed top-1 accuracy against digital over the items seen in ``view``, clustered by source photo."""
    source = {it.id: (it.source.file, it.source.sha256) for it in inp.batch.items}
    num: dict[Any, int] = defaultdict(int)
    den: dict[Any, int] = defaultdict(int)
    ref_num = ref_den = 0
    for it in items:
        if it.clean is None or not it.photo_clean:
            continue
        c = source.get(it.item_id, (it.item_id, ""))
        n = len(it.photo_clean)
        num[c] += sum(correct(p, it.label, 1) for p in it.photo_clean)
        den[c] += n
        ref_num += n * correct(it.clean, it.label, 1)
        ref_den += n
    counts = [(num[c], den[c]) for c in den]
    weights = bootstrap_weights(len(counts), seed, key, resamples) if any(d > 1 for _, d in counts) else None
    photo = rate_from_counts(counts, weights) if counts else Rate.empty()
    digital = ref_num / ref_den if ref_den else None
    return ViewCheck(view, digital, photo, _verdict(digital, photo))


def _diagnose(s: Session, size: int | None, batch_dir: str) -> tuple[list[str], list[str], list[str]]:
    """(measured medians, what looks off, what to do) from the clean tiles' quality metrics."""
    q = s.quality
    facts, off, todo = [], [], []
    px, ang, sharp, blur, clip, good = (
        q.get(k) for k in ("tile_px", "angle_deg", "sharpness", "blur_sigma_px", "clipped", "good_fraction")
    )
    cam = f"{q['frame_w']}x{q['frame_h']}" if q.get("frame_w") else "WIDTHxHEIGHT"
    if px is not None:
        facts.append(f"median tile {px:.0f} px" + (f" for a {size} px model input" if size else ""))
        if size and px < TILE_FRACTION * size:
            off.append(
                f"tiles of {px:.0f} px in the camera, under {TILE_FRACTION:.0%} of the {size} px {s.model_name} takes "
                f"(needs >= {TILE_FRACTION * size:.0f} px)"
            )
            todo.append(
                f"move the camera closer, or print bigger tiles: photoproof print {batch_dir} --frame-size {cam} "
                f"--model {s.model_name}"
            )
    if ang is not None:
        facts.append(f"median viewing angle {ang:.0f}°")
        if ang > MAX_FRONTAL_DEG:
            off.append(f"viewed at a median {ang:.0f}° off the sheet's normal (more than {MAX_FRONTAL_DEG:.0f}°)")
            todo.append(f"hold the camera more frontal, within about {MAX_FRONTAL_DEG:.0f}° of square to the page")
    if sharp is not None:
        facts.append(f"median sharpness {sharp:.0f}")
    if blur is not None:
        facts.append(f"median edge blur σ {blur:.2f} px")
        if blur > MAX_BLUR_SIGMA_PX:
            off.append(f"blurred frames (median edge blur σ {blur:.2f} px > {MAX_BLUR_SIGMA_PX} px)")
            todo.append(
                "hold the camera steadier (rest it or the sheet), focus on the sheet, add light for a shorter exposure"
            )
    if clip is not None and clip > MAX_CLIPPED:
        off.append(f"{100 * clip:.1f}% of a clean tile's pixels clipped (median)")
        todo.append("better light: even and diffuse, no lamp reflected in the paper, lower the exposure")
    if good is not None:
        facts.append(f"{100 * good:.0f}% of clean observations passed the quality gates")
        if good < MIN_GOOD_FRACTION:
            off.append(f"only {100 * good:.0f}% of clean observations passed the quality gates")
    if not todo:
        todo.append(
            "check the light (even, diffuse, no glare), hold the camera steadier and more frontal; measure the "
            f"channel with photoproof calibrate {batch_dir} --session {s.id} and compare with a careful-lab capture; "
            "see how much the model loses on the digital images alone to mild blur and compression (photoproof sweep "
            f"{batch_dir} --model MODEL --transforms blur,jpeg,resolution): a model that does is fragile to any "
            "camera, and only a sharper one (12 MP stills) narrows the gap"
        )
    if q.get("over") == "all":
        facts.append("medians over every clean observation (none passed the gates)")
    return facts, off, todo


def check_session(
    inp: ReportInput, s: Session, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> ChannelCheck:
    """The channel check of one session (see the module docstring for the rule)."""
    tile = _view(inp, session_items(inp, s, "tile"), "tile", f"{s.id}|channel|tile", seed, resamples)
    frame = _view(inp, session_items(inp, s, "frame"), "frame", f"{s.id}|channel|frame", seed, resamples)
    verdict = max((tile.verdict, frame.verdict), key=lambda v: ORDER[v])
    size = input_size(s)
    facts, off, todo = _diagnose(s, size, str(inp.batch_dir))
    if verdict in (LIMITED, INCONCLUSIVE):
        reasons = (
            off + [", ".join(facts)]
            if off
            else [
                "tile size, viewing angle and blur look acceptable ("
                + ", ".join(facts)
                + "); the loss comes from elsewhere (light, print colours, the model's preprocessing, or the model's "
                "own sensitivity to mild blur and compression)"
            ]
        )
    else:
        reasons = [", ".join(facts)] if facts else []
    return ChannelCheck(s.id, s.model_name, verdict, tile, frame, dict(s.quality), size, reasons, todo)


def check_sessions(
    inp: ReportInput, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, ChannelCheck]:
    """The channel check of every session, by session id."""
    return {s.id: check_session(inp, s, seed, resamples) for s in inp.sessions}


def channel_table(checks: dict[str, ChannelCheck]) -> Table:
    """One row per session: the verdict, both views, the camera's medians, why and what to do."""
    rows = []
    for c in checks.values():
        q = c.quality
        rows.append(
            {
                "session": c.session,
                "model": c.model,
                CHECK_COLUMN: c.verdict,
                "clean_digital_tile": _round(c.tile.digital),
                "clean_photo_tile": c.tile.photo,
                "drop_tile_points": _round(c.tile.drop, 100),
                "clean_digital_frame": _round(c.frame.digital),
                "clean_photo_frame": c.frame.photo,
                "drop_frame_points": _round(c.frame.drop, 100),
                "input_px": c.input_size,
                "median_tile_px": _round(q.get("tile_px"), 1, 1),
                "median_angle_deg": _round(q.get("angle_deg"), 1, 1),
                "median_sharpness": _round(q.get("sharpness"), 1, 1),
                "median_blur_sigma_px": _round(q.get("blur_sigma_px"), 1, 2),
                "good_fraction": _round(q.get("good_fraction")),
                "reason": "; ".join(c.reasons) if c.flagged else "",
                "advice": "; ".join(c.advice) if c.flagged else "",
            }
        )
    cols = [
        "session",
        "model",
        CHECK_COLUMN,
        "clean_digital_tile",
        "clean_photo_tile",
        "drop_tile_points",
        "clean_digital_frame",
        "clean_photo_frame",
        "drop_frame_points",
        "input_px",
        "median_tile_px",
        "median_angle_deg",
        "median_sharpness",
        "median_blur_sigma_px",
        "good_fraction",
        "reason",
        "advice",
    ]
    return Table(
        "channel",
        "Channel check: clean accuracy photographed against digital (top-1)",
        cols,
        rows,
        ["clean_photo_tile", "clean_photo_frame"],
        f"Same items, same model. camera-limited: photographed clean accuracy more than {100 * DROP_POINTS:.0f} points "
        "below digital with its 95% interval wholly below digital; inconclusive: more than that below, but the "
        "interval still reaches digital. A flagged session's destruction and paired-survival figures measure the "
        "camera, not the perturbation. Medians over the clean tiles' good observations.",
    )


def _round(v: float | None, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if v is None else round(scale * v, digits)
