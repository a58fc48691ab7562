"""A tile as a camera resolves it: its size in camera pixels, its viewing angle, the camera's blur.

The camera samples a printed tile on its own pixel grid: a tile ``N`` pixels wide
keeps at most ``N`` samples across, whatever the model's input size, and a tile
seen at ``theta`` off the sheet's normal keeps about ``N cos(theta)`` along the tilt
direction. Capture then warps the tile back to the model's input size (bilinear,
``capture.sheets.detect``), so the model sees an upsampled, blurred image.

:func:`photograph_tile` reproduces exactly that path on a digital image: perspective
view at ``angle_deg`` of a tile ``tile_px`` camera pixels wide (supersampled),
a Gaussian camera blur of ``blur_sigma_px`` camera pixels, integration over the
camera's pixels, then rectification back to the model's input size. It is the
degradation behind the gate measurements (``bench/gates.py``), the sweep's
``resolution`` and ``angle`` transforms, and the tests of the gates. Blur and pixel
integration follow the usual imaging model (image = PSF * scene, sampled on the
pixel grid; e.g. Szeliski, *Computer Vision*, 2nd ed., section 2.3).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from contracts.profile import TILE_VIEW_DEG

SUPERSAMPLE = 4  # the tile is rendered at 4x the camera's pixel grid, then area-averaged onto it


def tile_view_homography(tile_px: float, angle_deg: float, axis_deg: float = 0.0, src_px: int = 1) -> np.ndarray:
    """Homography from a ``src_px``-pixel tile image to camera pixels (tile centred at ``(c, c)``).

    The tile is a plane seen at ``angle_deg`` off its normal about an in-plane axis at
    ``axis_deg``, from the distance at which, seen head-on, it is ``tile_px`` camera
    pixels wide and subtends ``TILE_VIEW_DEG`` (so tilt adds the mild keystone of a
    real view as well as the foreshortening).
    """
    f = (tile_px / 2) / math.tan(math.radians(TILE_VIEW_DEG) / 2)
    s = tile_px / src_px  # tile-image pixels -> plane units (camera pixels at the head-on distance)
    t, a = math.radians(angle_deg), math.radians(axis_deg)
    axis = np.array([math.cos(a), math.sin(a), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) * math.cos(t) + math.sin(t) * k + (1 - math.cos(t)) * np.outer(axis, axis)
    c_src = (src_px - 1) / 2
    plane = np.array([[s, 0, -s * c_src], [0, s, -s * c_src], [0, 0, 1.0]])  # tile pixels -> centred plane
    ext = np.column_stack([rot[:, 0], rot[:, 1], [0.0, 0.0, f]])
    h = np.diag([f, f, 1.0]) @ ext @ plane
    return np.asarray(h / h[2, 2], np.float64)


def photograph_tile(
    img_rgb: np.ndarray,
    tile_px: float,
    angle_deg: float = 0.0,
    blur_sigma_px: float = 0.6,
    axis_deg: float = 0.0,
    out_size: int | None = None,
    paper: int = 255,
) -> np.ndarray:
    """The tile ``img_rgb`` (S x S x 3 uint8) as capture hands it to the model: uint8, ``out_size`` square.

    Args:
        img_rgb: the printed image.
        tile_px: the tile's side in camera pixels, seen head-on.
        angle_deg: viewing angle off the sheet's normal (0: head-on).
        blur_sigma_px: std of the camera's Gaussian blur, in camera pixels.
        axis_deg: direction of the tilt axis in the tile's plane.
        out_size: the model's input size (default: the image's side).
        paper: grey level around the tile.
    """
    img = np.asarray(img_rgb)
    if img.ndim != 3 or img.shape[0] != img.shape[1] or img.shape[2] != 3:
        raise ValueError(f"img_rgb: expected S x S x 3, got shape {img.shape}")
    if not (tile_px > 0 and math.isfinite(tile_px)):
        raise ValueError(f"tile_px: expected a positive size, got {tile_px}")
    if not 0 <= angle_deg < 89:
        raise ValueError(f"angle_deg: expected 0 <= angle < 89, got {angle_deg}")
    src = img.shape[0]
    out = int(out_size or src)
    h = tile_view_homography(tile_px, angle_deg, axis_deg, src)
    corners = cv2.perspectiveTransform(
        np.array([[[0, 0], [src - 1, 0], [src - 1, src - 1], [0, src - 1]]], np.float64), h
    )[0]
    margin = 3 + math.ceil(3 * blur_sigma_px)
    lo = np.floor(corners.min(axis=0)) - margin
    size = (np.ceil(corners.max(axis=0)) + margin - lo + 1).astype(int)
    to_canvas = np.array([[1.0, 0, -lo[0]], [0, 1.0, -lo[1]], [0, 0, 1.0]])
    k = SUPERSAMPLE
    fine = np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1.0]])  # camera px -> supersampled px (centres)
    m = fine @ to_canvas @ h
    # The printed image is continuous: pre-filter it when the view shrinks it below the fine grid.
    shrink = src / (tile_px * k)
    pre = cv2.GaussianBlur(img, (0, 0), 0.5 * shrink) if shrink > 1 else img
    hi: np.ndarray = cv2.warpPerspective(
        pre,
        m,
        (int(size[0]) * k, int(size[1]) * k),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(paper, paper, paper),
    ).astype(np.float32)
    if blur_sigma_px > 0:
        hi = cv2.GaussianBlur(hi, (0, 0), blur_sigma_px * k)
    cam: np.ndarray = cv2.resize(
        hi, (int(size[0]), int(size[1])), interpolation=cv2.INTER_AREA
    )  # integration over camera pixels
    cam = np.clip(np.round(cam), 0, 255).astype(np.uint8)
    # Rectify as capture does: bilinear from the camera frame, supersampled when the tile is larger than the crop.
    rk = int(min(4, max(1, round(tile_px / out))))
    big = out * rk
    back = (
        to_canvas
        @ h
        @ np.array([[src / big, 0, 0.5 * src / big - 0.5], [0, src / big, 0.5 * src / big - 0.5], [0, 0, 1.0]])
    )
    crop = cv2.warpPerspective(
        cam, back, (big, big), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    if rk > 1:
        crop = cv2.resize(crop, (out, out), interpolation=cv2.INTER_AREA)
    return crop
