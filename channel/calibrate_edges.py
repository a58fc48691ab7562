"""Blur and sharpening from the strip's edges: what ``calibrate`` fits to the edge spread functions.

Capture records, for each sheet in a measured frame, the edge spread function (ESF) of the
strip's black-to-white edges (or the markers'), normalised to black 0 and white 1 and binned at
a quarter pixel about the edge: the slanted-edge method of ISO 12233:2017 (the pixels of an edge
a few degrees off the pixel grid sample it at every sub-pixel offset). A Gaussian blur gives an
S-shaped ESF; a camera's sharpening (an unsharp mask) makes it overshoot above 1 on the white side
and below 0 on the black side. One Gaussian sigma cannot tell the two apart; the whole ESF can.

:func:`fit_edges` forward-models the measurement: a synthetic slanted edge at the printer's paper
and ink, blurred in linear light by the defocus (plus the simulator's own sampling blur,
``SIM_SIGMA0_PX``), encoded, passed through the fitted ISP's curves and matrix, an unsharp mask
of amount ``a`` and sigma ``s`` and JPEG, then measured by the very estimator capture uses
(``contracts.strip.fit_esf_params``, ``esf_profile``); the defocus and the unsharp mask whose ESF
is closest to the session's median ESF (least squares over the bins) are kept, inside physical
bounds (defocus 0-3 px, amount 0-2.5, sigma 0.6-1.5 px). A Gaussian blur never overshoots, so sharpening
is fitted only when the observed ESF rises above 1 + ``OVERSHOOT_MIN`` on the white side (otherwise a small
unsharp mask trades off against a little less blur and would be fitted to the estimator's noise).

The edges alone do not always tell a stronger mask with more blur from a weaker one with less: both give
about the same median ESF. :attr:`EdgeFit.alike` lists every (amount, sigma, defocus) that the views cannot
tell from the one written: a paired bootstrap over the views (Efron & Tibshirani 1993, ch. 16) recomputes the
median ESF ``BOOT_RESAMPLES`` times, and a fit is alike when its squared residual is no larger than the written
one's in at least 2.5 % of the resamples (a two-sided test at 5 %; the bins of one edge are correlated, which
the resampling of whole views keeps). So ``calibrate`` says when the strip does not determine the sharpening
instead of writing one of several equally good answers as if it were measured.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import warnings
from dataclasses import dataclass, replace

import numpy as np

from channel.calibrate_fit import SIM_SIGMA0_PX
from channel.calibrate_isp import pre_isp
from channel.camera import apply_isp, apply_jpeg
from channel.model import UNIT_FIELDS, ChannelParams
from channel.search import golden
from contracts.capturedb import decode_esf
from contracts.profile import Camera, ChannelProfile, Isp, Printer
from contracts.strip import ESF_BINS, ESF_GAMMA, ESF_STEP_PX, erf, windowed_esf

log = logging.getLogger(__name__)

EDGE_ANGLE_DEG = 5.0  # the synthetic edge's slant (ISO 12233 asks for a few degrees off the pixel grid)
EDGE_SIZE = 40  # side of the synthetic edge image, pixels (a multiple of JPEG's 8 x 8 blocks)
DEFOCUS_MAX = 3.0
AMOUNTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
OVERSHOOT_MIN = 0.004  # sharpening is fitted only when the white side rises this far above 1 (blur never overshoots)
SIGMAS = (0.6, 1.0, 1.5)
BOOT_RESAMPLES = 400
ALIKE_SHARE = 0.025  # a fit is alike when it is at least as close as the written one in this share of resamples
MIN_ESF_VIEWS = 3
_LIN = (np.arange(256) / 255.0) ** ESF_GAMMA


@dataclass
class EdgeFit:
    """The blur and sharpening that reproduce the session's edges."""

    defocus: tuple[float, float]  # camera.defocus_sigma_px range
    amount: float  # isp.sharpen_amount
    sigma: float  # isp.sharpen_sigma_px
    rms: float  # rms ESF residual (fraction of the black-to-white step)
    rms_blur_only: float  # the best without sharpening, for comparison
    n: int  # ESF views
    observed: np.ndarray  # the median ESF
    predicted: np.ndarray
    noise_rms: float = 0.0  # rms standard error of the median ESF over the bins (fraction of the step)
    alike: tuple[tuple[float, float, float], ...] = ()  # (amount, sigma, defocus) the views cannot tell apart
    seed: int = 0  # of the bootstrap that found ``alike``

    @property
    def amounts(self) -> tuple[float, float]:
        """The least and greatest unsharp amount of :attr:`alike` (the fitted one when it is empty)."""
        a = [x[0] for x in self.alike] or [self.amount]
        return min(a), max(a)

    @property
    def defocus_alike(self) -> tuple[float, float]:
        """The defocus (centre, px) of the least and the greatest of :attr:`alike`."""
        d = [x[2] for x in self.alike] or [0.5 * (self.defocus[0] + self.defocus[1])]
        return min(d), max(d)

    @property
    def determined(self) -> bool:
        """Whether the edges single out one unsharp amount (every alike fit has the fitted amount)."""
        lo, hi = self.amounts
        return lo == hi == self.amount


