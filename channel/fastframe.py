"""The simulated camera's fast frame path (:mod:`channel.simulate`, ``SimulatedCamera.fast``): the same channel in
fewer passes over a 2560x1440 frame.

- The sheets are warped with a replicated border and laid on the desk through the mask of their outline
  (``cv2.fillConvexPoly``), each over its own bounding box: OpenCV's SIMD warp does not serve
  ``BORDER_TRANSPARENT``, which took twice as long.
- The ISP's unsharp mask runs on the sheets' box only (widened by the mask's radius). The desk around it is smooth
  (its light is interpolated from a grid every 8 pixels), so there the mask acts on the noise alone: the desk reads
  its noise from a second bank, the first one filtered once by the same linear unsharp kernel (float, reflected
  borders). The tone tables are locally linear over the noise's few codes, so the desk's noise gets the same
  spread and spatial correlation as when the frame was sharpened after the tables; what differs is the rounding
  (once instead of twice: at most 0.3 codes of std, measured in ``tests/test_simulate_fast.py``).
- The desk's strips go from the interpolated grid straight to the 8-bit code with their noise (no frame-sized
  float copy).

Inside the box (every pixel farther than the unsharp radius from its edge: the sheets and their margin) the 8-bit
frame before JPEG is the step-by-step path's (``fast = False``) up to the sheet outline (at most one pixel
along it) and the warp's rounding (at most 2 of 65535). ``docs/channel-profile.md`` has the figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from channel import camera
from channel import model as ch
from channel.scratch import Scratch
from contracts.profile import ChannelProfile, Isp

NOISE_SCALE = 2048.0  # the desk's int16 noise bank: standard normal samples (times the mask's gain) x 2048
DESK_SCALE = 64.0  # the desk's interpolated 8-bit code, int16 in 1/64 of a code (rounding: about 1/64 of a code)
PAGE_PAD = (
    2  # printed pages carry a replicated border this wide (pixels), so that their warp can take a constant border
)
MEAN_SHIFT_LEFT = 0.1  # the desk's mean output is moved back when the sharpened noise would shift it more (codes)
DESK_MAX_CODE = 300.0  # the desk's code is clipped here before int16 (a glare may take it past 255; 255 saturates)


def sharpens(isp: Isp) -> bool:
    """Whether the ISP has an unsharp mask (``channel.camera.apply_isp`` step 5)."""
    return isp.sharpen_amount > 0 and not isp.is_identity()


def upsample(low: np.ndarray, roi: tuple[int, int, int, int], step: int, scratch: Scratch | None = None) -> np.ndarray:
    """The box ``roi`` = (x0, y0, x1, y1) of ``cv2.resize(low, step x its size)``, computing only that box (plus one
    grid step); both paths of the simulated camera interpolate its light and desk with it.

    With ``scratch``, the result is a view of its buffer "up", valid until the next call.
    """
    x0, y0, x1, y1 = roi
    hl, wl = low.shape[:2]
    lx0, ly0 = max(0, x0 // step - 1), max(0, y0 // step - 1)
    lx1, ly1 = min(wl, -(-x1 // step) + 1), min(hl, -(-y1 // step) + 1)
    size = ((lx1 - lx0) * step, (ly1 - ly0) * step)
    dst = None if scratch is None else scratch.get("up", (size[1], size[0], *low.shape[2:]), low.dtype)
    up = cv2.resize(low[ly0:ly1, lx0:lx1], size, dst=dst, interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = up[y0 - ly0 * step : y1 - ly0 * step, x0 - lx0 * step : x1 - lx0 * step]
    return out


def desk_table(
    profile: ChannelProfile, tables: tuple[np.ndarray, np.ndarray | None] | None
) -> tuple[np.ndarray | None, float]:
    """The frame's code-to-output table (BGR; None with a colour matrix, which leaves no one table) and the unsharp
    kernel's variance gain (1 when the ISP does not sharpen): what :func:`desk_code_low` needs. ``tables``: the
    frame's :func:`channel.camera.isp_lookup` (BGR, merged with the sensor's table; None when the ISP does nothing).
    """
    if not sharpens(profile.isp) or tables is None:
        return None, 1.0
    first, second = tables
    return (first[0] if second is None else None), unsharp_gain(profile.isp)


def desk_noise(noise: np.ndarray, isp: Isp) -> np.ndarray:
    """The desk's noise bank: ``noise`` filtered by the unsharp mask's linear kernel ``(1 + a) delta - a G`` (float,
    reflected borders) when the ISP sharpens, as int16 in units of ``1 / NOISE_SCALE``."""
    src = noise
    if sharpens(isp):
        k, sigma = camera.unsharp_kernel(isp)
        blur = cv2.GaussianBlur(noise, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
        src = cv2.addWeighted(noise, 1.0 + isp.sharpen_amount, blur, -isp.sharpen_amount, 0.0, dst=blur)
    out = np.empty(src.shape, np.int16)
    for r in range(0, src.shape[0], 256):  # in row blocks: a 12 MP bank's float temporaries would take 150 MB each
        out[r : r + 256] = np.clip(np.rint(src[r : r + 256] * NOISE_SCALE), -32767, 32767)
    return out


def pad_levels(levels: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A printed page's pyramid with every level's pixels inside a ``PAGE_PAD``-pixel replicated border: each level
    is returned as a view of its padded copy (the same pixels; :func:`lay_sheet` warps the padded array)."""
    out = []
    for img, px_to_mm in levels:
        padded = cv2.copyMakeBorder(img, PAGE_PAD, PAGE_PAD, PAGE_PAD, PAGE_PAD, cv2.BORDER_REPLICATE)
        out.append((padded[PAGE_PAD:-PAGE_PAD, PAGE_PAD:-PAGE_PAD], px_to_mm))
    return out


