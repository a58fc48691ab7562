"""How the session framed the sheets: the ``sheet_fill`` range that ``photoproof calibrate`` writes.

The simulated camera frames a region of a sheet so that it fills ``sheet_fill`` of the frame: the whole
sheet (its height, :func:`channel.page.page_homography`), or, on a dense sheet seen from close up, one
pair and its four markers, or the bottom row with the calibration strip (:mod:`channel.views`,
:func:`channel.page.region_homography`, along the region's limiting side). So the fill a tile's size in
pixels implies depends on what the camera was framing. For each frame of a dense sheet the candidates
are one of its pairs (its markers' box), the strip's row and the whole sheet; the largest region whose
fill at the frame's median tile scale fits in the frame (at most ``FITS``) is taken. Their fills differ by
factors of 1.3 (the strip's row against the sheet) to 2.6 (a pair against the sheet); the first is too
small to tell a step back to the strip's row from one to the whole sheet, so on a dense sheet the range
comes from the close-ups of one pair (the simulated camera frames the strip's row with the same fill). A
fill computed
against the whole sheet from close-ups
would exceed 1 (the sheet larger than the frame) and make the simulated camera frame whole sheets at
twice their size.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict

import numpy as np

from channel.views import block_views, strip_view
from contracts.layout import Layout

MIN_TILES = 10  # fewer tiles seen: the base profile's framing is kept
FITS = 1.05  # a region whose implied fill is at most this fits in the frame (tilt and noise in the tiles' size)


def _fill(px_per_mm: float, region_wh: tuple[float, float], whole: bool, frame_wh: tuple[int, int]) -> float:
    """The ``sheet_fill`` at which the simulated camera gives ``px_per_mm`` framing this region: a whole sheet
    fills it by its height (``channel.page.page_homography``), a close-up region along its limiting side
    (``channel.page.region_homography``)."""
    (w, h), (fw, fh) = region_wh, frame_wh
    return px_per_mm * h / fh if whole else px_per_mm / min(fh / h, fw / w)


def _views(layout: Layout) -> dict[tuple[str, str], tuple[float, float]]:
    """(sheet id, item id or "strip") -> the (w, h) mm of the region a close-up of it frames (dense sheets only)."""
    quiet = float(layout.extra.get("marker_quiet_zone_mm", 0.0))
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for sheet in layout.sheets:
        for item, box in block_views(sheet, quiet).items():
            out[(sheet.sheet_id, item)] = (box[2], box[3])
        bottom = strip_view(sheet, quiet)
        if bottom is not None:
            out[(sheet.sheet_id, "strip")] = (bottom[2], bottom[3])
    return out


def fit_framing(
    con: sqlite3.Connection, session: str, layout: Layout, frame_wh: tuple[int, int]
) -> tuple[tuple[float, float], int] | None:
    """(sheet_fill range, n): 5-95 % of the fills the session's tiles imply, each against the region its frame
    framed; None under ``MIN_TILES`` tiles.

    The tiles' viewing angle is recorded too, but it mixes the sheet's tilt with where the tile sits
    in the frame, so the tilt is not fitted from it.
    """
    sheets = {s.sheet_id: s for s in layout.sheets}
    try:
        rows = con.execute(
            "SELECT frame_idx, sheet_id, item_id, role, tile_px FROM observations WHERE session_id=?", (session,)
        ).fetchall()
    except sqlite3.OperationalError:
        return None
    obs: dict[tuple[int, str], list[tuple[str, float]]] = defaultdict(list)  # (frame, sheet) -> (item, px per mm)
    for frame, sid, item, role, px in rows:
        sheet = sheets.get(sid)
        tile = next((t for t in sheet.tiles if t.item == item and t.role == role), None) if sheet else None
        if sheet is not None and tile is not None and px and math.isfinite(px):
            obs[(frame, sid)].append((item, float(px) / math.sqrt(float(tile.box_mm[2]) * float(tile.box_mm[3]))))
    regions = _views(layout) if layout.dense else {}
    fills: list[float] = []
    close: list[float] = []  # the close-ups of one pair alone
    for (_, sid), seen in obs.items():
        sheet = sheets[sid]
        # the frame's candidates, smallest region first: one of its pairs, the strip's row, the whole sheet; the
        # largest that fits in the frame at the frame's median scale is what it framed
        keys = [(sid, seen[0][0]), (sid, "strip")]
        cands = [(regions[k], False) for k in keys if k in regions]
        cands.append(((float(sheet.size_mm[0]), float(sheet.size_mm[1])), True))
        mid = float(np.median([v for _, v in seen]))
        fit = [c for c in cands if _fill(mid, *c, frame_wh) <= FITS]
        region, whole = fit[-1] if fit else cands[0]
        these = [_fill(v, region, whole, frame_wh) for _, v in seen]
        fills += these
        if len(cands) == 3 and len(fit) <= 1:
            close += these
    if len(fills) < MIN_TILES:
        return None
    # on a dense sheet, the close-ups: the strip's row and the whole sheet differ by a factor of only 1.3, too
    # little to tell which of the two a step back framed; the simulated camera frames both with the same fill
    f = np.array(close if len(close) >= MIN_TILES else fills)
    return (float(np.quantile(f, 0.05)), float(np.quantile(f, 0.95))), len(fills)