def load_esf(con: sqlite3.Connection, session: str) -> np.ndarray:
    """(n, ESF_BINS) edge spread functions of ``session``; empty for a database without the ``esf`` table."""
    try:
        rows = con.execute("SELECT step_px, esf FROM esf WHERE session_id=?", (session,)).fetchall()
    except sqlite3.OperationalError:
        return np.zeros((0, ESF_BINS))
    out = []
    for step, text in rows:
        try:
            v = decode_esf(text)
        except ValueError:
            continue
        if abs(float(step) - ESF_STEP_PX) < 1e-9 and len(v) == ESF_BINS:
            out.append(v)
    return np.array(out, float).reshape(-1, ESF_BINS)


def _params() -> ChannelParams:
    return ChannelParams(
        **{f: 0.0 for f in UNIT_FIELDS if f not in ("jpeg_quality", "illuminance", "exposure")},
        illuminance=1.0,
        exposure=1.0,
        jpeg_quality=90,
        noise_seed=0,
    )


def _geometry() -> np.ndarray:
    yy, xx = np.mgrid[0:EDGE_SIZE, 0:EDGE_SIZE].astype(np.float64)
    a = math.radians(EDGE_ANGLE_DEG)
    c = (EDGE_SIZE - 1) / 2.0
    out: np.ndarray = (xx - c) * math.cos(a) + (yy - c) * math.sin(a)
    return out


def synthetic_esf(
    printer: Printer, isp: Isp, gamma: float, defocus: float, quality: int, light: float = 1.0
) -> np.ndarray | None:
    """The binned ESF the strip's estimator reads off an edge through this blur, ISP (sharpening included) and JPEG."""
    d = _geometry()
    ends = pre_isp(np.array([[0, 0, 0], [255, 255, 255]]), printer, gamma, light) ** gamma  # linear black, white
    sig = math.sqrt(defocus**2 + SIM_SIGMA0_PX**2)
    step = 0.5 * (1.0 + erf(d / (sig * math.sqrt(2.0))))
    lin = ends[0] + (ends[1] - ends[0]) * step[..., None]
    enc = np.round(255.0 * np.clip(lin, 0.0, 1.0) ** (1.0 / gamma)).astype(np.uint8)
    prof = ChannelProfile("edge", camera=Camera(gamma=gamma), isp=isp)
    out = apply_jpeg(np.ascontiguousarray(apply_isp(enc, prof, _params())), quality, bgr=False)[0]
    v = _LIN[out].mean(axis=-1).ravel()
    return windowed_esf(d.ravel(), v)


def _cost(pred: np.ndarray | None, obs: np.ndarray) -> float:
    if pred is None:
        return 1e9
    ok = np.isfinite(pred) & np.isfinite(obs)
    return float(np.mean((pred[ok] - obs[ok]) ** 2)) if ok.sum() >= ESF_BINS // 2 else 1e9


