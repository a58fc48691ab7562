"""Patch cards: each adversarial patch printed alone at a stated size, framed by four ArUco markers.

A card is the patch (its bounding square ``size_mm`` wide) with one marker
outside each corner, one quiet zone apart, inside a dashed cut line. Cut the
card out along that line, keeping the markers attached: they are how
``photoproof capture --scene`` tells whether, where, how big and at what angle
the patch is in each frame. The card's ids are a block of the batch's marker
ids after the sheets' blocks (:mod:`printouts.markers`). Records:
:mod:`contracts.patchcard`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from contracts.errors import UserError
from contracts.images import read_png
from contracts.layout import Layout, Marker
from contracts.manifest import Batch
from contracts.patchcard import PatchCard
from contracts.paths import resolve_inside
from printouts import geometry as geo
from printouts.calibration import RULER_MM, draw_ruler
from printouts.markers import DICTIONARY_SIZE, MAX_SHEETS, draw_marker, id_run, marker_id_offset, sheet_marker_ids
from printouts.page import FONT_BOLD, PT_PER_MM, MmPage, fit_text

log = logging.getLogger(__name__)

MIN_PATCH_MM = 20.0
TOP_MM = 48.0  # title, instructions and ruler above the card


def card_marker_mm(size_mm: float) -> float:
    """Marker side for a patch ``size_mm`` wide: a quarter of it, within 12..25 mm."""
    return round(min(25.0, max(12.0, size_mm / 4)), 3)


def batch_patches(batch: Batch) -> list[tuple[str, str, str, int | None]]:
    """Distinct patches of the batch: (name, image path, shape, target), in item order."""
    out: dict[str, tuple[str, str, str, int | None]] = {}
    for it in batch.items:
        rec = it.params.get("patch")
        if isinstance(rec, dict) and "path" in rec:
            path = str(rec["path"])
            out.setdefault(path, (Path(path).stem, path, str(it.params.get("shape", "square")), it.target))
    return list(out.values())


def plan_cards(batch_dir: Path, batch: Batch, layout: Layout, size_mm: float, first_page: int) -> list[PatchCard]:
    """One card per patch of ``batch``, on pages from ``first_page``; markers from the blocks after the sheets'.

    Raises:
        UserError: naming ``--patch-mm`` when the card does not fit the paper, or when the batch has no patch.
    """
    patches = batch_patches(batch)
    if not patches:
        raise UserError(f"--patch-mm: {batch_dir} holds no patch; craft one with 'photoproof craft --attack patch'")
    w, h = geo.paper_size(layout.paper)
    m = card_marker_mm(size_mm)
    q = m / geo.MARKER_MODULES  # one module of white around each marker
    span = size_mm + 2 * (q + m + q)
    if size_mm < MIN_PATCH_MM or span > w - 2 * geo.MARGIN_MM or TOP_MM + span > h - geo.MARGIN_MM:
        most = min(w - 2 * geo.MARGIN_MM, h - geo.MARGIN_MM - TOP_MM) - 2 * (2 * q + 25.0)
        raise UserError(
            f"--patch-mm {size_mm:g}: the patch must be {MIN_PATCH_MM:g} to about {most:.0f} mm wide to fit "
            f"{layout.paper} with its markers"
        )
    used = sum(len(s.markers) for s in layout.sheets)
    full = used + 4 * len(patches) > DICTIONARY_SIZE if layout.dense else len(layout.sheets) + len(patches) > MAX_SHEETS
    if full:
        raise UserError(
            f"--patch-mm: {len(layout.sheets)} sheets and {len(patches)} patch cards need more marker ids than the "
            "dictionary has; split the batch"
        )
    offset = marker_id_offset(batch.batch_id)
    cards = []
    for j, (name, image, shape, target) in enumerate(patches):
        resolve_inside(batch_dir, image)
        x0 = round((w - size_mm) / 2, 3)
        y0 = round(TOP_MM + q + m + q, 3)
        d = q + m  # from the patch's edge to the marker's outer edge
        tl = [
            (x0 - d, y0 - d),
            (x0 + size_mm + q, y0 - d),
            (x0 + size_mm + q, y0 + size_mm + q),
            (x0 - d, y0 + size_mm + q),
        ]
        if layout.dense:  # the ids right after the dense sheets' (printouts.denseplan)
            ids = id_run(int(layout.extra["marker_id_offset"]) + used + 4 * j, 4)
        else:
            ids = sheet_marker_ids(len(layout.sheets) + j, offset)[:4]
        markers = [
            Marker(i, [[round(v, 3) for v in c] for c in geo.marker_corners(x, y, m)])
            for i, (x, y) in zip(ids, tl, strict=True)
        ]
        cut = [round(x0 - d - q, 3), round(y0 - d - q, 3), round(span, 3), round(span, 3)]
        cards.append(
            PatchCard(
                name,
                image,
                shape,
                target,
                first_page + j,
                float(size_mm),
                [x0, y0, float(size_mm), float(size_mm)],
                cut,
                markers,
            )
        )
    return cards


def card_instructions(card: PatchCard) -> list[str]:
    """What the card page (and the cover) says about cutting and placing the patch."""
    what = f"targeted at class {card.target}" if card.target is not None else "untargeted"
    return [
        f"Adversarial patch {card.name} ({card.shape}, {what}), printed {card.size_mm:g} mm wide. Print at 100%; the "
        "ruler must measure 100 mm.",
        "Cut along the dashed line. Keep the four markers on the card: they tell the capture where the patch is, how "
        "big and at what angle.",
        "Place the card flat beside (or on) the object, facing the camera; photograph the scene with and without it "
        "('photoproof capture BATCH --scene').",
    ]


def draw_card(page: MmPage, batch_dir: Path, layout: Layout, card: PatchCard) -> None:
    """Draw one patch card page."""
    page.text(
        geo.MARGIN_MM + 2,
        14.0,
        fit_text(f"photoproof \u00b7 {layout.batch_id} \u00b7 {card.name}", page.width_mm - 20, 9.0, FONT_BOLD),
        size=9.0,
        font=FONT_BOLD,
    )
    y = 20.0
    for line in card_instructions(card):
        page.text(geo.MARGIN_MM + 2, y, fit_text(line, page.width_mm - 2 * geo.MARGIN_MM - 4, 6.5), size=6.5)
        y += 3.6
    draw_ruler(page, (page.width_mm - RULER_MM) / 2, TOP_MM - 8.0)
    m = card_marker_mm(card.size_mm)
    for mk in card.markers:
        x, yy = mk.corners_mm[0]
        draw_marker(page, layout.aruco_dictionary, mk.id, x, yy, m)
    page.image(read_png(resolve_inside(batch_dir, card.image)), *card.box_mm)
    c = page.canvas
    cx, cy, cw, ch = card.cut_mm
    c.saveState()
    c.setDash(2 * PT_PER_MM, 1.5 * PT_PER_MM)
    c.setLineWidth(0.2 * PT_PER_MM)
    c.setStrokeColorRGB(0.4, 0.4, 0.4)
    c.rect(cx * PT_PER_MM, (page.height_mm - cy - ch) * PT_PER_MM, cw * PT_PER_MM, ch * PT_PER_MM, stroke=1, fill=0)
    c.restoreState()
    page.text(
        cx,
        cy + ch + 4.0,
        f"patch {card.size_mm:g} mm; markers {', '.join(str(k.id) for k in card.markers)} ({layout.aruco_dictionary}, "
        f"{m:g} mm)",
        size=6.5,
    )
