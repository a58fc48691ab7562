"""Capture pipeline benchmark: 1280x720 frames of a 12-tile sheet, on the CPU.

Prints (asserts nothing):

1. detection + rectification time per frame (goal <= 15 ms), with OpenCV's default
   thread count and, when it differs, with the threads a capture session leaves it;
2. the camera-loop rate while the classifier thread runs, overlay drawn headless
   (goal >= 25 fps), for a 30 fps camera and for frames as fast as the loop takes them;
3. pipeline classification throughput over bare onnxruntime throughput on the
   same crops (goal >= 0.95).

Usage (from the repository root)::

    python bench/capture.py [--model lite2.onnx] [--seconds 8]

Without ``--model`` it uses ``./lite2.onnx`` when present, else a tiny
onnx.helper model (which makes the throughput ratio meaningless; it says so).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capture.classify import CPU, OnnxClassifier  # noqa: E402
from capture.overlay import Outline, draw_overlay  # noqa: E402
from capture.pipeline import loop_threads  # noqa: E402
from capture.session import run_capture  # noqa: E402
from capture.sheets.detect import SheetDetector  # noqa: E402
from capture.sheets.quality import QualityGates  # noqa: E402
from contracts.frames import Frame, FrameSource  # noqa: E402
from testkit.batch import write_batch  # noqa: E402
from testkit.scenes import make_layout, scene, tiny_classifier  # noqa: E402


class MemoryCamera(FrameSource):
    """A live source replaying rendered frames, at ``fps`` or as fast as they are taken (``fps=0``)."""

    live = True

    def __init__(self, images: list[np.ndarray], fps: float) -> None:
        self.images, self.fps = images, fps
        self.description = f"bench:{fps:g}fps" if fps else "bench:unthrottled"

    def open(self) -> None:
        self._interrupted = False

    def frames(self) -> Iterator[Frame]:
        t0, k = time.monotonic(), 0
        while not self.interrupted:
            if self.fps:
                wait = t0 + k / self.fps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            yield Frame(index=k, t=time.monotonic() - t0, image=self.images[k % len(self.images)])
            k += 1

    def close(self) -> None:
        pass


def _model(arg: str | None, work: Path) -> tuple[Path, str]:
    if arg:
        return Path(arg), arg
    if Path("lite2.onnx").is_file():
        return Path("lite2.onnx"), "./lite2.onnx"
    return tiny_classifier(
        work / "tiny.onnx", size=224
    ), "a tiny onnx.helper model (no --model and no ./lite2.onnx): throughput figures mean little"


def _rate(db: Path) -> tuple[float, float, int, int, float, float]:
    """Loop fps, tiles/s, frames, frames not classified, classifier busy fraction, tiles/s while busy."""
    con = sqlite3.connect(db)
    ts = [r[0] for r in con.execute("SELECT t FROM frames ORDER BY idx")]
    n_obs = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    cfg = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0])
    con.close()
    span, busy = ts[-1] - ts[0], float(cfg.get("classifier_busy_s", 0.0))
    return (
        (len(ts) - 1) / span,
        n_obs / span,
        len(ts),
        int(cfg.get("dropped_jobs", 0)),
        busy / span,
        n_obs / busy if busy else 0.0,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="ONNX classifier (default ./lite2.onnx, else a tiny model)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each pipeline run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, which = _model(args.model, work)
        clf = OnnxClassifier(model, providers=[CPU])
        S = clf.spec.input_size
        batch = work / "batch"
        write_batch(batch, n_items=6, size=224)
        layout = make_layout(batch, cols=4, rows=3)
        sheet = layout.sheets[0]
        poses = [
            dict(tilt_deg=t, tilt_axis=a, roll_deg=r, fill=f)
            for t, a, r, f in [
                (0, "y", 0, 0.9),
                (20, "x", 8, 0.85),
                (35, "y", -10, 0.8),
                (10, "x", 4, 0.9),
                (45, "y", 12, 0.75),
                (25, "x", -6, 0.85),
            ]
        ]
        images = [
            scene(batch, layout, {sheet.sheet_id: p}, blur_sigma=1.0, noise_std=3, jpeg_quality=85, seed=k).frame
            for k, p in enumerate(poses)
        ]
        print(
            f"model: {which} ({clf.name}, {S}x{S}, {clf.provider}, {clf.threads} onnxruntime thread(s)); frames "
            "1280x720, 12 tiles"
        )

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"   {os.cpu_count()} CPU cores, load average {load:.1f} at start (other processes slow every figure below)"
        )
        crops_all: list[np.ndarray] = []
        default_threads = cv2.getNumThreads()
        session_threads = loop_threads(clf) or default_threads
        for threads in dict.fromkeys([default_threads, session_threads]):
            cv2.setNumThreads(threads)
            det = SheetDetector(
                layout, QualityGates(), batch_dir=batch
            )  # as a session: the clipping gate reads the digital PNGs
            times, cpu = [], []
            for k in range(120):
                img = images[k % len(images)]
                t0, c0 = time.perf_counter(), time.process_time()
                hits = det.detect(img)
                crops = [c for h in hits for c in det.crop_tiles(img, h, S)]
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                if k < len(images) and len(crops_all) < len(images):
                    crops_all.append(np.stack([c.crop_rgb for c in crops]))
            ms, cpu_ms = np.array(times[10:]) * 1000, np.array(cpu[10:]) * 1000
            when = "" if threads == default_threads else ", as in a capture session (the cores onnxruntime leaves free)"
            print(
                f"1. detect + rectify 12 tiles to {S}px, {threads} OpenCV thread(s){when}: median {np.median(ms):.1f} "
                f"ms, p90 {np.percentile(ms, 90):.1f} ms per frame (CPU time {np.median(cpu_ms):.1f} ms) (goal <= 15)"
            )
        cv2.setNumThreads(default_threads)
        t0 = time.perf_counter()
        for k in range(60):
            img = images[k % len(images)]
            hits = det.detect(img)
            outlines = [Outline(c.sheet_id, c.tile, c.quad_px, c.good) for h in hits for c in det.crop_tiles(img, h, S)]
            draw_overlay(img, hits, outlines, {}, {}, clf.class_names, "status")
        print(f"   with the overlay drawn: {(time.perf_counter() - t0) / 60 * 1000:.1f} ms per frame")

        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < min(4.0, args.seconds):
            clf.classify(crops_all[n // 12 % len(crops_all)])
            n += 12
        bare = n / (time.perf_counter() - t0)
        print(f"   bare onnxruntime: {bare:.1f} tiles/s in batches of 12")

        for fps in (30.0, 0.0):
            db = run_capture(
                batch,
                model,
                MemoryCamera(images, fps),
                duration=args.seconds,
                session_id=f"bench-{int(fps)}",
                classifier=clf,
                render=True,
                save_crops=False,
            )
            loop_fps, tiles_s, frames, dropped, busy, busy_rate = _rate(db)
            label = "30 fps camera" if fps else "unthrottled source"
            print(
                f"2. {label}: camera loop {loop_fps:.1f} fps with classifier running and overlay drawn (goal >= 25); "
                f"{frames} frames, {dropped} not classified (classifier busy)"
            )
            print(
                f"3. {label}: pipeline {tiles_s:.1f} tiles/s = {tiles_s / bare:.2f} x bare onnxruntime (goal >= 0.95); "
                f"classifier busy {100 * min(1.0, busy):.0f}% of the time, {busy_rate:.1f} tiles/s while busy"
            )


if __name__ == "__main__":
    main()
