"""Does the printed sheet match ``layout.json``? Marker size against marker spacing.

A page printed at a uniform scale (e.g. "fit to page" at 94-97%) keeps every
ratio of the layout, so the homography absorbs it and the tiles are still cut
out exactly; nothing in one image can tell it from a sheet held a little
farther away. What a photograph *can* show is a page whose markers are not the
size ``layout.json`` says relative to their spacing: markers drawn at another
size, a layout from another print run, or a page stretched along one axis.

Marker corners found by ``cornerSubPix`` sit slightly inside a blurred marker
(a blurred right angle is rounded), which would read as markers a few percent
small. So the marker size is measured at its edges instead: along short profiles
across the middle of each side, where the grey level crosses halfway from the
black border to the white paper. For a symmetric blur that crossing stays on the
true edge.
"""

from __future__ import annotations

import cv2
import numpy as np

_ALONG = np.array([-0.3, -0.15, 0.0, 0.15, 0.3])  # profile positions along a side, in side lengths
_ACROSS = np.linspace(-0.125, 0.125, 21)  # profile samples across the edge, in side lengths (within the 1/6 border)


def _project(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts.reshape(-1, 2), np.ones((pts.size // 2, 1))]) @ H.T
    return (p[:, :2] / p[:, 2:3]).reshape(pts.shape)


def _edge_offsets(grey: np.ndarray, H: np.ndarray, corners_mm: np.ndarray) -> np.ndarray | None:
    """Signed offset (mm, outward positive) of each of the 4 printed edges from where the layout puts them."""
    centre = corners_mm.mean(axis=0)
    side = float(np.linalg.norm(corners_mm[1] - corners_mm[0]))
    pts = []
    for j in range(4):
        a, b = corners_mm[j], corners_mm[(j + 1) % 4]
        u = (b - a) / np.linalg.norm(b - a)
        n = np.array([u[1], -u[0]])
        mid = (a + b) / 2
        if np.dot(mid - centre, n) < 0:
            n = -n
        pts.append(mid + side * (_ALONG[:, None, None] * u + _ACROSS[None, :, None] * n))
    pts_mm = np.stack(pts)  # 4 x along x across x 2
    px = _project(H, pts_mm).astype(np.float32)
    h, w = grey.shape[:2]
    inside = ((px[..., 0] >= 0) & (px[..., 0] <= w - 1) & (px[..., 1] >= 0) & (px[..., 1] <= h - 1)).all(axis=-1)
    prof = cv2.remap(grey, px[..., 0].reshape(-1, _ACROSS.size), px[..., 1].reshape(-1, _ACROSS.size), cv2.INTER_LINEAR)
    prof = prof.reshape(4, _ALONG.size, _ACROSS.size).astype(np.float64)
    lo, hi = prof[..., :4].mean(axis=-1), prof[..., -4:].mean(axis=-1)
    mid = ((lo + hi) / 2)[..., None]
    above = prof >= mid
    k = np.argmax(above, axis=-1)  # first sample past half-way
    # one clean dark-to-light step: enough contrast, starts dark, never falls back far below half-way after it
    after = np.arange(_ACROSS.size) >= k[..., None]
    dips = (after & (prof < mid - 0.25 * (hi - lo)[..., None])).any(axis=-1)
    ok = inside & (hi - lo >= 40) & (k > 0) & ~dips
    kk = np.clip(k, 1, _ACROSS.size - 1)
    p0 = np.take_along_axis(prof, (kk - 1)[..., None], -1)[..., 0]
    p1 = np.take_along_axis(prof, kk[..., None], -1)[..., 0]
    t = kk - 1 + (mid[..., 0] - p0) / np.maximum(1e-6, p1 - p0)
    edge = np.interp(t, np.arange(_ACROSS.size), _ACROSS) * side
    out = []
    for j in range(4):
        if ok[j].sum() < 3:
            return None
        out.append(float(np.median(edge[j][ok[j]])))
    return np.array(out)


def marker_size_ratio(grey: np.ndarray, H: np.ndarray, corners_mm: np.ndarray) -> float | None:
    """Printed marker side over the layout's, from its edges (``None`` when unmeasurable)."""
    off = _edge_offsets(grey, H, corners_mm)
    if off is None:
        return None
    side = float(np.linalg.norm(corners_mm[1] - corners_mm[0]))
    return float((2 * side + off.sum()) / (2 * side))


def size_to_spacing_ratio(
    grey: np.ndarray, H: np.ndarray, markers: list[tuple[np.ndarray, np.ndarray]]
) -> float | None:
    """Median marker size over median marker spacing, both relative to the layout (1.0: as laid out).

    Args:
        grey: the frame, ``H x W`` uint8.
        H: homography mm -> px fitted to these markers.
        markers: per marker, its corners in layout mm and as detected in px (``4 x 2`` each).
    """
    sizes = [r for mm, _ in markers if (r := marker_size_ratio(grey, H, mm)) is not None]
    if not sizes or len(markers) < 2:
        return None
    Hinv = np.linalg.inv(H)
    lay = [mm.mean(axis=0) for mm, _ in markers]
    seen = [_project(Hinv, px).mean(axis=0) for _, px in markers]
    spacing = [
        float(np.linalg.norm(seen[a] - seen[b]) / d)
        for a in range(len(markers))
        for b in range(a + 1, len(markers))
        if (d := float(np.linalg.norm(lay[a] - lay[b]))) > 1e-6
    ]
    return float(np.median(sizes) / np.median(spacing)) if spacing else None
