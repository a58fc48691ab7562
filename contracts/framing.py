"""How many camera pixels a printed tile gets when the sheet fills the frame (shared by print and capture).

``photoproof print --frame-size WxH`` lays sheets out so that tiles reach the size where clean
accuracy levels off, and ``photoproof capture`` warns when the camera it is given cannot
reach it: both use these numbers (``printouts.camera`` explains where they come from).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.layout import Layout

FRAME_FILL = 0.85  # the sheet fills 85 % of the frame along its limiting side (README: "fill most of the frame")
# Where clean accuracy through the whole office-webcam channel levels off, as a fraction of the model's
# input size (bench/stages.py --curve; printouts.camera).
PLATEAU_TILE_FRACTION = 1.75


DIAGONAL_FOV_DEG = 78.0  # a webcam's diagonal field of view (Logitech C920 datasheet; channel.page uses the same)


def focal_px(camera: tuple[int, int]) -> float:
    """Focal length in pixels of a ``DIAGONAL_FOV_DEG`` lens at frame size ``camera``."""
    return 0.5 * math.hypot(*camera) / math.tan(math.radians(DIAGONAL_FOV_DEG) / 2)


def px_per_mm(camera: tuple[int, int], paper_mm: tuple[float, float], fill: float = FRAME_FILL) -> float:
    """Camera pixels per millimetre of paper when the sheet fills ``fill`` of the frame along its limiting side.

    The better of the two ways to hold the camera (the sheet's long side along the frame's long side, or across).
    """
    (w, h), (pw, ph) = camera, paper_mm
    return fill * max(min(w / pw, h / ph), min(w / ph, h / pw))


def tile_px_at_fill(camera: tuple[int, int], paper_mm: tuple[float, float], tile_mm: float) -> float:
    """The side in camera pixels of a ``tile_mm`` tile when the sheet fills ``FRAME_FILL`` of the frame."""
    return tile_mm * px_per_mm(camera, paper_mm)


def framed_mm(layout: Layout) -> tuple[float, float]:
    """What fills the frame when ``layout`` is read as printed: one pair and its four markers on a dense sheet
    (``extra.block_mm``, ``printouts.blocks``), otherwise the whole sheet (mm)."""
    block = layout.extra.get("block_mm")
    if layout.dense and isinstance(block, list) and len(block) == 2:
        return float(block[0]), float(block[1])
    w, h = layout.sheets[0].size_mm
    return float(w), float(h)
