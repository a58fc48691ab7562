"""What ``calibrate`` fits beyond the printer: the camera's ISP, and checks of the strip.

A real phone or webcam renders each frame through its ISP (``channel.isp``), so the strip's
grey ramp reaches the model through a tone curve that no printer parameter can express. Here:

- :func:`pre_isp`: what the channel model predicts for a patch before the ISP (printer, light at
  the reference white, noise-free sensor), encoded 0..1;
- :func:`fit_curves`: a free monotone tone curve per channel through the grey ramp's medians
  against those predictions (least squares on the knots with a small curvature penalty, then
  pool-adjacent-violators isotonic regression, Barlow et al. 1972);
- :func:`fit_matrix`: a 3x3 colour matrix in linear light before the curves, rows summing to 1 (greys
  left to the curves): least squares over the colour patches taken back through the curves, then
  refined on the output, through the curves' clipping;
- :func:`check_strip`: one-line errors for a strip that cannot be fitted (clipped, one frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from channel.isp import apply_matrix, colour_matrix, tone, tone_curves
from channel.model import print_page
from channel.search import golden
from contracts.errors import UserError
from contracts.profile import TONE_KNOTS, Isp, Printer

CLIP_HI, CLIP_LO = 253.0, 2.0  # a ramp step at or beyond these (8-bit) is clipped
MAX_CLIPPED = 2  # ramp steps that may be clipped at either end (a camera that crushes its blacks is common)
MIN_FRAMES = 2  # strip views must come from at least this many frames
MATRIX_RIDGE = 1e-3
# Pull of the matrix towards the identity on the output fit: a row far from it amplifies the sensor's noise
# (and clipping at 0 turns that noise into a lift of the dark tones); 0.005 trades a row 1.0 away from the
# identity against an rms error of about 7/255 over the six colour patches.
MATRIX_SHRINK = 0.005


def pre_isp(nominal: np.ndarray, printer: Printer, gamma: float, light: float = 1.0) -> np.ndarray:
    """(N, 3) encoded 0..1 of 8-bit nominal colours ``nominal`` (N, 3) before the ISP, at the reference
    light times ``light`` (the mean light on the sheet relative to the white patch's median)."""
    refl = print_page(np.asarray(nominal, np.uint8)[None], printer)[0].astype(np.float64) * light
    out: np.ndarray = np.clip(refl, 0.0, 1.0) ** (1.0 / gamma)
    return out


def _isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing sequence closest to ``y`` in weighted least squares."""
    vals, wts, sizes = [], [], []
    for v, wt in zip(y.tolist(), w.tolist(), strict=True):
        vals.append(v)
        wts.append(wt)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            wts[-2], sizes[-2] = wsum, sizes[-2] + sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
    return np.repeat(np.array(vals), sizes)


def grey_medians(groups: list[Any]) -> dict[int, np.ndarray]:
    """The median RGB (0..255) of each grey ramp step over every strip view."""
    by_level: dict[int, list[np.ndarray]] = {}
    for g in groups:
        for p, m, _ in g.patches.values():
            if p.kind == "grey" and p.rgb is not None:
                by_level.setdefault(int(p.rgb[0]), []).append(m)
    return {v: np.median(np.stack(ms), axis=0) for v, ms in sorted(by_level.items())}


def fit_curves(
    groups: list[Any], pre: Any, matrix: np.ndarray, gamma: float
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(3, TONE_KNOTS) knots through the grey ramp after ``matrix``; the rms residual (8-bit units); the
    ramp's levels and observed medians. ``pre``: nominal (N, 3) -> encoded values before the ISP."""
    med = grey_medians(groups)
    levels = np.array(sorted(med))
    obs = np.stack([med[v] for v in levels]) / 255.0  # (L, 3)
    x = apply_matrix(pre(np.repeat(levels[:, None], 3, axis=1)), matrix, gamma)  # (L, 3)
    knots = np.stack([_knots(x[:, c], obs[:, c]) for c in range(3)])
    fitted = np.stack([tone(x[:, c], tuple(knots[c])) for c in range(3)], axis=1)
    rms = float(np.sqrt(((fitted - obs) ** 2).mean())) * 255.0
    return knots, rms, levels, obs * 255.0


CURVE_SMOOTH = 1e-3  # weight of the curve's second differences against the ramp's squared residuals


def _knots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Knot values of the piecewise-linear curve through points ``(x, y)`` (0..1): least squares with a
    small penalty on second differences (which continues the curve straight beyond the data), clipped
    to 0..1 and made non-decreasing by pool-adjacent-violators."""
    h = 1.0 / (TONE_KNOTS - 1)
    pos = np.clip(x, 0.0, 1.0) / h
    i = np.minimum(np.floor(pos).astype(int), TONE_KNOTS - 2)
    t = pos - i
    basis = np.zeros((len(x), TONE_KNOTS))
    basis[np.arange(len(x)), i] = 1.0 - t
    basis[np.arange(len(x)), i + 1] = t
    d2 = np.diff(np.eye(TONE_KNOTS), n=2, axis=0)
    k = np.linalg.solve(basis.T @ basis + CURVE_SMOOTH * d2.T @ d2, basis.T @ y)
    return _isotonic(np.clip(k, 0.0, 1.0), np.ones(TONE_KNOTS))


def _inverse(y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The curve's inverse at ``y`` (flat stretches: their middle)."""
    grid = np.linspace(0.0, 1.0, TONE_KNOTS)
    ramp = knots + 1e-7 * np.arange(TONE_KNOTS)  # strictly increasing
    out: np.ndarray = np.interp(y, ramp, grid)
    return out


def fit_matrix(groups: list[Any], pre: Any, knots: np.ndarray, gamma: float) -> tuple[np.ndarray, float, int]:
    """The colour matrix (rows summing to 1, before the curves) from the colour patches; rms residual (8-bit); n.

    Each observed channel is taken back through its curve's inverse and fitted by least squares
    (a small ridge towards the identity); values the curve clips (within 2/255 of its ends) weigh 1/10.
    """
    obs: dict[str, list[np.ndarray]] = {}
    nominal: dict[str, list[int]] = {}
    for g in groups:
        for name, (p, m, _) in g.patches.items():
            if p.kind == "colour" and p.rgb is not None and len(set(p.rgb)) > 1:
                obs.setdefault(name, []).append(m)
                nominal[name] = list(p.rgb)
    if len(obs) < 3:
        return np.eye(3), float("nan"), len(obs)
    names = sorted(obs)
    y = np.stack([np.median(np.stack(obs[n]), axis=0) for n in names]) / 255.0
    x = pre(np.array([nominal[n] for n in names]))
    m = np.eye(3)
    xl = x**gamma  # the matrix works in linear light (channel.isp, step 3)
    for c in range(3):
        z = _inverse(y[:, c], knots[c]) ** gamma
        w = np.where((y[:, c] <= knots[c, 0] + 2 / 255) | (y[:, c] >= knots[c, -1] - 2 / 255), 0.1, 1.0)
        a = np.column_stack([xl[:, 0] - xl[:, 2], xl[:, 1] - xl[:, 2]]) * w[:, None]
        b = (z - xl[:, c]) * w
        d = np.linalg.solve(a.T @ a + MATRIX_RIDGE * np.eye(2), a.T @ b)
        m[c] += np.array([d[0], d[1], -d[0] - d[1]])
    m = _refine(np.clip(m, -2.5, 2.5), x, y, knots, gamma)
    rms = float(np.sqrt(((_through(m, x, knots, gamma) - y) ** 2).mean())) * 255.0
    return m, rms, len(names)


def _through(m: np.ndarray, x: np.ndarray, knots: np.ndarray, gamma: float) -> np.ndarray:
    e = apply_matrix(x, m, gamma)
    return np.stack([tone(e[:, c], tuple(knots[c])) for c in range(3)], axis=1)


def _refine(
    m: np.ndarray, x: np.ndarray, y: np.ndarray, knots: np.ndarray, gamma: float, rounds: int = 6
) -> np.ndarray:
    """Least squares on the output (through the curves' clipping, which the inverse cannot see), pulled
    towards the identity by ``MATRIX_SHRINK``: coordinate descent over each row's two free entries (the third
    keeps the row's sum at 1)."""
    m = m.copy()
    for _ in range(rounds):
        for c in range(3):
            for j in (0, 1):

                def cost(v: float, c: int = c, j: int = j) -> float:
                    t = m.copy()
                    t[c, 2] += t[c, j] - v
                    t[c, j] = v
                    fit = float(((_through(t, x, knots, gamma)[:, c] - y[:, c]) ** 2).sum())
                    return fit + MATRIX_SHRINK * float(((t[c] - np.eye(3)[c]) ** 2).sum())

                v, _ = golden(cost, m[c, j] - 0.5, m[c, j] + 0.5, tol=1e-3)
                m[c, 2] += m[c, j] - v
                m[c, j] = v
    out: np.ndarray = np.clip(m, -2.5, 2.5)
    return out


def curve_isp(knots: np.ndarray, matrix: np.ndarray) -> Isp:
    """A static ISP: the fitted curves and matrix, no per-frame adaptation, no sharpening."""
    k = np.clip(np.round(knots, 4), 0.0, 1.0)
    return Isp(
        tone_r=tuple(float(v) for v in np.maximum.accumulate(k[0])),
        tone_g=tuple(float(v) for v in np.maximum.accumulate(k[1])),
        tone_b=tuple(float(v) for v in np.maximum.accumulate(k[2])),
        colour_matrix=tuple(float(round(v, 4)) for v in matrix.ravel()),
    )


def isp_is_visible(knots: np.ndarray, matrix: np.ndarray, span: tuple[float, float]) -> bool:
    """Whether the curves (over the ``span`` of encoded values the ramp covers) or the matrix differ from
    doing nothing by more than 2/255 or 0.03."""
    grid = np.linspace(0.0, 1.0, TONE_KNOTS)
    inside = (grid >= span[0]) & (grid <= span[1])
    dev = np.abs(knots - grid)[:, inside]
    return bool((dev.size and dev.max() > 2.0 / 255) or np.abs(matrix - np.eye(3)).max() > 0.03)


def static_table(isp: Isp) -> np.ndarray:
    """The ISP's tone curves as an 8-bit table (1, 256, 3), RGB: what grey patches pass (for the noise fit)."""
    v = np.repeat((np.arange(256) / 255.0)[:, None], 3, axis=1)
    out: np.ndarray = np.round(255.0 * tone_curves(v, isp)).astype(np.uint8)[None]
    return out


def check_strip(groups: list[Any], session: str) -> None:
    """One-line errors for a strip that cannot be fitted: seen in one frame only, or clipped."""
    frames = {g.frame_idx for g in groups}
    if len(frames) < MIN_FRAMES:
        raise UserError(
            f"--session {session}: the calibration strip was seen in {len(frames)} frame(s); calibrate needs it in "
            f"several; capture the whole sheet, strip included, for a few seconds (or several photos)"
        )
    med = grey_medians(groups)
    hi = [v for v, m in med.items() if float(np.min(m)) >= CLIP_HI]
    lo = [v for v, m in med.items() if float(np.max(m)) <= CLIP_LO]
    if len(hi) > MAX_CLIPPED:
        raise UserError(
            f"--session {session}: the strip's grey ramp is clipped white ({len(hi)} steps read 255): the camera "
            f"overexposes the sheet; photograph it again with less light on it or exposure locked lower"
        )
    if len(lo) > MAX_CLIPPED:
        raise UserError(
            f"--session {session}: the strip's grey ramp is clipped black ({len(lo)} steps read 0): the camera "
            f"underexposes the sheet; photograph it again with more light on it"
        )


PHYSICAL_RMS = 0.02  # grey-ramp coverage rms up to which a printer alone explains the strip (no ISP evident)


def physical_fit_ok(fit: Any) -> bool:
    """Whether the printer-only fit (``channel.calibrate_fit.Fit``) explains the ramp inside its bounds.

    A camera ISP (auto levels, a contrast curve) drives that fit to the ends of its search ranges
    (dot gain 0.4, tone gamma 0.3 or 3, ink black 0) or leaves a large residual; then the printer
    keys are kept from the base profile and the ISP's curves carry the grey response.
    """
    inside = 0.005 < fit.dot_gain < 0.395 and 0.32 < fit.tone_gamma < 2.95 and float(np.min(fit.ink_black)) > 0.003
    return bool(inside and fit.tone_rms <= PHYSICAL_RMS)


@dataclass
class IspFit:
    """The ISP calibrate fitted (or found unnecessary), and what it came from."""

    isp: Isp
    used: bool  # False: the strip shows no ISP beyond the printer model (the profile's [isp] does nothing)
    printer_ok: bool
    knots: np.ndarray  # (3, TONE_KNOTS)
    curve_rms: float  # 8-bit units, grey ramp
    matrix: np.ndarray
    matrix_rms: float  # 8-bit units, colour patches
    n_colour: int
    levels: np.ndarray  # the ramp's nominal levels
    observed: np.ndarray  # (L, 3) their median observed RGB
    predicted: np.ndarray  # (L, 3) what the fitted profile gives them (noise-free)
    pre_grey: dict[int, np.ndarray] = field(default_factory=dict)  # level -> encoded value before the ISP

    def notes(self, views: str) -> dict[str, str]:
        """Comments for the profile's [isp] keys."""
        if not self.used:
            why = "the strip shows no camera processing beyond the printer model"
            return {f"isp.{f.name}": f"does nothing: {why} (curves within 2/255)" for f in fields(Isp)}
        out = {
            "isp.awb_strength": "0: the camera's per-frame white balance is folded into the fixed curves "
            "and white_balance_error",
            "isp.levels_strength": "0: the camera's per-frame levels are folded into the fixed curves and illuminance",
            "isp.levels_black": "unused (levels_strength 0)",
            "isp.levels_white": "unused (levels_strength 0)",
            "isp.sharpen_amount": "0: the strip's edge fit measures blur and sharpening together, in defocus_sigma_px",
            "isp.sharpen_sigma_px": "unused (sharpen_amount 0)",
        }
        for c in "rgb":
            out[f"isp.tone_{c}"] = (
                f"estimated: monotone curve through the grey ramp's {len(self.levels)} steps ({views}) against "
                f"the printer model; rms {self.curve_rms:.1f}/255; continued straight beyond the ramp's ends"
            )
        out["isp.colour_matrix"] = (
            f"estimated: {self.n_colour} colour patches, in linear light before the curves, rows summing to 1; "
            f"rms {self.matrix_rms:.1f}/255"
            if self.n_colour >= 3
            else "identity: fewer than 3 colour patches seen"
        )
        return out


def fit_isp(groups: list[Any], printer: Printer, gamma: float, printer_ok: bool, light: float) -> IspFit:
    """Curves and matrix against ``printer``; used when the printer is not enough or they differ from identity.

    The curves are fitted with the identity matrix, the matrix through them, then the curves again.
    """

    def pre(nominal: np.ndarray) -> np.ndarray:
        return pre_isp(nominal, printer, gamma, light)

    knots, rms, levels, obs = fit_curves(groups, pre, np.eye(3), gamma)
    matrix, m_rms, n_colour = fit_matrix(groups, pre, knots, gamma)
    knots, rms, levels, obs = fit_curves(groups, pre, matrix, gamma)
    grey = pre(np.repeat(levels[:, None], 3, axis=1))
    used = (not printer_ok) or isp_is_visible(knots, matrix, (float(grey.min()), float(grey.max())))
    isp = curve_isp(knots, matrix) if used else Isp()
    t = tone_curves(apply_matrix(grey, colour_matrix(isp), gamma), isp)
    return IspFit(
        isp,
        used,
        printer_ok,
        knots,
        rms,
        matrix,
        m_rms,
        n_colour,
        levels,
        obs,
        255.0 * t,
        {int(v): apply_matrix(grey[i], colour_matrix(isp), gamma) for i, v in enumerate(levels)},
    )
