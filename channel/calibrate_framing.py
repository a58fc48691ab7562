"""The framing a capture session saw, as profile ranges: ``scene.sheet_fill`` and ``scene.tilt_deg``.

Capture records, for every tile it measured, its side in frame pixels (``sqrt`` of its quadrilateral's
area) and its viewing angle (between the ray to its centre and the sheet's normal, from the homography
and a 78 deg pinhole camera: Zhang 2000, section 2.2). Both depend on the sheet's distance and tilt and on
where the tile sits in the frame, so they are not read off: :func:`fit_framing` simulates them with the
simulated camera's own geometry (``channel.page``: whole sheets, or a dense sheet's pairs from close up,
as ``channel.views`` decides), for the batch's layout and frame size, and chooses the fill and tilt
ranges whose simulated 5-95 % quantiles of tile side and angle match the session's, each frame weighing
alike (a compass search on common random numbers). In-plane rotation and the sheet's place in the frame keep
the base's ranges.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from channel import model as ch
from channel.page import focal_px, page_homography, region_homography
from channel.views import close_up_views, needs_close_up
from contracts.layout import Layout
from contracts.profile import ChannelProfile

log = logging.getLogger(__name__)

FILL_BOUNDS = (0.15, 1.3)  # of the frame's height (whole sheet) or of the framed pair's limiting side
TILT_BOUNDS = (0.0, 60.0)  # deg: beyond 60 the markers are not found (capture's gate is stricter still)
MIN_OBSERVATIONS = 20  # tile observations a fit needs
MAX_EVALS = 120  # cost evaluations per framing
DRAWS = 160  # simulated views per evaluation (common random numbers)
QUANTILES = np.linspace(0.05, 0.95, 10)
PX_SCALE = 0.03  # a 3 % difference of tile side weighs as much as ...
DEG_SCALE = 2.0  # ... a 2 deg difference of viewing angle


@dataclass
class FramingFit:
    """What :func:`fit_framing` found: the ranges, the framing they hold for, and how well they match."""

    sheet_fill: tuple[float, float]
    tilt_deg: tuple[float, float]
    close_up: bool  # the session framed a dense sheet pair by pair
    n: int  # tile observations
    observed: np.ndarray  # (2, len(QUANTILES)): tile side (px) and angle (deg) quantiles
    predicted: np.ndarray  # the same, simulated with the fitted ranges
    rms_px: float  # relative
    rms_deg: float


def load_framing(con: sqlite3.Connection, session: str) -> np.ndarray:
    """(n, 3) tile side in pixels, viewing angle in degrees and weight (1 / the tiles seen in its frame) of every
    tile observation of ``session``."""
    try:
        rows = con.execute(
            "SELECT frame_idx, tile_px, angle_deg FROM observations WHERE session_id=?", (session,)
        ).fetchall()
    except sqlite3.OperationalError:
        return np.zeros((0, 3))
    a = np.array([r for r in rows if all(isinstance(v, (int, float)) for v in r)], np.float64).reshape(-1, 3)
    a = a[np.isfinite(a).all(axis=1) & (a[:, 1] > 0) & (a[:, 2] >= 0) & (a[:, 2] <= 90)]
    _, inverse, counts = np.unique(a[:, 0], return_inverse=True, return_counts=True)
    return np.column_stack([a[:, 1:], 1.0 / counts[inverse]])


def _angle_deg(h_mm: np.ndarray, focal: float, centres: np.ndarray, principal: np.ndarray) -> np.ndarray:
    """Viewing angle of frame points ``centres`` (n, 2) on the plane of homography ``h_mm`` (as capture measures)."""
    k = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1.0]])
    b = np.linalg.solve(k, h_mm)
    n = np.cross(b[:, 0] / np.linalg.norm(b[:, 0]), b[:, 1] / np.linalg.norm(b[:, 1]))
    n /= np.linalg.norm(n)
    rays = np.column_stack([(centres - principal) / focal, np.ones(len(centres))])
    c = np.abs(rays @ n) / np.linalg.norm(rays, axis=1)
    out: np.ndarray = np.degrees(np.arccos(np.minimum(1.0, c)))
    return out


class FramingModel:
    """Tile sides and viewing angles the simulated camera gives a layout, for given fill and tilt ranges."""

    def __init__(self, layout: Layout, profile: ChannelProfile, close_up: bool, seed: int = 0) -> None:
        self.profile, self.wh = profile, (profile.camera.width, profile.camera.height)
        sheets = layout.sheets
        self.views: list[tuple[int, tuple[float, float, float, float] | None]] = (
            [(k, r) for k, r in close_up_views(layout)] if close_up else [(k, None) for k in range(len(sheets))]
        )
        self.sizes = [(float(s.size_mm[0]), float(s.size_mm[1])) for s in sheets]
        self.tiles = [
            np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]] for x, y, w, h in (t.box_mm for t in s.tiles)])
            for s in sheets
        ]
        rng = np.random.default_rng(seed)
        self.units = [dict(zip(ch.UNIT_FIELDS, rng.random(len(ch.UNIT_FIELDS)), strict=True)) for _ in range(DRAWS)]
        self.focal = focal_px(*self.wh)
        self.principal = np.array([self.wh[0] / 2.0, self.wh[1] / 2.0])

    def simulate(self, fill: tuple[float, float], tilt: tuple[float, float]) -> np.ndarray:
        """(m, 3) tile side (px), angle (deg) and weight (1 / the tiles in its view) of every tile wholly in the
        frame, over ``DRAWS`` views."""
        prof = replace(self.profile, scene=replace(self.profile.scene, sheet_fill=fill, tilt_deg=tilt))
        w, h = self.wh
        out = []
        for i, unit in enumerate(self.units):
            k, region = self.views[i % len(self.views)]
            p = ch.params_from_unit(prof, unit, 0)
            hom = (
                page_homography(p, self.sizes[k], self.wh) if region is None else region_homography(p, region, self.wh)
            )
            quads = self.tiles[k]
            if not len(quads):
                continue
            px = cv2.perspectiveTransform(quads.reshape(1, -1, 2), hom)[0].reshape(-1, 4, 2)
            inside = np.all((px[..., 0] >= 0) & (px[..., 0] <= w - 1) & (px[..., 1] >= 0) & (px[..., 1] <= h - 1), 1)
            if not inside.any():
                continue
            q = px[inside]
            x, y = q[..., 0], q[..., 1]
            area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y, axis=1))
            ang = _angle_deg(hom, self.focal, q.mean(axis=1), self.principal)
            out.append(np.column_stack([np.sqrt(area), ang, np.full(len(ang), 1.0 / len(ang))]))
        return np.concatenate(out) if out else np.zeros((0, 3))


def _quantiles(a: np.ndarray) -> np.ndarray:
    """Weighted ``QUANTILES`` of tile side and angle: every frame counts once, however many tiles it shows (a
    close-up of one pair and a view of a sheet's bottom row weigh alike)."""
    out = []
    for col in (0, 1):
        order = np.argsort(a[:, col])
        v, w = a[order, col], a[order, 2]
        cum = (np.cumsum(w) - 0.5 * w) / w.sum()
        out.append(np.interp(QUANTILES, cum, v))
    return np.stack(out)


def _ranges(x: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Search vector (fill low, fill width, tilt low, tilt width) -> ranges inside the bounds."""
    f0 = float(np.clip(x[0], *FILL_BOUNDS))
    f1 = float(np.clip(f0 + abs(x[1]), f0, FILL_BOUNDS[1]))
    t0 = float(np.clip(x[2], *TILT_BOUNDS))
    t1 = float(np.clip(t0 + abs(x[3]), t0, TILT_BOUNDS[1]))
    return (f0, f1), (t0, t1)


def _search(cost: Callable[[np.ndarray], float], x: np.ndarray, step: np.ndarray, evals: int = MAX_EVALS) -> np.ndarray:
    """Compass search (Kolda, Lewis and Torczon 2003): try each coordinate up and down, halve the steps when
    nothing improves; stops after ``evals`` evaluations or four halvings."""
    best, n, halvings = cost(x), 1, 0
    while n < evals and halvings < 4:
        moved = False
        for i in range(len(x)):
            for sign in (1.0, -1.0):
                y = x.copy()
                y[i] += sign * step[i]
                c, n = cost(y), n + 1
                if c < best:
                    x, best, moved = y, c, True
                    break
        if not moved:
            step, halvings = step / 2, halvings + 1
    return x


def _fit(model: FramingModel, obs_q: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], np.ndarray]:
    def cost(x: np.ndarray) -> float:
        fill, tilt = _ranges(x)
        sim = model.simulate(fill, tilt)
        if len(sim) < 10:
            return 1e6
        q = _quantiles(sim)
        return float(np.mean((np.log(q[0] / obs_q[0]) / PX_SCALE) ** 2) + np.mean(((q[1] - obs_q[1]) / DEG_SCALE) ** 2))

    base = model.profile.scene
    sim0 = model.simulate(base.sheet_fill, base.tilt_deg)
    scale = float(np.median(obs_q[0]) / np.median(sim0[:, 0])) if len(sim0) else 1.0
    mid = 0.5 * (base.sheet_fill[0] + base.sheet_fill[1]) * scale
    width = max(0.02, (base.sheet_fill[1] - base.sheet_fill[0]) * scale)
    x0 = np.array([mid - width / 2, width, base.tilt_deg[0], max(2.0, base.tilt_deg[1] - base.tilt_deg[0])])
    x = _search(cost, x0, np.array([0.04, 0.04, 3.0, 3.0]))
    fill, tilt = _ranges(x)
    sim = model.simulate(fill, tilt)
    return fill, tilt, _quantiles(sim) if len(sim) >= 10 else np.full_like(obs_q, np.nan)


def fit_framing(obs: np.ndarray, layout: Layout, profile: ChannelProfile) -> FramingFit | None:
    """The fill and tilt ranges under which the simulated camera frames ``layout``'s tiles as they were seen.

    ``obs``: the tile observations of :func:`load_framing` (of one session, or several stacked); ``profile``: the
    base with the sessions' frame size. None with fewer than ``MIN_OBSERVATIONS`` tile
    observations. A dense layout is fitted as the simulated camera would frame it with the fitted ranges
    (:func:`channel.views.needs_close_up`): when the fit flips that choice, the other framing is fitted too and
    the one that holds for its own ranges (else the closer) is kept.
    """
    if len(obs) < MIN_OBSERVATIONS or not layout.sheets:
        return None
    obs_q = _quantiles(obs)
    first = bool(layout.dense and needs_close_up(layout, profile))
    fits = []
    for close in (first, not first) if layout.dense else (first,):
        fill, tilt, pred = _fit(FramingModel(layout, profile, close), obs_q)
        holds = needs_close_up(layout, replace(profile, scene=replace(profile.scene, sheet_fill=fill))) == close
        rms_px = float(np.sqrt(np.mean(np.log(pred[0] / obs_q[0]) ** 2)))
        rms_deg = float(np.sqrt(np.mean((pred[1] - obs_q[1]) ** 2)))
        fits.append((not holds, rms_px / PX_SCALE + rms_deg / DEG_SCALE, FramingFit(
            (round(fill[0], 3), round(fill[1], 3)), (round(tilt[0], 1), round(tilt[1], 1)), close, len(obs), obs_q,
            pred, rms_px, rms_deg,
        )))  # fmt: skip
        if holds:
            break
    fits.sort(key=lambda f: (f[0], f[1]))
    best = fits[0][2]
    log.info(
        "framing: fill %.3f-%.3f, tilt %.1f-%.1f deg (%s), rms %.1f %% and %.1f deg over %d tiles",
        *best.sheet_fill, *best.tilt_deg, "pair by pair" if best.close_up else "whole sheets",
        100 * best.rms_px, best.rms_deg, best.n,
    )  # fmt: skip
    return best if math.isfinite(best.rms_px) else None
