"""The calibration strip and the scale ruler printed on every sheet.

The strip holds an 11-step grey ramp (0..255), the primaries and secondaries
(R, G, B, C, M, Y) with white and black, and fine-detail patches: 1-pixel
checkers and line pairs drawn at the tiles' own pixel pitch, so a capture can
measure how much single-pixel detail (the scale of an adversarial
perturbation) survives the printer and the camera. ``calibrate`` reads the
nominal values back from ``layout.json``.

The ruler is 100 mm with millimetre ticks: if it does not measure 100 mm on
paper, the sheet was not printed at actual size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from contracts.layout import Patch
from printouts.page import FONT, MmPage

GREY_STEPS = 11
PATCH_MM = 8.0
ROW_GAP_MM = 2.0
DETAIL_GAP_MM = 1.0
RULER_MM = 100.0

COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("blue", (0, 0, 255)),
    ("cyan", (0, 255, 255)),
    ("magenta", (255, 0, 255)),
    ("yellow", (255, 255, 0)),
    ("white", (255, 255, 255)),
    ("black", (0, 0, 0)),
)
DETAILS = ("checker-1px", "lines-v-1px", "lines-h-1px")
NOTE = "Print at 100% / actual size; do not fit to page. This ruler must measure exactly 100 mm."


def _r(v: float) -> float:
    return round(v, 3)


def grey_levels(steps: int = GREY_STEPS) -> list[int]:
    """``steps`` evenly spaced 8-bit grey levels from 0 to 255."""
    return [round(255 * i / (steps - 1)) for i in range(steps)]


def detail_pixels(pitch_mm: float) -> int:
    """Side in image pixels of a detail patch about ``PATCH_MM`` wide (even, >= 2)."""
    n = int(round(PATCH_MM / pitch_mm))
    n = min(n, int(10.0 // pitch_mm))
    return max(2, n - n % 2)


def detail_image(name: str, n: int) -> Image.Image:
    """The ``n`` x ``n`` pixel pattern of detail patch ``name`` (black and white)."""
    i, j = np.indices((n, n))
    if name.startswith("checker"):
        on = (i + j) % 2 == 1
    elif name.startswith("lines-v"):
        on = j % 2 == 1
    elif name.startswith("lines-h"):
        on = i % 2 == 1
    else:
        raise ValueError(f"unknown detail patch {name!r}")
    grey = np.where(on, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB")


def calibration_patches(footer: Sequence[float], pitch_mm: float) -> list[Patch]:
    """Lay the strip out in the ``footer`` band (x, y, w, h mm).

    Args:
        footer: the band between the bottom corner markers.
        pitch_mm: printed size of one tile pixel, for the detail patches.
    """
    x0, y0 = footer[0], footer[1]
    patches = [
        Patch("grey", f"g{k:02d}", [_r(x0 + k * PATCH_MM), _r(y0), PATCH_MM, PATCH_MM], [v, v, v])
        for k, v in enumerate(grey_levels())
    ]
    y1 = y0 + PATCH_MM + ROW_GAP_MM
    patches += [
        Patch("colour", name, [_r(x0 + k * PATCH_MM), _r(y1), PATCH_MM, PATCH_MM], list(rgb))
        for k, (name, rgb) in enumerate(COLOURS)
    ]
    side = _r(detail_pixels(pitch_mm) * pitch_mm)
    x = x0 + len(COLOURS) * PATCH_MM + ROW_GAP_MM
    for name in DETAILS:
        patches.append(Patch("detail", name, [_r(x), _r(y1), side, side], None))
        x += side + DETAIL_GAP_MM
    return patches


def strip_width(patches: Sequence[Patch]) -> float:
    """Right edge of the strip, in mm from the page's left edge."""
    return max(p.box_mm[0] + p.box_mm[2] for p in patches)


def draw_calibration(page: MmPage, patches: Sequence[Patch], pitch_mm: float) -> None:
    """Draw the patches: solid fills for grey and colour, lossless images for detail."""
    n = detail_pixels(pitch_mm)
    for p in patches:
        x, y, w, h = p.box_mm
        if p.kind == "detail":
            page.image(detail_image(p.name, n), x, y, w, h)
        elif p.rgb is not None:
            page.rect(x, y, w, h, p.rgb)


def draw_ruler(page: MmPage, x0: float, y: float) -> None:
    """A 100 mm ruler whose baseline runs from (x0, y) to the right.

    Ticks rise from the baseline: 1.2 mm every millimetre, 2 mm every 5 mm and
    3 mm every centimetre, labelled in centimetres below the baseline.
    """
    width = 0.12
    page.line(x0 - width / 2, y, x0 + RULER_MM + width / 2, y, width)
    for k in range(int(RULER_MM) + 1):
        tall = 3.0 if k % 10 == 0 else 2.0 if k % 5 == 0 else 1.2
        page.line(x0 + k, y, x0 + k, y - tall, width)
        if k % 10 == 0:
            page.text(x0 + k, y + 2.2, str(k // 10), size=5.0, font=FONT, align="centre")
    page.text(x0 + RULER_MM + 2.0, y + 0.6, "100 mm", size=6.0)
