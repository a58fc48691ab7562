"""Where a close-up camera points on a dense sheet (``printouts.blocks``): one pair and its four markers at a time.

A webcam reads a dense sheet from close up, one block (a pair and the markers at its corners)
filling the frame, moved from pair to pair; a 12 MP still frames the whole sheet. The simulated
camera (:mod:`channel.simulate`) does the same: :func:`needs_close_up` decides, and
:func:`close_up_views` lists the blocks, sheet by sheet, each sheet's then followed by one view
of its bottom row with the calibration strip and the QR code (:func:`strip_view`), as a user
steps back once per sheet for ``photoproof calibrate``.
"""

from __future__ import annotations

from contracts.layout import Layout, Sheet
from contracts.profile import ChannelProfile


def _box(pts: list[list[float]], pad: float) -> tuple[float, float, float, float]:
    x0, y0 = min(p[0] for p in pts) - pad, min(p[1] for p in pts) - pad
    x1, y1 = max(p[0] for p in pts) + pad, max(p[1] for p in pts) + pad
    return x0, y0, x1 - x0, y1 - y0


def _corners(box: list[float]) -> list[list[float]]:
    x, y, w, h = (float(v) for v in box)
    return [[x, y], [x + w, y + h]]


def strip_view(sheet: Sheet, quiet: float) -> tuple[float, float, float, float] | None:
    """The bottom row of pairs with the calibration strip and the QR code below it (x, y, w, h mm).

    Framed once per sheet: the strip is what ``photoproof calibrate`` measures, and the QR code names the print;
    the two bottom rows of markers give the homography.
    """
    rows = sorted({m.corners_mm[0][1] for m in sheet.markers})[-2:]
    pts = [c for m in sheet.markers if m.corners_mm[0][1] in rows for c in m.corners_mm]
    pts += [c for p in sheet.calibration for c in _corners(p.box_mm)]
    if sheet.qr and "box_mm" in sheet.qr:
        pts += _corners(sheet.qr["box_mm"])
    return _box(pts, quiet) if pts and sheet.calibration else None


def block_views(sheet: Sheet, quiet: float) -> dict[str, tuple[float, float, float, float]]:
    """Each pair of a dense sheet (item id, in the sheet's order) -> the (x, y, w, h) mm of its markers' box,
    quiet zones included: what a close-up of that pair frames."""
    views = {}
    for item in dict.fromkeys(t.item for t in sheet.tiles):
        pts = [c for m in sheet.markers if item in m.pairs for c in m.corners_mm]
        if pts:
            views[item] = _box(pts, quiet)
    return views


def close_up_views(layout: Layout, strip: bool = True) -> list[tuple[int, tuple[float, float, float, float]]]:
    """Each pair of each dense sheet: (sheet index, :func:`block_views`' box), then (``strip``) the sheet's
    :func:`strip_view`."""
    quiet = float(layout.extra.get("marker_quiet_zone_mm", 0.0))
    views = []
    for k, sheet in enumerate(layout.sheets):
        views += [(k, box) for box in block_views(sheet, quiet).values()]
        bottom = strip_view(sheet, quiet) if strip and layout.dense else None
        if bottom is not None:
            views.append((k, bottom))
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
