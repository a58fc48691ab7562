"""Scene capture: classify what the camera sees, or find its faces, with and without a printed patch in view.

``photoproof capture BATCH --scene`` photographs a real object with the printed
patch card (``photoproof print --patch-mm``) beside it, or without it. Each
frame's *view* (the largest centred square of the frame, or of the region the
user marks once with ``--region x,y,w,h``) is resized to the model's input and
classified; the patch card's four ArUco markers tell whether the patch is in
the frame, where, how big (its area as a share of the view) and at what angle
(in-plane rotation, and the viewing angle off the card's normal from the
marker pose, ``cv2.solvePnP`` with IPPE). One row per frame goes to the
``scene_observations`` table (:mod:`contracts.capturedb`). The analysis is
:mod:`analysis.scene`. Brown et al. 2017 (https://arxiv.org/abs/1712.09665)
measure their printed patch the same way: a photo of an object with the patch
beside it, classified whole.

A face batch's target (:class:`capture.facetarget.FaceTarget`) takes the classifier's
place: a face sticker's card (``craft --source mtcnn --attack patch``) is held to a live
or printed face, the detector runs on the view (its longer side at most
:data:`FACE_VIEW_PX`), and the row's top-1 is 1 when it finds a face, 0 when it finds
none, with the best score as its probability; the label is 1, "a face is in view", so
the analysis's fooling rate is the share of frames whose face the detector misses.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from capture.classify import OnnxClassifier
from capture.facetarget import FaceTarget, check_pairing
from capture.overlay import Window, window_wanted
from capture.record import Recorder
from capture.scene_view import SceneTally, annotate
from capture.sessionrow import SessionStart
from capture.sighting import PatchSighting
from capture.stoprule import SOURCE_ENDED, WINDOW_CLOSED, StopRule
from contracts.batchdir import capture_db, check_session_name
from contracts.errors import UserError
from contracts.frames import FrameSource
from contracts.layout import load_layout
from contracts.manifest import load_batch, require_classifier_batch
from contracts.patchcard import PatchCard, patch_cards

log = logging.getLogger(__name__)

MIN_VIEW_PX = 16  # the smallest view side classified (and at least half the model's input)
FACE_VIEW_PX = 640  # a face detector's view is scaled down to this longer side (as YuNet's input)
DEFAULT_FOV_DEG = 78.0  # diagonal field of view assumed for the viewing angle (as capture.sheets.detect)


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame in pixels: ``x, y, w, h``."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> Region:
        """``x,y,w,h`` in frame pixels; an error names ``--region``."""
        try:
            vals = [int(v) for v in text.replace(" ", "").split(",")]
        except ValueError:
            vals = []
        if len(vals) != 4 or vals[0] < 0 or vals[1] < 0 or vals[2] < 8 or vals[3] < 8:
            raise UserError(
                f"--region {text!r}: expected x,y,w,h in frame pixels (w and h at least 8), e.g. 320,40,640,640"
            )
        return cls(*vals)

    def view(self, width: int, height: int, where: str = "--region") -> Region:
        """The largest square centred in this region (what the model sees), clipped to the frame."""
        if self.x + self.w > width or self.y + self.h > height:
            raise UserError(
                f"{where} {self.x},{self.y},{self.w},{self.h}: leaves the {width}x{height} frame; mark a region inside "
                "it"
            )
        s = min(self.w, self.h)
        return Region(self.x + (self.w - s) // 2, self.y + (self.h - s) // 2, s, s)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


class PatchFinder:
    """Find a layout's patch cards in BGR frames by their ArUco markers.

    Args:
        cards: the cards of ``layout.json`` (:func:`contracts.patchcard.patch_cards`).
        dictionary: the layout's ArUco dictionary name.
        focal_px: focal length for the viewing angle (default: from a 78° diagonal field of view).
    """

    def __init__(self, cards: list[PatchCard], dictionary: str, focal_px: float | None = None) -> None:
        self.cards = cards
        self.focal_px = focal_px
        self._index = {m.id: (c, np.asarray(m.corners_mm, np.float64)) for c in cards for m in c.markers}
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self._det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), params)

    def find(self, frame_bgr: np.ndarray, view: Region) -> list[PatchSighting]:
        """The cards seen in ``frame_bgr``, each with the patch's quad, share of ``view``, size and angles."""
        if not self._index:
            return []
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        corners, ids, _ = self._det.detectMarkers(grey)
        if ids is None:
            return []
        found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for c, i in zip(corners, ids.ravel().tolist(), strict=True):
            if int(i) in self._index:
                card, mm = self._index[int(i)]
                found.setdefault(card.name, []).append((mm, c.reshape(4, 2).astype(np.float64)))
        out = []
        for card in self.cards:
            pairs = found.get(card.name)
            if pairs:
                out.append(self._sighting(card, pairs, frame_bgr.shape[1], frame_bgr.shape[0], view))
        return out

    def _sighting(
        self, card: PatchCard, pairs: list[tuple[np.ndarray, np.ndarray]], width: int, height: int, view: Region
    ) -> PatchSighting:
        src = np.concatenate([p[0] for p in pairs])
        dst = np.concatenate([p[1] for p in pairs])
        H, _ = cv2.findHomography(src, dst, 0)
        x, y, w, h = card.box_mm
        box = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
        quad = cv2.perspectiveTransform(box[None], H)[0]
        area = abs(float(cv2.contourArea(quad.astype(np.float32))))
        if card.shape == "circle":
            area *= (
                math.pi / 4
            )  # the disc inscribed in the bounding square (in the plane; ratios survive a homography to first order)
        rect = np.array(
            [
                [view.x, view.y],
                [view.x + view.w, view.y],
                [view.x + view.w, view.y + view.h],
                [view.x, view.y + view.h],
            ],
            np.float32,
        )
        inter, _ = cv2.intersectConvexConvex(quad.astype(np.float32), rect)
        inside = float(inter) * (math.pi / 4 if card.shape == "circle" else 1.0)
        top = quad[1] - quad[0]
        rotation, tilt = self._pose(src, dst, width, height)
        if rotation is None:  # no pose: the direction of the patch's top edge in the frame
            rotation = math.degrees(math.atan2(top[1], top[0]))
        return PatchSighting(card, len(pairs), quad, inside / float(view.w * view.h), math.sqrt(area), rotation, tilt)

    def _pose(self, src: np.ndarray, dst: np.ndarray, width: int, height: int) -> tuple[float | None, float | None]:
        """The card's in-plane rotation (about the camera axis) and its viewing angle, from its pose (IPPE)."""
        f = self.focal_px or math.hypot(width, height) / (2 * math.tan(math.radians(DEFAULT_FOV_DEG / 2)))
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        obj = np.column_stack([src, np.zeros(len(src))])
        ok, rvec, _ = cv2.solvePnP(obj, dst, K, None, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            return None, None
        R, _ = cv2.Rodrigues(rvec)
        return math.degrees(math.atan2(R[1, 0], R[0, 0])), math.degrees(math.acos(min(1.0, abs(float(R[2, 2])))))


def view_outputs(model: OnnxClassifier | FaceTarget, crop_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The view's top-5 ids and probabilities (``1 x 5``): a classifier's, or a face detector's ``[[found]]`` and
    ``[[best score]]``."""
    if isinstance(model, FaceTarget):
        f = FACE_VIEW_PX / max(crop_rgb.shape[:2])
        if f < 1:
            crop_rgb = cv2.resize(crop_rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        dets = model.detector.detect(np.ascontiguousarray(crop_rgb))
        best = float(dets.scores.max()) if len(dets) else 0.0
        return np.array([[int(len(dets) > 0)]], np.int64), np.array([[best]], np.float32)
    return model.classify(model.spec.resize_center_crop(crop_rgb)[None])


def run_scene(
    batch_dir: Path,
    source: FrameSource,
    classifier: OnnxClassifier | FaceTarget,
    *,
    region: Region | None = None,
    label: int | None = None,
    frames: int | None = None,
    duration: float | None = None,
    session_id: str,
    headless: bool = True,
) -> Path:
    """Record one scene session of ``batch_dir`` through ``source``; return the database path.

    Args:
        region: the part of the frame to classify (default: the whole frame); its centred square is the view.
        label: the photographed object's true class (for the untargeted fooling rate), or ``None``.
        frames, duration: stop after N frames or S seconds (or when the source ends).
        session_id: the database's name under ``BATCH/captures/``.
        headless: no live window (also when there is no display); otherwise each frame is shown
            with its view, patch and status (:mod:`capture.scene_view`); q, Esc or closing it stops.
    """
    batch_dir = Path(batch_dir)
    batch, layout = load_batch(batch_dir), load_layout(batch_dir)
    if isinstance(classifier, FaceTarget):
        check_pairing(batch, batch_dir, True, "--scene")
        label = 1 if label is None else label  # "a face is in view"
    else:
        require_classifier_batch(batch, batch_dir, "capture")
    cards = patch_cards(layout)
    if not cards:
        log.warning(
            "layout.json has no patch card (print with --patch-mm); frames are classified, but no patch can be found"
        )
    finder = PatchFinder(cards, layout.aruco_dictionary)
    rule = StopRule(frames, duration)
    db_path = capture_db(batch_dir, check_session_name(session_id))
    window = Window("photoproof scene") if window_wanted(headless) else None
    tally = SceneTally(frozenset(c.target for c in cards if c.target is not None))
    names = classifier.class_names
    with source:
        rec = Recorder(db_path, session_id, batch.batch_id)
        stopped_by, n, too_small = SOURCE_ENDED, 0, 0
        try:
            config = {
                "mode": "scene",
                "region": region.as_list() if region else None,
                "label": label,
                "frames": frames,
                "duration": duration,
                "preprocess": classifier.spec.to_dict(),
                "model_file": str(classifier.path),
                "patch_cards": [c.name for c in cards],
                "detector": isinstance(classifier, FaceTarget),
            }
            resume = rec.start_session(
                SessionStart(
                    source=source.description,
                    model=classifier.name,
                    model_sha256=classifier.sha256,
                    provider=classifier.provider,
                    profile=None,
                    seed=None,
                    config=config,
                )
            )
            idx0, t0 = resume.next_frame, time.monotonic()
            min_side = max(MIN_VIEW_PX, classifier.spec.input_size // 2)
            for frame in source.frames():
                h, w = frame.image.shape[:2]
                v = (region or Region(0, 0, w, h)).view(w, h)  # per frame: photos may differ in size
                if min(v.w, v.h) < min_side:  # a 1x1 "frame" upscaled to the model's input is no scene
                    if not too_small:
                        log.warning(
                            "%s: a %dx%d view is under %d px (half the model's input); such frames are skipped",
                            source.description,
                            v.w,
                            v.h,
                            min_side,
                        )
                    too_small += 1
                    continue
                sightings = finder.find(frame.image, v)
                crop = cv2.cvtColor(frame.image[v.y : v.y + v.h, v.x : v.x + v.w], cv2.COLOR_BGR2RGB)
                ids, probs = view_outputs(classifier, crop)
                idx = idx0 + n
                rec.add_frame(idx, resume.t_offset + time.monotonic() - t0, [])
                s = sightings[0] if sightings else None
                rec.add_scene(idx, v.as_list(), label, s, ids[0], probs[0])
                n += 1
                top1 = int(ids[0][0])
                tally.add(top1, s.card.target if s else None, s is not None)
                if window is not None and not window.show(
                    annotate(frame.image, (v.x, v.y, v.w, v.h), s, top1, float(probs[0][0]), names, tally)
                ):
                    stopped_by = WINDOW_CLOSED
                    break
                why = rule.reason(idx + 1, time.monotonic() - t0)
                if why:
                    stopped_by = why
                    break
        finally:
            if window is not None:
                window.close()
            rec.close({"stopped_by": stopped_by, "scene_frames": n, "too_small_frames": too_small})
    log.info("scene session %s: %d frames (%s)", session_id, n, stopped_by)
    return db_path
