"""Plan dense sheets (:mod:`printouts.blocks`): every pair with its own four markers, in ``layout.json``.

Each marker records the pairs it frames (``Marker.pairs``: the item ids of the blocks at its
crossing), so capture locates a tile through the markers next to it alone, and the simulated
camera knows which part of a sheet to frame for each pair.

Marker ids: sheet ``k`` takes the ``k``-th run of ``(C + 1)(R + 1)`` ids after the batch's
offset (``printouts.markers``). A re-print of the batch with another layout takes ids that no
kept print of it uses, when the dictionary has room (:func:`choose_offset`): a pair framed
from close up, without its sheet's QR code in view, is then attributed to its own print by
its markers alone. When there is no such room, capture falls back on the QR code and cuts
no tile of a sheet whose print it cannot tell.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence

from contracts.errors import UserError
from contracts.layout import ID_HEX, Layout, Marker, Sheet, Tile
from contracts.manifest import Batch, Item
from printouts import blocks as bl
from printouts import geometry as geo
from printouts import qr
from printouts.calibration import RULER_MM, calibration_patches, strip_width
from printouts.markers import DICTIONARY, DICTIONARY_SIZE, id_run, marker_id_offset

log = logging.getLogger(__name__)

RULER_X_MM = 1.0
RULER_Y_MM = 10.0


def _r(v: float) -> float:
    return round(v, 3)


def _tiles(items: Sequence[Item], g: bl.BlockGrid, sizes: dict[str, tuple[int, int]], sheet: int) -> list[Tile]:
    tiles = []
    for u, it in enumerate(items):
        ux, uy = g.unit_origin(u)
        r, c = divmod(u, g.cols)
        swap = (r + c + sheet) % 2 == 1  # printouts.plan.clean_on_right: sides alternate in a checkerboard
        for j, role in enumerate(("clean", "adv")):
            rec = it.image(role)
            w, h = sizes[rec.path]
            x = ux + (1 - j if swap else j) * (g.tile_w + geo.PAIR_GAP_MM)
            tiles.append(
                Tile(item=it.id, role=role, image=rec.path, box_mm=[_r(x), _r(uy), _r(g.tile_w), _r(g.tile_w * h / w)])
            )
    return tiles


def _markers(items: Sequence[Item], g: bl.BlockGrid, ids: list[int]) -> list[Marker]:
    """One marker per gutter crossing, row-major; each lists the items whose blocks it frames."""
    owners: dict[tuple[int, int], list[str]] = {}
    for u, it in enumerate(items):
        for cr in g.block_crossings(u):
            owners.setdefault(cr, []).append(it.id)
    out = []
    k = 0
    for r in range(g.rows + 1):
        for c in range(g.cols + 1):
            x, y = g.crossing(c, r)
            corners = [[_r(v) for v in p] for p in geo.marker_corners(x, y, bl.BLOCK_MARKER_MM)]
            out.append(Marker(id=ids[k], corners_mm=corners, pairs=owners.get((c, r), [])))
            k += 1
    return out


def markers_per_sheet(g: bl.BlockGrid) -> int:
    return (g.cols + 1) * (g.rows + 1)


def plan_blocks(
    batch: Batch, sizes: dict[str, tuple[int, int]], paper: str, tile_mm: float, cover: bool, offset: int
) -> Layout:
    """Decide every dense sheet's markers, tiles, calibration strip and QR code (marker ids from ``offset``).

    Raises:
        UserError: when the batch needs more marker ids than the dictionary has.
    """
    aspect = max(h / w for w, h in sizes.values())
    g = bl.block_grid(paper, tile_mm, aspect)
    per_sheet, per_ids = g.units_per_sheet, markers_per_sheet(g)
    n_sheets = math.ceil(len(batch.items) / per_sheet)
    if n_sheets * per_ids > DICTIONARY_SIZE:
        most = DICTIONARY_SIZE // per_ids * per_sheet
        raise UserError(
            f"{len(batch.items)} items need {n_sheets} dense sheets of {per_sheet} pairs and {n_sheets * per_ids} "
            f"marker ids, but {DICTIONARY} has {DICTIONARY_SIZE}: split the batch into batches of at most {most} items"
        )
    pitch = tile_mm / Counter(w for w, _ in sizes.values()).most_common(1)[0][0]
    patches = calibration_patches(g.footer, pitch)
    box = [_r(v) for v in bl.qr_box(g)]
    if strip_width(patches) + qr.QUIET_MM > box[0]:
        raise UserError(
            f"--tile-mm {tile_mm:g}: the images' pixels print {pitch:.1f} mm wide, which makes the calibration strip "
            "too wide to leave room for the QR code; use a smaller --tile-mm"
        )
    modules = int(qr.qr_modules(qr.payload(batch.batch_id, 0, "0" * ID_HEX)).shape[0])
    sheets = []
    for k in range(n_sheets):
        chunk = batch.items[k * per_sheet : (k + 1) * per_sheet]
        sheets.append(
            Sheet(
                sheet_id=f"{batch.batch_id}/s{k}",
                page=k + (1 if cover else 0),
                size_mm=[g.width, g.height],
                markers=_markers(chunk, g, id_run(offset + k * per_ids, per_ids)),
                tiles=_tiles(chunk, g, sizes, k),
                calibration=calibration_patches(g.footer, pitch),
                qr={"payload": qr.payload(batch.batch_id, k, "0" * ID_HEX), "box_mm": list(box), "modules": modules},
            )
        )
    hx, hy = g.header[0], g.header[1]
    extra = {
        "layout": "pairs",
        "blocks": True,
        "cover": cover,
        "items_per_sheet": per_sheet,
        "markers_per_sheet": per_ids,
        "marker_id_offset": offset,
        "marker_quiet_zone_mm": _r(bl.BLOCK_MARKER_MM / geo.MARKER_MODULES),
        "detail_pixel_mm": _r(pitch),
        "header_mm": [_r(v) for v in g.header],
        "block_mm": [_r(v) for v in bl.block_size_mm(tile_mm, aspect)],
        "ruler_mm": {"start": [_r(hx + RULER_X_MM), _r(hy + RULER_Y_MM)], "length": RULER_MM},
    }
    log.info(
        "%d items -> %d dense sheets of %d pairs (%d x %d) on %s, %d markers each from id %d",
        len(batch.items),
        n_sheets,
        per_sheet,
        g.cols,
        g.rows,
        paper,
        per_ids,
        offset,
    )
    return Layout(
        batch_id=batch.batch_id,
        paper=paper,
        aruco_dictionary=DICTIONARY,
        marker_size_mm=bl.BLOCK_MARKER_MM,
        sheets=sheets,
        tile_mm=float(tile_mm),
        extra=extra,
    )


def choose_offset(
    batch: Batch, plan: Callable[[int], Layout], kept: dict[str, set[int]], identify: Callable[[Layout], str]
) -> Layout:
    """The dense layout whose marker ids no other kept print of the batch uses (see the module docstring).

    Args:
        plan: the layout with marker ids from a given offset.
        kept: each kept print's layout id -> its marker ids.
        identify: the layout id of a plan (sets it in the QR payloads).

    Tries the batch's own offset, then offsets one batch's worth of ids further on; a plan
    whose id is already kept is the same print again and is taken as it is. When no offset
    leaves the other prints' ids alone, the batch's own offset is used, and the warning says
    what capture then needs.
    """
    base = marker_id_offset(batch.batch_id)
    first = plan(base)
    need = sum(len(s.markers) for s in first.sheets)
    steps = max(1, DICTIONARY_SIZE // max(1, need))
    for j in range(steps):
        lay = first if j == 0 else plan((base + j * need) % DICTIONARY_SIZE)
        ids = {m.id for s in lay.sheets for m in s.markers}
        lid = identify(lay)
        if lid in kept or not any(ids & other for other in kept.values()):
            return lay
    identify(first)
    log.warning(
        "the dictionary has no room left for marker ids that the batch's %d kept print(s) do not use: capture "
        "tells this print's sheets from theirs by their QR codes only, so frame each sheet whole once (its QR code "
        "in view) before moving in on its pairs, or remove the layouts/ files of prints no longer on paper",
        len(kept),
    )
    return first