def lay_sheet(
    page: np.ndarray,
    m: np.ndarray,
    box: np.ndarray,
    scratch: Scratch,
    name: str = "sheet",
    background: np.ndarray | None = None,
) -> tuple[int, int, int, int] | None:
    """Warp ``page`` by ``m`` (page pixels to ``box`` pixels) onto ``box`` in place, inside the page's outline.

    The outline is the page raster's area (pixel centres at integers: ``-0.5 .. size - 0.5``); the pixels whose
    centres fall inside take the bilinear warp of the page with its edge replicated, the others keep the desk.
    A page from :func:`pad_levels` is warped from its padded array with a constant border (OpenCV's SIMD warp: 2x
    faster than ``BORDER_TRANSPARENT``, 1.5x faster than ``BORDER_REPLICATE``): the outline's mask never reaches
    the constant, which starts more than 1.5 page pixels out. Returns the rectangle (x0, y0, x1, y1) of ``box``
    that was touched, or None when the sheet misses the box.

    ``background`` (the shape of ``box``): the desk to lay the sheet on, instead of ``box``'s own pixels; the page is
    then warped over the whole of ``box`` and the desk copied in around its outline (one copy of the desk fewer).
    """
    hh, ww = page.shape[:2]
    outline = np.array([[[-0.5, -0.5], [ww - 0.5, -0.5], [ww - 0.5, hh - 0.5], [-0.5, hh - 0.5]]], np.float64)
    quad = cv2.perspectiveTransform(outline, m)[0]
    bh, bw = box.shape[:2]
    x0, y0 = (max(0, int(np.floor(v)) - 1) for v in quad.min(axis=0))
    x1, y1 = min(bw, int(np.ceil(quad[:, 0].max())) + 2), min(bh, int(np.ceil(quad[:, 1].max())) + 2)
    if background is not None:
        if x1 <= x0 or y1 <= y0:
            np.copyto(box, background)
            return None
        x0, y0, x1, y1 = 0, 0, bw, bh
    elif x1 <= x0 or y1 <= y0:
        return None
    src, border = page, cv2.BORDER_REPLICATE
    base = page.base
    if isinstance(base, np.ndarray) and base.shape == (hh + 2 * PAGE_PAD, ww + 2 * PAGE_PAD, *page.shape[2:]):
        src, border = base, cv2.BORDER_CONSTANT
        m = m @ ch.translation(-PAGE_PAD, -PAGE_PAD)
    sheet = box if background is not None else scratch.get(name, (y1 - y0, x1 - x0, box.shape[2]), box.dtype)
    cv2.warpPerspective(
        src, ch.translation(-x0, -y0) @ m, (x1 - x0, y1 - y0), dst=sheet, flags=cv2.INTER_LINEAR, borderMode=border
    )
    mask = scratch.get(name + "_mask", (y1 - y0, x1 - x0), np.uint8)
    mask[:] = 0 if background is None else 255  # inside the outline, or (laying a desk around it) outside
    corners = np.round((quad - (x0, y0)) * 256).astype(np.int32)
    cv2.fillConvexPoly(mask, corners, 255 if background is None else 0, lineType=cv2.LINE_8, shift=8)
    if background is None:
        cv2.copyTo(sheet, mask, box[y0:y1, x0:x1])
    else:
        cv2.copyTo(background, mask, box)
    return x0, y0, x1, y1


