"""Where a close-up camera points on a dense sheet (``printouts.blocks``): one pair and its four markers at a time.

A webcam reads a dense sheet from close up, one block (a pair and the markers at its corners)
filling the frame, moved from pair to pair; a 12 MP still frames the whole sheet. The simulated
camera (:mod:`channel.simulate`) does the same: :func:`needs_close_up` decides, and
:func:`close_up_views` lists the blocks, sheet by sheet.
"""

from __future__ import annotations

from contracts.layout import Layout
from contracts.profile import ChannelProfile


def close_up_views(layout: Layout) -> list[tuple[int, tuple[float, float, float, float]]]:
    """Each pair of each dense sheet: (sheet index, (x, y, w, h) mm of its markers' box, quiet zones included)."""
    quiet = float(layout.extra.get("marker_quiet_zone_mm", 0.0))
    views = []
    for k, sheet in enumerate(layout.sheets):
        items = list(dict.fromkeys(t.item for t in sheet.tiles))
        for item in items:
            pts = [c for m in sheet.markers if item in m.pairs for c in m.corners_mm]
            if not pts:
                continue
            x0, y0 = min(p[0] for p in pts) - quiet, min(p[1] for p in pts) - quiet
            x1, y1 = max(p[0] for p in pts) + quiet, max(p[1] for p in pts) + quiet
            views.append((k, (x0, y0, x1 - x0, y1 - y0)))
    return views


def needs_close_up(layout: Layout, profile: ChannelProfile) -> bool:
    """Whether this camera frames ``layout`` pair by pair: a dense layout whose tiles, with the whole sheet in
    view (at the middle of the profile's ``sheet_fill``), get fewer camera pixels than the layout aims at
    (``extra.camera.target_px``, written by ``print --frame-size``)."""
    cam = layout.extra.get("camera")
    if not layout.dense or not layout.sheets or not isinstance(cam, dict):
        return False
    target = float(cam.get("target_px") or 0)
    fill = sum(profile.scene.sheet_fill) / 2
    w, h = layout.sheets[0].size_mm
    fw, fh = profile.camera.width, profile.camera.height
    px_per_mm = fill * max(min(fw / w, fh / h), min(fw / h, fh / w))  # the better way round (contracts.framing)
    return layout.tile_mm * px_per_mm < target
