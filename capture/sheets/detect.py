"""Find printed sheets in a camera frame and cut out their tiles.

Each sheet carries ArUco fiducial markers (Garrido-Jurado et al. 2014,
"Automatic generation and detection of highly reliable fiducial markers under
occlusion", https://doi.org/10.1016/j.patcog.2014.01.005) whose corners are
known in millimetres from ``layout.json``. The corners of every visible marker of
a sheet give a homography from millimetres to camera pixels (RANSAC, at least two
markers, so that one covered corner marker does not matter), and each tile is
warped straight from its millimetre box to the model's input size (``capture.sheets.crops``).

Sheet identity: marker ids outside this layout are ignored (a sheet of another
batch usually carries other ids, see ``printouts.markers``), and each sheet's QR
code is read where the layout puts it, so that a sheet of another batch that
happens to carry the same ids is ignored too.

Prints: a batch printed more than once (``layouts/``) has sheets with the same
marker ids but other tiles. The QR code names the print's layout id; a sheet is
read with the layout it names, and refused when that layout is not kept. While
several kept layouts have a sheet and its code has not been read yet, its tiles
are not cut: a tile is never attributed with the wrong layout.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict, deque
from pathlib import Path

import cv2
import numpy as np

from capture.sheets.crops import TileCutter
from capture.sheets.crops import project as _project
from capture.sheets.hits import SheetHit, TileCrop
from capture.sheets.qr import SheetQr
from capture.sheets.quality import QualityGates
from capture.sheets.scale import size_to_spacing_ratio
from contracts.errors import UserError
from contracts.layout import Layout, Sheet

__all__ = ["SheetDetector", "SheetHit", "TileCrop", "aruco_dictionary"]

log = logging.getLogger(__name__)

_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
FAST_WINDOW_PX = 9  # the fast search's one adaptive-threshold window
FULL_SCAN_FRAMES = 30  # every this many frames the whole dictionary is searched, for markers of other batches


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    """The OpenCV predefined dictionary called ``name`` (e.g. ``DICT_4X4_1000``)."""
    code = getattr(cv2.aruco, name, None) if name.startswith("DICT_") else None
    if not isinstance(code, int):
        raise UserError(
            f"layout.json: aruco_dictionary {name!r} is not an OpenCV ArUco dictionary (e.g. DICT_4X4_1000)"
        )
    return cv2.aruco.getPredefinedDictionary(code)


class SheetDetector(TileCutter):
    """Detect the sheets of one layout in BGR frames and cut out their tiles.

    Args:
        layout: the batch's ``layout.json``.
        gates: quality gates for the ``good`` flag (defaults: ``QualityGates()``).
        ransac_px: RANSAC inlier threshold in pixels.
        scale_tol: relative disagreement of marker size vs marker spacing that raises a scale warning.
        qr_every: re-read each sheet's QR code every this many frames (0: never).
        scale_every: measure each sheet's printed scale every this many sightings.
        focal_px: focal length in pixels for the viewing angle (default: a 78° diagonal field of view).
        batch_dir: the batch, whose PNGs tell the clipping gate where the digital image is
            mid-tone (``quality.midtone_mask``); without it every clipped pixel counts.
    """

    def __init__(
        self,
        layout: Layout,
        gates: QualityGates | None = None,
        *,
        ransac_px: float = 3.0,
        scale_tol: float = 0.03,
        qr_every: int = 30,
        scale_every: int = 5,
        focal_px: float | None = None,
        batch_dir: Path | None = None,
        layouts: dict[str, Layout] | None = None,
    ) -> None:
        self.layout = layout
        # every kept print of the batch, the current first (contracts.layout.load_layouts)
        self.layouts: dict[str, Layout] = {layout.id: layout, **{k: v for k, v in (layouts or {}).items()}}
        self.unresolved = 0  # sheets seen while their print was ambiguous and their QR code unread
        self.batch_dir = batch_dir
        self._midtones: OrderedDict[tuple[str, int, float], np.ndarray | None] = OrderedDict()
        self.gates = gates or QualityGates()
        self.ransac_px = ransac_px
        self.scale_tol = scale_tol
        self.scale_every = max(1, scale_every)
        self.focal_px = focal_px
        self._index: dict[int, tuple[Sheet, object]] = {}
        for lay in reversed(list(self.layouts.values())):  # the current layout's sheets win
            self._index.update(lay.marker_index())
        full = aruco_dictionary(layout.aruco_dictionary)
        ours = sorted(self._index)
        if ours and not 0 <= ours[0] <= ours[-1] < len(full.bytesList):
            raise UserError(
                f"layout.json: marker ids {ours[0]}..{ours[-1]} do not all exist in {layout.aruco_dictionary}; "
                "re-run 'photoproof print'"
            )
        # Identifying a candidate costs time in proportion to the dictionary: search for this
        # layout's ids only (exact matches, as the whole dictionary allows no corrected bits),
        # and the whole dictionary now and then, to notice a sheet of another batch.
        subset = (
            cv2.aruco.Dictionary(full.bytesList[ours].copy(), full.markerSize, full.maxCorrectionBits) if ours else full
        )
        self._subset_ids = ours
        fast = cv2.aruco.DetectorParameters()
        fast.adaptiveThreshWinSizeMin = fast.adaptiveThreshWinSizeMax = FAST_WINDOW_PX  # one pass
        self._fast = cv2.aruco.ArucoDetector(subset, fast)
        self._fast_full = cv2.aruco.ArucoDetector(full, fast)
        self._robust = cv2.aruco.ArucoDetector(subset, cv2.aruco.DetectorParameters())
        self._marker_side = 0.0  # median marker side in the last frame, px
        self._misses = 0
        self._corners: dict[str, dict[int, np.ndarray]] = {
            lid: {m.id: np.asarray(m.corners_mm, np.float64).reshape(4, 2) for sh in lay.sheets for m in sh.markers}
            for lid, lay in self.layouts.items()
        }
        self._sheets = {lid: {sh.sheet_id: sh for sh in lay.sheets} for lid, lay in self.layouts.items()}
        self._dense = {lid: lay.dense for lid, lay in self.layouts.items()}
        self._frame_no = 0
        self._warned: set[str] = set()
        self.foreign_ids: set[int] = set()
        payloads = {
            str(sh.qr["payload"]): (lid, sh.sheet_id)
            for lid, lay in self.layouts.items()
            for sh in lay.sheets
            if sh.qr and "payload" in sh.qr
        }
        self.qr = SheetQr(qr_every, payloads, layout.batch_id)
        self.scale_warnings: dict[str, float] = {}
        self._scale_history: dict[str, deque[float]] = {}
        self._sightings: dict[str, int] = {}

    # -- detection -----------------------------------------------------------
    def detect_markers(self, frame: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
        """ArUco markers in the frame: a list of ``4 x 2`` corner arrays (full-resolution px) and their ids.

        A fast search looks for this layout's ids only, with one adaptive-threshold
        pass (a 9 px window), at half resolution when the last frame's markers were
        over 64 px wide (still 5 px per module at half resolution); every
        ``FULL_SCAN_FRAMES`` frames it searches the whole dictionary instead, so
        that markers of other batches are noticed. When it finds fewer than three
        of this layout's markers, OpenCV's default search (three passes) follows at
        full resolution (only every third frame while no sheet is in view) and the
        better of the two is kept. Corners are refined with ``cornerSubPix`` at full
        resolution, with a window scaled to the marker.
        """
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        half = self._marker_side > 64
        if self._frame_no % FULL_SCAN_FRAMES == 1 or not self._subset_ids:
            corners, ids = self._run(self._fast_full, grey, half, None)
        else:
            corners, ids = self._run(self._fast, grey, half, self._subset_ids)
        if sum(i in self._index for i in ids) < 3 and (self._misses % 3 == 0) and self._subset_ids:
            more, more_ids = self._run(self._robust, grey, False, self._subset_ids)
            if len(more_ids) > sum(i in self._index for i in ids):
                corners = [c for c, i in zip(corners, ids, strict=True) if i not in self._index] + more
                ids = [i for i in ids if i not in self._index] + more_ids
        ours = [c for c, i in zip(corners, ids, strict=True) if i in self._index]
        self._misses = 0 if len(ours) >= 2 else self._misses + 1
        sides = [float(np.linalg.norm(c[0] - c[1])) for c in ours]
        self._marker_side = float(np.median(sides)) if sides else 0.0
        return [self._refine(grey, c) for c in corners], ids

    @staticmethod
    def _run(
        det: cv2.aruco.ArucoDetector, grey: np.ndarray, half: bool, id_map: list[int] | None
    ) -> tuple[list[np.ndarray], list[int]]:
        """Markers found by ``det``; ``id_map`` turns a subset dictionary's indices back into ids."""
        img = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA) if half else grey
        corners, ids, _ = det.detectMarkers(img)
        if ids is None:
            return [], []
        f = 2.0 if half else 1.0
        off = 0.5 if half else 0.0
        found = [int(i) for i in ids.ravel()]
        return [c.reshape(4, 2).astype(np.float64) * f + off for c in corners], [
            id_map[i] for i in found
        ] if id_map is not None else found

    @staticmethod
    def _refine(grey: np.ndarray, c: np.ndarray) -> np.ndarray:
        side = float(np.linalg.norm(c[0] - c[1]))
        w = int(max(2, min(7, round(side / 8))))
        pts = c.astype(np.float32).reshape(-1, 1, 2)
        cv2.cornerSubPix(grey, pts, (w, w), (-1, -1), _SUBPIX_CRITERIA)
        return pts.reshape(4, 2).astype(np.float64)

    def detect(self, frame_bgr: np.ndarray) -> list[SheetHit]:
        """Every sheet of this layout with at least two markers visible in ``frame_bgr``.

        Markers whose ids this layout lacks are ignored, and so is a sheet whose QR
        code reads as another batch's (see ``capture.sheets.qr``); each is warned about
        once per detector (one session).
        """
        self._frame_no += 1
        grey = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        corners, ids = self.detect_markers(grey)
        groups: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        foreign = []
        for c, i in zip(corners, ids, strict=True):
            entry = self._index.get(i)
            if entry is None:
                foreign.append(i)
            else:
                groups[entry[0].sheet_id].append((i, c))
        if len(foreign) >= 2:  # a lone unknown id is more likely a misread texture than a sheet
            self._note_foreign(foreign)
        hits: list[SheetHit] = []
        self.qr.start_frame(self._frame_no)
        for sheet_id, markers in groups.items():
            cands = self._candidates(sheet_id, [i for i, _ in markers])
            for hit in self._fit_sheet(grey, sheet_id, markers, cands[0]):
                read = self._resolve(grey, hit, markers, cands)
                if read is not None:
                    hits.append(read)
        self.qr.end_frame()
        return hits

    def _candidates(self, sheet_id: str, ids: list[int]) -> list[str]:
        """The kept prints that may have printed this sheet with these marker ids, the current first.

        A print that took ids no other kept print uses (``printouts.denseplan.choose_offset``) is
        named by them alone: when every id that only one print has names the same print, it is the one.
        """
        cands = [lid for lid in self.layouts if sheet_id in self._sheets[lid]]
        if len(cands) < 2:
            return cands
        owners = [[lid for lid in cands if i in self._corners[lid]] for i in ids]
        told = {o[0] for o in owners if len(o) == 1}
        return [told.pop()] if len(told) == 1 else cands

    def _resolve(
        self, grey: np.ndarray, hit: SheetHit, markers: list[tuple[int, np.ndarray]], cands: list[str]
    ) -> SheetHit | None:
        """``hit`` read with the layout its QR code names; ``None`` when refused or (several prints) not read yet."""

        def refit(lid: str) -> SheetHit | None:
            near = [m for m in markers if m[0] in hit.marker_ids]
            fits = self._fit_sheet(grey, hit.sheet.sheet_id, near, lid)
            return fits[0] if fits else None

        def others() -> list[SheetHit]:
            return [h for h in (refit(lid) for lid in cands if lid != hit.layout_id) if h is not None]

        said = self.qr.check(grey, hit, others if len(cands) > 1 else None)
        if said is False:
            return None
        if said is None or said is True:
            if len(cands) > 1 and said is None:  # which print is it? wait for the QR code
                self.unresolved += 1
                return None
            return hit
        if said == hit.layout_id:
            return hit
        other = refit(str(said)) if said in self._sheets else None
        if other is not None:
            other.qr_verified = True
        return other

    @property
    def foreign_qr(self) -> set[str]:
        """QR payloads of other batches' sheets seen (and ignored) so far."""
        return self.qr.foreign

    def _note_foreign(self, ids: list[int]) -> None:
        new = set(ids) - self.foreign_ids
        self.foreign_ids |= new
        if new and "foreign" not in self._warned:
            self._warned.add("foreign")
            log.warning(
                "ignoring ArUco markers %s: not in this batch's layout.json (a sheet from another batch?)", sorted(new)
            )
        elif new:
            log.debug("more foreign markers ignored: %s", sorted(new))

    def _fit_sheet(
        self, grey: np.ndarray, sheet_id: str, markers: list[tuple[int, np.ndarray]], lid: str
    ) -> list[SheetHit]:
        """Fit one homography per copy of ``sheet`` in view (normally one).

        With distinct ids, a least-squares fit over every corner is kept when each
        marker agrees with it to within a tenth of its side (this tolerates a
        page printed off-scale, which the scale check then reports). Otherwise
        (an outlier, or two copies of the sheet) RANSAC finds the consensus, and
        what is left over is tried again as another copy.
        """
        sheet = self._sheets[lid][sheet_id]
        corners = self._corners[lid]
        markers = [m for m in markers if m[0] in corners]
        ids = [i for i, _ in markers]
        if len(set(ids)) == len(ids) >= 2:
            hit = self._hit(grey, sheet, markers, check=True, lid=lid)
            if hit is not None:
                return [hit]
        hits = []
        remaining = markers
        while len({i for i, _ in remaining}) >= 2:
            src = np.concatenate([corners[i] for i, _ in remaining])
            dst = np.concatenate([c for _, c in remaining])
            H, mask = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px, maxIters=500, confidence=0.995)
            if H is None or mask is None:
                break
            whole = mask.ravel().reshape(-1, 4).sum(axis=1) >= 2  # a marker agrees when half its corners do
            used_ids = {i for (i, _), ok in zip(remaining, whole, strict=True) if ok}
            if len(used_ids) < 2:
                break
            for k, (i, c) in enumerate(remaining):  # a missed marker of this copy, not a second copy of a used id
                if not whole[k] and i not in used_ids and self._marker_error(H, i, c, lid) < 0.1:
                    whole[k] = True
                    used_ids.add(i)
            hit = self._hit(
                grey, sheet, [m for m, ok in zip(remaining, whole, strict=True) if ok], check=False, lid=lid
            )
            if hit is None:
                break
            hits.append(hit)
            remaining = [m for m, ok in zip(remaining, whole, strict=True) if not ok]
        return hits

    def _marker_error(self, H: np.ndarray, mid: int, corners: np.ndarray, lid: str) -> float:
        """The marker's largest corner error under ``H`` (layout ``lid``), in units of its side length."""
        proj, _ = _project(H, self._corners[lid][mid])
        side = max(1.0, float(np.linalg.norm(corners[0] - corners[1])))
        return float(np.linalg.norm(proj - corners, axis=1).max()) / side

    def _hit(
        self, grey: np.ndarray, sheet: Sheet, used: list[tuple[int, np.ndarray]], check: bool, lid: str
    ) -> SheetHit | None:
        """Least-squares homography over ``used``; ``None`` when degenerate (or, with ``check``, inconsistent)."""
        corners = self._corners[lid]
        src = np.concatenate([corners[i] for i, _ in used])
        dst = np.concatenate([c for _, c in used])
        H, _ = cv2.findHomography(src, dst, 0)
        if H is None:
            return None
        proj, w = _project(H, src)
        if (w <= 0).any():
            return None
        if check and max(self._marker_error(H, i, c, lid) for i, c in used) > 0.1:
            return None
        reproj = float(np.sqrt(np.mean(np.sum((proj - dst) ** 2, axis=1))))
        hit = SheetHit(
            sheet=sheet,
            H=H,
            marker_ids=sorted(i for i, _ in used),
            reproj_px=reproj,
            layout_id=lid,
            marker_px={i: c for i, c in used},
        )
        self._check_scale(grey, hit, [(corners[i], c) for i, c in used])
        return hit

    def _check_scale(self, grey: np.ndarray, hit: SheetHit, used: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Compare marker size with marker spacing against the layout (see ``capture.sheets.scale``).

        Measured on every ``scale_every``-th sighting of a sheet; the warning uses
        the median of the last 15 measurements.
        """
        sid = hit.sheet.sheet_id
        history = self._scale_history.setdefault(sid, deque(maxlen=15))
        seen = self._sightings[sid] = self._sightings.get(sid, 0) + 1
        ratio = size_to_spacing_ratio(grey, hit.H, used) if (seen - 1) % self.scale_every == 0 else None
        if ratio is not None:
            history.append(ratio)
            hit.scale_ratio = ratio
        elif history:
            hit.scale_ratio = history[-1]
        if not history:
            return
        smooth = float(np.median(history))
        hit.scale_warning = len(history) >= 3 and abs(smooth - 1.0) > self.scale_tol
        if hit.scale_warning:
            self.scale_warnings[sid] = smooth
            if f"scale:{sid}" not in self._warned:
                self._warned.add(f"scale:{sid}")
                log.warning(
                    "sheet %s: printed markers are %.1f%% of their size in layout.json relative to their spacing; "
                    "was the page scaled or stretched when printed, or is layout.json from another print run? "
                    "Print sheets.pdf at 100%% ('actual size'), not 'fit to page'",
                    sid,
                    100 * smooth,
                )
