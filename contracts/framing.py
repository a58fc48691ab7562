"""How many camera pixels a printed tile gets when the sheet fills the frame (shared by print, capture and craft).

``photoproof print --frame-size WxH`` lays sheets out so that tiles reach the size where clean
accuracy levels off, ``photoproof capture`` warns when the camera it is given cannot
reach it, and ``photoproof craft --eot`` samples the tile's camera resolution of the default
layout: all use these numbers (``printouts.camera`` explains where they come from). The pure
geometry of a dense sheet's block (``printouts.blocks``) lives here so that craft's default
EOT range can follow the default print layout without importing printouts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.layout import Layout
    from contracts.profile import ChannelProfile

FRAME_FILL = 0.85  # the sheet fills 85 % of the frame along its limiting side (README: "fill most of the frame")
# Where clean accuracy through the whole office-webcam channel levels off, as a fraction of the model's
# input size (bench/stages.py --curve; printouts.camera).
PLATEAU_TILE_FRACTION = 1.75


# The gate measures a tile's projected area, which shrinks as sqrt(cos view): a tile seen 35 deg off
# its normal (a tilted sheet, or a tile near the edge of a wide-angle frame) keeps 0.9 of its side.
VIEW_MARGIN = 1.1
# The range of tile sides that ``craft --eot-tile-px`` should cover for a layout, as fractions of its ``tile_px``
# (at 85 % fill): a sheet filling 77-98 % of the frame.
EOT_RANGE = (0.9, 1.15)

# A dense sheet's block (printouts.blocks): a pair, its gutters' halves and its four markers' quiet zones.
MARKER_MODULES = 6  # 4x4 data bits + a one-module black border
PAIR_GAP_MM = 3.0  # between the clean and adversarial tile of one item
GUTTER_MM = 10.0  # white gutter between pairs (and around the grid): a marker and its quiet zone fit in it
BLOCK_MARKER_MM = 7.5  # 6 modules of 1.25 mm; the quiet zone is one module on each side
# The default print layout (``photoproof print`` with no options): a dense A4 sheet, landscape, of 2 x 2 pairs
# of 61 mm tiles (60 mm grown while the count stays the same) for capture's default target, lite2 (260 px
# input). printouts.camera.dense_plan chooses them; tests/test_defaults_fit.py checks that they agree.
DEFAULT_PAPER_MM = (297.0, 210.0)
DEFAULT_TILE_MM = 61.0
DEFAULT_INPUT_SIZE = 260

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


def block_size_mm(tile_w: float, aspect: float = 1.0) -> tuple[float, float]:
    """Width and height of one block (a pair, its gutters' halves and its markers' quiet zones), in mm."""
    q = BLOCK_MARKER_MM / MARKER_MODULES
    side = GUTTER_MM + BLOCK_MARKER_MM + 2 * q
    return 2 * tile_w + PAIR_GAP_MM + side, tile_w * aspect + side


def default_layout_tile_px(camera: tuple[int, int], input_size: int = DEFAULT_INPUT_SIZE) -> float:
    """The tile's side in camera pixels on the default print layout for ``camera`` (``printouts.camera.dense_plan``).

    The whole sheet framed at ``FRAME_FILL`` when that gives tiles ``VIEW_MARGIN x`` the plateau
    size (a 12 MP still), otherwise one block filling ``FRAME_FILL`` of the frame.
    """
    (w, h), (pw, ph) = camera, DEFAULT_PAPER_MM
    tile = DEFAULT_TILE_MM
    ppm = FRAME_FILL * min(w / pw, h / ph)
    if tile * ppm < VIEW_MARGIN * math.ceil(PLATEAU_TILE_FRACTION * input_size):
        bw, bh = block_size_mm(tile)
        ppm = FRAME_FILL * min(w / bw, h / bh)
    return round(tile * ppm, 1)


def eot_tile_px(tile_px: float) -> tuple[float, float]:
    """The range of tile sides (camera pixels) ``craft --eot-tile-px`` should cover for tiles of ``tile_px``."""
    return EOT_RANGE[0] * tile_px, EOT_RANGE[1] * tile_px


REFERENCE_TILE_MM = 60.0  # the printouts' default tile width
REFERENCE_SHEET_MM = 297.0  # the long side of A4, upright in the frame by default


def tile_px_range(
    profile: ChannelProfile, tile_mm: float = REFERENCE_TILE_MM, sheet_mm: float = REFERENCE_SHEET_MM
) -> tuple[float, float]:
    """The tile's side in camera pixels over the profile's whole-sheet framing: ``sheet_fill x frame height x tile /
    sheet``.

    The simulated camera frames a classic sheet so that its height is ``sheet_fill`` of the frame's,
    so a ``tile_mm`` tile on a sheet ``sheet_mm`` tall spans this many pixels head-on; the
    differentiable twin samples the tile's camera resolution from this range by default. Craft's
    EOT uses :func:`default_tile_px_range` (the default print layout) instead.
    """
    lo, hi = profile.scene.sheet_fill
    k = profile.camera.height * tile_mm / sheet_mm
    return float(lo * k), float(hi * k)


def default_tile_px_range(profile: ChannelProfile) -> tuple[float, float]:
    """The tile's side in camera pixels that ``craft --eot`` samples by default: ``EOT_RANGE`` around the tiles of
    the default print layout (``photoproof print`` with no options) at the profile's frame size.

    At 1920x1080 one pair of 61 mm tiles and its markers fill the frame: about 687 px, so 618-790
    (:func:`default_layout_tile_px`; ``printouts.camera.eot_mismatch`` stays quiet).
    """
    lo, hi = eot_tile_px(default_layout_tile_px((profile.camera.width, profile.camera.height)))
    return round(lo, 1), round(hi, 1)
