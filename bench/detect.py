"""Detect and rectify against a bare ``cv2.aruco`` detection of the same frames (prints ratios, asserts nothing).

The speed goal: finding a batch's sheets and cutting out every tile of each
(``SheetDetector.detect`` + ``crop_tiles``, with the quality metrics and the
clipping gate's digital masks, as a capture session runs them) takes at most
1.5 x the time of a bare ``cv2.aruco.ArucoDetector.detectMarkers`` call on the
same frame (the batch's dictionary, OpenCV's default parameters, grey input).
Frames come from the simulated camera photographing a printed batch: 1280x720 and
1920x1080 video frames (office-laser-webcam) of dense sheets laid out by ``print
--frame-size`` (four pairs per A4 sheet, each with its own markers), framed from close up
one pair at a time and once per sheet its bottom row with the strip (``channel.views``);
at 720p also a classic sheet of 60 mm tiles (``--tile-mm 60``) framed whole; and 12 MP
stills (careful-lab) framing a dense sheet whole, laid out for the still and for the
default 1080p webcam.

Run: ``python bench/detect.py [--frames 40] [--items 12]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture.sheets.detect import SheetDetector, aruco_dictionary  # noqa: E402
from capture.sheets.quality import QualityGates  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.layout import load_layout  # noqa: E402
from contracts.profile import ChannelProfile, load_profile  # noqa: E402
from printouts.sheets import print_batch  # noqa: E402
from testkit.batch import write_batch  # noqa: E402

INPUT_PX = 260  # tiles are rectified to lite2's input size


def _at(profile: ChannelProfile, width: int, height: int) -> ChannelProfile:
    return dataclasses.replace(profile, camera=dataclasses.replace(profile.camera, width=width, height=height))


def run(batch: Path, profile: ChannelProfile, frames: int) -> tuple[float, float, int]:
    """Median ms per frame of the bare detection and of ours, and the tiles cut out per frame (median)."""
    layout = load_layout(batch)
    bare = cv2.aruco.ArucoDetector(aruco_dictionary(layout.aruco_dictionary), cv2.aruco.DetectorParameters())
    det = SheetDetector(layout, QualityGates(), batch_dir=batch)
    with SimulatedCamera.from_batch(batch, profile=profile, seed=0, n_frames=frames) as cam:
        images = [
            f.image for f in cam.frames()
        ]  # rendered first: the simulator's threads must not compete with the timing
    t_bare, t_ours, tiles = [], [], []
    for img in images:
        t0 = time.perf_counter()
        bare.detectMarkers(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        t1 = time.perf_counter()
        crops = [c for h in det.detect(img) for c in det.crop_tiles(img, h, INPUT_PX)]
        t2 = time.perf_counter()
        t_bare.append(t1 - t0)
        t_ours.append(t2 - t1)
        tiles.append(len(crops))
    return 1000 * statistics.median(t_bare), 1000 * statistics.median(t_ours), int(statistics.median(tiles))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="video frames per case (stills: a quarter)")
    ap.add_argument("--items", type=int, default=12)
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"detect + rectify against bare cv2.aruco, {os.cpu_count()} CPUs, {cv2.getNumThreads()} OpenCV threads, load "
        f"{load:.2f} at start"
    )
    office, lab = load_profile("office-laser-webcam"), load_profile("careful-lab")
    cases: list[tuple[str, ChannelProfile, tuple[int, int] | None, int]] = [
        ("1280x720 close-up", _at(office, 1280, 720), (1280, 720), args.frames),
        ("1280x720, 60 mm", _at(office, 1280, 720), None, args.frames),  # a classic sheet framed whole
        ("1920x1080 close-up", office, (1920, 1080), args.frames),
        ("4032x3024 stills", lab, (4032, 3024), max(4, args.frames // 4)),
        ("12 MP, 1080p sheet", lab, (1920, 1080), max(4, args.frames // 4)),  # the default layout framed whole
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, profile, camera, n in cases:
            batch = Path(tmp) / name.replace(" ", "_").replace(",", "")
            write_batch(batch, n_items=args.items, size=224)
            logging.disable(logging.WARNING)  # the layout's notes (QR size) are not this bench's business
            print_batch(batch, camera=camera, model="lite2" if camera else None)
            logging.disable(logging.NOTSET)
            b, o, k = run(batch, profile, n)
            goal = "met" if o <= 1.5 * b else "NOT met"
            print(
                f"{name:18s} bare aruco {b:6.1f} ms   detect + rectify {k} tiles {o:6.1f} ms   ratio {o / b:4.2f} x "
                f"(goal <= 1.5 x: {goal})",
                flush=True,
            )


if __name__ == "__main__":
    main()