def desk_code_low(
    desk_y: np.ndarray, curve: camera.SensorCurve, table: np.ndarray | None = None, gain: float = 1.0
) -> tuple[np.ndarray, float]:
    """The desk's ``y`` on its coarse grid as the sensor's 8-bit code before noise, int16 in 1/``DESK_SCALE`` codes.

    ``table`` (256, 3): the frame's lookup from code to output (sensor and ISP); ``gain``: the variance gain of the
    unsharp kernel (the desk noise's variance over the sensor's). With both, the code is moved so that the desk's
    mean output through the table, with the sharpened noise before it, is the mean it has when the noise goes
    through the table first and is sharpened after (the unsharp mask keeps a smooth field's mean): the table's
    curvature over a strong noise (``harsh``) would otherwise shift it by up to a code. Returns the code and the
    factor on the desk's noise that restores the variance of the rounding the unsharp mask amplified (the code's
    and the table's, both sharpened there, once each here): ``1 + (gain - 1) (L**2 + 1) / (12 gain sd**2 L**2)``
    in variance, with ``L`` the table's slope at the desk's mean code and ``sd`` the noise in codes.
    """
    alpha = 255.0 / (curve.y_hi - curve.y_lo)
    code = np.clip((desk_y - curve.y_lo) * alpha, 0.0, DESK_MAX_CODE)
    sd = abs(curve.noise_scale) * alpha
    out: np.ndarray = np.rint(code * DESK_SCALE).astype(np.int16)
    if gain <= 1.0 or sd <= 0:
        return out, 1.0
    slope = 1.0  # with a colour matrix between two tables (no one table): about one output code per code
    if table is not None:
        mid = np.clip(np.round(cv2.mean(code)[:3]).astype(int), 4, 251)
        slope = max(float(np.mean([(table[m + 4, c] - table[m - 4, c]) / 8.0 for c, m in enumerate(mid)])), 0.1)
        out = _move_codes(out, table, sd, gain)
    return out, math.sqrt(1.0 + (gain - 1.0) * (slope**2 + 1.0) / (12.0 * gain * sd**2 * slope**2))


def _move_codes(code: np.ndarray, table: np.ndarray, sd: float, gain: float) -> np.ndarray:
    """The int16 desk code (1/``DESK_SCALE`` codes) moved so that the mean output matches (:func:`desk_code_low`)."""
    grid = np.arange(256.0)
    mean, sq = _expected(table, sd), _expected(table.astype(np.float64) ** 2, sd)
    want = _clipped_mean(mean, np.sqrt(np.maximum(sq - mean**2, 0.0) * gain))  # the mask's output saturates
    have = _expected(table, sd * math.sqrt(gain)) + grid[:, None] * 1e-6  # strictly increasing, for the inverse
    lo, hi = (int(np.clip(v / DESK_SCALE, 0, 255)) for v in (code.min(), code.max() + DESK_SCALE))
    if np.abs(want - have)[lo : hi + 1].max() < MEAN_SHIFT_LEFT:  # over the codes the desk has in this frame
        return code
    codes = np.append(grid, DESK_MAX_CODE)  # above 255 the code saturates anyway: left as it is
    first, last = int(code.min()), int(code.max())
    steps = np.arange(first, last + 1) / DESK_SCALE  # the int16 desk codes of this frame, in codes
    moved = [np.append(np.interp(want[:, c], have[:, c], grid), DESK_MAX_CODE) for c in range(3)]
    lut = np.rint(np.concatenate([np.interp(steps, codes, m) for m in moved]) * DESK_SCALE).astype(np.int16)
    index = code.astype(np.int32) + (np.arange(3, dtype=np.int32) * steps.size - first)  # a table per channel, in a row
    out: np.ndarray = np.take(lut, index)
    return out


