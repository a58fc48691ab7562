"""Where things go on a sheet, in millimetres (origin top-left, y down).

A sheet is framed by eight ArUco markers: one in each corner and two more on
each side edge, so that the page is still found with a corner covered or out of
frame. Between the top corner markers sits the header and the 100 mm ruler;
between the bottom ones the calibration strip and, at the right, the QR code,
which grows upwards into whatever height the tiles leave free (up to 36 mm).
Tiles fill the region inside the frame.

::

    +----------------------------------------------+
    | [M]  header / ruler / "print at 100%"    [M] |
    |                                              |
    | [M]   [clean][adv]   [clean][adv] ...    [M] |
    |         caption        caption               |
    | [M]   ...                                [M] |
    |                                   +----+     |
    |                                   |    |     |
    | [M]  grey ramp | colours | detail | QR | [M] |
    +----------------------------------------------+
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from contracts.errors import UserError
from contracts.framing import MARKER_MODULES, PAIR_GAP_MM  # shared with a dense sheet's block geometry

# Paper sizes in mm (ISO 216 A4; US Letter is 8.5 x 11 in).
PAPERS: dict[str, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "letter": (215.9, 279.4),
    "a4-landscape": (297.0, 210.0),
    "letter-landscape": (279.4, 215.9),
}
PAPER_NAMES = {
    "a4": "A4",
    "letter": "US Letter",
    "a4-landscape": "A4 landscape",
    "letter-landscape": "US Letter landscape",
}
LAYOUTS = ("pairs", "adversarial-only")

MARGIN_MM = 8.0  # paper edge to the markers: outside most printers' unprintable border
MARKER_MM = 18.0  # side of a marker's black square
QUIET_MM = MARKER_MM / MARKER_MODULES  # white quiet zone: one module around each marker
MARKERS_PER_SHEET = 8
CAPTION_MM = 6.0  # below each tile: a 1 mm gap and two lines of text
UNIT_GAP_MM = {"pairs": 8.0, "adversarial-only": 4.0}  # between items side by side
ROW_GAP_MM = 3.0
MIN_TILE_MM = 10.0
BAND_INSET_MM = 1.0  # header and footer keep this much more than the markers' quiet zone
QR_MAX_MM = 36.0  # the QR code's side when the tiles leave room (30 mm and more reads reliably at 720p)
QR_GAP_MM = 4.0  # white paper between the QR code and the tiles above it (the marker beside it is as far)


@dataclass(frozen=True)
class Frame:
    """The fixed parts of one sheet: page, marker squares and the free regions."""

    width: float
    height: float
    markers: tuple[tuple[float, float], ...]  # top-left corner of each marker, in id order
    content: tuple[float, float, float, float]  # x, y, w, h of the tile region
    header: tuple[float, float, float, float]  # band between the top corner markers
    footer: tuple[float, float, float, float]  # band between the bottom corner markers


@dataclass(frozen=True)
class Grid:
    """How tiles repeat inside the content region."""

    units_per_row: int
    rows: int
    unit_w: float  # one item: a pair of tiles or a single tile
    row_h: float  # tile height plus caption
    origin: tuple[float, float]  # top-left of the first unit

    @property
    def units_per_sheet(self) -> int:
        return self.units_per_row * self.rows


def paper_size(paper: str) -> tuple[float, float]:
    """Width and height in mm of ``paper`` (``a4`` or ``letter``)."""
    key = str(paper).strip().lower()
    if key not in PAPERS:
        raise UserError(f"--paper {paper!r}: unknown paper size; choose one of {', '.join(PAPERS)}")
    return PAPERS[key]


def frame(paper: str) -> Frame:
    """Marker positions and the header, footer and content regions of ``paper``."""
    w, h = paper_size(paper)
    left, right = MARGIN_MM, w - MARGIN_MM - MARKER_MM
    top, bottom = MARGIN_MM, h - MARGIN_MM - MARKER_MM
    step = (bottom - top) / 3.0
    # ids in this order: the four corners (TL, TR, BR, BL), then the side edges
    markers = (
        (left, top),
        (right, top),
        (right, bottom),
        (left, bottom),
        (left, top + step),
        (left, top + 2 * step),
        (right, top + step),
        (right, top + 2 * step),
    )
    inner_x = MARGIN_MM + MARKER_MM + QUIET_MM
    inner_w = w - 2 * inner_x
    inner_y = MARGIN_MM + MARKER_MM + QUIET_MM
    content = (inner_x, inner_y, inner_w, h - 2 * inner_y)
    band_x, band_w = inner_x + BAND_INSET_MM, inner_w - 2 * BAND_INSET_MM
    header = (band_x, MARGIN_MM, band_w, MARKER_MM)
    footer = (band_x, bottom, band_w, MARKER_MM)
    return Frame(w, h, markers, content, header, footer)


def _unit_width(tile_mm: float, layout: str) -> float:
    return 2 * tile_mm + PAIR_GAP_MM if layout == "pairs" else tile_mm


def max_tile_mm(paper: str, layout: str, aspect: float = 1.0) -> float:
    """The largest tile width that fits one item on a sheet (``aspect`` = height / width)."""
    x, y, cw, ch = frame(paper).content
    by_width = (cw - PAIR_GAP_MM) / 2 if layout == "pairs" else cw
    by_height = (ch - CAPTION_MM) / aspect
    return math.floor(min(by_width, by_height) * 10) / 10


def grid(paper: str, tile_mm: float, layout: str, aspect: float = 1.0) -> Grid:
    """Place as many units as fit, centred in the content region.

    Raises:
        UserError: naming ``--tile-mm`` and the largest size that fits.
    """
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    x, y, cw, ch = frame(paper).content
    unit_w = _unit_width(tile_mm, layout)
    row_h = tile_mm * aspect + CAPTION_MM
    gap = UNIT_GAP_MM[layout]
    per_row = int((cw + gap) // (unit_w + gap)) if unit_w <= cw else 0
    rows = int((ch + ROW_GAP_MM) // (row_h + ROW_GAP_MM)) if row_h <= ch else 0
    if per_row < 1 or rows < 1:
        biggest = max_tile_mm(paper, layout, aspect)
        raise UserError(
            f"--tile-mm {tile_mm:g}: a tile this size does not fit on {paper} paper with --layout {layout}; "
            f"the maximum that fits is {biggest:g} mm (or use larger paper)"
        )
    used_w = per_row * unit_w + (per_row - 1) * gap
    used_h = rows * row_h + (rows - 1) * ROW_GAP_MM
    origin = (x + (cw - used_w) / 2, y + (ch - used_h) / 2)
    return Grid(per_row, rows, unit_w, row_h, origin)


def unit_origin(g: Grid, index: int, layout: str) -> tuple[float, float]:
    """Top-left corner of the ``index``-th unit on a sheet (row-major)."""
    r, c = divmod(index, g.units_per_row)
    gap = UNIT_GAP_MM[layout]
    return g.origin[0] + c * (g.unit_w + gap), g.origin[1] + r * (g.row_h + ROW_GAP_MM)


def place_qr(fr: Frame, g: Grid, left: float) -> tuple[list[float], Grid]:
    """The QR code's square ``[x, y, side, side]`` and the tile grid moved clear of it.

    The code sits at the right end of the footer, its bottom edge level with the
    bottom markers', its left edge no further left than ``left`` (where the
    calibration strip ends, plus a gap). It grows upwards, up to ``QR_MAX_MM``,
    into room the tiles leave free: below the grid (the grid is then centred
    in what is left above the code) or, when that gives more, beside it (the grid
    then moves to the left edge of the content region). It never costs a tile, so
    with tiles that fill the page it can be smaller (17 mm at the least, unless
    the strip is unusually wide).
    """
    fx, fy, fw, fh = fr.footer
    cx, cy, cw, ch = fr.content
    bottom, right = fy + fh, fx + fw
    used_w = cw - 2 * (g.origin[0] - cx)
    used_h = g.rows * g.row_h + (g.rows - 1) * ROW_GAP_MM
    widest = min(QR_MAX_MM, right - left)
    below = math.floor(min(widest, bottom - QR_GAP_MM - cy - used_h) * 2) / 2
    beside = math.floor(min(widest, right - QR_GAP_MM - cx - used_w) * 2) / 2
    if beside > below:
        box = [right - beside, bottom - beside, beside, beside]
        return box, Grid(g.units_per_row, g.rows, g.unit_w, g.row_h, (cx, g.origin[1]))
    box = [right - below, bottom - below, below, below]
    free_bottom = min(cy + ch, box[1] - QR_GAP_MM)
    return box, Grid(g.units_per_row, g.rows, g.unit_w, g.row_h, (g.origin[0], cy + (free_bottom - cy - used_h) / 2))


def marker_corners(x: float, y: float, size: float = MARKER_MM) -> list[list[float]]:
    """Corners of a marker square in ArUco order: TL, TR, BR, BL."""
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size]]
