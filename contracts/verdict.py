"""The channel check's one verdict rule, shared by the live capture line, the report, the summary and the API.

A photographed perturbation can only be said to survive when the photographed *clean*
image is still recognised (Kurakin, Goodfellow & Bengio 2016, https://arxiv.org/abs/1607.02533).
Every verdict comes from :func:`judge`, on the clean tiles' good observations of a
session, clustered by source photo (all frames of all ε of one photo are one cluster):

- ``D``: the model's clean top-1 accuracy on the saved PNGs of the same items (a
  reference over the same items, not a sample), weighted as the observations are;
- ``B``: the digital stability baseline: the same PNGs through a mild resampling, blur
  and JPEG (:mod:`capture.stability`), when the session recorded it;
- ``p``: the photographed clean accuracy, with its 95% interval ``[p_lo, p_hi]``
  clustered by photo (:func:`clustered_interval`);
- the loss ``L = D - p``, the model's fragility ``F = D - B`` and the camera's share
  ``C = B - p`` (without a baseline ``F = 0`` and ``C = L``); ``T = 10`` points.

The rule, in this order:

1. ``n/a``: no clean tile both classified digitally and photographed;
2. ``camera-limited``: the camera's share is bounded above ``T`` (``B - p_hi > T``), or
   the loss is (``D - p_hi > T``) while the fragility alone stays within ``T``;
3. ``ok``: the loss is bounded within ``T`` *and* at least half of the session's
   observations passed the quality gates (``MIN_GOOD_FRACTION``). The bound is paired:
   ``L = D - p`` is at most the share ``q`` of good clean observations whose item the
   model gets right digitally but wrong photographed (a photo that is wrong digitally and
   right photographed only lowers ``L``), so ``ok`` needs ``q``'s upper 95% bound,
   clustered by photo, within ``T``. Comparing ``p`` with ``D`` as if they were
   independent samples would ask for two to three times as many photos for the same
   evidence, since ``D`` and ``p`` are measured on the same photos;
4. ``model-fragile``: the baseline alone loses more than ``T`` points, bounded (the
   lower end of ``F``'s 95% interval, clustered by photo, above ``T``): the model loses
   these photos to mild digital changes, which any camera makes, so the photographed
   loss is the model's, not the camera's;
5. ``inconclusive`` otherwise, with how many more photos (clean tiles) would settle it.

Why 10 points: a careful set-up (Kurakin et al.'s setting) loses at most a few points
of clean accuracy; a larger loss means the camera, or the model's fragility, decides
most outcomes, and a destruction or survival rate then measures that.

Pure math, no I/O: capture (the live line) and analysis (the report) both call it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.intervals import wilson_p

DROP_POINTS = 0.10  # T: the largest clean-accuracy loss (digital -> photographed) a session may show
MIN_GOOD_FRACTION = 0.5  # "ok" needs at least half of the observations to pass the quality gates
MAX_PHOTOS_NEEDED = 10_000  # beyond this, more photos cannot settle a drop sitting at the threshold

RULE = (
    "Clean top-1 on the clean tiles' good observations, clustered by source photo (Wilson on the effective n), against "
    "digital on the same items (D) and the digital stability baseline (B: mild resampling, blur, JPEG). "
    "camera-limited: "
    "B - upper bound > 10 points, or D - upper bound > 10 while D - B <= 10; ok: the upper bound of the share of "
    "observations right digitally and wrong photographed (paired, clustered by photo) <= 10 points, and at least half "
    "of the observations passed the gates; model-fragile: D - B bounded above 10 points; inconclusive otherwise, with "
    "about how many more photos would settle it (contracts.verdict.judge)."
)
OK, LIMITED, FRAGILE, INCONCLUSIVE, NA = "ok", "camera-limited", "model-fragile", "inconclusive", "n/a"
ORDER = {NA: 0, OK: 1, INCONCLUSIVE: 2, FRAGILE: 3, LIMITED: 4}
FLAGGED = (LIMITED, FRAGILE, INCONCLUSIVE)  # a session whose destruction and survival figures are not about the attack


def effective_n(counts: Sequence[tuple[float, float]]) -> float:
    """Effective number of independent observations behind ``Σk / Σn`` over clusters ``(k_i, n_i)``.

    ``p(1-p) / v`` with ``v`` the linearisation (ratio-estimator) variance of a cluster
    sample, ``m/(m-1) Σ (k_i - p n_i)² / (Σn)²`` (Cochran 1977, "Sampling Techniques",
    sec. 6.11), kept between Kish's effective size for perfectly correlated clusters,
    ``(Σn)² / Σn²`` (Kish 1965), and ``Σn``; that floor at ``p`` = 0 or 1 (Korn &
    Graubard 1998), where the variance says nothing.
    """
    cs = [(float(k), float(n)) for k, n in counts if n > 0]
    total = sum(n for _, n in cs)
    if total <= 0:
        return 0.0
    floor = total * total / sum(n * n for _, n in cs)
    p = sum(k for k, _ in cs) / total
    m = len(cs)
    if m < 2 or p <= 0.0 or p >= 1.0:
        return floor
    v = m / (m - 1) * sum((k - p * n) ** 2 for k, n in cs) / (total * total)
    if v <= 0.0:
        return total
    return min(total, max(floor, p * (1 - p) / v))


@dataclass(frozen=True)
class Clustered:
    """A rate over observations clustered by photo: value, 95% interval, counts and the effective n."""

    value: float | None
    lo: float | None
    hi: float | None
    num: int
    n: int
    clusters: int
    n_eff: float


def clustered_interval(counts: Sequence[tuple[int, int]]) -> Clustered:
    """``Σk / Σn`` over clusters ``(k_i, n_i)`` with the Wilson interval on the effective n (:func:`effective_n`)."""
    cs = [(int(k), int(n)) for k, n in counts if n > 0]
    k, n = sum(c[0] for c in cs), sum(c[1] for c in cs)
    if n == 0:
        return Clustered(None, None, None, 0, 0, 0, 0.0)
    ne = effective_n(cs)
    lo, hi = wilson_p(k / n, ne)
    return Clustered(k / n, lo, hi, k, n, len(cs), ne)


@dataclass(frozen=True)
class Evidence:
    """What a session saw of its clean tiles, per source photo.

    ``counts``: per photo, (good clean observations the model got right, good clean observations);
    ``digital``/``baseline``: the digital and stability-baseline accuracy weighted as ``counts``
    (``baseline`` ``None`` when not recorded); ``n_obs``/``n_good``: all of the session's
    observations and those that passed the gates; ``photos_in_batch``: how many photos
    the batch holds (``None``: unknown).
    """

    counts: tuple[tuple[int, int], ...]
    digital: float | None
    baseline: float | None = None
    n_obs: int = 0
    n_good: int = 0
    photos_in_batch: int | None = None
    fragile: tuple[tuple[float, int], ...] = ()  # per photo: (Σ digital right - stability, observations)
    # per photo: (good clean observations right digitally and wrong photographed, good clean observations);
    # None: not counted, and the unpaired bound D - p_lo stands in
    lost: tuple[tuple[int, int], ...] | None = None

    @property
    def good_fraction(self) -> float | None:
        return self.n_good / self.n_obs if self.n_obs else None


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`judge`: the verdict, the figures behind it, and what would settle it."""

    verdict: str
    photo: Clustered
    digital: float | None
    baseline: float | None
    good_fraction: float | None
    more_photos: (
        int | None
    )  # inconclusive: about how many more photos (clean tiles) would settle it; None: not a number
    why: str  # one line: which clause of the rule decided

    @property
    def loss(self) -> float | None:
        """``D - p``: clean accuracy lost from digital to photographed."""
        return None if self.digital is None or self.photo.value is None else self.digital - self.photo.value

    @property
    def loss_bounds(self) -> tuple[float, float] | None:
        """The 95% interval of the loss (the digital figure is a reference, not a sample)."""
        p = self.photo
        return (
            None if self.digital is None or p.lo is None or p.hi is None else (self.digital - p.hi, self.digital - p.lo)
        )

    @property
    def fragility(self) -> float | None:
        """``D - B``: what the model loses to mild digital changes alone."""
        return None if self.digital is None or self.baseline is None else self.digital - self.baseline

    fragility_lo: float | None = None  # the lower end of F's 95% interval, clustered by photo

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED


