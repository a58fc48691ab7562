"""``photoproof print``: turn a batch into ``sheets.pdf`` and ``layout.json``.

Each sheet carries tiles (the clean and adversarial image of an item side by
side, sides alternating in a checkerboard: ``printouts.plan.clean_on_right``; or
adversarial images only), ArUco markers for the capture stage to find
the page, a QR code naming the sheet and the layout id (a re-print with other options
gets another id, and the layout it replaces is kept under ``layouts/``), a calibration strip and a 100 mm ruler.
Images are embedded at their native pixel size, Flate-compressed: the printer
sees exactly the pixels the model saw (Kurakin et al. 2016,
https://arxiv.org/abs/1607.02533, section 3).
"""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path

from reportlab.pdfgen.canvas import Canvas

from contracts.batchdir import COVER_PDF, LAYOUT, SHEETS_PDF
from contracts.errors import UserError
from contracts.images import read_png
from contracts.layout import Layout, Sheet, keep_layout, load_layout, load_layouts, save_layout
from contracts.manifest import Batch, Item, load_batch
from contracts.patchcard import PatchCard, patch_cards, set_patch_cards
from contracts.paths import atomic_write_bytes, remove_file, remove_stale_temps, resolve_inside, sha256_bytes
from printouts import geometry as geo
from printouts.calibration import NOTE, draw_calibration, draw_ruler
from printouts.camera import CameraPlan, eot_mismatch, plan_for_camera
from printouts.cover import CoverInfo, draw_cover
from printouts.denseplan import choose_offset, plan_blocks
from printouts.markers import draw_marker, id_ranges
from printouts.page import FONT, FONT_BOLD, PT_PER_MM, MmPage, fit_text, flate_only, text_width_mm
from printouts.patchcard import card_instructions, draw_card, plan_cards
from printouts.plan import RULER_X_MM, RULER_Y_MM, check_images, plan_layout, roles_for, set_layout_id
from printouts.qr import draw_qr

log = logging.getLogger(__name__)

CAPTION_PT = 6.0
ROLE_NAMES = {"clean": "clean", "adv": "adversarial"}


def check_args(paper: str, tile_mm: float, layout: str) -> tuple[str, float, str]:
    """Normalise and validate the print options.

    Raises:
        UserError: naming ``--paper``, ``--tile-mm`` or ``--layout``.
    """
    key = str(paper).strip().lower()
    geo.paper_size(key)
    lay = str(layout).strip().lower()
    if lay not in geo.LAYOUTS:
        raise UserError(f"--layout {layout!r}: unknown layout; choose one of {', '.join(geo.LAYOUTS)}")
    if isinstance(tile_mm, bool) or not isinstance(tile_mm, (int, float)) or not math.isfinite(tile_mm):
        raise UserError(f"--tile-mm {tile_mm!r}: expected a number of millimetres, e.g. 60")
    if tile_mm < geo.MIN_TILE_MM:
        raise UserError(f"--tile-mm {tile_mm:g}: tiles must be at least {geo.MIN_TILE_MM:g} mm wide")
    return key, float(tile_mm), lay


def _caption(page: MmPage, item: Item, role: str, box: list[float]) -> None:
    x, y, w, h = box
    base = y + h + 1.0 + 2.1
    page.text(x, base, fit_text(item.id, w, CAPTION_PT, FONT_BOLD), size=CAPTION_PT, font=FONT_BOLD)
    rest = f" \u00b7 {item.attack} \u00b7 eps {item.eps:g}/255"
    if isinstance(item.params.get("patch"), dict):  # craft --attack patch: unbounded inside the patch
        rest = f" \u00b7 {item.attack} \u00b7 {100 * float(item.params.get('area', 0)):g}% area"
    detail = f"{ROLE_NAMES.get(role, role)}{rest}"
    if text_width_mm(detail, CAPTION_PT) > w:
        detail = f"{role}{rest}"
    page.text(x, base + 2.5, fit_text(detail, w, CAPTION_PT), size=CAPTION_PT)


def _header(page: MmPage, layout: Layout, sheet: Sheet, index: int) -> None:
    band = layout.extra.get("header_mm")  # a dense sheet's (printouts.blocks); a classic sheet's follows the paper
    hx, hy, hw, _ = band if isinstance(band, list) else geo.frame(layout.paper).header
    n = len(layout.sheets)
    title = (
        f"photoproof \u00b7 {sheet.sheet_id} \u00b7 sheet {index + 1} of {n} \u00b7 {layout.paper} \u00b7 "
        f"tiles {layout.tile_mm:g} mm \u00b7 page {sheet.page + 1}"
    )
    page.text(hx, hy + 3.2, fit_text(title, hw, 7.0, FONT_BOLD), size=7.0, font=FONT_BOLD)
    draw_ruler(page, hx + RULER_X_MM, hy + RULER_Y_MM)
    page.text(hx, hy + 16.3, fit_text(NOTE, hw, 6.5), size=6.5)