def _expected(table: np.ndarray, sd: float) -> np.ndarray:
    """``E[table[round(c + sd n)]]`` for integer codes ``c`` (n standard normal; codes saturate at 0 and 255)."""
    r = max(1, math.ceil(4.0 * sd))
    edges = (np.arange(-r, r + 2) - 0.5) / (sd * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + np.array([math.erf(e) for e in edges]))
    pmf = np.diff(cdf) / (cdf[-1] - cdf[0])
    padded = np.pad(table.astype(np.float64), ((r, r), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], pmf[::-1], mode="valid") for c in range(table.shape[1])], axis=1)


def _clipped_mean(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``E[clip(X, 0, 255)]`` for X normal with mean ``mu`` and std ``sd`` (the unsharp mask's uint8 output)."""
    sd = np.maximum(sd, 1e-6)

    def erf(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = _ERF(x).astype(np.float64)  # math.erf on every element
        return out

    out = mu.copy()
    for d, sign in ((mu, 1.0), (255.0 - mu, -1.0)):  # E[max(X, 0)] - mu = sd phi(d / sd) - d (1 - Phi(d / sd))
        z = d / sd
        tail = sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) - d * 0.5 * (1.0 - erf(z / math.sqrt(2.0)))
        out += sign * tail
    return out


_ERF = np.frompyfunc(math.erf, 1, 1)


def unsharp_gain(isp: Isp) -> float:
    """The variance gain of the unsharp kernel ``(1 + a) delta - a G`` on white noise (its squared L2 norm)."""
    k, sigma = camera.unsharp_kernel(isp)
    g = cv2.getGaussianKernel(k, sigma)
    kernel = -isp.sharpen_amount * (g @ g.T)
    kernel[k // 2, k // 2] += 1.0 + isp.sharpen_amount
    return float((kernel**2).sum())


def encode_frame(
    y_box: np.ndarray | None,
    box: tuple[int, int, int, int],
    desk: list[tuple[int, int, int, int]],
    desk_code: tuple[Callable[[tuple[int, int, int, int]], np.ndarray], float],
    noises: tuple[np.ndarray, np.ndarray],
    curve: camera.SensorCurve,
    isp_args: tuple[ChannelProfile, ch.ChannelParams, tuple[np.ndarray, np.ndarray | None] | None],
    scratch: Scratch,
) -> np.ndarray:
    """The 8-bit frame (BGR) before JPEG: sensor code, the ISP's tables, the unsharp mask on the box only.

    ``y_box``: ``sqrt(raw + offset)`` over ``box`` (x0, y0, x1, y1); ``desk``: the strips around it, whose
    interpolated code ``desk_code[0](strip)`` gives (int16, from :func:`desk_code_low`; valid until its next call),
    and ``desk_code[1]`` the factor on the desk's noise;
    ``noises``: the frame's window of the noise bank (float32, the box's) and of the desk's (:func:`desk_noise`).
    """
    profile, p, tables = isp_args
    noise, desk_noise_ = noises
    h, w = noise.shape[:2]
    code = scratch.get("code", (h, w, 3), np.uint8)
    x0, y0, x1, y1 = box
    if y_box is not None:
        camera.sensor_code(y_box, curve, noise[y0:y1, x0:x1], out=code[y0:y1, x0:x1])
    upsample, factor = desk_code
    k = factor * curve.noise_scale * 255.0 / (curve.y_hi - curve.y_lo) / NOISE_SCALE
    for a0, b0, a1, b1 in desk:
        up, out = upsample((a0, b0, a1, b1)), code[b0:b1, a0:a1]
        cv2.addWeighted(up, 1.0 / DESK_SCALE, desk_noise_[b0:b1, a0:a1], k, 0.0, dst=out, dtype=cv2.CV_8U)
    img = camera.isp_tables_apply(code, profile, p, True, curve.lut, scratch, tables)
    if y_box is not None and sharpens(profile.isp):
        region = img[y0:y1, x0:x1]
        camera.unsharp(region, profile.isp, dst=region, scratch=scratch)
    return img
