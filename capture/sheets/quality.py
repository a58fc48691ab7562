"""Per-tile quality metrics and the gates that flag an observation as good.

Every observation is stored; the gates only set its ``good`` flag, so a report
can always re-filter with other thresholds. The metrics:

- ``sharpness``: variance of the Laplacian of the grey crop (Pech-Pacheco et al.
  2000, "Diatom autofocusing in brightfield microscopy"), at the model's input
  size, over the inner 80% so that blur across the tile's edge does not count;
- ``tile_px``: side length of the tile in camera pixels (square root of the
  area of its projected quadrilateral);
- ``angle_deg``: angle between the viewing ray to the tile centre and the
  sheet's normal, from the homography and an approximate camera matrix;
- ``clipped``: fraction of (inner) crop pixels with a channel at 0 or 255 (exposure clipping).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from contracts.errors import UserError


@dataclass(frozen=True)
class QualityGates:
    """Thresholds an observation must meet to count as ``good``.

    Attributes:
        min_sharpness: minimum variance of the Laplacian of the grey crop, measured at the tile's camera resolution.
        min_tile_px: minimum tile side in camera pixels.
        max_angle_deg: maximum viewing angle off the sheet's normal.
        max_clipped: maximum fraction of clipped (0 or 255) pixels.
        max_reproj_px: maximum RMS reprojection error of the sheet's homography.
    """

    min_sharpness: float = 15.0
    min_tile_px: float = 80.0
    max_angle_deg: float = 55.0
    max_clipped: float = 0.05
    max_reproj_px: float = 2.5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserError(f"--{name.replace('_', '-')}: expected a number >= 0, got {value!r}")
        if self.max_clipped > 1:
            raise UserError(f"--max-clipped: a fraction in 0..1, got {self.max_clipped}")
        if self.max_angle_deg > 90:
            raise UserError(f"--max-angle-deg: at most 90, got {self.max_angle_deg}")

    def passes(self, m: "TileQuality", reproj_px: float) -> bool:
        """True when the tile's metrics and its sheet's reprojection error pass every gate."""
        return (
            m.sharpness >= self.min_sharpness
            and m.tile_px >= self.min_tile_px
            and m.angle_deg <= self.max_angle_deg
            and m.clipped <= self.max_clipped
            and reproj_px <= self.max_reproj_px
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TileQuality:
    """The measured quality of one tile in one frame."""

    sharpness: float
    tile_px: float
    angle_deg: float
    clipped: float


def _inner(crop: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The crop without a ``margin`` band on each side, where blur mixes in the paper around the tile."""
    h, w = crop.shape[:2]
    my, mx = int(h * margin), int(w * margin)
    return crop[my : h - my, mx : w - mx]


def sharpness(crop_rgb: np.ndarray, native_px: float | None = None) -> float:
    """Variance of the Laplacian of the inner 80% of an ``H x W x 3`` uint8 crop.

    With ``native_px`` (the tile's side in camera pixels) smaller than the crop,
    the crop is first brought back to that size: a crop upsampled from a small
    tile is smooth because the camera is far, not because it is out of focus,
    and the tile-size gate already judges distance.
    """
    grey = cv2.cvtColor(_inner(crop_rgb), cv2.COLOR_RGB2GRAY)
    if native_px is not None and native_px < crop_rgb.shape[0]:
        side = max(8, int(round(native_px * grey.shape[0] / crop_rgb.shape[0])))
        grey = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))  # exact: |3x3 Laplacian of uint8| <= 1020
    return float(std[0, 0]) ** 2


def clipped_fraction(crop_rgb: np.ndarray) -> float:
    """Fraction of pixels with any channel at 0 or 255, in the inner 80% of the crop."""
    inside = cv2.inRange(_inner(crop_rgb), (1, 1, 1), (254, 254, 254))
    return 1.0 - cv2.countNonZero(inside) / float(inside.size)


def quad_side_px(quad: np.ndarray) -> float:
    """Side of the square with the area of a ``4 x 2`` quadrilateral (shoelace formula)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad.tolist()
    area = 0.5 * abs((x0 * y1 - x1 * y0) + (x1 * y2 - x2 * y1) + (x2 * y3 - x3 * y2) + (x3 * y0 - x0 * y3))
    return math.sqrt(area)


DIAGONAL_FOV_DEG = 78.0  # typical of webcams (Logitech C920) and phone main cameras (26 mm equivalent)


def camera_matrix(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """An approximate pinhole camera matrix, principal point at the centre.

    Without ``focal`` (pixels), the focal length gives a 78° diagonal field of view.
    """
    f = float(focal) if focal is not None else 0.5 * math.hypot(width, height) / math.tan(math.radians(DIAGONAL_FOV_DEG / 2))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def sheet_normal(H: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit normal of the sheet's plane in camera coordinates, from ``H = K [r1 r2 t]`` up to scale.

    Zhang (2000), "A flexible new technique for camera calibration", section 2.2.
    """
    B = np.linalg.solve(K, H)
    r1 = B[:, 0] / np.linalg.norm(B[:, 0])
    r2 = B[:, 1] / np.linalg.norm(B[:, 1])
    n = np.cross(r1, r2)
    return n / np.linalg.norm(n)


def viewing_angle_deg(H: np.ndarray, K: np.ndarray, point_px: tuple[float, float], normal: np.ndarray | None = None) -> float:
    """Angle in degrees between the ray through ``point_px`` and the sheet's normal (0 = head-on)."""
    n = sheet_normal(H, K) if normal is None else normal
    ray = np.array([(point_px[0] - K[0, 2]) / K[0, 0], (point_px[1] - K[1, 2]) / K[1, 1], 1.0])
    c = abs(float(np.dot(n, ray))) / float(np.linalg.norm(ray))
    return math.degrees(math.acos(min(1.0, c)))


def measure(crop_rgb: np.ndarray, quad_px: np.ndarray, H: np.ndarray, K: np.ndarray, normal: np.ndarray | None = None) -> TileQuality:
    """All four metrics of one tile: its crop, its quadrilateral in the frame, the sheet homography.

    ``normal`` (from :func:`sheet_normal`) saves recomputing it for every tile of a sheet.
    """
    centre = quad_px.mean(axis=0)
    side = quad_side_px(quad_px)
    return TileQuality(
        sharpness=sharpness(crop_rgb, side),
        tile_px=side,
        angle_deg=viewing_angle_deg(H, K, (float(centre[0]), float(centre[1])), normal),
        clipped=clipped_fraction(crop_rgb),
    )
