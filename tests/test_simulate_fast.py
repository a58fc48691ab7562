"""The simulated camera's fast path (``channel.fastframe``) is the same channel as the step-by-step one.

The fast path sharpens only the sheets' box and gives the desk around it a noise bank filtered by the same unsharp
kernel; the sheets are laid on the desk through the mask of their outline. On the sheets the frames are those of the
step-by-step path (``SimulatedCamera.fast = False``) up to a few rounding flips; on the desk the mean and the
noise's spread agree within the tolerances below (docs/channel-profile.md has the measured figures).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from channel import camera, fastframe, simulate
from channel.scratch import Scratch
from channel.simulate import SimulatedCamera
from channel.threads import serial_opencv
from contracts.frames import Frame
from contracts.layout import Layout
from contracts.profile import Isp, load_profile
from testkit.sim import SIZE_MM, make_sim_batch

# (sheet: mean |difference| in codes, fraction of pixels that differ), (desk: mean shift in codes, noise std ratio).
SHEET_TOL = (0.05, 0.02)
DESK_TOL = (0.6, (0.93, 1.01))


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Layout]:
    d = tmp_path_factory.mktemp("simfast")
    return d, make_sim_batch(d, n_sheets=2)


def _regions(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the sheets' inside (10 px in from their outline) and of the desk (20 px out from it)."""
    sheets = np.zeros(frame.image.shape[:2], np.uint8)
    w, h = SIZE_MM
    assert frame.truth is not None
    for s in frame.truth["sheets"]:
        quad = cv2.perspectiveTransform(
            np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), np.array(s["H_mm_to_px"])
        )
        cv2.fillConvexPoly(sheets, np.round(quad[0]).astype(np.int32), 255)
    return cv2.erode(sheets, np.ones((21, 21))) > 0, cv2.dilate(sheets, np.ones((41, 41))) == 0