def fit_edges(
    esf: np.ndarray,
    sigmas: np.ndarray,
    printer: Printer,
    isp: Isp,
    gamma: float,
    quality: int,
    light: float = 1.0,
    seed: int = 0,
) -> EdgeFit | None:
    """Defocus and unsharp mask from the session's ESFs ``esf`` (n, ESF_BINS) through ``isp``'s curves.

    ``sigmas``: the per-view Gaussian sigmas (the ``blur`` table), whose spread gives the defocus range
    about the fitted centre. ``seed``: the bootstrap's that finds the fits the views cannot tell apart.
    None under ``MIN_ESF_VIEWS`` views.
    """
    rows = esf[np.isfinite(esf).sum(axis=1) >= ESF_BINS // 2]
    if len(rows) < MIN_ESF_VIEWS:
        return None
    obs = np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in rows.T])

    def best_defocus(amount: float, sigma: float) -> tuple[float, float]:
        sh = replace(isp, sharpen_amount=float(amount), sharpen_sigma_px=float(sigma))

        def cost(df: float) -> float:
            return _cost(synthetic_esf(printer, sh, gamma, df, quality, light), obs)

        grid = np.linspace(0.0, DEFOCUS_MAX, 7)
        k = int(np.argmin([cost(x) for x in grid]))
        return golden(cost, grid[max(0, k - 1)], grid[min(len(grid) - 1, k + 1)], tol=0.03)

    half = (ESF_BINS - 1) // 2
    white = obs[half + 2 :]
    overshoot = bool(np.isfinite(white).any() and np.nanmax(white) > 1.0 + OVERSHOOT_MIN)
    results = {(a, s): best_defocus(a, s) for a in AMOUNTS for s in (SIGMAS if a > 0 else SIGMAS[:1])}
    allowed = {k: v for k, v in results.items() if overshoot or k[0] == 0.0}
    (amount, sigma), (df, val) = min(allowed.items(), key=lambda kv: kv[1][1])
    blur_only = results[(0.0, SIGMAS[0])][1]
    var = median_variance(rows)
    preds = {
        k: synthetic_esf(printer, replace(isp, sharpen_amount=k[0], sharpen_sigma_px=k[1]), gamma, d, quality, light)
        for k, (d, _) in results.items()
    }
    same = alike_fits(rows, preds, (amount, sigma), seed)
    alike = tuple(sorted((a, s, round(float(results[(a, s)][0]), 3)) for a, s in same))
    fin = sigmas[np.isfinite(sigmas)]
    if len(fin) >= 3:
        q10, q50, q90 = np.quantile(fin, (0.1, 0.5, 0.9))
        lo = math.sqrt(max(0.0, df**2 + q10**2 - q50**2))
        hi = math.sqrt(max(0.0, df**2 + q90**2 - q50**2))
    else:
        lo = hi = df
    pred = preds[(amount, sigma)]
    log.info(
        "edges: defocus %.2f px, unsharp %.2f at %.1f px (rms %.4f; blur only %.4f; noise %.4f; %d fits alike)",
        df,
        amount,
        sigma,
        math.sqrt(val),
        math.sqrt(blur_only),
        math.sqrt(var),
        len(alike),
    )
    return EdgeFit(
        (min(lo, DEFOCUS_MAX), min(hi, DEFOCUS_MAX)),
        float(amount),
        float(sigma),
        math.sqrt(val),
        math.sqrt(blur_only),
        len(rows),
        obs,
        np.full(ESF_BINS, np.nan) if pred is None else pred,
        math.sqrt(var),
        alike,
        seed,
    )


def alike_fits(
    rows: np.ndarray,
    preds: dict[tuple[float, float], np.ndarray | None],
    best: tuple[float, float],
    seed: int,
    resamples: int = BOOT_RESAMPLES,
) -> set[tuple[float, float]]:
    """The keys of ``preds`` (predicted ESFs) that the views ``rows`` cannot tell from ``best``'s.

    Paired bootstrap over the views: in each resample the median ESF is recomputed and every prediction's mean
    squared residual against it; a prediction is alike when it is no farther than ``best``'s in at least
    ``ALIKE_SHARE`` of the resamples. ``best`` is always alike.
    """
    keys = [k for k, p in preds.items() if p is not None]
    if best not in keys:
        return {best}
    pred = np.stack([np.asarray(preds[k]) for k in keys])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(rows), (resamples, len(rows)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin no resampled view covers
        meds = np.nanmedian(rows[pick], axis=1)
        ok = np.isfinite(pred).all(axis=0)
        cost = np.nanmean((pred[None][..., ok] - meds[:, None][..., ok]) ** 2, axis=2)
    share = (cost <= cost[:, [keys.index(best)]]).mean(axis=0)
    return {k for k, sh in zip(keys, share, strict=True) if sh >= ALIKE_SHARE} | {best}


def median_variance(rows: np.ndarray) -> float:
    """Mean over the bins of the squared standard error of the median of ``rows`` (n views, ESF_BINS).

    A median of n samples of spread s has a standard error of about sqrt(pi / 2) s / sqrt(n) (its asymptotic
    efficiency against the mean is 2 / pi for normal data).
    """
    out = []
    for c in rows.T:
        v = c[np.isfinite(c)]
        if len(v) >= 2:
            out.append(math.pi / 2.0 * float(np.var(v, ddof=1)) / len(v))
    return float(np.mean(out)) if out else 0.0
