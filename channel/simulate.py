"""``--simulate``: a virtual print-and-photograph channel as a :class:`FrameSource`.

The printer stage runs once per page at the page raster (``channel.model.print_page``).
Per frame, the smooth desk behind the sheets is lit at 1/8 resolution; the box around
the sheets gets the perspective warp, light and blur at full resolution; then noise, a
table lookup and a JPEG round trip run over the whole frame. A hand-held
pose moves smoothly between frames: every ranged parameter follows a twice-smoothed
Ornstein-Uhlenbeck process whose marginal, through the normal CDF, is uniform over
the profile's range, so a long capture samples the profile as ``sample_params`` does.
The model and its constants are in ``docs/channel-profile.md``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from channel import camera, fastframe
from channel import model as ch
from channel.batchpages import batch_pages
from channel.motion import HandHeldProcess
from channel.page import page_homography, pyramid, region_homography
from channel.scratch import Scratch
from channel.threads import serial_opencv
from contracts.errors import UserError
from contracts.frames import Frame, FrameSource
from contracts.profile import ChannelProfile

log = logging.getLogger(__name__)

DWELL_S = 2.0  # seconds each sheet (or pair of sheets) stays in view
SHEET_GAP_MM = 10.0  # gap between sheets shown side by side
LIGHT_MAP_STEP = 8  # the light field is computed every 8 frame pixels and interpolated
RENDER_THREADS = 4  # at most; never more than the CPUs
NOISE_PAD = 64  # the noise bank is the frame plus this margin; each frame reads it at a random offset
PRINTED_PAGES = 4  # printed page pyramids kept in memory (pages are printed when first shown)
BACKGROUND_REFLECTANCE = (0.12, 0.30)  # a desk: low-frequency texture ...
BACKGROUND_TINT_BGR = np.array([0.75, 0.9, 1.0], np.float32)  # ... of a light wood-brown


class SimulatedCamera(FrameSource):
    """Frames of printed sheets as a profile's printer, light and camera would make them.

    Args:
        pages: page rasters, RGB (H, W, 3), uint8 or floats 0..1, sRGB-encoded, or callables
            that return one (called when the page is first shown).
        page_sizes_mm: (width, height) of each page in mm.
        page_ids: the id recorded in the truth for each page (its index in sheets.pdf).
        profile: the channel profile.
        seed: seeds everything (pose, light, noise, halftone phase); recorded in the truth.
        fps: frame rate (default: the profile camera's); ``t = index / fps``.
        n_frames: frames to yield, shared out evenly over the sheets (default: every
            sheet group for ``DWELL_S`` seconds).
        sheets_per_frame: 1, or 2 for two sheets side by side.
        realtime: sleep so that frames arrive at ``fps``.
        views: close-up views instead of whole sheets: (page index, (x, y, w, h) mm of the part
            of that page that fills the frame), shown in turn (``from_batch``: each pair of a dense sheet).
    """

    def __init__(
        self,
        pages: Sequence[np.ndarray | Callable[[], np.ndarray]],
        page_sizes_mm: list[tuple[float, float]],
        page_ids: list[int],
        profile: ChannelProfile,
        seed: int = 0,
        fps: float | None = None,
        n_frames: int | None = None,
        sheets_per_frame: int = 1,
        realtime: bool = False,
        views: Sequence[tuple[int, tuple[float, float, float, float]]] | None = None,
    ) -> None:
        if not pages or not (len(pages) == len(page_sizes_mm) == len(page_ids)):
            raise ValueError("pages, page_sizes_mm and page_ids must be non-empty and of equal length")
        if sheets_per_frame not in (1, 2):
            raise ValueError(f"sheets_per_frame: expected 1 or 2, got {sheets_per_frame}")
        self.fps = float(fps or profile.camera.fps)
        if self.fps <= 0:
            raise ValueError(f"fps: must be positive, got {self.fps}")
        self.pages, self.page_sizes_mm, self.page_ids = (
            pages,
            [(float(w), float(h)) for w, h in page_sizes_mm],
            list(page_ids),
        )
        self.profile, self.seed, self.realtime = profile, int(seed), realtime
        self.sheets_per_frame = sheets_per_frame
        self.groups = [
            list(range(i, min(i + sheets_per_frame, len(pages)))) for i in range(0, len(pages), sheets_per_frame)
        ]
        self.regions: list[tuple[float, float, float, float]] | None = None
        if views:
            if sheets_per_frame != 1 or not all(0 <= k < len(pages) for k, _ in views):
                raise ValueError("views: one page each, an index into pages")
            self.groups = [[k] for k, _ in views]
            self.regions = [(float(r[0]), float(r[1]), float(r[2]), float(r[3])) for _, r in views]
        # A requested frame count is shared out over the sheets so that every sheet is seen;
        # otherwise each sheet stays in view for DWELL_S seconds.
        if n_frames is not None:
            self.dwell = max(1, int(n_frames) // len(self.groups))
        else:
            self.dwell = max(1, round(DWELL_S * self.fps))
        self.n_frames = int(n_frames) if n_frames is not None else len(self.groups) * self.dwell
        self.size = (profile.camera.width, profile.camera.height)
        self.description = f"simulate:{profile.name}:seed={self.seed}"
        self._levels: OrderedDict[int, list[tuple[np.ndarray, np.ndarray]]] | None = None
        self._print_lock = threading.Lock()
        # fast=False: the same channel step by step (tests/test_simulate_fast.py; bench/simulate.py --compare).
        self.fast = True
        self._scratch = threading.local()  # each render thread's Scratch: frame-sized buffers, reused frame after frame

    def simulation(self) -> tuple[ChannelProfile, int]:
        """The profile and the seed: the camera carries both, and the session records them."""
        return self.profile, self.seed

    @classmethod
    def from_batch(
        cls,
        batch_dir: Path,
        profile: ChannelProfile,
        seed: int = 0,
        fps: float | None = None,
        n_frames: int | None = None,
        dpi: float | None = None,
        framing: str | None = None,
        **kw: Any,
    ) -> SimulatedCamera:
        """Render the sheets of ``BATCH/layout.json`` from ``BATCH/sheets.pdf`` (pypdfium2) and simulate them.

        ``framing``: ``"sheet"`` (whole sheets), ``"block"`` (a dense sheet pair by pair, from close up), or
        ``None``: pair by pair when the layout is dense and needs it (:func:`channel.batchpages.batch_pages`).
        """
        bp = batch_pages(Path(batch_dir), profile, dpi, framing)
        if bp.views:
            kw["views"] = bp.views
        return cls(bp.pages, bp.sizes_mm, bp.page_ids, profile, seed=seed, fps=fps, n_frames=n_frames, **kw)

    # ------------------------------------------------------------------ FrameSource
    def open(self) -> None:
        """Prepare the background and the noise bank; pages are printed when first shown."""
        if self._levels is not None:
            return
        rng = np.random.default_rng([self.seed, 1])
        self._levels = OrderedDict()
        w, h = self.size
        self._noise = rng.standard_normal((h + NOISE_PAD, w + NOISE_PAD, 3), dtype=np.float32)
        self._desk_noise: np.ndarray | None = None  # the fast path's desk: int16, through the unsharp mask
        if self.fast:
            self._desk_noise_bank()
        lo, hi = BACKGROUND_REFLECTANCE
        blobs = cv2.resize(rng.random((9, 16)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        bg = (lo + (hi - lo) * np.clip(blobs, 0, 1))[..., None] * BACKGROUND_TINT_BGR
        self._background = (bg * 65535).astype(np.uint16)
        low = (math.ceil(w / LIGHT_MAP_STEP), math.ceil(h / LIGHT_MAP_STEP))
        self._background_low = cv2.resize(bg, low, interpolation=cv2.INTER_AREA)
        xs = (np.arange(low[0]) + 0.5) * LIGHT_MAP_STEP - 0.5
        ys = (np.arange(low[1]) + 0.5) * LIGHT_MAP_STEP - 0.5
        self._light_grid = (xs[None, :], ys[:, None])  # the cells' centres, as a row and a column

    def close(self) -> None:
        """Drop the printed pages; safe to call twice."""
        self._levels = None

    def printed_page(self, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Page ``k`` printed (its pyramid), printed on first use; only the last ``PRINTED_PAGES`` are kept.

        Frames show one sheet (or pair) at a time, so a few pages in memory are enough: a
        12 MP still's page raster (A4 at 500 dpi) takes about 200 MB once printed.
        """
        assert self._levels is not None
        with self._print_lock:
            if k not in self._levels:
                page = self.pages[k]
                page = np.asarray(page() if callable(page) else page)
                size = self.page_sizes_mm[k]
                dpi = page.shape[1] / (size[0] / 25.4)
                # The halftone phase of page k depends only on the seed and k, whatever the order pages are printed in.
                refl = ch.print_page(
                    page, self.profile.printer, None, np.random.default_rng([self.seed, 1, k]), dpi=dpi
                )
                self._levels[k] = fastframe.pad_levels(pyramid(refl, size))  # the same levels, padded
                while len(self._levels) > PRINTED_PAGES:
                    self._levels.popitem(last=False)
            self._levels.move_to_end(k)
            return self._levels[k]

    def frames(self) -> Iterator[Frame]:
        """Yield ``n_frames`` frames; every call replays the same sequence."""
        yield from (frame for frame, _ in self._generate(self.n_frames))

    # ------------------------------------------------------------------ writers
    def write_video(self, path: Path, n_frames: int | None = None) -> Path:
        """Write frames to a video (``.avi``: MJPG, otherwise mp4v) and the truth to ``<path>.truth.jsonl``."""
        path = Path(path)
        fourcc = cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(path), fourcc, self.fps, self.size)
        if not writer.isOpened():
            raise UserError(f"{path}: OpenCV cannot write this video format; use .mp4 or .avi")
        try:
            truth = [self._put(writer.write, f) for f, _ in self._generate(n_frames or self.n_frames)]
        finally:
            writer.release()
        path.with_name(path.name + ".truth.jsonl").write_text("".join(truth), encoding="utf-8")
        return path

    def write_photos(self, directory: Path, n_frames: int | None = None) -> list[Path]:
        """Write the camera's own JPEG bytes as ``frame_0000.jpg`` ... and the truth to ``truth.jsonl``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths, truth = [], []
        for frame, data in self._generate(n_frames or self.n_frames):
            paths.append(directory / f"frame_{frame.index:04d}.jpg")
            paths[-1].write_bytes(data)
            truth.append(self._put(lambda _: None, frame))
        (directory / "truth.jsonl").write_text("".join(truth), encoding="utf-8")
        return paths

    @staticmethod
    def _put(write: Any, frame: Frame) -> str:
        write(frame.image)
        return json.dumps({"index": frame.index, "t": frame.t, **(frame.truth or {})}) + "\n"

    # ------------------------------------------------------------------ rendering
    def _generate(self, n: int) -> Iterator[tuple[Frame, bytes]]:
        """Draw parameters in order; render frames ahead on a few threads (OpenCV releases the GIL), OpenCV itself
        on one thread while they fill the cores (``channel.threads``: the frames are the same either way)."""
        self.open()
        process = HandHeldProcess(1.0 / self.fps, np.random.default_rng([self.seed, 2]))
        seeds = np.random.default_rng([self.seed, 3])
        start = time.monotonic()
        pending: deque[Future[tuple[Frame, bytes]]] = deque()
        workers = min(RENDER_THREADS, os.cpu_count() or 1)
        with serial_opencv(workers), ThreadPoolExecutor(max_workers=workers) as pool:
            for i in range(n):
                p = ch.params_from_unit(self.profile, process.step(), int(seeds.integers(0, 2**31 - 1)))
                pending.append(pool.submit(self._render, i, p))
                while len(pending) > workers or (i == n - 1 and pending):
                    frame, data = pending.popleft().result()
                    if self.realtime:
                        time.sleep(max(0.0, start + frame.t - time.monotonic()))
                    yield frame, data

    def _render(self, index: int, p: ch.ChannelParams) -> tuple[Frame, bytes]:
        """One frame: the desk at 1/8 resolution, the sheets' bounding box at full resolution; sensor, ISP, JPEG."""
        assert self._levels is not None
        (w, h), view = self.size, (index // self.dwell) % len(self.groups)
        group = self.groups[view]
        sizes = [self.page_sizes_mm[k] for k in group]
        group_mm = (sum(s[0] for s in sizes) + SHEET_GAP_MM * (len(sizes) - 1), max(s[1] for s in sizes))
        if self.regions is None:
            h_group = page_homography(p, group_mm, (w, h))
        else:  # close up on one part of the page
            h_group = region_homography(p, self.regions[view], (w, h))
        curve = camera.sensor_curve(p, self.profile.camera, ch.wb_gains(self.profile, p)[::-1].copy())
        gain, glare = self._light_maps(p, h_group, group_mm)
        # The desk is smooth: light and sqrt at 1/8 resolution, interpolated (outside the sheets' box only, below).
        desk = cv2.multiply(self._background_low, gain)
        desk_y = cv2.sqrt(cv2.add(desk if glare is None else cv2.add(desk, glare), curve.offset))
        sheets, homs, x_off = [], [], 0.0
        for k, size in zip(group, sizes, strict=True):
            h_mm = h_group @ ch.translation(x_off, (group_mm[1] - size[1]) / 2)
            x_off += size[0] + SHEET_GAP_MM
            homs.append(h_mm)
            sheets.append(
                {
                    "page": self.page_ids[k],
                    "sheet_index": k,
                    "H_mm_to_px": (h_mm / h_mm[2, 2]).tolist(),
                    "params": p.to_dict(),
                }
            )
        corners = cv2.perspectiveTransform(
            np.array([[[0, 0], [group_mm[0], 0], [group_mm[0], group_mm[1]], [0, group_mm[1]]]], np.float64), h_group
        )[0]
        margin = camera.gaussian_ksize(p.defocus_sigma_px) // 2 + math.ceil(p.motion_blur_px / 2) + 2
        if self.fast and fastframe.sharpens(self.profile.isp):  # the box is sharpened alone: room for the mask
            margin += camera.unsharp_kernel(self.profile.isp)[0] // 2
        x0, y0 = (max(0, int(math.floor(v)) - margin) for v in corners.min(axis=0))
        x1, y1 = (
            min(w, int(math.ceil(corners[:, 0].max())) + margin + 1),
            min(h, int(math.ceil(corners[:, 1].max())) + margin + 1),
        )
        scratch = getattr(self._scratch, "pool", None) if self.fast else Scratch()  # not fast: fresh arrays
        if scratch is None:
            scratch = self._scratch.pool = Scratch()
        box = (x0, y0, x1, y1)
        has_box = x1 > x0 and y1 > y0
        strips = [(0, 0, w, y0), (0, y1, w, h), (0, y0, x0, y1), (x1, y0, w, y1)] if has_box else [(0, 0, w, h)]
        strips = [r for r in strips if r[2] > r[0] and r[3] > r[1]]  # the desk around the box
        r = np.random.default_rng(p.noise_seed)
        dy, dx = r.integers(0, NOISE_PAD + 1, 2)
        sign = float(r.choice([-1, 1]))
        noisy, noise = replace(curve, noise_scale=sign * curve.noise_scale), self._noise[dy : dy + h, dx : dx + w]
        if self.fast:  # channel.fastframe: the box's y alone; the desk straight to its code; sharpen the box only
            y_box = scratch.get("y", (y1 - y0, x1 - x0, 3), np.float32) if has_box else None
            if y_box is not None:
                self._sheets_y(p, group, homs, box, (gain, glare), curve.offset, y_box, scratch)
            isp = self.profile.isp  # the frame's tables, once (the desk's mean correction reads them too)
            tables = None if isp.is_identity() else camera.isp_lookup(self.profile, p, True, curve.lut)
            desk_code, factor = fastframe.desk_code_low(desk_y, noisy, *fastframe.desk_table(self.profile, tables))
            desk_in = (lambda roi: fastframe.upsample(desk_code, roi, LIGHT_MAP_STEP, scratch), factor)
            noises = (noise, self._desk_noise_bank()[dy : dy + h, dx : dx + w])
            isp_args = (self.profile, p, tables)
            img = fastframe.encode_frame(y_box, box, strips, desk_in, noises, noisy, isp_args, scratch)
        else:  # the sensor, then the ISP stage (nothing unless the profile has an ISP), step by step
            y = scratch.get("y", (h, w, 3), np.float32)
            if has_box:
                self._sheets_y(p, group, homs, box, (gain, glare), curve.offset, y[y0:y1, x0:x1], scratch)
            for roi in strips:
                y[roi[1] : roi[3], roi[0] : roi[2]] = fastframe.upsample(desk_y, roi, LIGHT_MAP_STEP, scratch)
            img = camera.apply_isp(camera.sensor_encode(y, noisy, noise), self.profile, p, bgr=True)
        img, data = camera.apply_jpeg(img, p.jpeg_quality)
        truth = {"seed": self.seed, "profile": self.profile.name, "sheets": sheets}
        return Frame(index=index, t=index / self.fps, image=img, truth=truth), data

    def _desk_noise_bank(self) -> np.ndarray:
        """The noise bank the fast path's desk reads (``channel.fastframe.desk_noise``), made once."""
        with self._print_lock:
            if self._desk_noise is None:
                self._desk_noise = fastframe.desk_noise(self._noise, self.profile.isp)
            return self._desk_noise

    def _sheets_y(
        self,
        p: ch.ChannelParams,
        group: list[int],
        homs: list[np.ndarray],
        roi: tuple[int, int, int, int],
        light: tuple[np.ndarray, np.ndarray | None],
        offset: float,
        out: np.ndarray,
        scratch: Scratch,
    ) -> None:
        """``sqrt(raw + offset)`` over the box ``roi`` = (x0, y0, x1, y1) into ``out``: warp, light (gain, glare),
        optics at full resolution.
        """
        x0, y0, x1, y1 = roi
        box = scratch.get("box", (y1 - y0, x1 - x0, 3), np.uint16)
        desk: np.ndarray | None = None  # the fast path lays a lone sheet on the desk in one pass
        if self.fast and len(group) == 1:
            desk = self._background[y0:y1, x0:x1]
        else:
            np.copyto(box, self._background[y0:y1, x0:x1])
        for k, h_mm in zip(group, homs, strict=True):
            img, px_to_mm = self._level(k, h_mm)
            m = ch.translation(-x0, -y0) @ h_mm @ px_to_mm
            if self.fast:  # each sheet over its own bounding box, through the mask of its outline
                fastframe.lay_sheet(img, m, box, scratch, background=desk)
                continue
            flags, border = cv2.INTER_LINEAR, cv2.BORDER_TRANSPARENT
            cv2.warpPerspective(img, m, (x1 - x0, y1 - y0), dst=box, flags=flags, borderMode=border)
        gain, glare = light
        raw = scratch.get("raw", box.shape, np.float32)
        cv2.multiply(
            box, fastframe.upsample(gain, roi, LIGHT_MAP_STEP, scratch), dst=raw, dtype=cv2.CV_32F, scale=1.0 / 65535.0
        )
        if glare is not None:
            cv2.add(raw, fastframe.upsample(glare, roi, LIGHT_MAP_STEP, scratch), dst=raw)
        cv2.sqrt(camera.apply_optics(raw, p, delta=offset, scratch=scratch), dst=out)

    def _level(self, k: int, h_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coarsest pyramid level that still has at least one source pixel per frame pixel."""
        levels = self.printed_page(k)
        img0, m0 = levels[0]
        hh, ww = img0.shape[:2]
        src = np.array([[[0, 0], [ww, 0], [ww, hh], [0, hh]]], np.float64)
        dst = cv2.perspectiveTransform(src, h_mm @ m0)[0]
        stretch = max(
            float(np.linalg.norm(dst[(i + 1) % 4] - dst[i]) / np.linalg.norm(src[0, (i + 1) % 4] - src[0, i]))
            for i in range(4)
        )
        level = int(np.clip(math.floor(math.log2(1.0 / max(stretch, 1e-6))), 0, len(levels) - 1))
        return levels[level]

    def _light_maps(
        self, p: ch.ChannelParams, h_group: np.ndarray, group_mm: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Exposure x light colour x (irradiance gain, glare), BGR float32, every ``LIGHT_MAP_STEP`` frame pixels."""
        xs, ys = self._light_grid  # the centres of the LIGHT_MAP_STEP cells, the same every frame (made in open())
        m = np.linalg.inv(h_group)  # frame pixels to mm, as cv2.perspectiveTransform computes it, over the grid
        uw, vw, w = ((m[i, 0] * xs + m[i, 1] * ys) + m[i, 2] for i in range(3))
        w = 1.0 / w
        gain, glare = ch.light_field(p, uw * w / group_mm[0], vw * w / group_mm[1])
        colour = (p.exposure * ch.illuminant_rgb(p.colour_temperature_k)[::-1]).astype(np.float32)
        maps = [cv2.merge([(f * c).astype(np.float32) for c in colour]) for f in (gain, glare) if f is not None]
        return maps[0], (maps[1] if glare is not None else None)
