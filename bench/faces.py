"""Face detector benchmark: the ONNX detectors' whole ``detect`` over bare onnxruntime on the same crops, CPU.

Prints (asserts nothing), for CenterFace and YuNet: crops per second through
:meth:`capture.faces.OnnxFaceDetector.detect` (resize, layout, inference, decoding,
NMS) and through a bare ``InferenceSession.run`` on the same crops already laid out
as the network's input, and their ratio: what preprocessing, decoding and NMS cost on
top of the network. Then the issue's goal, the detector *capture loop*
(:meth:`capture.pipeline.ClassifierWorker.process` with a
:class:`capture.facetarget.FaceTarget`: detection, matching against the truth faces,
the observation rows written to SQLite) against bare onnxruntime on the same crops,
one frame's job of ``--per-job`` crops at a time. Timed alternately on the same
crop, so a changing load weighs on both. The crops are square tiles of the packaged
face photos at a capture tile's size.

Usage (from the repository root)::

    python -m bench.faces [--side 224] [--seconds 5]
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
from capture.facetarget import CROP_PX, FaceTarget
from capture.pipeline import ClassifierWorker, Job, LatestSlot
from capture.record import Recorder
from capture.sheets.hits import TileCrop
from capture.sheets.quality import TileQuality
from contracts.detection import get_detector
from contracts.layout import Tile
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
    ap.add_argument("--side", type=int, default=CROP_PX, help="crop side in pixels (capture's face crop: 224)")
    ap.add_argument("--per-job", type=int, default=6, help="crops per capture job (one frame: 3 sheets' pairs)")
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
                f"ratio {full / bare:.3f}"
            )
            loop, bare_j = loop_rates(Path(tmp), name, crops, args.per_job, args.seconds)
            print(
                f"{name:<11} capture loop {loop * args.per_job:7.1f} crops/s, bare onnxruntime "
                f"{bare_j * args.per_job:7.1f} crops/s, ratio {loop / bare_j:.3f} (goal >= 0.95)"
            )


def loop_rates(tmp: Path, name: str, crops: list[np.ndarray], per_job: int, seconds: float) -> tuple[float, float]:
    """Jobs per second through the capture loop's worker and through bare onnxruntime on the same crops."""
    target = FaceTarget(tmp / f"{name}.onnx")
    det = target.detector
    tiles = [Tile(f"item{i}", "clean", "images/x.png", [0, 0, 60, 60]) for i in range(len(crops))]
    for t in tiles:  # one truth face in the middle of each crop
        target.truth[t.item] = (np.array([[40, 30, 180, 200]], np.float32), (CROP_PX, CROP_PX))
    q = TileQuality(sharpness=100.0, tile_px=float(CROP_PX), angle_deg=5.0, clipped=0.0)
    jobs = []
    for j in range(len(crops)):
        idx = [(j + k) % len(crops) for k in range(per_job)]
        jobs.append([TileCrop(tiles[i], "s1", crops[i], np.zeros((4, 2), np.float32), q, True) for i in idx])
    blobs = [_blob(det, c) for c in crops]
    rec = Recorder(tmp / f"{name}.sqlite", "bench", "bench")
    worker = ClassifierWorker(target, rec, LatestSlot(), [], keep_crops=False)
    frame = iter(range(10**9))
    try:
        return paired_rates(
            lambda i: [
                det.sess.run(det.outputs, {det.input: blobs[c]}) for c in [(i + k) % len(crops) for k in range(per_job)]
            ],
            lambda i: worker.process(Job(next(frame), jobs[i])),
            len(jobs),
            seconds,
        )[::-1]
    finally:
        rec.close({})


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
