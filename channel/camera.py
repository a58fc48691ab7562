"""The camera stages of the channel in numpy and OpenCV (torch-free): optics (defocus, motion blur), the sensor
(EMVA 1288 noise through a variance-stabilising code), the ISP and JPEG (libjpeg through OpenCV).

Pure functions on whole pages (``channel.simulate``) and tiles (:func:`channel.tile.apply_tile`), taking the
sampled :class:`channel.model.ChannelParams`. Models and sources: ``docs/channel-profile.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from channel import isp as isp_mod
from channel.model import ChannelParams, wb_gains
from channel.scratch import Scratch, buffer
from contracts.profile import Camera, ChannelProfile, Isp


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
    out = isp_tables_apply(img, profile, p, bgr=bgr, sensor_lut=sensor_lut, scratch=scratch)
    if profile.isp.sharpen_amount > 0 and not profile.isp.is_identity():
        out = unsharp(out, profile.isp, sharpen_scale, scratch=scratch)
    return out


def isp_tables_apply(
    img: np.ndarray,
    profile: ChannelProfile,
    p: ChannelParams,
    bgr: bool = False,
    sensor_lut: np.ndarray | None = None,
    scratch: Scratch | None = None,
    tables: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> np.ndarray:
    """:func:`apply_isp` without its unsharp mask: steps 1-4 of ``channel.isp`` (tables and colour matrix).

    ``tables``: what :func:`isp_lookup` gives for the same arguments, when the caller has it already.
    """
    isp = profile.isp
    if isp.is_identity():
        return img if sensor_lut is None else cv2.LUT(img, sensor_lut, dst=buffer(scratch, "lut", img))
    first, second = tables or isp_lookup(profile, p, bgr, sensor_lut)
    out = cv2.LUT(img, first, dst=buffer(scratch, "lut", img))
    if second is not None:  # the colour matrix in linear light, between the two tables
        m = isp_mod.colour_matrix(isp)
        gamma = profile.camera.gamma
        lin = cv2.LUT(out, ((np.arange(256) / 255.0) ** gamma).astype(np.float32))
        lin = np.clip(cv2.transform(lin, (m[::-1, ::-1] if bgr else m).astype(np.float32)), 0.0, 1.0)
        enc = cv2.convertScaleAbs(cv2.pow(lin, 1.0 / gamma), alpha=255.0)
        out = cv2.LUT(enc, second[:, :, ::-1].copy() if bgr else second, dst=out)
    return out


def isp_lookup(
    profile: ChannelProfile, p: ChannelParams, bgr: bool = False, sensor_lut: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The tables :func:`isp_tables_apply` looks 8-bit codes up in: the first (1, 256, 3), merged with
    ``sensor_lut`` when given, and the one after the colour matrix (None when the matrix is the identity)."""
    first, second = isp_mod.isp_tables(profile.isp, profile.camera.gamma, isp_frame(profile, p))
    first = first[:, :, ::-1] if bgr else first
    if sensor_lut is not None:  # table after table is one table: first[sensor_lut[i, c], c]
        first = np.take_along_axis(first[0], sensor_lut[0].astype(np.intp), axis=0)[None]
    return np.ascontiguousarray(first), second


def unsharp_kernel(isp: Isp, sharpen_scale: float = 1.0) -> tuple[int, float]:
    """The unsharp mask's Gaussian: (kernel size, sigma) for ``sharpen_scale`` image pixels per camera pixel."""
    sigma = isp.sharpen_sigma_px * sharpen_scale
    return gaussian_ksize(sigma), sigma


def unsharp(
    img: np.ndarray,
    isp: Isp,
    sharpen_scale: float = 1.0,
    dst: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> np.ndarray:
    """Step 5 of ``channel.isp`` on uint8: ``(1 + amount) img - amount Gaussian(img)``, saturating, reflected borders.

    ``dst`` may be ``img`` itself (the simulated camera sharpens the sheets' box of its frame in place).
    """
    k, sigma = unsharp_kernel(isp, sharpen_scale)
    blur = cv2.GaussianBlur(img, (k, k), sigma, dst=buffer(scratch, "blur", img), borderType=cv2.BORDER_REFLECT_101)
    if dst is None:
        dst = buffer(scratch, "sharp", img)
    out: np.ndarray = cv2.addWeighted(img, 1.0 + isp.sharpen_amount, blur, -isp.sharpen_amount, 0.0, dst=dst)
    return out
