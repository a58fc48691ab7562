"""A face detector in the capture loop: the target of a face batch (``craft --source mtcnn``), tile by tile.

:class:`FaceTarget` takes the classifier's place in :mod:`capture.session` and
:mod:`capture.pipeline` (same sheets, markers, gates, mailbox, recorder and channel
check; docs/detectors.md). For each tile crop it runs the ONNX detector
(:class:`capture.faces.OnnxFaceDetector`) and records its boxes in the crop's pixels
(``observations.boxes``, capture schema 3). The item's truth faces (``batch.json``:
the source's boxes on the clean PNG) are scaled from the PNG to the crop, and the
row's ``top1`` says whether *every* truth face was found at IoU >= 0.5 (PASCAL VOC
matching, :func:`contracts.detection.found`): 1 "face", 0 "no face". So the
live overlay, the summary table and the channel check (:mod:`contracts.verdict`:
clean faces found photographed against digitally) read a detector's rows as they
read a classifier's, and the report (:mod:`analysis.faces`) scores every face from
the boxes.

The digital stability baseline (:meth:`FaceTarget.stability`) is the classifier's
(:mod:`capture.stability`): each clean PNG through the same mild resampling, blur and
JPEG, its rows' ``top1`` 1 when every truth face, scaled to the transformed image, is
still found. The channel check reads it as ``B``, so that a session is not called
camera-limited for faces the detector already loses to mere resampling.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from capture.faces import OnnxFaceDetector
from capture.sheets.hits import TileCrop
from capture.stability import mild_clean
from contracts.detection import META_DETECTOR, Detections, found
from contracts.detectorfile import detector_sidecar
from contracts.errors import UserError
from contracts.images import read_item_image
from contracts.manifest import ROLES, Batch, is_face_batch
from contracts.paths import sha256_file
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

CROP_PX = 224  # the tile crop's side: as a 224-pixel classifier's, so the same prints pass the same gates
FACE_CLASSES = ["no face", "face"]  # top1 of a face row: 1 when every truth face was found
IOU = 0.5
CPU = "CPUExecutionProvider"


def is_detector_file(path: Path) -> bool:
    """Whether the ``.onnx`` file is a face detector: its metadata holds a detector spec (``photoproof models export
    centerface|yunet``), or a decoder spec lies beside it (a user's own, :mod:`contracts.detectorfile`)."""
    if detector_sidecar(Path(path)) is not None:
        return True
    try:  # the metadata only: no onnxruntime session, which the target then builds once
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # not readable: the classifier's loader says why, in its words
        return False
    return any(p.key == META_DETECTOR for p in proto.metadata_props)


def check_pairing(batch: Batch, batch_dir: Path, target_is_detector: bool, where: str) -> None:
    """A face batch needs a face detector target and a classifier batch a classifier (one line naming ``where``)."""
    face = is_face_batch(batch)
    if face and not target_is_detector:
        raise UserError(
            f"{where}: {batch_dir} is a face-detector batch (craft --source mtcnn); capture it with a face detector: "
            "--model centerface or --model yunet"
        )
    if target_is_detector and not face:
        raise UserError(f"{where}: a face detector; {batch_dir} is a classifier batch: give a classifier --model")


class FaceTarget:
    """A prepared face-detector ``.onnx`` with the classifier's face towards the capture loop.

    Args:
        path: the file ``photoproof models export centerface|yunet`` wrote.
        crop_px: the tile crop's side in pixels.
        threads: CPU threads for onnxruntime (default: all cores but one, left to the camera loop).
    """

    def __init__(self, path: Path, *, crop_px: int = CROP_PX, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"--model {path}: no such file")
        self.threads = threads if threads is not None else max(1, (os.cpu_count() or 2) - 1)
        try:
            self.detector = OnnxFaceDetector(self.path, threads=self.threads)
        except ValueError as e:
            raise UserError(f"--model {path}: {e}") from None
        self.name = self.detector.name
        self.sha256 = sha256_file(self.path)
        self.provider = CPU
        self.spec = PreprocessSpec(input_size=int(crop_px), resize="bilinear", crop="squash")
        self.class_names = list(FACE_CLASSES)
        self.truth: dict[str, tuple[np.ndarray, tuple[int, int]]] = {}  # item -> (truth boxes, PNG (w, h))

    def bind(self, batch_dir: Path, batch: Batch) -> None:
        """Read each item's truth faces and its PNG's size (the crop is the whole PNG at ``crop_px``)."""
        for it in batch.items:
            if it.truth is None:
                continue
            h, w = read_item_image(batch_dir, it, "clean").shape[:2]
            self.truth[it.id] = (Detections.from_json(it.truth.boxes, where=f"{it.id}: truth").boxes, (w, h))

    def truth_in(self, item: str, size: tuple[int, int]) -> np.ndarray:
        """The truth boxes of ``item`` in an image of ``size`` ``(w, h)`` showing its whole PNG."""
        boxes, (w, h) = self.truth.get(item, (np.zeros((0, 4), np.float32), (1, 1)))
        sx, sy = size[0] / w, size[1] / h
        return boxes * np.array([sx, sy, sx, sy], np.float32)

    def score(self, item: str, dets: Detections, size: tuple[int, int]) -> tuple[int, float]:
        """``(1 if every truth face is found else 0, the best detection's score)``."""
        t = self.truth_in(item, size)
        hit = found(t, dets.boxes, IOU)
        best = float(dets.scores.max()) if len(dets) else 0.0
        return int(bool(len(t)) and bool(hit.all())), best

    def detect_tiles(self, crops: Sequence[TileCrop]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per crop: ``top1`` ids ``N x 1``, best scores ``N x 1`` and the boxes as JSON (crop pixels)."""
        ids, probs, boxes = [], [], []
        for c, dets in zip(crops, self.detector.detect_many([c.crop_rgb for c in crops]), strict=True):
            s = c.crop_rgb.shape
            top1, best = self.score(c.tile.item, dets, (s[1], s[0]))
            ids.append([top1])
            probs.append([best])
            boxes.append(json.dumps(dets.to_json()))
        return np.array(ids, np.int64).reshape(-1, 1), np.array(probs, np.float32).reshape(-1, 1), boxes

    def look(self, item: str, img: np.ndarray) -> tuple[list[int], list[float], Detections]:
        """The detector on a whole image of ``item`` (its PNG, or the PNG transformed at its own size): the row's
        ``[top1]`` and ``[best score]``, and the detections (image pixels)."""
        dets = self.detector.detect(img)
        top1, best = self.score(item, dets, (img.shape[1], img.shape[0]))
        return [top1], [best], dets

    def digital(self, batch_dir: Path, batch: Batch) -> tuple[list[tuple[str, str, list[int], list[float]]], dict]:
        """The detector on every saved PNG at its own size: digital rows, and boxes (PNG pixels) per (item, role)."""
        rows: list[tuple[str, str, list[int], list[float]]] = []
        boxes: dict[tuple[str, str], str] = {}
        for it in batch.items:
            for role in ROLES:
                top1, best, dets = self.look(it.id, read_item_image(batch_dir, it, role))
                rows.append((it.id, role, top1, best))
                boxes[(it.id, role)] = json.dumps(dets.to_json())
        log.info("%s on the %d saved PNGs: done", self.name, len(rows))
        return rows, boxes

    def stability(self, batch_dir: Path, batch: Batch) -> list[tuple[str, str, list[int], list[float]]]:
        """The digital stability baseline (:mod:`capture.stability`): per item with truth faces and mild transform,
        ``(item, transform, [1 if every truth face is still found else 0], [best score])``."""
        faced = {item for item, (t, _) in self.truth.items() if len(t)}
        rows: list[tuple[str, str, list[int], list[float]]] = []
        for item, name, img in mild_clean(batch_dir, batch, self.spec.input_size, faced):
            top1, best, _ = self.look(item, img)
            rows.append((item, name, top1, best))
        log.info("%s on the %d mildly transformed clean PNGs: done", self.name, len(rows))
        return rows
