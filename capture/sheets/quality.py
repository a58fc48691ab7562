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
- ``clipped``: fraction of (inner) crop pixels with a channel at 0 or 255 (exposure clipping)
  where the digital image is mid-tone (every channel within ``MIDTONE_MARGIN`` of neither
  end, :func:`midtone_mask`): a photo's own white background reaching paper white and
  clipping loses nothing, and must not keep the photo out of every measurement.

The size and angle gates follow from the model: :meth:`QualityGates.for_model`
asks for a tile side of at least ``MIN_TILE_FRACTION`` of the model's input size
and a view within ``MAX_ANGLE_DEG``, the limits measured by ``bench/gates.py``.
A clean tile and its adversarial twin on the same sheet are judged together
(:func:`judge_pairs`): both count, or neither does, so no gate can prefer the
perturbed image (a noisy adversarial tile has a higher Laplacian variance than
its clean twin, and would otherwise pass the sharpness gate more often).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from contracts.errors import UserError

# Measured by bench/gates.py (docs/physical-fidelity.md, "Gates"): the smallest tile side, as a
# fraction of the model's input size, and the steepest view at which clean top-1 stays within a
# few points of digital for lite0, lite1 and lite2 on the labelled sample photos.
MIN_TILE_FRACTION = 0.75
MAX_ANGLE_DEG = 50.0


