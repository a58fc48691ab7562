"""The strip-measuring protocol: how capture measures the calibration strip, and what calibrate assumes of it.

:mod:`capture.sheets.strip` measures the printed calibration strip while capturing;
:mod:`channel.calibrate` fits a channel profile to the measurements it recorded
(the ``patches`` and ``blur`` tables of :mod:`contracts.capturedb`). Both follow
these constants, so a change here changes what both sides mean.
"""

from __future__ import annotations

import math

import numpy as np

PATCH_EVERY = 5  # measure the strip on every 5th frame
INSET = 0.25  # leave this fraction of the patch side out on each side (blur and registration)
ESF_GAMMA = 2.2  # edges are fitted on (code / 255) ** 2.2, roughly linear light
EDGE_MM = 4.0  # the widest window on each side of an edge
MIN_EDGE_MM = 2.5  # an edge needs at least this much free room on both sides
END_MM = 1.0  # edge ends left out (corners)
CAPTION_MM = 7.0  # below each tile: its caption (printouts.geometry.CAPTION_MM is 6)
BT601 = np.array([0.299, 0.587, 0.114])  # JPEG's luma (ITU-R BT.601): its noise survives 4:2:0 chroma subsampling
NOISE_BIN = 2  # the patches' noise is also measured on means of 2 x 2 pixels
ESF_STEP_PX = 0.25  # the edge spread function is binned at a quarter pixel (ISO 12233's 4x oversampling)
ESF_HALF_PX = 3.0  # ... from -3 to +3 px about the edge
ESF_BINS = int(round(2 * ESF_HALF_PX / ESF_STEP_PX)) + 1
# The edge spread function is fitted and normalised on the samples within this distance of the edge, in frame pixels,
# both in capture and in calibrate's forward model (channel.calibrate_edges), so that the two read an overshoot alike:
# normalised over the sheet's whole window (2.5-4 mm a side, 7-30 px with the distance), a sharpened edge's plateau
# comes out a different height from the model's (docs/physical-fidelity.md, "What the own cameras' misfit is made of").
ESF_WINDOW_PX = 7.0


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (error < 1.5e-7)."""
    s, x = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-x * x)
    out: np.ndarray = s * y
    return out


def _esf_model(d: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = math.exp(q[3])
    z = (d - q[2]) / s
    big = 0.5 * (1.0 + erf(z / math.sqrt(2.0)))
    small = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    jac = np.column_stack([1.0 - big, big, -(q[1] - q[0]) * small / s, -(q[1] - q[0]) * small * z])
    return q[0] + (q[1] - q[0]) * big, jac


def fit_esf_params(d: np.ndarray, v: np.ndarray, max_sigma: float) -> tuple[float, float, float, float] | None:
    """Least-squares fit of ``lo + (hi - lo) Phi((d - d0) / sigma)`` (Levenberg-Marquardt) to edge samples at
    signed distances ``d`` (pixels, towards white) with values ``v``: ``(lo, hi, d0, sigma)``, or None."""
    if len(d) < 20 or (d < -1).sum() < 5 or (d > 1).sum() < 5:
        return None
    p = np.array([np.median(v[d < -1]), np.median(v[d > 1]), 0.0, 0.0])  # lo, hi, d0, log sigma
    if p[1] - p[0] < 0.05:
        return None
    f, jac = _esf_model(d, p)
    cost, lam = float(((v - f) ** 2).sum()), 1e-2
    for _ in range(40):
        jtj = jac.T @ jac
        step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), jac.T @ (v - f))
        q = p + step
        q[3] = float(np.clip(q[3], math.log(0.05), math.log(max_sigma)))
        f2, jac2 = _esf_model(d, q)
        c2 = float(((v - f2) ** 2).sum())
        if c2 < cost:
            p, f, jac, lam = q, f2, jac2, lam / 3
            if cost - c2 < 1e-10 * max(cost, 1e-12):
                break
            cost = c2
        else:
            lam *= 4
            if lam > 1e8:
                break
    sigma = math.exp(p[3])
    ok = p[1] - p[0] > 0.05 and 0.05 < sigma < 0.95 * max_sigma
    return (float(p[0]), float(p[1]), float(p[2]), sigma) if ok else None


def fit_esf(d: np.ndarray, v: np.ndarray, max_sigma: float) -> float | None:
    """The Gaussian sigma of :func:`fit_esf_params` (the slanted-edge idea of ISO 12233), or None."""
    got = fit_esf_params(d, v, max_sigma)
    return None if got is None else got[3]


def esf_profile(d: np.ndarray, v: np.ndarray, params: tuple[float, float, float, float]) -> np.ndarray:
    """The edge spread function, normalised to the fit's black (0) and white (1) and centred on its edge,
    averaged with linear weights in ``ESF_BINS`` bins of ``ESF_STEP_PX`` (ISO 12233:2017 slanted edge: the pixels
    of a slightly slanted edge sample it at every sub-pixel offset); NaN where a bin holds under 2 samples' weight.

    A sharpened edge overshoots: it rises above 1 on the white side and dips below 0 on the black side,
    which a single Gaussian sigma cannot show.
    """
    lo, hi, d0, _ = params
    pos = (d - d0) / ESF_STEP_PX + (ESF_BINS - 1) // 2
    i = np.floor(pos).astype(int)
    t = pos - i
    y = (v - lo) / (hi - lo)
    total, count = np.zeros(ESF_BINS), np.zeros(ESF_BINS)
    for j, w in ((i, 1.0 - t), (i + 1, t)):  # each sample split between its two nearest bins (less aliasing)
        keep = (j >= 0) & (j < ESF_BINS)
        total += np.bincount(j[keep], weights=(w * y)[keep], minlength=ESF_BINS)
        count += np.bincount(j[keep], weights=w[keep], minlength=ESF_BINS)
    out: np.ndarray = np.where(count >= 2, total / np.maximum(count, 1), np.nan)
    return out


def windowed_esf(d: np.ndarray, v: np.ndarray, centre: float = 0.0) -> np.ndarray | None:
    """:func:`esf_profile` of the samples within ``ESF_WINDOW_PX`` of ``centre``, fitted and normalised on them
    alone: how capture reads an edge and how calibrate's forward model reads its synthetic one. None when they
    cannot be fitted."""
    near = np.abs(d - centre) <= ESF_WINDOW_PX
    dn, vn = d[near] - centre, v[near]
    got = fit_esf_params(dn, vn, ESF_WINDOW_PX / 2.5)
    return None if got is None else esf_profile(dn, vn, got)
