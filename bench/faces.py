"""Face detector benchmark: the detector capture loop over bare onnxruntime on the same crops, CPU.

Prints (asserts nothing), for CenterFace and YuNet, two ratios, each from
alternating pairs of timings on the same crops (the order swapped every pair, so a
changing load weighs on both), as the median ratio of the pairs with its
interquartile range and a distribution-free 95% interval of the median:

- ``detect``: :meth:`capture.faces.OnnxFaceDetector.detect` (preprocessing, inference,
  decoding, NMS) against a bare loop that does the same preprocessing
  (:meth:`~capture.faces.OnnxFaceDetector.prepare`: CenterFace's resize to a multiple of
  32, YuNet's letterbox into 640 x 640) and ``InferenceSession.run``;
- the issue's goal, the detector *capture loop*
  (:meth:`capture.pipeline.ClassifierWorker.process` with a
  :class:`capture.facetarget.FaceTarget`: detection, matching against the truth faces,
  the observation rows written to SQLite), one frame's job of ``--per-job`` crops,
  against the bare loop on the same crops (goal >= 0.95).

The crops are square tiles of the packaged face photos at a capture tile's size.
``ratio > 1`` means the loop is faster than bare onnxruntime.

Usage (from the repository root)::

    python -m bench.faces [--side 224] [--pairs 200]
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


def paired_ratios(bare: Callable[[int], object], full: Callable[[int], object], n: int, pairs: int) -> np.ndarray:
    """``t_bare / t_full`` of ``pairs`` alternating pairs of calls on the same input ``i`` (after a warm-up);
    the order within a pair swaps every pair."""
    for i in range(n):
        bare(i)
        full(i)
    out = np.empty(pairs)
    for k in range(pairs):
        i = k % n
        first, second = (bare, full) if k % 2 == 0 else (full, bare)
        t0 = time.perf_counter()
        first(i)
        t1 = time.perf_counter()
        second(i)
        t2 = time.perf_counter()
        tb, tf = (t1 - t0, t2 - t1) if k % 2 == 0 else (t2 - t1, t1 - t0)
        out[k] = tb / tf
    return out


def summary(r: np.ndarray) -> str:
    """Median ratio, its interquartile range and a distribution-free 95% interval of the median (order statistics,
    the binomial's normal approximation), and n."""
    s = np.sort(r)
    n = len(s)
    k = max(0, int(np.floor(n / 2 - 1.96 * np.sqrt(n) / 2)))
    q1, q3 = np.percentile(s, [25, 75])
    return f"median {np.median(s):.3f} [95% {s[k]:.3f}, {s[n - 1 - k]:.3f}], IQR {q1:.3f}-{q3:.3f}, n {n} pairs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=CROP_PX, help="crop side in pixels (capture's face crop: 224)")
    ap.add_argument("--per-job", type=int, default=6, help="crops per capture job (one frame: 3 sheets' pairs)")
    ap.add_argument("--pairs", type=int, default=200, help="alternating pairs per ratio")
    ap.add_argument("--crops", type=int, default=12)
    args = ap.parse_args()
    crops = [
        cv2.resize(square(p.rgb), (args.side, args.side), interpolation=cv2.INTER_AREA)
        for p in face_photos(lfw=args.crops)
    ][: args.crops]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("centerface", "yunet"):
            prepare_onnx(get_detector(name), Path(tmp) / f"{name}.onnx")
            target = FaceTarget(Path(tmp) / f"{name}.onnx")  # capture's detector, with capture's threads
            det = target.detector
            r = paired_ratios(
                lambda i, d=det: bare_run(d, [crops[i]]), lambda i, d=det: d.detect(crops[i]), len(crops), args.pairs
            )
            print(f"{name:<11} {args.side}px crops, detect / bare onnxruntime:       {summary(r)}")
            blobs = [det.prepare(c)[0].copy() for c in crops]
            r = paired_ratios(
                lambda i, d=det, b=blobs: d.sess.run(d.outputs, {d.input: b[i]}),
                lambda i, d=det: d.detect(crops[i]),
                len(crops),
                args.pairs,
            )
            print(f"{name:<11} {args.side}px crops, detect / network alone:         {summary(r)} (inputs prebuilt)")
            r = loop_ratios(Path(tmp), target, crops, args.per_job, args.pairs)
            print(f"{name:<11} capture loop / bare onnxruntime ({args.per_job} crops): {summary(r)} (goal >= 0.95)")


def bare_run(det: OnnxFaceDetector, crops: list[np.ndarray]) -> list[object]:
    """Bare onnxruntime on ``crops``, one run each, after the detector's own preprocessing (the same resize and
    letterbox, into the same reused buffer): what a hand-written loop over the network costs."""
    return [det.sess.run(det.outputs, {det.input: det.prepare(c)[0]}) for c in crops]


def loop_ratios(tmp: Path, target: FaceTarget, crops: list[np.ndarray], per_job: int, pairs: int) -> np.ndarray:
    """Paired ratios of one frame's job through the capture loop's worker against bare onnxruntime on its crops."""
    tiles = [Tile(f"item{i}", "clean", "images/x.png", [0, 0, 60, 60]) for i in range(len(crops))]
    for t in tiles:  # one truth face in the middle of each crop
        target.truth[t.item] = (np.array([[40, 30, 180, 200]], np.float32), (CROP_PX, CROP_PX))
    q = TileQuality(sharpness=100.0, tile_px=float(CROP_PX), angle_deg=5.0, clipped=0.0)
    jobs, job_crops = [], []
    for j in range(len(crops)):
        idx = [(j + k) % len(crops) for k in range(per_job)]
        jobs.append([TileCrop(tiles[i], "s1", crops[i], np.zeros((4, 2), np.float32), q, True) for i in idx])
        job_crops.append([crops[i] for i in idx])
    rec = Recorder(tmp / f"{target.name}.sqlite", "bench", "bench")
    worker = ClassifierWorker(target, rec, LatestSlot(), [], keep_crops=False)
    frame = iter(range(10**9))
    try:
        return paired_ratios(
            lambda i: bare_run(target.detector, job_crops[i]),
            lambda i: worker.process(Job(next(frame), jobs[i])),
            len(jobs),
            pairs,
        )
    finally:
        rec.close({})


if __name__ == "__main__":
    main()