@dataclass(frozen=True)
class QualityGates:
    """Thresholds an observation must meet to count as ``good``.

    Attributes:
        min_sharpness: minimum variance of the Laplacian of the grey crop, measured at the tile's camera resolution.
        min_tile_px: minimum tile side in camera pixels.
        max_angle_deg: maximum viewing angle off the sheet's normal.
        max_clipped: maximum fraction of pixels clipped (0 or 255) where the digital image is mid-tone.
        max_reproj_px: maximum RMS reprojection error of the sheet's homography.
    """

    min_sharpness: float = 15.0
    min_tile_px: float = 168.0  # MIN_TILE_FRACTION x 224 (lite0); for_model() sets it from the model
    max_angle_deg: float = MAX_ANGLE_DEG
    max_clipped: float = 0.05
    max_reproj_px: float = 2.5
    model: str = ""  # the model the size gate was set for (named in the hints)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "model":
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserError(f"--{name.replace('_', '-')}: expected a number >= 0, got {value!r}")
        if self.max_clipped > 1:
            raise UserError(f"--max-clipped: a fraction in 0..1, got {self.max_clipped}")
        if self.max_angle_deg > 90:
            raise UserError(f"--max-angle-deg: at most 90, got {self.max_angle_deg}")

    @classmethod
    def for_model(cls, input_size: int, model: str = "", **overrides: Any) -> QualityGates:
        """Gates for a model of ``input_size``: tile side >= ``MIN_TILE_FRACTION`` x input size; ``None`` overrides are
        ignored.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        given.setdefault("min_tile_px", float(min_tile_px_for(input_size)))
        return cls(model=model, **given)

    def failures(self, m: TileQuality, reproj_px: float) -> list[str]:
        """The gates the tile fails, by name: ``size``, ``angle``, ``sharpness``, ``clipped``, ``reproj``."""
        out = []
        if m.tile_px < self.min_tile_px:
            out.append("size")
        if m.angle_deg > self.max_angle_deg:
            out.append("angle")
        if m.sharpness < self.min_sharpness:
            out.append("sharpness")
        if m.clipped > self.max_clipped:
            out.append("clipped")
        if reproj_px > self.max_reproj_px:
            out.append("reproj")
        return out

    def passes(self, m: TileQuality, reproj_px: float) -> bool:
        """True when the tile's metrics and its sheet's reprojection error pass every gate."""
        return not self.failures(m, reproj_px)

    def hint(self, gate: str, value: float) -> str:
        """What a failing gate means and what to do, e.g. ``tiles 98 px, lite2 needs >= 195: move closer or print bigger
        tiles``.
        """
        who = f"{self.model} needs" if self.model else "needs"
        if gate == "size":
            return f"tiles {value:.0f} px, {who} >= {self.min_tile_px:.0f}: move closer or print bigger tiles"
        if gate == "angle":
            return (
                f"view {value:.0f}° off the sheet, max {self.max_angle_deg:.0f}°: hold the camera square to the sheet"
            )
        if gate == "sharpness":
            return f"blurred (sharpness {value:.0f} < {self.min_sharpness:g}): hold still and let the camera focus"
        if gate == "clipped":
            return (
                f"{100 * value:.0f}% clipped pixels, max {100 * self.max_clipped:.0f}%: avoid glare, lower the exposure"
            )
        if gate == "reproj":
            return f"markers misfit by {value:.1f} px, max {self.max_reproj_px:g}: flatten the sheet"
        if gate == "pair":
            return "a tile's pair partner is out of view: keep whole pairs in the frame"
        return gate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TileQuality:
    """The measured quality of one tile in one frame."""

    sharpness: float
    tile_px: float
    angle_deg: float
    clipped: float


class _Judged(Protocol):
    tile: Any
    good: bool
    fail: list[str]


def judge_pairs(crops: Sequence[_Judged], sheet_tiles: Sequence[Any]) -> None:
    """Judge each clean/adversarial pair of one sheet in one frame together, in place.

    A tile whose item has both roles on the sheet counts only when both tiles are in
    view and both pass every gate; then both count. So the good flag never depends on
    the perturbation, and the clean and adversarial tiles of an item are counted in the
    same frames. Tiles without a partner on the sheet (adversarial-only layouts) keep
    their own verdict.
    """
    roles: dict[str, set[str]] = defaultdict(set)
    for t in sheet_tiles:
        roles[t.item].add(t.role)
    seen: dict[str, list[_Judged]] = defaultdict(list)
    for c in crops:
        seen[c.tile.item].append(c)
    for item, cs in seen.items():
        if len(roles[item]) < 2:
            continue
        fails = sorted({f for c in cs for f in c.fail})
        if len({c.tile.role for c in cs}) < len(roles[item]):
            fails.append("pair")
        for c in cs:
            c.good, c.fail = not fails, list(fails)


def min_tile_px_for(input_size: int) -> int:
    """The smallest tile side, in camera pixels, that the size gate accepts for a model of ``input_size``."""
    return math.ceil(MIN_TILE_FRACTION * input_size)


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


MIDTONE_MARGIN = (
    16  # a digital pixel this close to 0 or 255 in some channel may clip in the camera without losing anything
)


def midtone_mask(reference_rgb: np.ndarray) -> np.ndarray:
    """255 where every channel of the digital image (at the crop's size) lies in ``[16, 239]``, else 0."""
    lo, hi = MIDTONE_MARGIN, 255 - MIDTONE_MARGIN
    return cv2.inRange(reference_rgb, (lo, lo, lo), (hi, hi, hi))


def clipped_fraction(crop_rgb: np.ndarray, midtone: np.ndarray | None = None) -> float:
    """Fraction of the inner 80% of the crop with any channel at 0 or 255.

    With ``midtone`` (:func:`midtone_mask` of the digital image), only pixels that are
    mid-tone digitally count, still as a fraction of the whole inner crop.
    """
    clipped = cv2.bitwise_not(cv2.inRange(_inner(crop_rgb), (1, 1, 1), (254, 254, 254)))
    if midtone is not None:
        clipped = cv2.bitwise_and(clipped, _inner(midtone))
    return cv2.countNonZero(clipped) / float(clipped.size)


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
    f = (
        float(focal)
        if focal is not None
        else 0.5 * math.hypot(width, height) / math.tan(math.radians(DIAGONAL_FOV_DEG / 2))
    )
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


def viewing_angle_deg(
    H: np.ndarray, K: np.ndarray, point_px: tuple[float, float], normal: np.ndarray | None = None
) -> float:
    """Angle in degrees between the ray through ``point_px`` and the sheet's normal (0 = head-on)."""
    n = sheet_normal(H, K) if normal is None else normal
    ray = np.array([(point_px[0] - K[0, 2]) / K[0, 0], (point_px[1] - K[1, 2]) / K[1, 1], 1.0])
    c = abs(float(np.dot(n, ray))) / float(np.linalg.norm(ray))
    return math.degrees(math.acos(min(1.0, c)))


def measure(
    crop_rgb: np.ndarray,
    quad_px: np.ndarray,
    H: np.ndarray,
    K: np.ndarray,
    normal: np.ndarray | None = None,
    midtone: np.ndarray | None = None,
) -> TileQuality:
    """All four metrics of one tile: its crop, its quadrilateral in the frame, the sheet homography.

    ``normal`` (from :func:`sheet_normal`) saves recomputing it for every tile of a sheet;
    ``midtone`` (:func:`midtone_mask` of the tile's digital image) limits ``clipped`` to
    what the camera lost.
    """
    centre = quad_px.mean(axis=0)
    side = quad_side_px(quad_px)
    return TileQuality(
        sharpness=sharpness(crop_rgb, side),
        tile_px=side,
        angle_deg=viewing_angle_deg(H, K, (float(centre[0]), float(centre[1])), normal),
        clipped=clipped_fraction(crop_rgb, midtone),
    )
