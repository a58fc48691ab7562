"""Rates with 95% intervals: Wilson score intervals and an item-level bootstrap.

- Rates over items or tiles (one unit per item) get the Wilson score interval
  (E. B. Wilson, 1927, "Probable inference, the law of succession, and
  statistical inference", JASA 22:209-212).
- Rates aggregated over frames (several correlated units per item) get a
  percentile bootstrap that resamples *items*, never frames, so that an item seen
  in 50 frames does not pass for 50 independent trials (a cluster bootstrap:
  Davison & Hinkley 1997, "Bootstrap Methods and their Application", section 3.8).
  A percentile bootstrap collapses at the edges (every resample of 0/n is 0), so
  the interval is widened to at least the Wilson interval on the *effective*
  number of observations (Korn & Graubard 1998, "Confidence intervals for
  proportions with small expected number of positive counts estimated from survey
  data", Survey Methodology 24:193-201): ``n_eff = p(1-p) / Var_boot(p)``, kept
  between Kish's effective size for perfectly correlated clusters,
  ``(Σ n_i)² / Σ n_i²`` (Kish 1965, "Survey Sampling"), and the number of
  observations. At 0/n and n/n, where the variance says nothing, ``n_eff`` is
  that floor: about the number of items.

Everything here is pure numpy: no I/O, no torch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contracts.intervals import wilson, wilson_p  # the one Wilson interval (the sweep CLI uses it too)

DEFAULT_SEED = 1607  # the bootstrap seed recorded in every report (arXiv 1607.02533)
DEFAULT_RESAMPLES = 2000

# Per-item (numerator, denominator) counts, aligned with the items of one cell.
Counts = Sequence[tuple[int, int]]


@dataclass(frozen=True)
class Rate:
    """A rate ``num / n`` with its 95% interval.

    ``value``, ``lo`` and ``hi`` are ``None`` when ``n == 0`` (an empty cell).
    ``n`` counts the units behind the figure (items, tiles or observations);
    ``n_items`` the items that contributed at least one unit; ``method`` is
    ``"wilson"``, ``"bootstrap"`` or ``""`` for an empty cell.
    """

    value: float | None
    lo: float | None
    hi: float | None
    num: int
    n: int
    n_items: int
    method: str

    @classmethod
    def empty(cls) -> Rate:
        return cls(None, None, None, 0, 0, 0, "")


def ratio(num: float, den: float) -> float | None:
    """``num / den``, or ``None`` when ``den`` is 0 (never a ZeroDivisionError)."""
    return None if den == 0 else num / den


def cell_seed(seed: int, key: str) -> list[int]:
    """A reproducible seed sequence for one cell: independent of the order cells are computed in."""
    return [int(seed), zlib.crc32(key.encode("utf-8"))]


def bootstrap_weights(n_items: int, seed: int, key: str, resamples: int = DEFAULT_RESAMPLES) -> np.ndarray:
    """How often each item is drawn in each resample: an int array ``(resamples, n_items)``.

    Every metric of a cell shares these weights, so its intervals come from the
    same resampled item sets.
    """
    if n_items == 0:
        return np.zeros((resamples, 0), dtype=np.int64)
    rng = np.random.default_rng(cell_seed(seed, key))
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=resamples)


def bootstrap_ratio(
    num: np.ndarray, den: np.ndarray, weights: np.ndarray, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile interval of ``Σ w·num / Σ w·den`` over item resamples.

    Args:
        num, den: per-item counts, shape ``(n_items,)``.
        weights: ``(resamples, n_items)`` from :func:`bootstrap_weights`.
    Resamples whose denominator is 0 are dropped; ``None`` if none is left.
    """
    if num.size == 0 or den.sum() == 0:
        return None
    n_w = weights @ den.astype(np.float64)
    k_w = weights @ num.astype(np.float64)
    ok = n_w > 0
    if not ok.any():
        return None
    r = k_w[ok] / n_w[ok]
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return float(lo), float(hi)


def rate_from_counts(counts: Counts, weights: np.ndarray | None = None) -> Rate:
    """Turn per-item ``(num, den)`` counts into a :class:`Rate` with an interval.

    Wilson when every item contributes at most one unit (rates over items or
    tiles); otherwise the item bootstrap with ``weights`` (rates over frames).
    """
    num = np.array([c[0] for c in counts], dtype=np.int64)
    den = np.array([c[1] for c in counts], dtype=np.int64)
    n = int(den.sum())
    if n == 0:
        return Rate.empty()
    k = int(num.sum())
    n_items = int((den > 0).sum())
    if int(den.max()) <= 1:
        lo, hi = wilson(k, n) or (0.0, 1.0)  # never None: n > 0 here
        return Rate(k / n, lo, hi, k, n, n_items, "wilson")
    if weights is None:
        raise ValueError("rate_from_counts: several units per item need bootstrap weights")
    if n_items < 2:  # one item's frames say nothing about other items: no honest interval
        return Rate(k / n, None, None, k, n, n_items, "bootstrap")
    ci = cluster_interval(num, den, weights)
    lo2, hi2 = ci if ci is not None else (None, None)
    return Rate(k / n, lo2, hi2, k, n, n_items, "bootstrap")


