"""The tiles of a found sheet cut out of the frame at the model's input size, and judged.

Each tile is warped straight from its millimetre box to ``size x size`` through the sheet's
homography (``capture.sheets.detect``), or on a dense sheet through the homography of its own
pair's markers (``capture.sheets.local``); its quality is measured and the gates applied
(``capture.sheets.quality``). :class:`TileCutter` is the part of
:class:`~capture.sheets.detect.SheetDetector` that does this.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from capture.sheets.hits import SheetHit, TileCrop
from capture.sheets.local import pair_hit, pair_markers
from capture.sheets.quality import (
    QualityGates,
    camera_matrix,
    judge_pairs,
    measure,
    midtone_mask,
    quad_side_px,
    sheet_normal,
)
from contracts.errors import UserError
from contracts.images import read_png_array
from contracts.layout import Tile
from contracts.paths import resolve_inside

log = logging.getLogger(__name__)

MIDTONE_CACHE = 1024  # digital mid-tone masks kept for the clipping gate (50-70 KB each at a model's input size)


def project(H: np.ndarray, pts_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``N x 2`` points; return pixels and the homogeneous w (w <= 0: behind the camera)."""
    p = np.hstack([pts_mm, np.ones((len(pts_mm), 1))]) @ H.T
    return p[:, :2] / p[:, 2:3], p[:, 2]


def square_box(box_mm: list[float]) -> tuple[float, float, float]:
    """The centred square of a tile box, as ``resize_center_crop`` would keep: (x, y, side)."""
    x, y, w, h = (float(v) for v in box_mm)
    s = min(w, h)
    return x + (w - s) / 2.0, y + (h - s) / 2.0, s


class TileCutter:
    """Cut a sheet hit's tiles out of the frame (the tile half of ``SheetDetector``, which sets these attributes)."""

    focal_px: float | None
    gates: QualityGates
    batch_dir: Path | None
    _dense: dict[str, bool]
    _corners: dict[str, dict[int, np.ndarray]]
    _midtones: OrderedDict[tuple[str, int, float], np.ndarray | None]
    _warned: set[str]

    def tile_quad(self, hit: SheetHit, tile: Tile) -> tuple[np.ndarray, bool]:
        """The tile's square in frame pixels (TL TR BR BL) and whether it lies in front of the camera."""
        x, y, s = square_box(tile.box_mm)
        quad_mm = np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]])
        quad, w = project(hit.H, quad_mm)
        return quad, bool((w > 0).all())

    def crop_tiles(self, frame_bgr: np.ndarray, hit: SheetHit, size: int, crop_pct: float = 1.0) -> list[TileCrop]:
        """Warp every tile of ``hit`` that lies wholly inside the frame to ``size x size`` RGB.

        Tiles partly outside the frame are skipped, never guessed. A clean tile and its
        adversarial twin are judged together (``quality.judge_pairs``). A tile much
        larger than ``size`` in the frame is warped at up to 4x and area-averaged,
        so that downsampling does not alias. Each tile is warped (bilinear) from
        its own bounding box of the frame, converted to 4 channels first:
        OpenCV's vectorised 4-channel path is about twice as fast as the 3-channel one.
        ``crop_pct`` < 1 (the model's preprocessing spec) keeps the tile's central part only,
        as ``PreprocessSpec.resize_center_crop`` does to the digital PNG.
        """
        fh, fw = frame_bgr.shape[:2]
        K = camera_matrix(fw, fh, self.focal_px)
        if self._dense[hit.layout_id]:  # each pair through its own markers (capture.sheets.local)
            near = pair_markers(hit.sheet)
            corners = self._corners[hit.layout_id]
            local = {item: h for item, ids in near.items() if (h := pair_hit(hit, ids, corners)) is not None}
            normals = {item: sheet_normal(h.H, K) for item, h in local.items()}
            crops = [
                c
                for c in (
                    self._crop(frame_bgr, local[t.item], t, size, K, normals[t.item], crop_pct)
                    for t in hit.sheet.tiles
                    if t.item in local
                )
                if c is not None
            ]
        else:
            normal = sheet_normal(hit.H, K)
            crops = [
                c
                for c in (self._crop(frame_bgr, hit, t, size, K, normal, crop_pct) for t in hit.sheet.tiles)
                if c is not None
            ]
        judge_pairs(crops, hit.sheet.tiles)
        return crops

    def _midtone(self, tile: Tile, size: int, crop_pct: float) -> np.ndarray | None:
        """:func:`~capture.sheets.quality.midtone_mask` of the tile's digital PNG cut and sized as its crop (cached)."""
        if self.batch_dir is None:
            return None
        key = (tile.image, size, crop_pct)
        if key in self._midtones:
            self._midtones.move_to_end(key)
            return self._midtones[key]
        mask: np.ndarray | None = None
        try:
            img = read_png_array(resolve_inside(self.batch_dir, tile.image))
        except (UserError, OSError) as e:
            if "png" not in self._warned:
                self._warned.add("png")
                log.warning("%s; the clipping gate counts every clipped pixel of such tiles", e)
        else:
            h, w = img.shape[:2]
            s = min(h, w) * crop_pct
            y0, x0 = int(round((h - s) / 2)), int(round((w - s) / 2))
            side = max(1, int(round(s)))
            mask = midtone_mask(
                cv2.resize(img[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)
            )
        self._midtones[key] = mask
        if len(self._midtones) > MIDTONE_CACHE:
            self._midtones.popitem(last=False)
        return mask

    def _crop(
        self,
        frame_bgr: np.ndarray,
        hit: SheetHit,
        tile: Tile,
        size: int,
        K: np.ndarray,
        normal: np.ndarray,
        crop_pct: float = 1.0,
    ) -> TileCrop | None:
        """One tile of :meth:`crop_tiles`; ``None`` when it is not wholly in the frame."""
        fh, fw = frame_bgr.shape[:2]
        quad, ahead = self.tile_quad(hit, tile)
        if not ahead or quad.min() < 0 or (quad[:, 0] > fw - 1).any() or (quad[:, 1] > fh - 1).any():
            return None
        x, y, s = square_box(tile.box_mm)
        if crop_pct < 1.0:  # the central part the model's spec keeps
            x, y, s = x + s * (1 - crop_pct) / 2, y + s * (1 - crop_pct) / 2, s * crop_pct
        k = int(min(4, max(1, round(quad_side_px(quad) / size))))
        big = size * k
        step = s / big
        T = np.array([[step, 0, x + 0.5 * step], [0, step, y + 0.5 * step], [0, 0, 1.0]])
        x0, y0 = (max(0, int(v) - 2) for v in quad.min(axis=0))
        x1, y1 = min(fw, int(quad[:, 0].max()) + 3), min(fh, int(quad[:, 1].max()) + 3)
        roi = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2BGRA)
        M = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ hit.H @ T
        crop = cv2.warpPerspective(
            roi, M, (big, big), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
        if k > 1:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGRA2RGB)
        q = measure(rgb, quad, hit.H, K, normal, self._midtone(tile, size, crop_pct))
        fail = self.gates.failures(q, hit.reproj_px)
        return TileCrop(
            tile=tile,
            sheet_id=hit.sheet.sheet_id,
            crop_rgb=rgb,
            quad_px=quad,
            quality=q,
            good=not fail,
            reproj_px=hit.reproj_px,
            fail=fail,
            layout_id=hit.layout_id,
        )
