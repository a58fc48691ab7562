"""The print-scene-camera channel in numpy and OpenCV (torch-free).

Pure functions, one per stage (``STAGES``: print, pose, light, optics, sensor, isp, jpeg),
that the simulated camera (``channel.simulate``) runs on whole pages and
:func:`apply_tile` runs on one image tile, so that the differentiable twin
(``channel.twin``) can be checked against them with the same sampled
:class:`ChannelParams`. Models, constants and sources: ``docs/channel-profile.md``
(sRGB IEC 61966-2-1; Murray-Davies; Planckian locus after Kim et al. 2002;
EMVA 1288 noise; libjpeg).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from channel import isp as isp_mod
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
from channel.scratch import Scratch, buffer
from contracts.profile import (
    CHANNEL_STAGES,
    GLARE_RADIUS,
    TILE_VIEW_DEG,
    Camera,
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


# ----------------------------------------------------------------------------- camera
def gaussian_ksize(sigma: float) -> int:
    """Odd kernel size covering +-3 sigma (shared with the twin)."""
    return 2 * math.ceil(3.0 * sigma) + 1


def motion_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    """Line of ``length_px`` at ``angle_deg``, bilinearly splatted from 2L+1 points, normalised (odd size)."""
    r = max(1, math.ceil(length_px / 2))  # bilinear weights vanish one pixel past the ends
    n = max(2, math.ceil(2 * length_px) + 1)
    t = np.linspace(-length_px / 2, length_px / 2, n)
    a = math.radians(angle_deg)
    grid = np.arange(-r, r + 1, dtype=np.float64)
    wx = np.clip(1 - np.abs(grid[None, :] - (t * math.cos(a))[:, None]), 0, None)
    wy = np.clip(1 - np.abs(grid[None, :] - (t * math.sin(a))[:, None]), 0, None)
    k: np.ndarray = np.einsum("ni,nj->ij", wy, wx)
    out: np.ndarray = (k / k.sum()).astype(np.float32)
    return out


def apply_optics(img: np.ndarray, p: ChannelParams, delta: float = 0.0, scratch: Scratch | None = None) -> np.ndarray:
    """Gaussian defocus (sigma ``defocus_sigma_px``) then motion blur, reflected borders; adds ``delta``.

    ``scratch``: the result (and the defocused image) go into its buffers, reused from call to call.
    """
    if p.defocus_sigma_px > 0:
        k = gaussian_ksize(p.defocus_sigma_px)
        img = cv2.GaussianBlur(
            img, (k, k), p.defocus_sigma_px, dst=buffer(scratch, "defocus", img), borderType=cv2.BORDER_REFLECT_101
        )
    if p.motion_blur_px > 0:
        kernel = motion_kernel(p.motion_blur_px, p.motion_angle_deg)
        return cv2.filter2D(
            img, -1, kernel, dst=buffer(scratch, "motion", img), delta=delta, borderType=cv2.BORDER_REFLECT_101
        )
    return cv2.add(img, delta, dst=buffer(scratch, "motion", img)) if delta else img


@dataclass(frozen=True)
class SensorCurve:
    """The sensor stage as a variance-stabilised 8-bit code plus a per-channel table.

    Noise variance ``a * raw + b**2`` (EMVA 1288) is constant, ``a / 4``, in
    ``y = sqrt(raw + b**2 / a)`` (generalised Anscombe transform), so one scalar
    noise scale serves every pixel. ``y`` is quantised to 8 bits over
    ``[y_lo, y_hi]`` and a table applies white balance, clipping and the 1/gamma encoding.
    """

    offset: float  # c = b**2 / a
    noise_scale: float  # sqrt(a) / 2 in y units, 0 without noise
    y_lo: float
    y_hi: float
    lut: np.ndarray  # (1, 256, 3) uint8, channel order as given to sensor_curve


def sensor_curve(p: ChannelParams, camera: Camera, gains: np.ndarray) -> SensorCurve:
    """Build the :class:`SensorCurve` for white-balance ``gains`` (per channel, in the image's channel order)."""
    a, b = max(p.shot_noise, 0.0), max(p.read_noise, 0.0)
    if b > 0 and a < 1e-4 * b:  # read noise alone: give it a trace of shot noise to keep c finite
        a = 1e-4 * b
    c = b * b / a if a > 0 else 0.0
    raw_max = float(1.0 / np.min(gains))
    y_lo, y_hi = math.sqrt(c), math.sqrt(c + raw_max)
    y = y_lo + np.arange(256) / 255.0 * (y_hi - y_lo)
    lin = np.clip((y * y - c)[:, None] * gains[None, :], 0.0, 1.0)
    lut = np.round(255.0 * lin ** (1.0 / camera.gamma)).astype(np.uint8)[None]
    return SensorCurve(c, math.sqrt(a) / 2, y_lo, y_hi, lut)


def apply_sensor(
    raw: np.ndarray, curve: SensorCurve, noise: np.ndarray | None, offset_added: bool = False
) -> np.ndarray:
    """Linear float32 raw signal (H, W, 3) and standard normal ``noise`` of the same shape to uint8.

    ``offset_added``: ``raw`` already includes ``curve.offset`` (``apply_optics(..., delta=offset)``).
    """
    return sensor_encode(
        cv2.sqrt(raw if offset_added or not curve.offset else cv2.add(raw, curve.offset)), curve, noise
    )


def sensor_encode(y: np.ndarray, curve: SensorCurve, noise: np.ndarray | None) -> np.ndarray:
    """``y = sqrt(raw + offset)`` (float32) plus noise, to uint8 through the 8-bit code and the table."""
    return cv2.LUT(sensor_code(y, curve, noise), curve.lut)


def sensor_code(
    y: np.ndarray, curve: SensorCurve, noise: np.ndarray | None, out: np.ndarray | None = None
) -> np.ndarray:
    """The 8-bit code of ``y`` plus noise, before the table (into ``out`` when given).

    Noise, scaling to the code and rounding are one pass (``cv2.addWeighted`` straight to
    uint8); a code below ``y_lo`` clips to 0 (with noise that happens with probability < 1e-5 at ink black).
    """
    alpha = 255.0 / (curve.y_hi - curve.y_lo)
    if noise is not None and curve.noise_scale != 0:
        code: np.ndarray = cv2.addWeighted(
            y, alpha, noise, curve.noise_scale * alpha, -curve.y_lo * alpha, dst=out, dtype=cv2.CV_8U
        )
    else:
        code = cv2.convertScaleAbs(y, dst=out, alpha=alpha, beta=-curve.y_lo * alpha)
    return code


def apply_jpeg(img: np.ndarray, quality: int, bgr: bool = True) -> tuple[np.ndarray, bytes]:
    """Encode and decode with libjpeg (4:2:0); returns the decoded image and the file bytes."""
    src = img if bgr else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(quality, 1, 100))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if out is None:
        raise RuntimeError("JPEG decoding failed")
    return (out if bgr else cv2.cvtColor(out, cv2.COLOR_BGR2RGB)), buf.tobytes()


