"""Measure the calibration strip while capturing, for ``photoproof calibrate``.

Called by the capture loop every ``PATCH_EVERY``-th frame (the protocol's constants are in
:mod:`contracts.strip`): for every detected
sheet, the mean and standard deviation of each grey and colour patch over the
central half of the patch (raw frame pixels, a plane removed, no resampling),
and the Gaussian blur sigma of the sheet's black-to-white edges from an
edge-spread-function fit (the slanted-edge idea of ISO 12233) in frame pixels.
Rows go to the ``patches`` and ``blur`` tables (``contracts.capturedb``);
:mod:`channel.calibrate` fits a channel profile to them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from capture.jpegquality import quality_from_pixels
from capture.sheets.detect import SheetHit
from contracts.layout import Patch, Sheet
from contracts.strip import (
    BT601,
    CAPTION_MM,
    EDGE_MM,
    END_MM,
    ESF_GAMMA,
    ESF_WINDOW_PX,
    INSET,
    MIN_EDGE_MM,
    NOISE_BIN,
    PATCH_EVERY,
    fit_esf,
    fit_esf_params,
    windowed_esf,
)

JPEG_FRAMES = 8  # measured frames whose JPEG quality is recorded (a camera keeps its quality through a session)

log = logging.getLogger(__name__)


@dataclass
class PatchStat:
    """One patch in one frame: encoded RGB mean and std (0..255), luma std, pixel count."""

    name: str
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]
    std_y: float
    n_px: int
    std_y2: float | None = None  # luma std of 2 x 2 pixel means: the noise at the scale a tile is classified at


@dataclass
class SheetPatches:
    """The strip of one sheet in one frame."""

    sheet_id: str
    patches: list[PatchStat]
    sigma_px: float | None  # median edge sigma in frame pixels (None: no usable edge)
    n_edges: int
    width: int
    height: int
    esf: list[float] | None = None  # median normalised edge spread function (contracts.strip.esf_profile)


# ----------------------------------------------------------------------------- pixels
def _region(frame: np.ndarray, H: np.ndarray, quad_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Frame pixels (x, y as N x 2 float) and values (N x 3 BGR) inside the
    projected quad; None if not wholly in view.
    """
    p = cv2.perspectiveTransform(quad_mm.reshape(1, -1, 2).astype(np.float64), H)[0]
    fh, fw = frame.shape[:2]
    if not np.isfinite(p).all() or p.min() < 0 or (p[:, 0] > fw - 1).any() or (p[:, 1] > fh - 1).any():
        return None
    x0, y0 = np.floor(p.min(axis=0)).astype(int)
    x1, y1 = np.ceil(p.max(axis=0)).astype(int) + 1
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, np.round((p - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.column_stack([xs + x0, ys + y0]).astype(np.float64), frame[ys + y0, xs + x0].astype(np.float64)


def _box(b: Sequence[float], inset: float = 0.0) -> np.ndarray:
    x, y, w, h = (float(v) for v in b)
    dx, dy = inset * w, inset * h
    return np.array([[x + dx, y + dy], [x + w - dx, y + dy], [x + w - dx, y + h - dy], [x + dx, y + h - dy]])


def measure_patch(frame: np.ndarray, H: np.ndarray, patch: Patch) -> PatchStat | None:
    """Mean and std of the patch's central half; the std after removing a least-squares plane."""
    got = _region(frame, H, _box(patch.box_mm, INSET))
    if got is None or len(got[0]) < 12:
        return None
    xy, bgr = got
    rgb = bgr[:, ::-1]
    a = np.column_stack([np.ones(len(xy)), xy - xy.mean(axis=0)])
    vals = np.column_stack([rgb, rgb @ BT601])
    coef, *_ = np.linalg.lstsq(a, vals, rcond=None)
    res = vals - a @ coef
    std = np.sqrt((res**2).sum(axis=0) / max(1, len(xy) - 3))
    m = rgb.mean(axis=0)
    return PatchStat(
        patch.name,
        (float(m[0]), float(m[1]), float(m[2])),
        (float(std[0]), float(std[1]), float(std[2])),
        float(std[3]),
        len(xy),
        binned_std(xy, res[:, 3]),
    )


def binned_std(xy: np.ndarray, r: np.ndarray, k: int = NOISE_BIN) -> float | None:
    """Std of the means of whole ``k`` x ``k`` pixel blocks of residuals ``r`` at integer pixels ``xy``; None under
    8 blocks. A tile is classified area-averaged (about 2x for a 500 px tile at 224), which cancels
    high-frequency noise (a camera's sharpened noise) more than white noise: this is that noise."""
    ij = (xy - xy.min(axis=0)).astype(int) // k
    key = ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1]
    count = np.bincount(key)
    mean = np.bincount(key, weights=r) / np.maximum(count, 1)
    full = mean[count == k * k]
    return float(full.std(ddof=1)) if len(full) >= 8 else None


# ----------------------------------------------------------------------------- edges
def _obstacles(sheet: Sheet, quiet_mm: float) -> list[tuple[np.ndarray, bool]]:
    """Axis-aligned boxes (x0, y0, x1, y1) of everything printed, and whether each is white."""
    out: list[tuple[np.ndarray, bool]] = []
    for m in sheet.markers:
        c = np.asarray(m.corners_mm, float)
        out.append((np.r_[c.min(axis=0) - quiet_mm, c.max(axis=0) + quiet_mm], False))
    for t in sheet.tiles:
        x, y, w, h = t.box_mm
        out.append((np.array([x, y, x + w, y + h + CAPTION_MM]), False))  # tile and its caption
    for p in sheet.calibration:
        x, y, w, h = p.box_mm
        white = p.kind != "detail" and p.rgb is not None and min(p.rgb) >= 225
        out.append((np.array([x, y, x + w, y + h]), white))
    if sheet.qr and "box_mm" in sheet.qr:
        x, y, w, h = sheet.qr["box_mm"]
        out.append((np.array([x, y, x + w, y + h]), False))
    return out


@dataclass(frozen=True)
class Edge:
    """A black-to-white edge in sheet mm: ends, unit normal towards white, room on the black and white sides."""

    a: np.ndarray
    b: np.ndarray
    normal: np.ndarray
    inside: float
    outside: float
    kind: str  # "strip" or "marker"


def _room(
    box: np.ndarray, axis: int, sign: int, obstacles: list[tuple[np.ndarray, bool]], page: Sequence[float]
) -> float:
    """Free paper (or white patches) beyond the side of ``box`` facing ``sign`` along ``axis``, up to ``EDGE_MM``."""
    other = 1 - axis
    edge = box[axis + 2] if sign > 0 else box[axis]
    lo, hi = box[other] + END_MM, box[other + 2] - END_MM
    room = min(EDGE_MM, page[axis] - edge if sign > 0 else edge)
    for ob, white in obstacles:
        if white or np.array_equal(ob, box) or ob[other + 2] <= lo or ob[other] >= hi:
            continue
        if sign > 0 and ob[axis + 2] > edge:
            room = min(room, max(0.0, ob[axis] - edge))
        elif sign < 0 and ob[axis] < edge:
            room = min(room, max(0.0, edge - ob[axis + 2]))
    return room


def strip_edges(sheet: Sheet, marker_mm: float) -> list[Edge]:
    """The sheet's black-to-white edges.

    ``strip``: the sides of the solid black patches that face bare paper or a white
    patch with at least ``MIN_EDGE_MM`` of room; ``marker``: the outer sides of the
    markers (their black border against the one-module white quiet zone).
    """
    module = marker_mm / 6.0
    obstacles = _obstacles(sheet, module)
    edges = []
    for p in sheet.calibration:
        if p.kind == "detail" or p.rgb is None or max(p.rgb) > 32:
            continue
        x, y, w, h = (float(v) for v in p.box_mm)
        box = np.array([x, y, x + w, y + h])
        for axis in (0, 1):
            for sign in (-1, 1):
                room = _room(box, axis, sign, obstacles, sheet.size_mm)
                if room < MIN_EDGE_MM:
                    continue
                other = 1 - axis
                a, b, n = np.zeros(2), np.zeros(2), np.zeros(2)
                a[axis] = b[axis] = box[axis + 2] if sign > 0 else box[axis]
                a[other], b[other], n[axis] = box[other], box[other + 2], sign
                edges.append(Edge(a, b, n, min(EDGE_MM, (w, h)[axis] / 2), room, "strip"))
    for m in sheet.markers:
        c = np.asarray(m.corners_mm, float)
        for k in range(4):
            a, b = c[k], c[(k + 1) % 4]
            t = (b - a) / np.linalg.norm(b - a)
            n = np.array([t[1], -t[0]])
            if n @ (a - c.mean(axis=0)) < 0:
                n = -n
            edges.append(Edge(a, b, n, 0.8 * module, 0.8 * module, "marker"))
    return edges


def _edge_samples(
    frame: np.ndarray, H: np.ndarray, edge: Edge, lut: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Signed distances (frame pixels, towards white), values and the widest sigma the window allows."""
    a, b, n, inside, room = edge.a, edge.b, edge.normal, edge.inside, edge.outside
    t = (b - a) / np.linalg.norm(b - a)
    a2, b2 = a + END_MM * t, b - END_MM * t
    quad = np.array([a2 - inside * n, b2 - inside * n, b2 + room * n, a2 + room * n])
    got = _region(frame, H, quad)
    if got is None:
        return None
    xy, bgr = got
    ends = cv2.perspectiveTransform(np.array([[a, b, a + n]], np.float64), H)[0]
    tp = ends[1] - ends[0]
    npx = np.array([-tp[1], tp[0]]) / max(1e-9, float(np.linalg.norm(tp)))
    if npx @ (ends[2] - ends[0]) < 0:
        npx = -npx
    px_per_mm = float(np.linalg.norm(tp)) / float(np.linalg.norm(b - a))
    d = (xy - ends[0]) @ npx
    v = lut[bgr.astype(np.uint8)].mean(axis=1)
    return d, v, min(inside, room) * px_per_mm / 2.5


def edge_sigma(frame: np.ndarray, H: np.ndarray, edge: Edge, lut: np.ndarray) -> float | None:
    """Blur sigma (frame pixels) of one black-to-white edge, from its raw pixels around the projected line."""
    got = _edge_samples(frame, H, edge, lut)
    return None if got is None else fit_esf(*got)


def edge_esf(frame: np.ndarray, H: np.ndarray, edge: Edge, lut: np.ndarray) -> tuple[float, np.ndarray | None] | None:
    """:func:`edge_sigma` and the edge's binned spread function, read on the samples within ``ESF_WINDOW_PX`` of the
    edge as calibrate's forward model reads its own (``contracts.strip.windowed_esf``; None when the sheet leaves
    the edge a narrower window: at this distance its overshoot would read otherwise)."""
    got = _edge_samples(frame, H, edge, lut)
    params = None if got is None else fit_esf_params(*got)
    if got is None or params is None:
        return None
    d, v, max_sigma = got
    if max_sigma * 2.5 < ESF_WINDOW_PX:
        return params[3], None
    return params[3], windowed_esf(d, v, params[2])


def _median_esf(esfs: list[np.ndarray]) -> list[float] | None:
    """The bin-wise median of edge spread functions (NaN where no edge has the bin); None without any."""
    if not esfs:
        return None
    a = np.stack(esfs)
    out = [float(np.median(c[np.isfinite(c)])) if np.isfinite(c).any() else math.nan for c in a.T]
    return None if all(math.isnan(x) for x in out) else out


_LIN = ((np.arange(256) / 255.0) ** ESF_GAMMA).astype(np.float64)


def measure_sheet(
    frame_bgr: np.ndarray, hit: SheetHit, marker_mm: float, edges: list[Edge] | None = None
) -> SheetPatches | None:
    """Patches and edge blur of one detected sheet; None when it has no calibration strip in view.

    The blur is the median over the strip's edges, or over the markers' when fewer than two
    strip edges fit. ``edges``: the sheet's :func:`strip_edges`, when already known.
    """
    H = hit.H
    stats = [
        s
        for p in hit.sheet.calibration
        if p.kind in ("grey", "colour") and (s := measure_patch(frame_bgr, H, p)) is not None
    ]
    edges = strip_edges(hit.sheet, marker_mm) if edges is None else edges
    fits = [f for e in edges if e.kind == "strip" and (f := edge_esf(frame_bgr, H, e, _LIN)) is not None]
    if len(fits) < 2:
        fits += [f for e in edges if e.kind == "marker" and (f := edge_esf(frame_bgr, H, e, _LIN)) is not None]
    if not stats and not fits:
        return None
    fh, fw = frame_bgr.shape[:2]
    sigma = float(np.median([f[0] for f in fits])) if fits else None
    esf = _median_esf([f[1] for f in fits if f[1] is not None])
    return SheetPatches(hit.sheet.sheet_id, stats, sigma, len(fits), fw, fh, esf)


def measure_hits(
    frame_bgr: np.ndarray, hits: list[SheetHit], marker_mm: float, edges: dict[str, list[Edge]] | None = None
) -> list[SheetPatches]:
    """:func:`measure_sheet` for every hit (``edges`` caches each sheet's); a failure is logged and skipped."""
    out = []
    cache = {} if edges is None else edges
    for h in hits:
        try:
            if h.sheet.sheet_id not in cache:
                cache[h.sheet.sheet_id] = strip_edges(h.sheet, marker_mm)
            m = measure_sheet(frame_bgr, h, marker_mm, cache[h.sheet.sheet_id])
        except (cv2.error, ValueError, np.linalg.LinAlgError) as e:
            log.warning("calibration strip of %s not measured: %s", h.sheet.sheet_id, e)
            continue
        if m is not None:
            out.append(m)
    return out


def strip_in_view(frame_shape: tuple[int, ...], hit: SheetHit) -> bool:
    """Whether every grey patch of the sheet's calibration strip has its centre inside the frame (cheap)."""
    centres = [
        (p.box_mm[0] + p.box_mm[2] / 2, p.box_mm[1] + p.box_mm[3] / 2)
        for p in hit.sheet.calibration
        if p.kind == "grey"
    ]
    if not centres:
        return False
    xy = cv2.perspectiveTransform(np.array([centres], np.float64), hit.H)[0]
    h, w = frame_shape[:2]
    return bool(np.all((xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)))


class StripMeter:
    """The capture loop's hook: measure the strip at most every ``every`` frames with it in view, and the
    markers' edges on other frames with sheets at most every ``every`` frames.

    On a dense sheet framed pair by pair the strip is in view only when the user steps back to frame the bottom
    row, a few frames per sheet: a close-up measured just before must not take those frames' turn.
    """

    def __init__(self, marker_mm: float, every: int = PATCH_EVERY) -> None:
        self.marker_mm, self.every, self.last, self.last_strip = marker_mm, every, -every, -every
        self.jpeg_frames = 0
        self.edges: dict[str, list[Edge]] = {}

    def offer(
        self, recorder: Any, idx: int, frame_bgr: np.ndarray, hits: list[SheetHit], jpeg_quality: int | None = None
    ) -> None:
        """Measure and record (``recorder.add_patches``) when due; cheap otherwise.

        The frame's JPEG quality too (``recorder.add_jpeg``), on the first ``JPEG_FRAMES`` measured frames: read
        from the file's tables (``jpeg_quality``, given by the source), else estimated from the decoded pixels.
        """
        if not hits or (idx - self.last < self.every and idx - self.last_strip < self.every):
            return
        strip = any(strip_in_view(frame_bgr.shape, h) for h in hits)
        if strip and idx - self.last_strip >= self.every:
            self.last_strip = self.last = idx
        elif not strip and idx - self.last >= self.every:
            self.last = idx
        else:
            return
        recorder.add_patches(idx, measure_hits(frame_bgr, hits, self.marker_mm, self.edges))
        if self.jpeg_frames < JPEG_FRAMES:
            self.jpeg_frames += 1
            if jpeg_quality is not None:
                recorder.add_jpeg(idx, jpeg_quality, jpeg_quality, "tables")
            else:
                found = quality_from_pixels(frame_bgr)
                recorder.add_jpeg(idx, *(found or (None, None)), "pixels")