def _settles(p: float, target: float, upward: bool, n_eff: float) -> bool:
    """Whether the Wilson interval of ``p`` at ``n_eff`` clears ``target`` (upward: lo >= it; else hi < it)."""
    lo, hi = wilson_p(p, n_eff)
    return lo >= target - 1e-12 if upward else hi < target


def _needed(p: float, target: float, n_eff: float, clusters: int) -> int | None:
    """About how many more photos, at the same rate and per-photo information, put ``p``'s interval past ``target``."""
    if clusters == 0 or n_eff <= 0 or abs(p - target) < 1e-9:
        return None
    upward = p > target
    per_photo = n_eff / clusters
    lo, hi = n_eff, n_eff
    while not _settles(p, target, upward, hi):
        lo, hi = hi, hi * 2
        if hi / per_photo > MAX_PHOTOS_NEEDED:
            return None
    while hi - lo > 0.5:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _settles(p, target, upward, mid) else (mid, hi)
    return max(1, math.ceil(hi / per_photo) - clusters)


def fragility_interval(fragile: Sequence[tuple[float, int]]) -> tuple[float, float, float] | None:
    """``F`` and its 95% interval (Wilson on the effective n of the photos), or ``None`` without observations."""
    n = sum(c[1] for c in fragile)
    if n == 0:
        return None
    f = max(0.0, min(1.0, sum(c[0] for c in fragile) / n))
    lo, hi = wilson_p(f, effective_n([(max(0.0, k), m) for k, m in fragile]))
    return f, lo, hi


