"""Check a batch's images and plan its sheets: the ``Layout`` before any drawing.

Everything ``layout.json`` records is decided here, rounded to a micrometre,
and the renderer draws exactly those numbers, so the file and the PDF agree.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from contracts.batchdir import MANIFEST
from contracts.errors import UserError
from contracts.framing import px_per_mm
from contracts.images import read_png
from contracts.layout import ID_HEX, Layout, Marker, Sheet, Tile, layout_id
from contracts.manifest import Batch, Item, Role
from contracts.paths import resolve_inside, sha256_bytes
from printouts import geometry as geo
from printouts import qr
from printouts.calibration import RULER_MM, calibration_patches, strip_width
from printouts.markers import MAX_SHEETS, choose_dictionary, marker_id_offset, sheet_marker_ids

log = logging.getLogger(__name__)

QR_MIN_PX_PER_MODULE = 2.5  # capture.sheets.qr reads codes down to about two camera px per module; a margin
QR_MIN_MM = 16.0
RULER_X_MM = 1.0  # ruler start right of the header band's left edge
RULER_Y_MM = 10.0  # ruler baseline below the top of the header band


def roles_for(layout: str) -> tuple[Role, ...]:
    """The image roles printed by ``layout``."""
    return ("clean", "adv") if layout == "pairs" else ("adv",)


def check_images(batch_dir: Path, batch: Batch, roles: Sequence[Role]) -> dict[str, tuple[int, int]]:
    """Check that every image to print exists, matches its sha256 and decodes.

    Returns:
        each image's path (as in the manifest) mapped to its (width, height) in pixels.

    Raises:
        UserError: naming the manifest when it has no items, or the file at fault.
    """
    if not batch.items:
        raise UserError(
            f"{Path(batch_dir) / MANIFEST}: the batch has no items, so there is nothing to print; craft some first "
            "with 'photoproof craft'"
        )
    sizes: dict[str, tuple[int, int]] = {}
    for it in batch.items:
        for role in roles:
            rec = it.image(role)
            if rec.path in sizes:
                continue
            path = resolve_inside(Path(batch_dir), rec.path)
            if not path.is_file():
                raise UserError(
                    f"{path}: missing ({role} image of item {it.id}); restore it or re-run 'photoproof craft'"
                )
            data = path.read_bytes()
            if rec.sha256 and sha256_bytes(data) != rec.sha256:
                raise UserError(
                    f"{path}: its sha256 differs from the one in batch.json (item {it.id}); the image changed after "
                    "crafting, so its recorded predictions no longer hold: re-run 'photoproof craft'"
                )
            sizes[rec.path] = read_png(path, data).size
    return sizes


def _r(v: float) -> float:
    return round(v, 3)


def _pitch(sizes: dict[str, tuple[int, int]], tile_mm: float) -> float:
    """Printed size of one pixel of the most common image width."""
    width = Counter(w for w, _ in sizes.values()).most_common(1)[0][0]
    return tile_mm / width


def clean_on_right(g: geo.Grid, index: int, sheet: int) -> bool:
    """Whether the ``index``-th pair of sheet ``sheet`` puts its clean tile on the right.

    A checkerboard over the grid's rows and columns, its phase flipped from sheet to sheet:
    clean and adversarial tiles take each side equally often (within one per sheet, and
    across the batch), in every row and column, so a tilt, a lamp from one side or a focus
    gradient across the sheet cannot favour one role.
    """
    r, c = divmod(index, g.units_per_row)
    return (r + c + sheet) % 2 == 1


def _tiles(
    items: Sequence[Item],
    g: geo.Grid,
    layout: str,
    tile_mm: float,
    sizes: dict[str, tuple[int, int]],
    sheet: int = 0,
) -> list[Tile]:
    tiles = []
    roles = roles_for(layout)
    for u, it in enumerate(items):
        ux, uy = geo.unit_origin(g, u, layout)
        swap = len(roles) == 2 and clean_on_right(g, u, sheet)
        for j, role in enumerate(roles):
            rec = it.image(role)
            w, h = sizes[rec.path]
            x = ux + (len(roles) - 1 - j if swap else j) * (tile_mm + geo.PAIR_GAP_MM)
            tiles.append(
                Tile(item=it.id, role=role, image=rec.path, box_mm=[_r(x), _r(uy), _r(tile_mm), _r(tile_mm * h / w)])
            )
    return tiles


def qr_warning(qr_mm: float, modules: int, paper: str, camera: tuple[int, int] | None) -> None:
    """Warn when the camera (default: a 1280x720 webcam) gets under ``QR_MIN_PX_PER_MODULE`` px per QR module.

    With the sheet filling ``FRAME_FILL`` of the frame, one millimetre spans
    ``fill x min(W / paper_w, H / paper_h)`` camera pixels (``contracts.framing``).
    """
    cam = camera or (1280, 720)
    px = qr_mm / max(1, modules) * px_per_mm(cam, geo.paper_size(paper))
    if px >= QR_MIN_PX_PER_MODULE:
        return
    log.warning(
        "the tiles leave room for a %g mm QR code per sheet (up to %g mm with smaller tiles): a %dx%d camera "
        "filling its "
        "frame with the sheet sees %.1f px per module and reads it only from closer up; until it does, a sheet of "
        "another batch or another print is told apart by its markers alone",
        qr_mm,
        geo.QR_MAX_MM,
        cam[0],
        cam[1],
        px,
    )


def set_layout_id(plan: Layout) -> str:
    """Compute the plan's layout id (:func:`contracts.layout.layout_id`) and put it in every sheet's QR payload."""
    plan.layout_id = ""
    lid = layout_id(plan)
    plan.layout_id = lid
    for k, s in enumerate(plan.sheets):
        if s.qr is not None:
            s.qr["payload"] = qr.readable_payload(plan.batch_id, k, lid)
            s.qr["modules"] = int(qr.qr_modules(s.qr["payload"]).shape[0])
    return lid


def plan_layout(
    batch: Batch,
    sizes: dict[str, tuple[int, int]],
    paper: str,
    tile_mm: float,
    layout: str,
    cover: bool,
    camera: tuple[int, int] | None = None,
) -> Layout:
    """Decide every sheet's markers, tiles, calibration patches and QR code.

    Raises:
        UserError: when the tile does not fit the paper, or the batch needs more
            sheets than the marker dictionary can label.
    """
    fr = geo.frame(paper)
    aspect = max(h / w for w, h in sizes.values())
    g = geo.grid(paper, tile_mm, layout, aspect)
    per_sheet = g.units_per_sheet
    n_sheets = math.ceil(len(batch.items) / per_sheet)
    hint = f" into batches of at most {MAX_SHEETS * per_sheet} items ({per_sheet} per sheet with these options)"
    dict_name = choose_dictionary(n_sheets, hint)
    offset = marker_id_offset(batch.batch_id)
    pitch = _pitch(sizes, tile_mm)
    patches = calibration_patches(fr.footer, pitch)
    qr_box, g = geo.place_qr(fr, g, left=strip_width(patches) + qr.QUIET_MM)
    qr_box = [_r(v) for v in qr_box]
    if qr_box[2] < QR_MIN_MM:  # only images of a few pixels printed large make the detail patches this wide
        raise UserError(
            f"--tile-mm {tile_mm:g}: the images' pixels print {pitch:.1f} mm wide, which makes the calibration strip's "
            f"single-pixel patches too wide to leave room for the QR code; use a smaller --tile-mm"
        )
    modules = int(qr.qr_modules(qr.payload(batch.batch_id, 0, "0" * ID_HEX)).shape[0])
    qr_warning(qr_box[2], modules, paper, camera)
    sheets = []
    for k in range(n_sheets):
        chunk = batch.items[k * per_sheet : (k + 1) * per_sheet]
        ids = sheet_marker_ids(k, offset)
        markers = [
            Marker(id=i, corners_mm=[[_r(v) for v in c] for c in geo.marker_corners(*xy)])
            for i, xy in zip(ids, fr.markers, strict=True)
        ]
        text = qr.payload(batch.batch_id, k, "0" * ID_HEX)  # the layout id goes in once known (set_layout_id)
        sheets.append(
            Sheet(
                sheet_id=f"{batch.batch_id}/s{k}",
                page=k + (1 if cover else 0),
                size_mm=[fr.width, fr.height],
                markers=markers,
                tiles=_tiles(chunk, g, layout, tile_mm, sizes, k),
                calibration=calibration_patches(fr.footer, pitch),
                qr={"payload": text, "box_mm": list(qr_box), "modules": modules},
            )
        )
    log.info(
        "%d items -> %d sheets of %d on %s, dictionary %s, marker ids from %d, QR codes %g mm",
        len(batch.items),
        n_sheets,
        per_sheet,
        paper,
        dict_name,
        offset,
        qr_box[2],
    )
    hx, hy = fr.header[0], fr.header[1]
    extra = {
        "layout": layout,
        "cover": cover,
        "items_per_sheet": per_sheet,
        "markers_per_sheet": geo.MARKERS_PER_SHEET,
        "marker_id_offset": offset,
        "marker_quiet_zone_mm": _r(geo.QUIET_MM),
        "detail_pixel_mm": _r(pitch),
        "ruler_mm": {"start": [_r(hx + RULER_X_MM), _r(hy + RULER_Y_MM)], "length": RULER_MM},
    }
    return Layout(
        batch_id=batch.batch_id,
        paper=paper,
        aruco_dictionary=dict_name,
        marker_size_mm=geo.MARKER_MM,
        sheets=sheets,
        tile_mm=float(tile_mm),
        extra=extra,
    )
