"""Dense sheets for close-up cameras: every pair framed by its own markers (``print --frame-size``, the default).

A webcam gives a tile enough pixels only from close up, where it sees a part of a sheet, not
its corners. So the pairs sit in a grid of white gutters, and a small ArUco marker sits at
every crossing of two gutters: each pair (its "block") has a marker at each of its four
corners, shared with its neighbours, and is found on its own whenever the camera sees it
with its markers (Garrido-Jurado et al. 2014). The whole sheet is still one plane of known
markers, so a 12 MP still that frames it whole finds every pair at once. Captions sit in the
gutter below their tile, between the markers; the header (title, ruler, note) and the footer
(calibration strip, QR code) keep their places above and below the grid.

::

    +--------------------------------------------+
    |  header / ruler / "print at 100%"          |
    |  m ................ m ................ m   |
    |  : [clean] [adv]    : [adv] [clean]    :   |
    |  m   caption        m   caption        m   |
    |  : [adv] [clean]    : [clean] [adv]    :   |
    |  m ................ m ................ m   |
    |  grey ramp | colours | detail       | QR |  |
    +--------------------------------------------+

A grid of ``C x R`` pairs takes ``(C + 1)(R + 1)`` marker ids (nine for the 2 x 2 of an A4
landscape sheet, against eight per sheet of one pair before).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The block's pure geometry lives in contracts.framing (craft's default EOT range follows it).
from contracts.framing import BLOCK_MARKER_MM, GUTTER_MM
from contracts.framing import block_size_mm as block_size_mm
from printouts import geometry as geo

HEADER_MM = 18.0  # title, 100 mm ruler, "print at 100 %" (as on a classic sheet)
FOOTER_MM = 18.0  # calibration strip and QR code
QR_MM = 18.0  # the footer's QR code: read in whole-sheet views, and from close up when the footer is framed


@dataclass(frozen=True)
class BlockGrid:
    """Where pairs, markers, header and footer go on one dense sheet (mm, origin top-left)."""

    width: float
    height: float
    cols: int
    rows: int
    tile_w: float
    tile_h: float
    origin: tuple[float, float]  # top-left of the first tile row (the first cell's first tile)
    header: tuple[float, float, float, float]
    footer: tuple[float, float, float, float]

    @property
    def units_per_sheet(self) -> int:
        return self.cols * self.rows

    @property
    def units_per_row(self) -> int:  # printouts.plan.clean_on_right reads the grid's width
        return self.cols

    @property
    def cell_w(self) -> float:
        return 2 * self.tile_w + geo.PAIR_GAP_MM

    def unit_origin(self, index: int) -> tuple[float, float]:
        """Top-left corner of the ``index``-th pair's first tile (row-major)."""
        r, c = divmod(index, self.cols)
        return self.origin[0] + c * (self.cell_w + GUTTER_MM), self.origin[1] + r * (self.tile_h + GUTTER_MM)

    def crossing(self, c: int, r: int) -> tuple[float, float]:
        """Top-left of the marker at the crossing left of column ``c`` and above row ``r`` (0..cols, 0..rows)."""
        x = self.origin[0] + c * (self.cell_w + GUTTER_MM) - GUTTER_MM / 2
        y = self.origin[1] + r * (self.tile_h + GUTTER_MM) - GUTTER_MM / 2
        return x - BLOCK_MARKER_MM / 2, y - BLOCK_MARKER_MM / 2

    def block_crossings(self, index: int) -> list[tuple[int, int]]:
        """The four crossings (column, row) around pair ``index``: TL, TR, BR, BL."""
        r, c = divmod(index, self.cols)
        return [(c, r), (c + 1, r), (c + 1, r + 1), (c, r + 1)]


def _fits(paper: str, tile_w: float, aspect: float) -> tuple[int, int]:
    w, h = geo.paper_size(paper)
    free_w = w - 2 * geo.MARGIN_MM - GUTTER_MM
    free_h = h - 2 * geo.MARGIN_MM - HEADER_MM - FOOTER_MM - GUTTER_MM
    cols = int(free_w // (2 * tile_w + geo.PAIR_GAP_MM + GUTTER_MM))
    rows = int(free_h // (tile_w * aspect + GUTTER_MM))
    return cols, rows


def pairs_per_sheet(paper: str, tile_w: float, aspect: float = 1.0) -> int:
    """How many pairs of ``tile_w`` mm tiles a dense sheet of ``paper`` holds (0: none fits)."""
    cols, rows = _fits(paper, tile_w, aspect)
    return max(0, cols) * max(0, rows)


def largest_tile(paper: str, tile_w: float, aspect: float = 1.0) -> float:
    """The largest whole-millimetre tile at least ``tile_w`` that keeps the same number of pairs on a sheet."""
    n = pairs_per_sheet(paper, tile_w, aspect)
    while n and pairs_per_sheet(paper, tile_w + 1, aspect) == n:
        tile_w += 1
    return tile_w


def block_grid(paper: str, tile_w: float, aspect: float = 1.0) -> BlockGrid:
    """The grid of pairs on a dense sheet, centred between the header and the footer.

    Raises:
        UserError (through ``geo.paper_size``): an unknown paper; ``ValueError`` when not one pair fits.
    """
    w, h = geo.paper_size(paper)
    cols, rows = _fits(paper, tile_w, aspect)
    if cols < 1 or rows < 1:
        raise ValueError(f"a {tile_w:g} mm tile pair does not fit a dense {paper} sheet")
    tile_h = tile_w * aspect
    cell_w = 2 * tile_w + geo.PAIR_GAP_MM
    used_w = cols * cell_w + (cols + 1) * GUTTER_MM
    used_h = rows * tile_h + (rows + 1) * GUTTER_MM
    top = geo.MARGIN_MM + HEADER_MM
    free_h = h - 2 * geo.MARGIN_MM - HEADER_MM - FOOTER_MM
    x0 = (w - used_w) / 2 + GUTTER_MM
    y0 = top + (free_h - used_h) / 2 + GUTTER_MM
    band_x = (w - used_w) / 2 + GUTTER_MM / 2 - BLOCK_MARKER_MM / 2
    band_w = used_w - GUTTER_MM + BLOCK_MARKER_MM
    header = (band_x, geo.MARGIN_MM, band_w, HEADER_MM)
    footer = (band_x, h - geo.MARGIN_MM - FOOTER_MM, band_w, FOOTER_MM)
    return BlockGrid(w, h, cols, rows, tile_w, tile_h, (x0, y0), header, footer)


def qr_box(g: BlockGrid) -> list[float]:
    """The footer's QR code: its right end, as tall as the footer."""
    fx, fy, fw, fh = g.footer
    side = math.floor(min(QR_MM, fh) * 2) / 2
    return [fx + fw - side, fy + fh - side, side, side]