def judge(ev: Evidence) -> Verdict:
    """The verdict of one session's clean evidence (the rule in the module docstring)."""
    photo = clustered_interval(ev.counts)
    D, B, gf = ev.digital, ev.baseline, ev.good_fraction
    fi = fragility_interval(ev.fragile) if B is not None else None
    f_lo = None if fi is None else fi[1]

    def out(v: str, why: str, more: int | None = None) -> Verdict:
        return Verdict(v, photo, D, B, gf, more, why, f_lo)

    if D is None or photo.value is None or photo.lo is None or photo.hi is None:
        return out(NA, "no clean tile was both classified digitally and photographed")
    T = DROP_POINTS
    F = 0.0 if B is None else D - B
    ref = D if B is None else B
    if ref - photo.hi > T + 1e-12 or (F <= T and D - photo.hi > T + 1e-12):
        share = "the loss" if B is None else "the camera's share of the loss (beyond the digital baseline)"
        return out(LIMITED, f"{share} is bounded above {100 * T:.0f} points")
    gates_ok = gf is not None and gf >= MIN_GOOD_FRACTION
    lost = None if ev.lost is None else clustered_interval(ev.lost)
    loss_hi = D - photo.lo if lost is None or lost.hi is None else lost.hi
    if loss_hi <= T + 1e-12 and gates_ok:
        return out(OK, f"the loss is bounded within {100 * T:.0f} points and enough observations passed the gates")
    if f_lo is not None and f_lo > T:
        return out(
            FRAGILE,
            f"mild resampling, blur and JPEG alone cost {100 * F:.0f} points of clean accuracy digitally "
            f"(at least {100 * f_lo:.0f}, more than {100 * T:.0f}): the model, not the camera, loses these photos",
        )
    # inconclusive: how many more photos would settle it, by the clause the point estimates point to
    p = photo.value
    options = []
    if D - p <= T and lost is not None and lost.value is not None:
        options.append(_needed(lost.value, T, lost.n_eff, lost.clusters))  # towards ok, paired
    elif D - p <= T:
        options.append(_needed(p, D - T, photo.n_eff, photo.clusters))  # towards ok
    elif F <= T:
        options.append(_needed(p, D - T, photo.n_eff, photo.clusters))  # towards camera-limited
    if B is not None and B - p > T:
        options.append(_needed(p, B - T, photo.n_eff, photo.clusters))
    if fi is not None and fi[0] > T:
        ne = effective_n([(max(0.0, k), m) for k, m in ev.fragile])
        options.append(_needed(fi[0], T, ne, photo.clusters))  # towards model-fragile
    known = [m for m in options if m is not None]
    more = min(known) if known else None
    seen = f"{photo.clusters} photo{'s' * (photo.clusters != 1)}"
    if ev.photos_in_batch is not None:
        seen += f" of the batch's {ev.photos_in_batch}"
    parts = []
    if more is not None:
        parts.append(f"about {more} more photos (clean tiles) needed to settle it, {seen} seen")
    elif loss_hi > T + 1e-12:
        parts.append(f"the loss sits at the {100 * T:.0f}-point threshold, {seen} seen")
    if not gates_ok:
        share = "no" if gf is None else f"{100 * gf:.0f}% of the"
        parts.append(f"{share} observations passed the quality gates (needs {100 * MIN_GOOD_FRACTION:.0f}%)")
    return out(INCONCLUSIVE, "; ".join(parts), more)