# ----------------------------------------------------------------------------- ISP
def isp_frame(profile: ChannelProfile, p: ChannelParams) -> isp_mod.IspFrame:
    """The ISP's per-frame constants (``channel.isp.frame_constants``) for sampled ``p``."""
    return isp_mod.frame_constants(
        profile, p.illuminance, p.gradient, p.exposure, p.colour_temperature_k, wb_gains(profile, p)
    )


def apply_isp(
    img: np.ndarray,
    profile: ChannelProfile,
    p: ChannelParams,
    bgr: bool = False,
    sharpen_scale: float = 1.0,
    sensor_lut: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> np.ndarray:
    """The ISP stage on an 8-bit frame or tile (H, W, 3 uint8): ``channel.isp``'s tables and matrix, unsharp mask.

    ``bgr``: the image's channel order (the simulated camera's frames are BGR). ``sharpen_scale``: image pixels
    per camera pixel (1 for frames). Returns uint8. A profile whose ISP does nothing returns ``img`` itself.
    ``sensor_lut``: ``img`` is the sensor's 8-bit code (``sensor_code``) and this its table (``SensorCurve.lut``,
    in the image's channel order); the sensor's table and the ISP's first table, one after the other, are then
    one table lookup, with the same result as ``apply_isp(cv2.LUT(img, sensor_lut), ...)``. ``scratch``: the
    caller's buffers (``channel.scratch``), reused from call to call; the result is then one of them.
    """
    isp = profile.isp
    if isp.is_identity():
        return img if sensor_lut is None else cv2.LUT(img, sensor_lut, dst=buffer(scratch, "lut", img))
    first, second = isp_mod.isp_tables(isp, profile.camera.gamma, isp_frame(profile, p))
    first = first[:, :, ::-1] if bgr else first
    if sensor_lut is not None:  # table after table is one table: first[sensor_lut[i, c], c]
        first = np.take_along_axis(first[0], sensor_lut[0].astype(np.intp), axis=0)[None]
    out = cv2.LUT(img, np.ascontiguousarray(first), dst=buffer(scratch, "lut", img))
    if second is not None:  # the colour matrix in linear light, between the two tables
        m = isp_mod.colour_matrix(isp)
        gamma = profile.camera.gamma
        lin = cv2.LUT(out, ((np.arange(256) / 255.0) ** gamma).astype(np.float32))
        lin = np.clip(cv2.transform(lin, (m[::-1, ::-1] if bgr else m).astype(np.float32)), 0.0, 1.0)
        enc = cv2.convertScaleAbs(cv2.pow(lin, 1.0 / gamma), alpha=255.0)
        out = cv2.LUT(enc, second[:, :, ::-1].copy() if bgr else second, dst=out)
    if isp.sharpen_amount > 0:
        sigma = isp.sharpen_sigma_px * sharpen_scale
        k = gaussian_ksize(sigma)
        blur = cv2.GaussianBlur(out, (k, k), sigma, dst=buffer(scratch, "blur", out), borderType=cv2.BORDER_REFLECT_101)
        out = cv2.addWeighted(
            out, 1.0 + isp.sharpen_amount, blur, -isp.sharpen_amount, 0.0, dst=buffer(scratch, "sharp", out)
        )
    return out


# ----------------------------------------------------------------------------- one tile
def apply_tile(
    tile: np.ndarray, params: ChannelParams, profile: ChannelProfile, stages: Sequence[str] = STAGES
) -> np.ndarray:
    """Run the channel on one RGB tile (S, S, 3; uint8 or floats 0..255) and return float32 0..255 RGB.

    Stages left out of ``stages`` are identities; without ``sensor`` the linear signal is
    returned times 255. Noise comes from ``params.noise_seed``. The twin's ``apply`` follows
    the same steps (``channel.twin``).
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"stages: unknown {sorted(unknown)}; expected some of {STAGES}")
    x: np.ndarray = np.asarray(tile, dtype=np.float64) / 255.0
    size = x.shape[0]
    white = np.ones(3)
    if "print" in stages:
        x = print_page(np.clip(np.round(x * 255), 0, 255).astype(np.uint8), profile.printer)
        white = print_page(np.full((1, 1, 3), 255, np.uint8), profile.printer)[0, 0]
    x = x.astype(np.float32)
    if "pose" in stages:
        x = cv2.warpPerspective(
            x,
            tile_homography(params, size, profile),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=tuple(float(w) for w in white),
        )
    if "light" in stages:
        uv = (np.arange(size, dtype=np.float64) + 0.5) / size
        gain, glare = light_field(params, uv[None, :], uv[:, None])
        colour = params.exposure * illuminant_rgb(params.colour_temperature_k)
        x = x * gain[..., None] + (0.0 if glare is None else glare[..., None])
        x = (x * colour).astype(np.float32)
    if "optics" in stages:
        x = apply_optics(x, params)
    if "sensor" in stages:
        noise = np.random.default_rng(params.noise_seed).standard_normal(x.shape, dtype=np.float32)
        x = apply_sensor(x, sensor_curve(params, profile.camera, wb_gains(profile, params)), noise)
    else:
        x = np.clip(x * 255.0, 0, 255)
    if "isp" in stages:
        x = apply_isp(np.round(np.clip(x, 0, 255)).astype(np.uint8), profile, params)
    if "jpeg" in stages:
        x = apply_jpeg(np.round(x).astype(np.uint8), params.jpeg_quality, bgr=False)[0]
    return np.asarray(x, dtype=np.float32)
