"""A reportlab canvas addressed in millimetres from the page's top-left corner.

``layout.json`` uses millimetres with x to the right and y down; reportlab uses
points with y up. ``MmPage`` does that conversion once, so every drawing module
works in the layout's own coordinates and what is drawn is what is recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
PT_PER_MM = float(mm)


@contextlib.contextmanager
def flate_only() -> Iterator[None]:
    """Store streams Flate-compressed only, without reportlab's ASCII85 layer.

    reportlab reads ``rl_config.useA85`` when it builds image and page streams;
    it is switched off for the duration of one document and then restored.
    """
    old = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = old


def text_width_mm(text: str, size_pt: float, font: str = FONT) -> float:
    """Width of ``text`` set in ``font`` at ``size_pt`` points, in mm."""
    return stringWidth(text, font, size_pt) / PT_PER_MM


class MmPage:
    """Draw on the current page of ``canvas`` in mm, origin top-left, y down."""

    def __init__(self, canvas: Canvas, width_mm: float, height_mm: float) -> None:
        self.canvas = canvas
        self.width_mm = width_mm
        self.height_mm = height_mm

    def _y(self, y_mm: float) -> float:
        return (self.height_mm - y_mm) * PT_PER_MM

    def rect(self, x: float, y: float, w: float, h: float, rgb: Sequence[int] = (0, 0, 0)) -> None:
        """A filled rectangle of sRGB colour ``rgb`` (0..255), no outline."""
        c = self.canvas
        c.setFillColorRGB(*(v / 255.0 for v in rgb))
        c.rect(x * PT_PER_MM, self._y(y + h), w * PT_PER_MM, h * PT_PER_MM, stroke=0, fill=1)

    def modules(self, dark: np.ndarray, x: float, y: float, module: float) -> None:
        """Fill the dark cells of a boolean module grid (row 0 at the top) in black.

        Each row's runs of dark cells become one rectangle, and all of them go
        into a single path filled once, so adjacent cells meet without seams.
        """
        c = self.canvas
        path = c.beginPath()
        rows, cols = dark.shape
        for r in range(rows):
            row = dark[r]
            col = 0
            while col < cols:
                if not row[col]:
                    col += 1
                    continue
                start = col
                while col < cols and row[col]:
                    col += 1
                x0 = (x + start * module) * PT_PER_MM
                y0 = self._y(y + (r + 1) * module)
                path.rect(x0, y0, (col - start) * module * PT_PER_MM, module * PT_PER_MM)
        c.setFillColorRGB(0, 0, 0)
        c.drawPath(path, stroke=0, fill=1)

    def image(self, img: Image.Image, x: float, y: float, w: float, h: float) -> None:
        """Embed ``img`` (RGB) at its native pixel size, scaled into the box.

        reportlab stores the raw pixels Flate-compressed (no resampling, no JPEG);
        the box only sets the transformation matrix.
        """
        if img.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {img.mode}")
        self.canvas.drawImage(ImageReader(img), x * PT_PER_MM, self._y(y + h), w * PT_PER_MM, h * PT_PER_MM)

    def line(self, x0: float, y0: float, x1: float, y1: float, width: float = 0.15) -> None:
        """A black line ``width`` mm wide with butt caps."""
        c = self.canvas
        c.setStrokeColorRGB(0, 0, 0)
        c.setLineWidth(width * PT_PER_MM)
        c.setLineCap(0)
        c.line(x0 * PT_PER_MM, self._y(y0), x1 * PT_PER_MM, self._y(y1))

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = 7.0,
        font: str = FONT,
        align: str = "left",
        rgb: Sequence[int] = (0, 0, 0),
    ) -> None:
        """Set ``s`` with its baseline at ``y`` mm; ``align`` is left, centre or right of ``x``."""
        c = self.canvas
        c.setFillColorRGB(*(v / 255.0 for v in rgb))
        c.setFont(font, size)
        px, py = x * PT_PER_MM, self._y(y)
        if align == "centre":
            c.drawCentredString(px, py, s)
        elif align == "right":
            c.drawRightString(px, py, s)
        else:
            c.drawString(px, py, s)


def fit_text(s: str, max_mm: float, size: float, font: str = FONT) -> str:
    """Shorten ``s`` in the middle with an ellipsis until it fits ``max_mm``."""
    if text_width_mm(s, size, font) <= max_mm:
        return s
    keep = len(s)
    while keep > 2:
        keep -= 1
        head = (keep + 1) // 2
        cut = s[:head] + "\u2026" + s[len(s) - (keep - head) :]
        if text_width_mm(cut, size, font) <= max_mm:
            return cut
    return "\u2026"