def draw_sheet(page: MmPage, batch_dir: Path, batch: Batch, layout: Layout, index: int) -> None:
    """Draw sheet ``index`` of ``layout`` on ``page``."""
    sheet = layout.sheets[index]
    for m in sheet.markers:
        x, y = m.corners_mm[0]
        draw_marker(page, layout.aruco_dictionary, m.id, x, y, layout.marker_size_mm)
    _header(page, layout, sheet, index)
    items = {it.id: it for it in batch.items}
    for t in sheet.tiles:
        img = read_png(resolve_inside(batch_dir, t.image))
        page.image(img, *t.box_mm)
        _caption(page, items[t.item], t.role, t.box_mm)
    draw_calibration(page, sheet.calibration, float(layout.extra["detail_pixel_mm"]))
    if sheet.qr is not None:
        qx, qy, qs, _ = sheet.qr["box_mm"]
        draw_qr(page, sheet.qr["payload"], qx, qy, qs)


def _cover_info(layout: Layout, cards: list[PatchCard] | None = None) -> CoverInfo:
    sheets = [(s.sheet_id, s.page, list(dict.fromkeys(t.item for t in s.tiles))) for s in layout.sheets]
    return CoverInfo(
        paper=layout.paper,
        size_mm=geo.paper_size(layout.paper),
        tile_mm=layout.tile_mm,
        layout=str(layout.extra["layout"]),
        aruco_dictionary=layout.aruco_dictionary,
        marker_ids=id_ranges([m.id for s in layout.sheets for m in s.markers]),
        sheets=sheets,
        camera=_camera_line(layout),
        patch_notes=[
            t for card in cards or [] for t in [f"{card.name}: page {card.page + 1}."] + card_instructions(card)[1:]
        ],
    )


def _camera_line(layout: Layout) -> str:
    cam = layout.extra.get("camera")
    if not isinstance(cam, dict):
        return "none given (photoproof print --frame-size WIDTHxHEIGHT --model NAME lays the sheets out for a camera)"
    try:
        return CameraPlan(**cam).sentence()
    except TypeError:
        return str(cam)


def _canvas(buf: io.BytesIO, layout: Layout, title: str) -> Canvas:
    w, h = geo.paper_size(layout.paper)
    c = Canvas(buf, pagesize=(w * PT_PER_MM, h * PT_PER_MM), invariant=1, pageCompression=1, initialFontName=FONT)
    c.setTitle(title)
    c.setAuthor("photoproof")
    c.setSubject("Print at 100% / actual size; do not fit to page")
    return c


def render_cover_pdf(batch: Batch, layout: Layout) -> bytes:
    """The cover page alone (``cover.pdf``): read before printing, printed only if wanted with the stack."""
    w, h = geo.paper_size(layout.paper)
    buf = io.BytesIO()
    with flate_only():
        c = _canvas(buf, layout, f"Photoproof cover {batch.batch_id}")
        draw_cover(MmPage(c, w, h), batch, _cover_info(layout, patch_cards(layout)))
        c.showPage()
        c.save()
    return buf.getvalue()


def render_pdf(batch_dir: Path, batch: Batch, layout: Layout, cover: bool) -> bytes:
    """Draw the cover (optional), every sheet of ``layout`` and its patch cards; return the PDF bytes."""
    cards = patch_cards(layout)
    w, h = geo.paper_size(layout.paper)
    buf = io.BytesIO()
    with flate_only():
        c = _canvas(buf, layout, f"Photoproof sheets {batch.batch_id}")
        if cover:
            draw_cover(MmPage(c, w, h), batch, _cover_info(layout, cards))
            c.showPage()
        for k in range(len(layout.sheets)):
            draw_sheet(MmPage(c, w, h), batch_dir, batch, layout, k)
            c.showPage()
        for card in cards:
            draw_card(MmPage(c, w, h), batch_dir, layout, card)
            c.showPage()
        c.save()
    return buf.getvalue()


