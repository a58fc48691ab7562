"""Each pair of a dense sheet located by its own four markers (``printouts.blocks``).

Paper is not flat at the scale of a page: a sheet bends, and one homography fitted to
markers far apart misplaces the tiles between them. On a dense sheet every pair has a
marker at each corner of its block, so a tile is warped through a homography fitted to
those markers alone (Hartley and Zisserman 2004, sec. 4.1, the normalised DLT that
``cv2.findHomography`` runs), and is not cut when fewer than three of them are in view.
"""

from __future__ import annotations

import cv2
import numpy as np

from capture.sheets.hits import SheetHit
from contracts.layout import Sheet

MIN_PAIR_MARKERS = 3  # of a block's four: with two, the fit extrapolates across the pair


def pair_markers(sheet: Sheet) -> dict[str, list[int]]:
    """Each item of a dense ``sheet`` -> the ids of the markers that frame its pair."""
    out: dict[str, list[int]] = {}
    for m in sheet.markers:
        for item in m.pairs:
            out.setdefault(item, []).append(m.id)
    return out


def pair_hit(hit: SheetHit, ids: list[int], corners_mm: dict[int, np.ndarray]) -> SheetHit | None:
    """``hit`` with its homography refitted to the pair's markers ``ids`` that it saw; ``None`` when too few."""
    seen = [i for i in ids if i in hit.marker_px]
    if len(seen) < min(MIN_PAIR_MARKERS, len(ids)):
        return None
    src = np.concatenate([corners_mm[i] for i in seen])
    dst = np.concatenate([hit.marker_px[i] for i in seen])
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        return None
    p = np.hstack([src, np.ones((len(src), 1))]) @ H.T
    if (p[:, 2] <= 0).any():
        return None
    reproj = float(np.sqrt(np.mean(np.sum((p[:, :2] / p[:, 2:3] - dst) ** 2, axis=1))))
    return SheetHit(
        sheet=hit.sheet,
        H=H,
        marker_ids=sorted(seen),
        reproj_px=reproj,
        scale_ratio=hit.scale_ratio,
        scale_warning=hit.scale_warning,
        qr_verified=hit.qr_verified,
        layout_id=hit.layout_id,
        marker_px=hit.marker_px,
    )
