"""What two simplifications of the simulated camera would change (issue 28, point 8; prints figures, asserts nothing).

1. **Defocus on the page.** A Gaussian of sigma ``s`` frame pixels after the warp is, to first order, one of
   ``s / scale`` page pixels before it, so the page could be blurred once per pyramid level and (quantised) sigma
   instead of the frame's box every frame. One page sigma, fitted at the sheet's centre (the geometric mean of the
   warp's singular values there), gives ``sigma_page * singular value`` frame pixels elsewhere: this prints, over the
   frames the hand-held process draws, the largest relative error of that frame sigma over the sheet's corners in
   both principal directions (percentiles), and the share of frames within 5, 12 and 20 %.
2. **The desk through the table's local slope.** The desk's 8-bit code plus noise goes through the frame's table
   (sensor and ISP); a linearised desk would put ``slope * noise`` on the table's smooth output instead, with the
   slope constant over a tile (OpenCV's ``addWeighted`` and ``transform`` take one weight per call or per
   channel). This prints the table's slope (output codes per code, of the mean output over the noise) over the
   desk's codes: its range over the desk, the largest ratio within one 256-pixel tile, and the ratio between the
   blue and red channels' slopes (a scalar weight would need it near 1).

Run: ``python bench/simulate_bounds.py [--frames 300]``; the pose, light and camera are drawn as the camera draws
them (``channel.motion.HandHeldProcess``, seed 0); the sheet is the bench's A4 page (210 x 297 mm).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channel import camera, fastframe  # noqa: E402
from channel import model as ch  # noqa: E402
from channel.motion import HandHeldProcess  # noqa: E402
from channel.page import page_homography  # noqa: E402
from channel.simulate import LIGHT_MAP_STEP, SimulatedCamera  # noqa: E402
from contracts.profile import PRESETS, ChannelProfile, load_profile  # noqa: E402

SIZE_MM = (210.0, 297.0)
TILE = 256  # frame pixels


def singular_values(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The singular values (n, 2) of the Jacobian of homography ``m`` at the points ``pts`` (n, 2)."""
    u, v = pts[:, 0], pts[:, 1]
    w = m[2, 0] * u + m[2, 1] * v + m[2, 2]
    x, y = (m[0, 0] * u + m[0, 1] * v + m[0, 2]) / w, (m[1, 0] * u + m[1, 1] * v + m[1, 2]) / w
    jac = np.empty((len(pts), 2, 2))
    jac[:, 0, 0], jac[:, 0, 1] = (m[0, 0] - m[2, 0] * x) / w, (m[0, 1] - m[2, 1] * x) / w
    jac[:, 1, 0], jac[:, 1, 1] = (m[1, 0] - m[2, 0] * y) / w, (m[1, 1] - m[2, 1] * y) / w
    out: np.ndarray = np.linalg.svd(jac, compute_uv=False)
    return out


def page_blur_error(h_mm: np.ndarray) -> float:
    """The largest relative error of the frame sigma that one page sigma (fitted at the sheet's centre) gives."""
    w, h = SIZE_MM
    s = singular_values(h_mm, np.array([[w / 2, h / 2], [0, 0], [w, 0], [w, h], [0, h]], np.float64))
    return float(np.abs(s / math.sqrt(float(s[0, 0] * s[0, 1])) - 1.0).max())