def print_batch(
    batch_dir: Path,
    paper: str = "a4",
    tile_mm: float = 60.0,
    layout: str = "pairs",
    cover: bool = False,
    camera: tuple[int, int] | None = None,
    model: str | None = None,
    patch_mm: float | None = None,
) -> Layout:
    """Write ``BATCH/sheets.pdf``, ``BATCH/cover.pdf`` and ``BATCH/layout.json``; return the layout.

    Args:
        batch_dir: a batch directory written by ``photoproof craft``.
        paper: ``a4`` or ``letter``.
        tile_mm: printed width of every tile in millimetres.
        layout: ``pairs`` (clean and adversarial side by side) or ``adversarial-only``.
        cover: also start ``sheets.pdf`` with the cover page (then sheet ``k`` is page ``k + 1``); the cover is
            written alone as ``cover.pdf`` either way, so that the pages to print are the sheets alone.
        camera, model: lay the sheets out for this frame size (width, height) and target model
            (zoo name or .onnx): the paper's orientation and ``tile_mm`` are then chosen so that a
            sheet filling the frame gives tiles the capture's size gate accepts (``printouts.camera``).
        patch_mm: also print each adversarial patch alone, this wide, with its own markers
            (:mod:`printouts.patchcard`), on pages after the sheets.

    The files are written atomically and overwritten on a re-run.

    Raises:
        UserError: naming the option or file at fault.
    """
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    paper, tile_mm, layout = check_args(paper, tile_mm, layout)
    batch = load_batch(batch_dir)
    sizes = check_images(batch_dir, batch, roles_for(layout))
    cam = None
    if (camera is None) != (model is None):
        raise UserError(
            "--frame-size and --model go together: the layout needs both the frame size and the model's input size"
        )
    if camera is not None and model is not None:
        aspect = max(h / w for w, h in sizes.values())
        cam = plan_for_camera(camera, model, paper, layout, aspect)
        paper, tile_mm = cam.paper, cam.tile_mm
        mismatch = eot_mismatch(cam, batch.items)
        if mismatch:
            log.warning("%s", mismatch)

    def finish(plan: Layout) -> Layout:
        if cam is not None:
            plan.extra["camera"] = cam.to_dict()
        if patch_mm is not None:
            set_patch_cards(
                plan, plan_cards(batch_dir, batch, plan, float(patch_mm), len(plan.sheets) + (1 if cover else 0))
            )
        return plan

    if cam is not None and layout == "pairs":  # a dense sheet (printouts.blocks), ids apart from other prints'
        plan = choose_offset(
            batch,
            lambda off: finish(plan_blocks(batch, sizes, paper, tile_mm, bool(cover), off)),
            _kept_marker_ids(batch_dir),
            set_layout_id,
        )
    else:
        plan = finish(plan_layout(batch, sizes, paper, tile_mm, layout, bool(cover), camera))
    lid = set_layout_id(plan)
    kept = _keep_previous(batch_dir, lid)
    pdf = render_pdf(batch_dir, batch, plan, bool(cover))
    plan.extra["sheets_pdf"] = SHEETS_PDF
    plan.extra["sheets_pdf_sha256"] = sha256_bytes(pdf)
    # layout.json goes first and comes back last: a run killed in between leaves a PDF without a
    # layout ("print the batch first"), never a new PDF beside the old layout.
    remove_stale_temps(batch_dir, (SHEETS_PDF, COVER_PDF, LAYOUT))  # half-written files of a killed run
    remove_file(batch_dir / LAYOUT)
    atomic_write_bytes(batch_dir / SHEETS_PDF, pdf)
    atomic_write_bytes(batch_dir / COVER_PDF, render_cover_pdf(batch, plan))
    save_layout(batch_dir, plan)
    if kept is not None:  # said once the new layout is in place, not before a write that may fail
        log.warning(
            "%s: replaced layout %s with %s; the old layout is kept as %s, so photos of sheets printed with it are "
            "still read with it",
            batch_dir / LAYOUT,
            kept[0],
            lid,
            kept[1],
        )
    log.info(
        "wrote %s (%d bytes) and %s (layout %s) in %.2f s",
        batch_dir / SHEETS_PDF,
        len(pdf),
        LAYOUT,
        lid,
        time.perf_counter() - t0,
    )
    return plan


def _kept_marker_ids(batch_dir: Path) -> dict[str, set[int]]:
    """Each print of the batch kept so far (``layout.json`` and ``layouts/``): its layout id -> its marker ids."""
    if not (batch_dir / LAYOUT).is_file():
        return {}
    try:
        kept = load_layouts(batch_dir)
    except UserError as e:  # an unreadable layout.json: no print capture could read anyway
        log.warning("%s; its marker ids are not kept apart", e)
        return {}
    return {lid: {m.id for s in lay.sheets for m in s.markers} for lid, lay in kept.items()}


def _keep_previous(batch_dir: Path, new_id: str) -> tuple[str, Path] | None:
    """Keep the layout.json about to be replaced as ``layouts/<its id>.json``: its sheets may already be printed.

    Returns the old layout's id and where it is kept, or ``None`` when nothing other than ``new_id`` was there."""
    if not (batch_dir / LAYOUT).is_file():
        return None
    try:
        old = load_layout(batch_dir)
    except UserError as e:  # an unreadable layout.json describes no sheet capture could read anyway
        log.warning("%s; not kept", e)
        return None
    if old.id == new_id:
        return None
    return old.id, keep_layout(batch_dir, old).relative_to(batch_dir)
