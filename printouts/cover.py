"""The cover page: what the batch holds and how to print it faithfully.

The instructions follow from what breaks a physical test: scaling (the tiles
must stay ``tile_mm`` wide), glossy paper (glare), and printer "enhancements"
that sharpen or re-colour the perturbation before it ever reaches the camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib.utils import simpleSplit

from contracts.manifest import Batch
from printouts.geometry import PAPER_NAMES
from printouts.page import FONT, FONT_BOLD, PT_PER_MM, MmPage

LEFT_MM = 20.0
BODY_PT = 9.5
LINE_MM = 4.4


@dataclass(frozen=True)
class CoverInfo:
    """What the cover states besides the manifest: the print settings chosen."""

    paper: str
    size_mm: tuple[float, float]
    tile_mm: float
    layout: str
    aruco_dictionary: str
    marker_ids: str  # the batch's marker ids as runs, e.g. "392-415"
    sheets: Sequence[tuple[str, int, list[str]]]  # sheet id, page, item ids
    camera: str = ""  # the camera and model the layout was made for (printouts.camera), or why none
    patch_notes: Sequence[str] = ()  # patch cards (``print --patch-mm``): where they are, how to cut and place them


def _fmt_eps(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in sorted(set(values)))


def instructions(info: CoverInfo) -> list[str]:
    """The printing instructions, one paragraph each."""
    w, h = info.size_mm
    paper = f"{PAPER_NAMES.get(info.paper, info.paper)} ({w:g} x {h:g} mm)"
    steps = [
        f"Paper: plain white matte paper, {paper}. No glossy or photo paper: its glare hides the pattern from the "
        "camera.",
        'Scale: print at 100% / "Actual size". Switch off "Fit to page", "Shrink oversized pages" and any '
        "borderless printing or enlargement.",
        'Quality: the printer\'s highest quality setting ("Best", "High" or "Fine"), in colour; no draft or '
        "toner-saving mode.",
        "Colour management: switch off the printer's own colour management and enhancements "
        '("Vivid", "Photo enhance", "Auto correction", "Real life digital photo", sharpening, contrast boost) '
        "and the driver's automatic correction. Use the printer's sRGB mode, or let the application manage colour; "
        "never both.",
        "Check: on every sheet the ruler must measure 100 mm (within 0.5 mm). If it does not, fix the scaling and "
        "print again.",
        "Keep the sheets flat and clean, and do not trim them: the corner and edge markers, the QR code and the "
        "calibration strip are how a photograph is matched to layout.json.",
    ]
    if info.patch_notes:
        steps.append("Adversarial patches: " + " ".join(info.patch_notes))
    return steps


def _paragraph(
    page: MmPage, text: str, y: float, size: float, bottom: float, indent: float = 0.0, font: str = FONT
) -> float:
    """Wrap ``text`` to the page width from baseline ``y``; return the next baseline."""
    width_pt = (page.width_mm - 2 * LEFT_MM - indent) * PT_PER_MM
    line_mm = LINE_MM * size / BODY_PT
    for line in simpleSplit(text, font, size, width_pt):
        if y > bottom:
            page.text(LEFT_MM + indent, y, "\u2026 (see layout.json for the rest)", size=size)
            return y + line_mm
        page.text(LEFT_MM + indent, y, line, size=size, font=font)
        y += line_mm
    return y


def draw_cover(page: MmPage, batch: Batch, info: CoverInfo) -> None:
    """Draw the cover page of ``batch`` printed with the settings in ``info``."""
    bottom = page.height_mm - 20.0
    y = 28.0
    page.text(LEFT_MM, y, "Photoproof print batch", size=20, font=FONT_BOLD)
    y += 9.0
    page.text(LEFT_MM, y, batch.batch_id, size=12, font=FONT_BOLD)
    y += 10.0
    attacks = ", ".join(sorted({it.attack for it in batch.items}))
    models = "; ".join(f"{m.name} ({m.arch}, {m.role})" for m in batch.models) or "none recorded"
    n_tiles = sum(len(items) for _, _, items in info.sheets) * (2 if info.layout == "pairs" else 1)
    first, last = info.sheets[0][1] + 1, info.sheets[-1][1] + 1
    roles = "clean and adversarial side by side" if info.layout == "pairs" else "adversarial images only"
    rows = [
        ("Created", batch.created),
        ("Items", f"{len(batch.items)} ({n_tiles} tiles, {roles})"),
        ("Sheets", f"{len(info.sheets)} (pages {first}-{last} of this PDF)"),
        ("Attacks", attacks),
        ("Epsilon", f"{_fmt_eps([it.eps for it in batch.items])} (0-255 pixel units)"),
        ("Models", models),
        ("Tiles", f"{info.tile_mm:g} mm wide, images embedded at their native pixel size"),
        ("Camera", info.camera or "none given"),
        ("Markers", f"ArUco {info.aruco_dictionary}, ids {info.marker_ids}, 8 per sheet, plus one QR code per sheet"),
    ]
    for label, value in rows:
        page.text(LEFT_MM, y, label, size=BODY_PT, font=FONT_BOLD)
        y = _paragraph(page, value, y, BODY_PT, bottom, indent=24.0)
    y += 5.0
    page.text(LEFT_MM, y, "How to print", size=13, font=FONT_BOLD)
    y += 7.0
    for k, text in enumerate(instructions(info), start=1):
        page.text(LEFT_MM, y, f"{k}.", size=BODY_PT, font=FONT_BOLD)
        y = _paragraph(page, text, y, BODY_PT, bottom, indent=6.0) + 1.5
    y += 4.0
    page.text(LEFT_MM, y, "Sheets", size=13, font=FONT_BOLD)
    y += 6.0
    for k, (sheet_id, pg, items) in enumerate(info.sheets):
        if y > bottom:
            page.text(LEFT_MM, y, f"\u2026 and {len(info.sheets) - k} more sheet(s): see layout.json", size=7.5)
            break
        span = items[0] if len(items) == 1 else f"{items[0]} \u2026 {items[-1]}"
        y = _paragraph(page, f"{sheet_id} (page {pg + 1}): {len(items)} item(s), {span}", y, 7.5, bottom)
