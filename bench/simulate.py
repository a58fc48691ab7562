"""Frames per second of the simulated camera, per preset (prints figures, asserts nothing).

Builds two A4 page rasters (150 dpi) with markers and image tiles, prints them once (``SimulatedCamera.open``), then
times ``frames()`` at the preset's output resolution, and the office preset at 2560x1440 (the speed goal there is >= 30
frames/s; careful-lab renders 12 MP stills, where a few frames per second is enough). Run: ``python bench/simulate.py
[--frames 150] [--sheets-per-frame 1] [--goal]`` (``--goal``: the 2560x1440 line alone). The 2560x1440 line is
followed by its ratio to the goal: the frames/s measured, and the frames/s its CPU time per frame allows with every
core rendering (other jobs on the cores lower frames/s far more than they raise the CPU time). ``--compare N`` times
only the office preset at ``--size`` (2560x1440), N times each way in alternation: the camera's fast path
(``channel.fastframe``) against the same channel rendered step by step with fresh arrays (``SimulatedCamera.fast =
False``), and prints the ratio. ``--compare N --against REF`` times this
checkout against the git commit REF instead (before and after a change, each run in its own process, in alternation;
REF's ``channel/`` and ``contracts/`` are unpacked with ``git archive`` into a temporary folder); ``--serial`` renders
on one thread with one OpenCV thread there, the frame path's own CPU cost without the thread pools' overhead (the
figure to compare when other jobs hold the cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# --tree DIR (the child processes of --against): import the simulator from DIR instead of this checkout.
_TREE = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--tree"), None)
sys.path.insert(0, _TREE or str(ROOT))

from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.profile import PRESETS, ChannelProfile, load_profile  # noqa: E402

log = logging.getLogger("bench.simulate")
GOAL_FPS = 30.0  # docs/performance.md: the simulated camera >= 30 frames/s at 2560x1440


def _pages(n: int, size_mm: tuple[float, float], dpi: float, seed: int = 0) -> list[np.ndarray]:
    """A4 rasters: white paper, four ArUco markers, six textured 60 mm tiles."""
    rng = np.random.default_rng(seed)
    px = dpi / 25.4
    w, h = round(size_mm[0] * px), round(size_mm[1] * px)
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_1000)
    pages = []
    for s in range(n):
        page = np.full((h, w, 3), 255, np.uint8)
        m = round(18 * px)
        for j, (x, y) in enumerate(
            [(10, 10), (size_mm[0] - 28, 10), (size_mm[0] - 28, size_mm[1] - 28), (10, size_mm[1] - 28)]
        ):
            marker = cv2.aruco.generateImageMarker(d, 4 * s + j, m)
            page[round(y * px) : round(y * px) + m, round(x * px) : round(x * px) + m] = marker[..., None]
        t = round(60 * px)
        for k in range(6):
            x, y = round((20 + (k % 2) * 100) * px), round((40 + (k // 2) * 80) * px)
            tex = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            page[y : y + t, x : x + t] = cv2.resize(tex, (t, t), interpolation=cv2.INTER_CUBIC)
        pages.append(page)
    return pages


def _time(cam: SimulatedCamera) -> tuple[int, float, float]:
    """Frames, wall seconds and CPU seconds of one pass of ``cam.frames()`` (pages printed beforehand)."""
    cam.open()
    for k in range(len(cam.pages)):  # pages are printed when first shown; print them here, outside the frame timing
        cam.printed_page(k)
    t1, c1 = time.perf_counter(), time.process_time()
    n = sum(1 for _ in cam.frames())
    return n, time.perf_counter() - t1, time.process_time() - c1


def compare(pages: list[np.ndarray], size_mm: tuple[float, float], profile: ChannelProfile, args: Any) -> None:
    """The fast path against the plain one, alternating, on the same frames; CPU-ms per frame and the ratio."""
    ms: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(args.compare):
        for fast in (False, True) if rep % 2 == 0 else (True, False):
            cam = SimulatedCamera(pages, [size_mm] * 2, [1, 2], profile, seed=0, n_frames=args.frames)
            cam.fast = fast
            n, wall, cpu = _time(cam)
            ms[fast].append(1000 * cpu / n)
            log.info("%-5s %6.1f frames/s  %6.1f CPU-ms per frame", "fast" if fast else "plain", n / wall, ms[fast][-1])
    plain, fast_ = np.median(ms[False]), np.median(ms[True])
    ratios = np.array(ms[True]) / np.array(ms[False])
    log.info(
        "%s: median CPU-ms per frame plain %.1f, fast %.1f; fast/plain %.3f (pairs %.3f-%.3f, n=%d x %d frames, "
        "load %.2f at the end)",
        profile.name,
        plain,
        fast_,
        fast_ / plain,
        ratios.min(),
        ratios.max(),
        args.compare,
        args.frames,
        os.getloadavg()[0],
    )


def _qhd(size: str) -> ChannelProfile:
    w, h = (int(v) for v in size.lower().split("x"))
    qhd = replace(load_profile("office-laser-webcam"), name=f"office@{w}x{h}")
    return replace(qhd, camera=replace(qhd.camera, width=w, height=h))  # the speed goal: >= 30 frames/s at 2560x1440


def one(args: Any) -> None:
    """One timed pass (the child process of ``--against``): prints ``{"fps", "cpu_ms"}`` as JSON."""
    if args.serial:  # one render thread, one OpenCV thread: the frame path's own cost, without the pools' overhead
        import channel.simulate as sim  # the tree's, as above

        cv2.setNumThreads(1)
        sim.RENDER_THREADS = 1
    size_mm = (210.0, 297.0)
    cam = SimulatedCamera(
        _pages(2, size_mm, 150.0), [size_mm] * 2, [1, 2], _qhd(args.size), seed=0, n_frames=args.frames
    )
    n, wall, cpu = _time(cam)
    print(json.dumps({"fps": n / wall, "cpu_ms": 1000 * cpu / n}))


def against(args: Any) -> None:
    """This checkout against git commit ``args.against``, each in its own process, alternating; prints the ratios."""
    with tempfile.TemporaryDirectory(prefix="simbench-") as tmp:
        tar = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.against, "channel", "contracts"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=tar.stdout, check=True)
        trees = {"before": tmp, "after": str(ROOT)}
        res: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for rep in range(args.compare):
            for name in ("before", "after") if rep % 2 == 0 else ("after", "before"):
                cmd = [sys.executable, __file__, "--one", "--size", args.size, "--frames", str(args.frames)]
                cmd += ["--tree", trees[name]] + (["--serial"] if args.serial else [])
                res[name].append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
                log.info(
                    "%-6s %6.1f frames/s  %6.1f CPU-ms per frame", name, res[name][-1]["fps"], res[name][-1]["cpu_ms"]
                )
    med = {k: {m: float(np.median([r[m] for r in v])) for m in ("fps", "cpu_ms")} for k, v in res.items()}
    ratio = [a["cpu_ms"] / b["cpu_ms"] for a, b in zip(res["after"], res["before"], strict=True)]
    log.info(
        "office@%s%s against %s: median frames/s %.1f -> %.1f, CPU-ms per frame %.1f -> %.1f; after/before CPU %.3f "
        "(pairs %.3f-%.3f, n=%d x %d frames, load %.2f at the end)",
        args.size, " (serial)" if args.serial else "", args.against, med["before"]["fps"], med["after"]["fps"],
        med["before"]["cpu_ms"], med["after"]["cpu_ms"],
        float(np.median(ratio)), min(ratio), max(ratio), args.compare, args.frames, os.getloadavg()[0],
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--sheets-per-frame", type=int, default=1, choices=(1, 2))
    ap.add_argument("--compare", type=int, default=0, metavar="N", help="fast against plain at --size, N runs each")
    ap.add_argument("--against", metavar="REF", help="with --compare: this checkout against git commit REF")
    ap.add_argument("--size", default="2560x1440", help="frame size of --compare (WxH)")
    ap.add_argument("--serial", action="store_true", help="with --against: one render thread, one OpenCV thread")
    ap.add_argument("--goal", action="store_true", help="time only the office preset at 2560x1440 (the speed goal)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    size_mm = (210.0, 297.0)
    log.info(
        "simulated camera, %d frames per preset, %d sheet(s) per frame, %d OpenCV threads, %d CPUs, load %.2f",
        args.frames,
        args.sheets_per_frame,
        cv2.getNumThreads(),
        os.cpu_count() or 0,
        os.getloadavg()[0],
    )
    if args.compare and args.against:
        against(args)
        return
    pages = _pages(2, size_mm, 150.0)
    qhd = _qhd(args.size if args.compare else "2560x1440")
    if args.compare:
        compare(pages, size_mm, qhd, args)
        return
    for profile in ([] if args.goal else [load_profile(n) for n in PRESETS]) + [qhd]:
        name = profile.name
        cam = SimulatedCamera(
            pages, [size_mm] * 2, [1, 2], profile, seed=0, n_frames=args.frames, sheets_per_frame=args.sheets_per_frame
        )
        t0 = time.perf_counter()
        n, wall, cpu = _time(cam)
        print_s = time.perf_counter() - t0 - wall
        w, h = profile.camera.width, profile.camera.height
        log.info(
            "%-20s %dx%d  print+pyramid %5.2f s  %6.1f frames/s  (%.1f CPU-ms per frame)",
            name,
            w,
            h,
            print_s,
            n / wall,
            1000 * cpu / n,
        )
        if profile is qhd:
            goal(n / wall, 1000 * cpu / n)


def goal(fps: float, cpu_ms: float) -> None:
    """The speed goal at 2560x1440: frames/s against 30, and what the CPU time per frame allows on every core."""
    cores = os.cpu_count() or 1
    log.info(
        "goal >= %.0f frames/s at 2560x1440: %.1f frames/s measured = %.2fx the goal; %.1f CPU-ms per frame allows "
        "at most %.1f frames/s on %d CPUs = %.2fx (needs <= %.1f CPU-ms per frame); load average %.2f",
        GOAL_FPS, fps, fps / GOAL_FPS, cpu_ms, cores * 1000 / cpu_ms, cores, cores * 1000 / cpu_ms / GOAL_FPS,
        cores * 1000 / GOAL_FPS, os.getloadavg()[0],
    )  # fmt: skip


if __name__ == "__main__":
    main()
