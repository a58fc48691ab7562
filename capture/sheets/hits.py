"""What sheet finding yields: a sheet found in a frame, and a tile cut out of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capture.sheets.quality import TileQuality
from contracts.layout import Sheet, Tile


@dataclass
class SheetHit:
    """One sheet found in a frame.

    Attributes:
        sheet: the layout's sheet.
        H: ``3 x 3`` homography from sheet millimetres to frame pixels.
        marker_ids: the markers whose corners fitted ``H``.
        reproj_px: RMS reprojection error of those corners, in pixels.
        scale_ratio: marker size relative to marker spacing, measured over layout (1.0 = as laid out).
        scale_warning: the printed geometry disagrees with ``layout.json`` (see ``scale_ratio``).
        qr_verified: the sheet's QR code was read and names this batch (``None``: not read).
        layout_id: the layout (print) the sheet was read with (``contracts.layout.layout_id``).
        marker_px: the corners (``4 x 2`` frame px) of each marker in ``marker_ids``.
    """

    sheet: Sheet
    H: np.ndarray
    marker_ids: list[int]
    reproj_px: float
    scale_ratio: float = 1.0
    scale_warning: bool = False
    qr_verified: bool | None = None
    layout_id: str = ""
    marker_px: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class TileCrop:
    """One tile cut out of a frame, with its quality (``capture.sheets.quality``) and whether it passed the gates."""

    tile: Tile
    sheet_id: str
    crop_rgb: np.ndarray  # S x S x 3 uint8 RGB
    quad_px: np.ndarray  # 4 x 2 frame pixels, TL TR BR BL
    quality: TileQuality
    good: bool
    reproj_px: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    fail: list[str] = field(default_factory=list)  # the gates it (or its pair partner) failed
    layout_id: str = ""  # the layout (print) its sheet was read with