def _noise_std(img: np.ndarray, where: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    std: np.ndarray = (x - cv2.GaussianBlur(x, (0, 0), 3))[where].std(axis=0)
    return std


@pytest.mark.parametrize("preset", ["careful-lab", "office-laser-webcam", "inkjet-phone", "harsh"])
def test_the_fast_path_is_the_same_channel(batch: tuple[Path, Layout], preset: str) -> None:
    """Fast against step by step, same seed, lossless JPEG (so that only the two paths differ), 1 and 2 sheets."""
    profile = load_profile(preset)
    cam_ = profile.camera
    if preset == "careful-lab":  # at a third of its size, to stay quick
        cam_ = replace(cam_, width=1344, height=1008)
    profile = replace(profile, camera=replace(cam_, jpeg_quality=(100.0, 100.0)))
    for sheets_per_frame in (1, 2):
        frames = {}
        for fast in (True, False):
            cam = SimulatedCamera.from_batch(
                batch[0], profile, seed=11, n_frames=3, dpi=100, sheets_per_frame=sheets_per_frame
            )
            cam.fast = fast
            frames[fast] = list(cam.frames())
        for a, b in zip(frames[True], frames[False], strict=True):
            assert a.truth == b.truth
            sheet, desk = _regions(a)
            diff = np.abs(a.image.astype(np.int16) - b.image)[sheet]
            assert diff.mean() < SHEET_TOL[0] and (diff > 0).mean() < SHEET_TOL[1], (preset, diff.mean())
            shift = np.abs(a.image[desk].mean(axis=0) - b.image[desk].mean(axis=0))
            ratio = _noise_std(a.image, desk) / _noise_std(b.image, desk)
            assert shift.max() < DESK_TOL[0], (preset, shift)
            assert DESK_TOL[1][0] < ratio.min() and ratio.max() < DESK_TOL[1][1], (preset, ratio)


def test_the_desk_noise_is_the_sharpened_noise() -> None:
    """The desk's bank is the noise through the unsharp kernel: its std is the kernel's L2 norm, and the noise keeps
    the correlation that sharpening gives it (negative between neighbours)."""
    isp = load_profile("harsh").isp
    noise = np.random.default_rng(0).standard_normal((256, 256, 3), dtype=np.float32)
    bank = fastframe.desk_noise(noise, isp).astype(np.float64) / fastframe.NOISE_SCALE
    k, sigma = camera.unsharp_kernel(isp)
    g = cv2.getGaussianKernel(k, sigma) @ cv2.getGaussianKernel(k, sigma).T
    kernel = -isp.sharpen_amount * g
    kernel[k // 2, k // 2] += 1 + isp.sharpen_amount
    inner = bank[8:-8, 8:-8]
    assert abs(inner.std() / np.sqrt((kernel**2).sum()) - 1) < 0.02
    lag1 = float((inner[:, 1:] * inner[:, :-1]).mean() / inner.var())
    expect = float((kernel[:, 1:] * kernel[:, :-1]).sum() / (kernel**2).sum())
    assert expect < 0 and abs(lag1 - expect) < 0.02
    plain = fastframe.desk_noise(noise, Isp()).astype(np.float64) / fastframe.NOISE_SCALE
    assert np.abs(plain - noise).max() <= 0.5 / fastframe.NOISE_SCALE  # no ISP sharpening: the noise itself


@pytest.mark.parametrize(("padded", "onto"), [(False, "box"), (True, "box"), (True, "background")])
def test_a_sheet_laid_on_the_desk_is_the_transparent_warp(padded: bool, onto: str) -> None:
    """``lay_sheet`` (the outline's mask over a warp with the page's edge replicated: a padded page from
    ``pad_levels`` with a constant border, or a bare one with a replicated border) gives the pixels of a
    ``BORDER_TRANSPARENT`` warp inside the sheet to 2 / 65535 and keeps the desk outside it; the two differ only
    along the outline (two pixels wide). ``onto="background"``: the desk is given apart (the fast path's lone
    sheet is warped over the whole box and the desk copied in around it), with the same result."""
    rng = np.random.default_rng(1)
    page = cv2.GaussianBlur((rng.random((300, 200, 3)) * 65535).astype(np.uint16), (0, 0), 1.5)
    if padded:
        page = fastframe.pad_levels([(page, np.eye(3))])[0][0]
    for m in (
        np.array([[0.71, 0.05, 40.3], [0.02, 0.7, 30.6], [2e-5, 4e-5, 1.0]]),  # minified, as the pyramid gives
        np.array([[0.52, -0.03, 60.7], [0.04, 0.5, 50.2], [-3e-5, 1e-4, 1.0]]),  # minified 2x, tilted
    ):
        desk = np.full((320, 260, 3), 1000, np.uint16)
        want = desk.copy()
        cv2.warpPerspective(page, m, (260, 320), dst=want, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
        got = desk.copy() if onto == "box" else np.zeros_like(desk)
        assert fastframe.lay_sheet(page, m, got, Scratch(), background=desk if onto == "background" else None)
        d = np.abs(got.astype(np.int32) - want).max(axis=2)
        sheet = (want != 1000).all(axis=2).astype(np.uint8)
        inside, near = cv2.erode(sheet, np.ones((3, 3))) > 0, cv2.dilate(sheet, np.ones((5, 5))) > 0
        assert inside.sum() > 10000 and d[inside].max() <= 2
        assert (got[~near] == 1000).all() and (want[~near] == 1000).all()
        flat = np.full((300, 200, 3), 30000, np.uint16)  # on the outline: the page's edge or the desk, never a blend
        if padded:
            flat = fastframe.pad_levels([(flat, np.eye(3))])[0][0]
        edge = desk.copy() if onto == "box" else np.zeros_like(desk)
        fastframe.lay_sheet(flat, m, edge, Scratch(), background=desk if onto == "background" else None)
        assert np.isin(edge, (1000, 30000)).all()
    far = np.array([[1.0, 0, 900.0], [0, 1.0, 900.0], [0, 0, 1.0]])  # a sheet that misses the box: the desk alone
    missed = desk.copy() if onto == "box" else np.zeros_like(desk)
    assert fastframe.lay_sheet(page, far, missed, Scratch(), background=desk if onto == "background" else None) is None
    assert (missed == 1000).all()


def test_frames_do_not_depend_on_opencv_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera renders with OpenCV on one thread while its own threads fill the cores (``channel.threads``): the
    frames are the same bytes as those of one render thread with OpenCV's own threads, and OpenCV's thread count
    is what it was once the frames are done."""
    profile = load_profile("harsh")
    pages = [np.full((300, 212, 3), 200, np.uint8)]
    pages[0][100:200, 50:150] = (20, 120, 240)
    before = cv2.getNumThreads()
    images = []
    try:
        for render_threads, opencv_threads in ((1, max(2, before)), (4, 2)):
            monkeypatch.setattr(simulate, "RENDER_THREADS", render_threads)
            cv2.setNumThreads(opencv_threads)
            cam = SimulatedCamera(pages, [(210.0, 297.0)], [0], profile, seed=5, n_frames=3)
            images.append([f.image for f in cam.frames()])
            assert cv2.getNumThreads() == opencv_threads
    finally:
        cv2.setNumThreads(before)
    assert all(np.array_equal(a, b) for a, b in zip(*images, strict=True))


def test_serial_opencv_nests_and_puts_the_count_back() -> None:
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        with serial_opencv(2, cores=4) as changed:  # cores left over: OpenCV keeps its threads
            assert not changed and cv2.getNumThreads() == 3
        with serial_opencv(2, cores=2) as changed:
            assert changed and cv2.getNumThreads() == 1
            with serial_opencv(4, cores=2):
                assert cv2.getNumThreads() == 1
            assert cv2.getNumThreads() == 1  # the outer camera still renders
        assert cv2.getNumThreads() == 3
        with serial_opencv(2, cores=2):
            cv2.setNumThreads(2)  # someone else (capture's loop) sets its own count meanwhile: left as they set it
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
