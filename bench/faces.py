"""Face detector benchmark: the ONNX detectors' whole ``detect`` over bare onnxruntime on the same crops, CPU.

Prints (asserts nothing), for CenterFace and YuNet: crops per second through
:meth:`capture.faces.OnnxFaceDetector.detect` (resize, layout, inference, decoding,
NMS) and through a bare ``InferenceSession.run`` on the same crops already laid out
as the network's input, and their ratio: what preprocessing, decoding and NMS cost on
top of the network. (The issue's goal, the detector *capture loop* at >= 0.95x bare
onnxruntime, needs the capture loop for detectors, which is not there yet; this is
the part of it that the detector itself contributes.) Timed alternately on the same
crop, so a changing load weighs on both. The crops are square tiles of the packaged
face photos at a capture tile's size.

Usage (from the repository root)::

    python -m bench.faces [--side 260] [--seconds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from capture.faces import OnnxFaceDetector
from contracts.detection import get_detector
from craft.detectors.job import square
from craft.detectors.onnxprep import prepare_onnx
from craft.detectors.photos import face_photos


def paired_rates(
    bare: Callable[[int], object], full: Callable[[int], object], n: int, seconds: float
) -> tuple[float, float]:
    """Calls per second of ``bare(i)`` and ``full(i)``, timed alternately on the same crop (after a warm-up),
    so that a load that changes during the run weighs on both alike."""
    for i in range(n):
        bare(i)
        full(i)
    t_bare = t_full = 0.0
    done, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        i = done % n
        t0 = time.perf_counter()
        bare(i)
        t1 = time.perf_counter()
        full(i)
        t_full += time.perf_counter() - t1
        t_bare += t1 - t0
        done += 1
    return done / t_bare, done / t_full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=260, help="crop side in pixels (lite2's tile: 260)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--crops", type=int, default=12)
    args = ap.parse_args()
    crops = [
        cv2.resize(square(p.rgb), (args.side, args.side), interpolation=cv2.INTER_AREA)
        for p in face_photos(lfw=args.crops)
    ][: args.crops]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("centerface", "yunet"):
            det = OnnxFaceDetector(prepare_onnx(get_detector(name), Path(tmp) / f"{name}.onnx"))
            blobs = [_blob(det, c) for c in crops]
            sess, outputs, feed = det.sess, det.outputs, det.input
            bare, full = paired_rates(
                lambda i, s=sess, o=outputs, f=feed, b=blobs: s.run(o, {f: b[i]}),
                lambda i, d=det: d.detect(crops[i]),
                len(crops),
                args.seconds,
            )
            print(
                f"{name:<11} {args.side}px crops: detect {full:7.1f}/s, bare onnxruntime {bare:7.1f}/s, "
                f"ratio {full / bare:.3f} (goal >= 0.95)"
            )


def _blob(det: OnnxFaceDetector, rgb: np.ndarray) -> np.ndarray:
    """The network input that ``det.detect`` builds for ``rgb`` (the same resize and layout)."""
    h, w = rgb.shape[:2]
    swap = det.spec.channel_order == "BGR"
    if det.spec.decoder == "centerface":
        hn, wn = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        return _nchw(cv2.resize(rgb, (wn, hn)), swap)
    f = 640 / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    img = cv2.copyMakeBorder(cv2.resize(rgb, (nw, nh)), 0, 640 - nh, 0, 640 - nw, cv2.BORDER_CONSTANT, value=0)
    return _nchw(img, swap)


def _nchw(rgb: np.ndarray, swap: bool) -> np.ndarray:
    img = rgb[..., ::-1] if swap else rgb
    x = np.empty((1, 3, *img.shape[:2]), np.float32)
    for c in range(3):
        x[0, c] = img[..., c]
    return x


if __name__ == "__main__":
    main()
