"""The strip fits behind ``photoproof calibrate``: the printer's tone curve and colour transform, the camera's noise.

The patch means and spreads measured while capturing (``patches`` and ``blur`` tables of
``contracts.capturedb``) are grouped per sheet and frame (:func:`load_groups`) and fitted with the
forward models of ``channel.model`` (:func:`fit_all`); :mod:`channel.calibrate` writes the profile.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field

import cv2
import numpy as np

from channel.camera import apply_jpeg, apply_sensor, gaussian_ksize, sensor_curve
from channel.colour import LUMA
from channel.model import (
    UNIT_FIELDS,
    ChannelParams,
    gamut_matrix,
    print_page,
    printer_coverage,
)
from channel.search import golden, grid_golden
from contracts.errors import UserError
from contracts.layout import Layout, Patch, Sheet
from contracts.profile import Camera, Printer
from contracts.strip import BT601, NOISE_BIN, PATCH_EVERY

MIN_VIEWS = 3  # strip views needed to fit
SIM_SIGMA0_PX = 0.25  # what this estimator reads off the simulator at zero defocus (0.15-0.27 px at sheet fill 0.6-0.9)


@dataclass
class Group:
    """The strip of one sheet in one measured frame: patch -> (nominal patch, mean RGB, luma std)."""

    frame_idx: int
    sheet: Sheet
    patches: dict[str, tuple[Patch, np.ndarray, float]]
    binned: dict[str, float] = field(default_factory=dict)  # patch -> luma std of NOISE_BIN x NOISE_BIN means

    def level(self, kind: str, value: int) -> np.ndarray | None:
        hit = [
            m
            for p, m, _ in self.patches.values()
            if p.kind == kind and p.rgb is not None and list(p.rgb) == [value] * 3
        ]
        return hit[0] if hit else None


@dataclass
class Fit:
    """Estimates and what they came from (``n_*``: how many measurements)."""

    tone_gamma: float
    dot_gain: float
    tone_rms: float  # coverage residual of the grey ramp
    paper_white: np.ndarray
    ink_black: np.ndarray
    gamut_compression: float
    colour_rms: float
    illuminance: tuple[float, float]
    wb_error: float
    defocus: tuple[float, float] | None
    shot_noise: float | None
    read_noise: float | None
    n_groups: int
    n_frames: int
    n_blur: int
    n_noise: int


def _lin(e: np.ndarray, gamma: float) -> np.ndarray:
    out: np.ndarray = (np.clip(np.asarray(e, float), 0.0, 255.0) / 255.0) ** gamma
    return out


def fit_tone(groups: list[Group], gamma: float) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """tone_gamma and dot_gain from the grey ramp relative to its white and black ends.

    Relative to white, a grey of coverage ``a`` reads ``1 - a (1 - rho)`` per channel with
    ``rho`` = black / white (exact through the gamut matrix, which is linear), so the
    observed coverage is ``(1 - r) / (1 - rho)``; ``channel.printer_coverage`` is fitted to it.
    """
    ratios: dict[int, list[np.ndarray]] = {}
    for g in groups:
        white, black = g.level("grey", 255), g.level("grey", 0)
        if white is None or black is None:
            continue
        for p, m, _ in g.patches.values():
            if p.kind == "grey" and p.rgb is not None:
                ratios.setdefault(int(p.rgb[0]), []).append(_lin(m, gamma) / np.maximum(_lin(white, gamma), 1e-6))
    med = {v: np.median(np.stack(r), axis=0) for v, r in ratios.items()}
    if 0 not in med or 255 not in med or len(med) < 5:
        raise ValueError("the grey ramp needs black, white and at least three steps in between")
    rho = med[0]
    levels = np.array(sorted(v for v in med if 0 < v < 255))
    a_obs = np.array([np.mean((1.0 - med[v]) / np.maximum(1.0 - rho, 1e-6)) for v in levels])

    def cost(gamma_t: float, dot: float) -> float:
        a = printer_coverage(levels / 255.0, Printer(tone_gamma=float(gamma_t), dot_gain=float(dot)))
        return float(((a - a_obs) ** 2).mean())

    # The two trade off along a curved valley: profile out tone_gamma for each dot gain.
    dot, val = grid_golden(lambda dg: golden(lambda t: cost(t, dg), 0.3, 3.0)[1], 0.0, 0.4)
    best = (golden(lambda t: cost(t, dot), 0.3, 3.0)[0], dot)
    whites = np.median(np.stack([_lin(w, gamma) for g in groups if (w := g.level("grey", 255)) is not None]), axis=0)
    blacks = np.median(np.stack([_lin(b, gamma) for g in groups if (b := g.level("grey", 0)) is not None]), axis=0)
    return float(best[0]), float(best[1]), math.sqrt(val), whites, blacks


def fit_colour(
    groups: list[Group], gamma: float, tone_gamma: float, dot_gain: float, white: np.ndarray, black: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """gamut_compression, and paper white and ink black before the gamut matrix, from the colour patches.

    Solid primaries and secondaries have coverage 0 or 1 per channel, so they depend on
    paper, ink and the gamut matrix only; ``channel.print_page`` predicts them relative to white.
    """
    obs: dict[str, list[np.ndarray]] = {}
    nominal: dict[str, list[int]] = {}
    for g in groups:
        w = g.level("grey", 255)
        for name, (p, m, _) in g.patches.items():
            if w is not None and p.kind == "colour" and p.rgb is not None and len(set(p.rgb)) > 1:
                obs.setdefault(name, []).append(_lin(m, gamma) / np.maximum(_lin(w, gamma), 1e-6))
                nominal[name] = list(p.rgb)
    if not obs:
        raise ValueError("no colour patches")
    names = sorted(obs)
    target = np.stack([np.median(np.stack(obs[n]), axis=0) for n in names])
    swatch = np.array([[nominal[n] for n in names]], np.uint8)

    def solve(g: float) -> tuple[np.ndarray, np.ndarray, Printer]:
        m = gamut_matrix(Printer(gamut_compression=g))
        pw, ik = (np.clip(np.linalg.solve(m, v), 1e-4, 1.0) for v in (white, black))
        return (
            pw,
            ik,
            Printer(
                tone_gamma=tone_gamma,
                dot_gain=dot_gain,
                paper_white=tuple(pw),
                ink_black=tuple(ik),
                gamut_compression=g,
            ),
        )

    def cost(g: float) -> float:
        return float(((print_page(swatch, solve(g)[2])[0] / white - target) ** 2).mean())

    gamut, val = grid_golden(cost, 0.0, 0.95, n=20)
    pw, ik, _ = solve(gamut)
    return gamut, pw, ik, math.sqrt(val)


def fit_noise(
    groups: list[Group],
    gamma: float,
    gains: np.ndarray,
    jpeg_quality: int,
    seed: int = 0,
    isp: tuple[np.ndarray, dict[int, np.ndarray]] | None = None,
    sharpen: tuple[float, float] = (0.0, 1.0),
) -> tuple[float | None, float | None, int]:
    """shot_noise and read_noise (EMVA 1288: ``var = a raw + b**2``) from the grey patches' luma std.

    JPEG removes (or adds) noise depending on its level and the quality, so the fit runs the
    simulator's own sensor and JPEG (``channel.camera.sensor_curve``, ``apply_sensor``, ``apply_jpeg``
    at ``jpeg_quality``, white-balance ``gains``) on flat 32 px patches at the observed grey
    levels, with fixed standard normal draws from ``seed``, and matches the median observed
    luma std per level (least squares in log std, over log a and log b). ``sharpen``: the ISP's unsharp
    mask (amount, sigma px), which amplifies the noise; with it, each patch's std leaves out its 4 px border.
    When the capture recorded the patches' std on ``NOISE_BIN`` x ``NOISE_BIN`` pixel means (``patch_noise``),
    that is matched instead: the noise at about the scale a tile is classified at, where a camera's sharpened
    (high-frequency) noise mostly cancels and a sensor's white noise does not.
    """
    by_level: dict[int, list[tuple[float, float]]] = {}
    binned: dict[int, list[float]] = {}
    for g in groups:
        for name, (p, m, sy) in g.patches.items():
            if p.kind == "grey" and p.rgb is not None and 15.0 <= float(np.mean(m)) <= 240.0:
                by_level.setdefault(int(p.rgb[0]), []).append((float(np.mean(m)), sy))
                if name in g.binned:
                    binned.setdefault(int(p.rgb[0]), []).append(g.binned[name])
    use_binned = bool(by_level) and all(len(binned.get(v, [])) >= 2 for v in by_level)
    if len(by_level) < 3:
        return None, None, sum(len(v) for v in by_level.values())
    med = np.array([np.median(np.array(v), axis=0) for v in by_level.values()])
    tile = 32
    if isp is None:
        lin = np.repeat(((med[:, 0] / 255.0) ** gamma)[:, None], 3, axis=1)
    else:
        lin = np.stack([isp[1][v] for v in by_level]) ** gamma
    raw = (
        np.repeat(np.repeat((lin / gains[None, :])[None, :, None, :], tile, 0), tile, 2)
        .reshape(tile, -1, 3)
        .astype(np.float32)
    )
    z = np.random.default_rng(seed).standard_normal(raw.shape, dtype=np.float32)
    base = ChannelParams(
        **{f: 0.0 for f in UNIT_FIELDS if f != "jpeg_quality"}, jpeg_quality=jpeg_quality, noise_seed=0
    )
    cam = Camera(gamma=gamma)
    target = np.log((np.array([np.median(binned[v]) for v in by_level]) if use_binned else med[:, 1]) + 0.05)

    def cost(log_a: float, log_b: float) -> float:
        curve = sensor_curve(base.replace(shot_noise=math.exp(log_a), read_noise=math.exp(log_b)), cam, gains)
        enc = apply_sensor(raw, curve, z)
        if isp is not None:
            enc = cv2.LUT(enc, isp[0])
        if sharpen[0] > 0:
            k = gaussian_ksize(sharpen[1])
            blur = cv2.GaussianBlur(enc, (k, k), sharpen[1], borderType=cv2.BORDER_REFLECT_101)
            enc = cv2.addWeighted(enc, 1.0 + sharpen[0], blur, -sharpen[0], 0.0)
        y = apply_jpeg(enc, jpeg_quality, bgr=False)[0].astype(np.float64) @ BT601
        cells = y.reshape(tile, len(med), tile).transpose(1, 0, 2)
        if sharpen[0] > 0 or use_binned:
            cells = cells[:, 4:-4, 4:-4]
        if use_binned:
            n = cells.shape[1] // NOISE_BIN
            cells = cells.reshape(len(med), n, NOISE_BIN, n, NOISE_BIN).mean(axis=(2, 4))
        std = cells.reshape(len(med), -1).std(axis=1, ddof=1)
        return float(((np.log(std + 0.05) - target) ** 2).mean())

    span_a, span_b = (math.log(1e-6), math.log(1e-1)), (math.log(1e-5), math.log(0.1))

    def inner(la: float) -> tuple[float, float]:
        return grid_golden(lambda lb: cost(la, lb), *span_b, n=11, tol=0.02)

    log_a, _ = grid_golden(lambda la: inner(la)[1], *span_a, n=11, tol=0.02)
    log_b, _ = inner(log_a)
    return math.exp(log_a), math.exp(log_b), sum(len(v) for v in by_level.values())


def load_groups(
    con: sqlite3.Connection, session: str, layout: Layout
) -> tuple[list[Group], list[tuple[float | None, int, int]]]:
    """Patch groups and blur rows ``(sigma_px, width, height)`` of one session.

    Raises:
        UserError: the database predates these tables, or holds no measurement.
    """
    sheets = {s.sheet_id: s for s in layout.sheets}
    try:
        rows = con.execute(
            "SELECT frame_idx, sheet_id, patch, mean_r, mean_g, mean_b, std_y FROM patches WHERE session_id=? "
            "ORDER BY frame_idx, sheet_id",
            (session,),
        ).fetchall()
        blur = con.execute("SELECT sigma_px, width, height FROM blur WHERE session_id=?", (session,)).fetchall()
    except sqlite3.OperationalError:
        raise UserError(
            f"--session {session}: this capture was recorded by an older Photoproof that did not measure the "
            f"calibration strip; capture again with this version"
        ) from None
    groups: dict[tuple[int, str], Group] = {}
    for f, sid, name, r, g, b, sy in rows:
        sheet = sheets.get(sid)
        patch = next((p for p in sheet.calibration if p.name == name), None) if sheet else None
        if sheet is None or patch is None:
            continue
        grp = groups.setdefault((f, sid), Group(f, sheet, {}))
        grp.patches[name] = (patch, np.array([r, g, b], float), float(sy))
    try:
        for f, sid, name, std in con.execute(
            "SELECT frame_idx, sheet_id, patch, std_y FROM patch_noise WHERE session_id=? AND bin_px=?",
            (session, NOISE_BIN),
        ):
            if (f, sid) in groups:
                groups[(f, sid)].binned[name] = float(std)
    except sqlite3.OperationalError:
        pass  # recorded before the binned noise was
    if len(groups) < MIN_VIEWS:
        raise UserError(
            f"--session {session}: {len(groups)} measurement(s) of the calibration strip, at least {MIN_VIEWS} needed "
            f"(it is measured on every {PATCH_EVERY}th frame with the strip in view); capture again, longer, with "
            f"the strip in view (on a sheet framed pair by pair, step back to frame its bottom row for a few seconds)"
        )
    return list(groups.values()), [(s, int(w), int(h)) for s, w, h in blur]


def fit_all(
    groups: list[Group], blur: list[tuple[float | None, int, int]], gamma: float, gains: np.ndarray, jpeg_quality: int
) -> Fit:
    """Every estimate, from one session's measurements."""
    tone_gamma, dot_gain, tone_rms, white, black = fit_tone(groups, gamma)
    gamut, pw, ik, colour_rms = fit_colour(groups, gamma, tone_gamma, dot_gain, white, black)
    whites = np.stack([_lin(w, gamma) for g in groups if (w := g.level("grey", 255)) is not None])
    lum = whites @ LUMA
    rel = lum / np.median(lum)
    illum = (float(np.quantile(rel, 0.05)), float(np.quantile(rel, 0.95))) if len(rel) >= 3 else (1.0, 1.0)
    casts = np.concatenate([c / np.median(c) - 1.0 for c in (whites[:, 0] / whites[:, 1], whites[:, 2] / whites[:, 1])])
    wb = float(np.quantile(np.abs(casts), 0.9)) if len(whites) >= 3 else 0.0
    sig = np.array([s for s, _, _ in blur if s is not None])
    defocus = None
    if len(sig):
        corr = np.sqrt(np.maximum(sig**2 - SIM_SIGMA0_PX**2, 0.0))
        defocus = (float(np.quantile(corr, 0.1)), float(np.quantile(corr, 0.9)))
    shot, read, n_noise = fit_noise(groups, gamma, gains, jpeg_quality)
    return Fit(
        tone_gamma,
        dot_gain,
        tone_rms,
        pw,
        ik,
        gamut,
        colour_rms,
        illum,
        wb,
        defocus,
        shot,
        read,
        len(groups),
        len({g.frame_idx for g in groups}),
        len(sig),
        n_noise,
    )
