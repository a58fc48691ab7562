"""The print-scene-camera channel in numpy and OpenCV (torch-free).

Pure functions, one per stage (``STAGES``: print, pose, light, optics, sensor, isp, jpeg; the camera's stages,
optics to JPEG, are in ``channel.camera``), that the simulated camera (``channel.simulate``) runs on whole pages and
:func:`channel.tile.apply_tile` runs on one image tile, so that the differentiable twin
(``channel.twin``) can be checked against them with the same sampled
:class:`ChannelParams`. Models, constants and sources: ``docs/channel-profile.md``
(sRGB IEC 61966-2-1; Murray-Davies; Planckian locus after Kim et al. 2002;
EMVA 1288 noise; libjpeg).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from channel.colour import (
    LUMA as LUMA,
)  # re-exported
from channel.colour import (
    illuminant_rgb as illuminant_rgb,
)
from channel.colour import (
    planck_xy as planck_xy,
)
from channel.colour import (
    srgb_decode as srgb_decode,
)
from contracts.profile import (
    CHANNEL_STAGES,
    GLARE_RADIUS,
    TILE_VIEW_DEG,
    ChannelProfile,
    Printer,
    channel_range,
)

log = logging.getLogger(__name__)

STAGES = CHANNEL_STAGES
HALFTONE_ANGLES_DEG = (15.0, 75.0, 0.0)  # C, M, Y screen angles (R, G, B coverage)
HALFTONE_MAX_OVERSAMPLE = 4  # halftone at most at 4x the page raster's dpi


@dataclass(frozen=True)
class ChannelParams:
    """One sampled value per ranged parameter: replaying them replays the transform exactly."""

    sheet_fill: float
    tilt_deg: float
    tilt_axis_deg: float  # direction of the in-plane axis the sheet tilts about
    rotation_deg: float
    centre_x: float  # 0..1: where the sheet sits within the room the frame leaves it
    centre_y: float
    illuminance: float
    colour_temperature_k: float
    gradient: float
    gradient_angle_deg: float  # direction in which the light falls off
    glare: float
    glare_x: float  # glare centre on the page, 0..1 of its width and height
    glare_y: float
    defocus_sigma_px: float
    motion_blur_px: float
    motion_angle_deg: float
    shot_noise: float
    read_noise: float
    wb_error_r: float
    wb_error_b: float
    exposure: float
    jpeg_quality: int
    noise_seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChannelParams:
        return cls(**{f.name: d[f.name] for f in fields(cls)})

    def replace(self, **kw: Any) -> ChannelParams:
        return replace(self, **kw)


UNIT_FIELDS = tuple(f.name for f in fields(ChannelParams) if f.name != "noise_seed")


def field_range(profile: ChannelProfile, name: str) -> tuple[float, float]:
    """The (low, high) range a :class:`ChannelParams` field is drawn from."""
    return channel_range(profile, name)


def params_from_unit(profile: ChannelProfile, unit: Mapping[str, float], noise_seed: int) -> ChannelParams:
    """Map one value in [0, 1] per field onto its range (uniform sampling when ``unit`` is uniform)."""
    vals: dict[str, Any] = {}
    for name in UNIT_FIELDS:
        lo, hi = field_range(profile, name)
        vals[name] = lo + float(unit[name]) * (hi - lo)
    vals["jpeg_quality"] = int(round(vals["jpeg_quality"]))
    return ChannelParams(**vals, noise_seed=int(noise_seed))


def sample_params(profile: ChannelProfile, rng: np.random.Generator) -> ChannelParams:
    """Draw every ranged parameter uniformly from the profile, independently."""
    unit = dict(zip(UNIT_FIELDS, rng.random(len(UNIT_FIELDS)), strict=True))
    return params_from_unit(profile, unit, int(rng.integers(0, 2**31 - 1)))


# ----------------------------------------------------------------------------- colour
# srgb_decode, illuminant_rgb and LUMA come from channel.colour (shared with the twin).


def reference_cct(profile: ChannelProfile) -> float:
    """The camera's fixed white point: the mired midpoint of the profile's colour temperature range."""
    lo, hi = profile.scene.colour_temperature_k
    return 2.0 / (1.0 / lo + 1.0 / hi)


def wb_gains(profile: ChannelProfile, p: ChannelParams) -> np.ndarray:
    """Camera white-balance gains (R, G, B): neutral at the reference light, times the sampled error."""
    gains: np.ndarray = np.array([1.0 + p.wb_error_r, 1.0, 1.0 + p.wb_error_b]) / illuminant_rgb(reference_cct(profile))
    return gains


# ----------------------------------------------------------------------------- printer
def printer_coverage(v: np.ndarray, printer: Printer) -> np.ndarray:
    """Ink coverage 0..1 for sRGB-encoded values 0..1: tone curve, then dot gain 4*g*a*(1-a) (g at 50%)."""
    a = 1.0 - srgb_decode(v) ** printer.tone_gamma
    return np.clip(a + printer.dot_gain * 4.0 * a * (1.0 - a), 0.0, 1.0)


def murray_davies(a: np.ndarray, printer: Printer) -> np.ndarray:
    """Reflectance of coverage ``a`` (..., 3): area-weighted paper white and ink black (Murray-Davies)."""
    white, black = np.asarray(printer.paper_white), np.asarray(printer.ink_black)
    out: np.ndarray = white * (1.0 - a) + black * a
    return out


def gamut_matrix(printer: Printer) -> np.ndarray:
    """3x3 matrix that scales chroma by ``1 - gamut_compression`` about the luminance axis."""
    g = printer.gamut_compression
    return (1.0 - g) * np.eye(3) + g * np.outer(np.ones(3), LUMA)


def _halftone(a: np.ndarray, printer: Printer, dpi: float, rng: np.random.Generator) -> np.ndarray:
    """Clustered-dot AM screen at up to ``HALFTONE_MAX_OVERSAMPLE`` x ``dpi``, area-averaged back to ``dpi``."""
    k = int(np.clip(round(printer.dpi / dpi), 1, HALFTONE_MAX_OVERSAMPLE))
    period = k * dpi / printer.halftone_lpi  # screen period in oversampled pixels
    if period < 2.0:
        log.warning("halftone skipped: %.0f lpi is not resolvable at %.0f dpi", printer.halftone_lpi, k * dpi)
        return a
    g = (np.arange(256) + 0.5) / 256.0 * 2 * np.pi  # spot values over one period, for equalisation
    spot = np.sort((0.5 - 0.25 * (np.cos(g)[:, None] + np.cos(g)[None, :])).ravel())
    level = np.interp(a, np.linspace(0.0, 1.0, spot.size), spot).astype(np.float32)  # ink where spot < level
    out = np.empty_like(a, dtype=np.float32)
    h, w = a.shape[:2]
    xs = np.arange(w * k, dtype=np.float32)
    phase = rng.random((3, 2)) * period
    for r0 in range(0, h, 64):
        r1 = min(h, r0 + 64)
        ys = np.arange(r0 * k, r1 * k, dtype=np.float32)[:, None]
        for c, ang in enumerate(np.radians(HALFTONE_ANGLES_DEG)):
            xr = (xs * math.cos(ang) + ys * math.sin(ang) + phase[c, 0]) * (2 * np.pi / period)
            yr = (-xs * math.sin(ang) + ys * math.cos(ang) + phase[c, 1]) * (2 * np.pi / period)
            up = np.repeat(np.repeat(level[r0:r1, :, c], k, axis=0), k, axis=1)
            ink = (0.5 - 0.25 * (np.cos(xr) + np.cos(yr)) < up).astype(np.float32)
            out[r0:r1, :, c] = ink.reshape(r1 - r0, k, w, k).mean(axis=(1, 3))
    return out


def print_page(
    page_rgb_float: np.ndarray,
    printer: Printer,
    params: ChannelParams | None = None,
    rng: np.random.Generator | None = None,
    dpi: float | None = None,
) -> np.ndarray:
    """Print an sRGB page (H, W, 3, floats 0..1 or uint8) and return its linear reflectance (float32).

    The printer has no ranged parameters, so ``params`` only keeps the stage signatures alike.
    ``rng`` sets the halftone screen's phase; ``dpi`` is the page raster's resolution (halftone only).
    """
    v = np.asarray(page_rgb_float)
    if v.dtype == np.uint8 and not printer.halftone and v.ndim == 3 and v.shape[-1] == 3:
        # Coverage and Murray-Davies per channel are one 256-entry table each: index it, channel by channel
        # (a page raster at 600 dpi has 35 M values; float64 intermediates of that size cost a minute).
        a = printer_coverage(np.arange(256) / 255.0, printer)[:, None]
        table = murray_davies(np.repeat(a, 3, axis=1), printer).astype(np.float32)
        refl = cv2.LUT(np.ascontiguousarray(v), table.reshape(256, 1, 3))
        return cv2.transform(refl, gamut_matrix(printer).astype(np.float32))
    if v.dtype == np.uint8:  # exact: a 256-entry table per channel
        a = printer_coverage(np.arange(256) / 255.0, printer)[v]
    else:
        a = printer_coverage(v.astype(np.float64), printer)
    if printer.halftone:
        if dpi is None:
            raise ValueError("print_page: dpi is required when printer.halftone is true")
        a = _halftone(a.astype(np.float32), printer, dpi, rng or np.random.default_rng(0))
    refl = murray_davies(a, printer).astype(np.float32)
    return cv2.transform(refl, gamut_matrix(printer).astype(np.float32))


# ----------------------------------------------------------------------------- scene
def _rodrigues(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) * math.cos(angle) + math.sin(angle) * k + (1 - math.cos(angle)) * np.outer(axis, axis)


def plane_homography(
    cx: float, cy: float, tilt_deg: float, axis_deg: float, rot_deg: float, dist: float, focal: float
) -> np.ndarray:
    """Pinhole view of a plane: plane point (cx, cy) on the optical axis at ``dist``; image origin at the principal
    point.
    """
    ax = math.radians(axis_deg)
    rot = _rodrigues(np.array([math.cos(ax), math.sin(ax), 0.0]), math.radians(tilt_deg))
    r = math.radians(rot_deg)
    rot = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]]) @ rot
    ext = np.column_stack([rot[:, 0], rot[:, 1], [0.0, 0.0, dist]])
    h = np.diag([focal, focal, 1.0]) @ ext @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    out: np.ndarray = h / h[2, 2]
    return out


def translation(dx: float, dy: float) -> np.ndarray:
    """3x3 homogeneous translation."""
    return np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]])


def tile_homography(p: ChannelParams, size: int, profile: ChannelProfile) -> np.ndarray:
    """Mild warp of a ``size`` x ``size`` tile from the same pose, in pixel coordinates (cv2 convention).

    The tile is seen at ``TILE_VIEW_DEG``: tilt gives foreshortening and a little keystone;
    the area at the centre is normalised to ``(sheet_fill / mid-range)**2``; no translation.
    """
    c = (size - 1) / 2
    f = (size / 2) / math.tan(math.radians(TILE_VIEW_DEG) / 2)
    h0 = plane_homography(c, c, p.tilt_deg, p.tilt_axis_deg, p.rotation_deg, f, f)
    det = np.linalg.det(h0[:2, :2]) / (h0[2, 0] * c + h0[2, 1] * c + h0[2, 2]) ** 2
    lo, hi = profile.scene.sheet_fill
    k = (p.sheet_fill / (0.5 * (lo + hi))) / math.sqrt(abs(det))
    out: np.ndarray = translation(c, c) @ np.diag([k, k, 1.0]) @ h0
    return out


def light_field(p: ChannelParams, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Irradiance gain and additive glare at page coordinates ``u, v`` (0..1 across the page).

    Gain falls linearly from ``illuminance`` to ``illuminance * (1 - gradient)`` along
    ``gradient_angle_deg``; glare is a Gaussian blob of peak ``glare`` (None when zero).
    """
    a = math.radians(p.gradient_angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    ramp = np.clip(((u - 0.5) * ca + (v - 0.5) * sa) / (abs(ca) + abs(sa)) + 0.5, 0.0, 1.0)
    gain = p.illuminance * (1.0 - p.gradient * ramp)
    if p.glare <= 0:
        return gain, None
    return gain, p.glare * np.exp(-((u - p.glare_x) ** 2 + (v - p.glare_y) ** 2) / (2 * GLARE_RADIUS**2))