def live_line(v: Verdict) -> str:
    """The live capture line's words for a verdict: whether the evidence suffices yet."""
    p = v.photo
    if v.verdict == NA:
        return "check: no clean tile yet"
    lo, hi = 100 * (p.lo or 0), 100 * (p.hi or 0)
    fig = f"clean {100 * (p.value or 0):.0f}% [{lo:.0f}-{hi:.0f}] vs {100 * (v.digital or 0):.0f}%"
    if v.verdict == OK:
        return f"check: ok, evidence suffices ({fig}, {p.clusters} photos)"
    if v.verdict == INCONCLUSIVE:
        return f"check: not yet ({fig}; {v.why})"
    return f"check: {v.verdict.upper()} ({fig}; {v.why})"


class Tally:
    """A session's clean evidence, gathered observation by observation (the live line and the report both use it).

    Args:
        cluster: item id -> its source photo (items of one photo are one cluster).
        truth: item id -> the true class, in the session model's classes.
        digital_right: item id -> whether the model is right on the clean PNG (items without one are not counted).
        stability: item id -> the share of mild transforms under which it stays right
            (:mod:`capture.stability`); ``None`` when not measured.
        photos_in_batch: how many source photos the batch holds.
    """

    def __init__(
        self,
        cluster: dict[str, str],
        truth: dict[str, int],
        digital_right: dict[str, bool],
        stability: dict[str, float] | None = None,
        photos_in_batch: int | None = None,
    ) -> None:
        self.cluster, self.truth, self.digital_right = cluster, truth, digital_right
        self.stability = stability
        self.photos_in_batch = photos_in_batch
        self.n_obs = self.n_good = 0
        self._counts: dict[str, list[int]] = {}
        self._lost: dict[str, int] = {}
        self._digital = 0.0
        self._base = 0.0
        self._base_missing = stability is None
        self._fragile: dict[str, float] = {}

    def add(self, item: str, role: str, top1: int, good: bool) -> None:
        """One observation of a tile (any role, good or not)."""
        self.n_obs += 1
        self.n_good += bool(good)
        if good and role == "clean":
            self.add_clean(item, top1 == self.truth.get(item))

    def add_clean(self, item: str, right: bool) -> None:
        """One good observation of a clean tile: whether the model was right."""
        if item not in self.digital_right:
            return
        key = self.cluster.get(item, item)
        c = self._counts.setdefault(key, [0, 0])
        c[0] += bool(right)
        c[1] += 1
        self._lost[key] = self._lost.get(key, 0) + (self.digital_right[item] and not right)
        self._digital += self.digital_right[item]
        if self.stability is not None:
            s = self.stability.get(item)
            if s is None:
                self._base_missing = True
            else:
                self._base += s
                self._fragile[key] = self._fragile.get(key, 0.0) + self.digital_right[item] - s

    def evidence(self) -> Evidence:
        n = sum(c[1] for c in self._counts.values())
        return Evidence(
            counts=tuple((c[0], c[1]) for c in self._counts.values()),
            digital=self._digital / n if n else None,
            baseline=None if self._base_missing or not n else self._base / n,
            n_obs=self.n_obs,
            n_good=self.n_good,
            photos_in_batch=self.photos_in_batch,
            fragile=tuple((self._fragile.get(k, 0.0), c[1]) for k, c in self._counts.items()),
            lost=tuple((self._lost.get(k, 0), c[1]) for k, c in self._counts.items()),
        )
