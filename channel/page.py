"""A sheet's page in the simulated camera (:mod:`channel.simulate`): rendered from the batch's PDF
(pypdfium2), printed into a pyramid of halved levels, and placed in the frame by a pinhole camera's homography.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from channel import model as ch
from contracts.errors import UserError
from contracts.profile import ChannelProfile

DIAGONAL_FOV_DEG = 78.0  # Logitech C920 datasheet; a 26 mm-equivalent phone lens gives 79.5 deg


def pyramid(refl_rgb: np.ndarray, size_mm: tuple[float, float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Printed page to BGR uint16 levels, each halved by area averaging, with its pixel-to-mm matrix."""
    bgr = cv2.cvtColor(
        np.asarray(refl_rgb, np.float32), cv2.COLOR_RGB2BGR
    )  # in-place arithmetic: 12 MP pages are large
    np.multiply(bgr, 65535.0, out=bgr)
    np.add(bgr, 0.5, out=bgr)
    np.clip(bgr, 0, 65535, out=bgr)
    img: np.ndarray = bgr.astype(np.uint16)
    sx, sy = size_mm[0] / img.shape[1], size_mm[1] / img.shape[0]
    levels = []
    while True:
        levels.append((img, np.array([[sx, 0, 0.5 * sx], [0, sy, 0.5 * sy], [0, 0, 1.0]])))
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        if min(h, w) < 128:
            return levels
        img = cv2.resize(img[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        sx, sy = 2 * sx, 2 * sy


def focal_px(width: int, height: int) -> float:
    """Focal length in pixels for ``DIAGONAL_FOV_DEG``."""
    return 0.5 * math.hypot(width, height) / math.tan(math.radians(DIAGONAL_FOV_DEG) / 2)


def page_homography(p: ch.ChannelParams, size_mm: tuple[float, float], frame_wh: tuple[int, int]) -> np.ndarray:
    """Homography from page millimetres (top-left origin, y down) to frame pixels (pixel centres at integers).

    The distance makes the untilted sheet ``sheet_fill`` of the frame height; ``centre_x/y``
    place it within the room the frame leaves (the sheet stays in view when it fits).
    """
    (w, h), (fw, fh) = size_mm, frame_wh
    f = focal_px(fw, fh)
    h0 = ch.translation(fw / 2 - 0.5, fh / 2 - 0.5) @ ch.plane_homography(
        w / 2, h / 2, p.tilt_deg, p.tilt_axis_deg, p.rotation_deg, f * h / (p.sheet_fill * fh), f
    )
    c = cv2.perspectiveTransform(np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), h0)[0]
    shift = []
    for axis, size, unit in ((0, fw, p.centre_x), (1, fh, p.centre_y)):
        lo, hi = -c[:, axis].min(), size - 1 - c[:, axis].max()
        shift.append(lo + unit * (hi - lo) if lo <= hi else (lo + hi) / 2)
    out: np.ndarray = ch.translation(*shift) @ h0
    return out


def region_homography(
    p: ch.ChannelParams, region_mm: tuple[float, float, float, float], frame_wh: tuple[int, int]
) -> np.ndarray:
    """Page millimetres to frame pixels for a camera close up on ``region_mm`` = (x, y, w, h) of the page.

    The region takes the place of the sheet in :func:`page_homography` (``sheet_fill`` of the frame,
    along its limiting side), and the rest of the page runs out of the frame. A person framing a pair
    keeps its markers in view: when the rotation or tilt would take the region's corners out of the
    frame, the camera is held further back until they fit.
    """
    x, y, w, h = region_mm
    fw, fh = frame_wh
    fill = p.sheet_fill * min(1.0, (fw / fh) / (w / h))
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
    for _ in range(3):
        hom = page_homography(replace(p, sheet_fill=fill), (w, h), frame_wh)
        c = cv2.perspectiveTransform(corners, hom)[0]
        span = c.max(axis=0) - c.min(axis=0)
        shrink = min(1.0, 0.98 * (fw - 1) / span[0], 0.98 * (fh - 1) / span[1])
        if shrink >= 1.0:
            break
        fill *= shrink
    out: np.ndarray = hom @ ch.translation(-x, -y)
    return out


CLOSE_UP_OVERSAMPLING = 1.25  # raster px per frame px in close-ups (600 dpi A4 rasters take 1.3 GB; 400 dpi 0.6 GB)


def region_dpi(profile: ChannelProfile, region_mm: tuple[float, float], frame_wh: tuple[int, int]) -> float:
    """Raster dpi for close-up views of ``region_mm`` = (w, h): ``CLOSE_UP_OVERSAMPLING`` x the frame's sampling
    at the largest fill (1080p, one pair of 61 mm tiles: about 405 dpi, 4 raster px per image pixel)."""
    (w, h), (fw, fh) = region_mm, frame_wh
    px_per_mm = profile.scene.sheet_fill[1] * min(fh / h, fw / w)
    return float(min(profile.printer.dpi, max(150.0, CLOSE_UP_OVERSAMPLING * px_per_mm * 25.4)))


def default_dpi(profile: ChannelProfile, sheet_height_mm: float) -> float:
    """Raster dpi: twice the frame's sampling of the sheet at the largest fill, at least 150, at most the printer's."""
    needed = 2.0 * profile.camera.height * profile.scene.sheet_fill[1] / (sheet_height_mm / 25.4)
    return float(min(profile.printer.dpi, max(150.0, needed)))


MAX_PAGE_PIXELS = 200_000_000  # a page raster beyond this (an A3 sheet at 600 dpi is 70 MP) is a broken or hostile PDF


def render_page(pdf_path: Path, page: int, dpi: float) -> np.ndarray:
    """One page of a PDF as an RGB uint8 raster (pypdfium2)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return np.asarray(pdf[page].render(scale=dpi / 72.0).to_pil().convert("RGB"))
    except pdfium.PdfiumError as e:
        raise UserError(f"{pdf_path}: page {page} cannot be rendered ({e}); re-run 'photoproof print'") from None
    finally:
        pdf.close()