def desk_slopes(cam: SimulatedCamera, p: ch.ChannelParams, h_mm: np.ndarray) -> tuple[float, float, float] | None:
    """(slope range over the desk, largest ratio within a tile, median blue / red ratio), or None (colour matrix)."""
    profile = cam.profile
    curve = camera.sensor_curve(p, profile.camera, ch.wb_gains(profile, p)[::-1].copy())
    tables = None if profile.isp.is_identity() else camera.isp_lookup(profile, p, True, curve.lut)
    if tables is not None and tables[1] is not None:
        return None
    table = (curve.lut if tables is None else tables[0])[0]
    gain, glare = cam._light_maps(p, h_mm, SIZE_MM)
    desk = cv2.multiply(cam._background_low, gain)
    y = cv2.sqrt(cv2.add(desk if glare is None else cv2.add(desk, glare), curve.offset))
    alpha = 255.0 / (curve.y_hi - curve.y_lo)
    code = np.clip((y - curve.y_lo) * alpha, 0.0, 255.0)
    mean = fastframe._expected(table, abs(curve.noise_scale) * alpha)
    slope = np.stack([np.interp(code[..., c], np.arange(256.0), np.gradient(mean[:, c])) for c in range(3)], -1)
    sheet = np.zeros(code.shape[:2], np.uint8)  # the desk: outside the sheet (on the light grid, widened a cell)
    w, h = SIZE_MM
    quad = cv2.perspectiveTransform(np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), h_mm)[0]
    cv2.fillConvexPoly(sheet, np.round(quad / LIGHT_MAP_STEP).astype(np.int32), 1)
    desk_mask = cv2.erode(1 - sheet, np.ones((3, 3), np.uint8)) > 0
    s = np.maximum(slope, 1e-3)
    spread = float((s[desk_mask].max(axis=0) / s[desk_mask].min(axis=0)).max())
    cell, within = TILE // LIGHT_MAP_STEP, 1.0
    for r in range(0, s.shape[0], cell):
        for c in range(0, s.shape[1], cell):
            m = desk_mask[r : r + cell, c : c + cell]
            if m.sum() > 4:
                t = s[r : r + cell, c : c + cell][m]
                within = max(within, float((t.max(axis=0) / t.min(axis=0)).max()))
    return spread, within, float(np.median(s[desk_mask][:, 0] / s[desk_mask][:, 2]))


def measure(profile: ChannelProfile, frames: int) -> None:
    cam = SimulatedCamera([np.full((64, 64, 3), 255, np.uint8)], [SIZE_MM], [0], profile, seed=0)
    cam.open()
    process, seeds = HandHeldProcess(1.0 / cam.fps, np.random.default_rng([0, 2])), np.random.default_rng([0, 3])
    size = (profile.camera.width, profile.camera.height)
    errors, slopes = [], []
    for _ in range(frames):
        p = ch.params_from_unit(profile, process.step(), int(seeds.integers(0, 2**31 - 1)))
        h_mm = page_homography(p, SIZE_MM, size)
        errors.append(page_blur_error(h_mm))
        d = desk_slopes(cam, p, h_mm)
        if d is not None:
            slopes.append(d)
    e = np.array(errors)
    q = np.percentile(e, [10, 50, 90])
    print(
        f"{profile.name:22s} {size[0]}x{size[1]}  page blur: sigma error p10/p50/p90 {q[0]:.1%} / {q[1]:.1%} / "
        f"{q[2]:.1%}; frames within 5 % {np.mean(e <= 0.05):.0%}, 12 % {np.mean(e <= 0.12):.0%}, "
        f"20 % {np.mean(e <= 0.2):.0%} (n={frames})"
    )
    if slopes:
        a = np.array(slopes)
        print(
            f"{'':22s} desk: table slope max/min over the desk median {np.median(a[:, 0]):.2f} (max "
            f"{a[:, 0].max():.2f}), within a {TILE}-px tile median {np.median(a[:, 1]):.2f} (max {a[:, 1].max():.2f}); "
            f"blue/red slope median {np.median(a[:, 2]):.2f} ({a[:, 2].min():.2f}-{a[:, 2].max():.2f})"
        )
    else:
        print(f"{'':22s} desk: a colour matrix between two tables (no one table to linearise)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    office = load_profile("office-laser-webcam")
    qhd = replace(office, name="office@2560x1440", camera=replace(office.camera, width=2560, height=1440))
    for profile in [load_profile(n) for n in PRESETS] + [qhd]:
        measure(profile, args.frames)


if __name__ == "__main__":
    main()