def effective_n(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> float:
    """Effective number of independent observations behind ``Σ num / Σ den`` (Korn & Graubard 1998).

    ``p(1-p) / Var_boot(p)``, clipped to ``[(Σ n_i)² / Σ n_i², Σ n_i]``; the floor
    (Kish's effective size when an item's frames all agree) when ``p`` is 0 or 1
    or the resampled variance is 0.
    """
    den_f = den.astype(np.float64)
    total = float(den_f.sum())
    floor = total * total / float((den_f * den_f).sum())
    p = float(num.sum()) / total
    n_w = weights @ den_f
    ok = n_w > 0
    if p <= 0.0 or p >= 1.0 or not ok.any():
        return floor
    var = float(np.var((weights @ num.astype(np.float64))[ok] / n_w[ok]))
    if var <= 0.0:
        return total
    return min(total, max(floor, p * (1 - p) / var))


def cluster_interval(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> tuple[float, float] | None:
    """95% interval of a rate over frames: the item bootstrap, widened to the Wilson interval on the effective n.

    Never a single point: at 0/n the upper bound is that of about ``0/n_items``.
    """
    if num.size == 0 or den.sum() == 0:
        return None
    boot = bootstrap_ratio(num, den, weights)
    w_lo, w_hi = wilson_p(float(num.sum()) / float(den.sum()), effective_n(num, den, weights))
    if boot is None:
        return w_lo, w_hi
    return min(boot[0], w_lo), max(boot[1], w_hi)


@dataclass(frozen=True)
class Diff:
    """A mean difference in points with its 95 % interval (a bootstrap over photos)."""

    points: float
    lo: float
    hi: float

    def within(self, goal: float) -> bool:
        return -goal <= self.lo and self.hi <= goal

    def __str__(self) -> str:
        return f"{self.points:+.1f} [{self.lo:+.1f}, {self.hi:+.1f}]"


def clustered_diff(values: np.ndarray, cluster: np.ndarray, weights: np.ndarray) -> Diff:
    """Mean of per-unit ``values`` in points (x 100) and its 95 % percentile interval (:func:`bootstrap_ratio`),
    resampling the clusters (photos) that ``cluster`` indexes with ``weights`` from :func:`bootstrap_weights`
    (Davison & Hinkley 1997, section 3.8: a photo's units are drawn together)."""
    n = weights.shape[1]
    s = np.bincount(cluster, values, minlength=n)
    c = np.bincount(cluster, minlength=n).astype(np.float64)
    lo, hi = bootstrap_ratio(s, c, weights) or (np.nan, np.nan)
    return Diff(100 * float(s.sum() / c.sum()), 100 * float(lo), 100 * float(hi))


def sign_test(up: int, down: int) -> float:
    """Two-sided exact sign test (McNemar's exact test on the discordant pairs): the chance of a split at least as
    lopsided as ``up`` to ``down`` when either side is equally likely; 1 with no discordant pair."""
    n = up + down
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(up, down) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    """A difference paired by photo: its clustered interval, the photos that favour each side, the sign test's p."""

    diff: Diff
    photos: int
    up: int  # photos whose summed difference is above 0
    down: int
    p: float


def paired_by_photo(
    values: np.ndarray, photos: Sequence[str], seed: int, key: str, resamples: int = DEFAULT_RESAMPLES
) -> Paired:
    """Per-unit differences ``values`` (first minus second) with each unit's photo: their mean in points with a 95 %
    interval resampling photos (:func:`clustered_diff`), and the exact sign test (:func:`sign_test`) over the photos
    whose summed difference is not 0."""
    index = {p: i for i, p in enumerate(sorted(set(photos)))}
    pidx = np.array([index[p] for p in photos])
    per_photo = np.bincount(pidx, values, minlength=len(index))
    up, down = int((per_photo > 0).sum()), int((per_photo < 0).sum())
    diff = clustered_diff(values, pidx, bootstrap_weights(len(index), seed, key, resamples))
    return Paired(diff, len(index), up, down, sign_test(up, down))
