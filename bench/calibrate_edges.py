"""Does calibrate say when the strip's edges cannot tell sharpening from blur? Truth known, closed loop.

For each seed, a camera drawn at random (``bench/calibrate_loop.drawn``: printer, defocus, motion blur, noise,
framing) photographs the batch through ``testkit.foreign_isp`` (an ISP unlike Photoproof's: per-frame levels,
a logistic curve, a saturation matrix and a 3 x 3 Laplacian sharpening, then JPEG 90), one session of
``--frames-per-view`` frames per close-up view; ``calibrate`` fits a profile to it. Printed per session: the
true defocus range and motion blur, the defocus and unsharp mask written, and the fits the edges cannot tell
from the written one (``channel.calibrate_edges.alike_fits``: a paired bootstrap over the views), with
whether their defocus range reaches the true range. The Laplacian is not of the profile's form, so the
alike set is a statement within that form, not a confidence set for the truth: the table measures how often
it still covers it. ``--camera own`` photographs through the simulator's own ISP instead (the profile's form),
with an unsharp mask drawn per seed, for the misfit protocol in docs/physical-fidelity.md.

Run (after ``photoproof craft --out B --images tuning --attack fgsm --eps 16 --source lite0``)::

    python bench/calibrate_edges.py --batch B --out /tmp/edges --seeds 1-8
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import channel.calibrate_edges as edge_fit  # noqa: E402
from bench.calibrate_loop import drawn, finished, loop_args, prepared, real_profile, seeds  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.calibrate import calibrate  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from channel.supersample import RenderedLarger, larger, rendered_larger  # noqa: E402
from contracts.frames import FrameSource  # noqa: E402
from contracts.profile import ChannelProfile  # noqa: E402
from testkit.foreign_isp import ForeignCamera  # noqa: E402


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def own_camera(base: ChannelProfile, seed: int) -> ChannelProfile:
    """``drawn(base, seed)`` keeping the simulator's own ISP, with its unsharp mask drawn (amount 0-2, sigma
    0.6-1.5 px) from a generator of its own, so the rest of a seed's camera is that of ``--camera foreign``."""
    rng = np.random.default_rng(10_000 + seed)
    d = drawn(base, seed)
    isp = replace(d.isp, sharpen_amount=float(rng.uniform(0.0, 2.0)), sharpen_sigma_px=float(rng.uniform(0.6, 1.5)))
    return replace(d, isp=isp)


WITHOUT = ("motion", "jpeg", "levels", "awb")


def without(truth: ChannelProfile, factors: list[str]) -> ChannelProfile:
    """``truth`` with the named camera factors removed (the misfit diagnosis): ``motion`` no motion blur, ``jpeg``
    JPEG at 100, ``levels`` no per-frame auto levels, ``awb`` no per-frame auto white balance."""
    cam, isp = truth.camera, truth.isp
    if "motion" in factors:
        cam = replace(cam, motion_blur_px=(0.0, 0.0))
    if "jpeg" in factors:
        cam = replace(cam, jpeg_quality=(100.0, 100.0))
    if "levels" in factors:
        isp = replace(isp, levels_strength=0.0)
    if "awb" in factors:
        isp = replace(isp, awb_strength=0.0)
    return replace(truth, camera=cam, isp=isp)


def fine_grid() -> None:
    """The edge fit's unsharp grid at amounts every 0.25 and sigmas every 0.15 px (the shipped grid: 0.5 and
    0.6 / 1 / 1.5 px), for the misfit diagnosis; calibrate reads the module's grid when it fits."""
    edge_fit.AMOUNTS = tuple(float(x) for x in np.round(np.arange(0.0, 2.51, 0.25), 2))
    edge_fit.SIGMAS = (0.6, 0.75, 0.9, 1.05, 1.2, 1.35, 1.5)


def source(work: Path, truth: ChannelProfile, camera: str, seed: int, frames: int, k: int) -> FrameSource:
    """The session's camera: ``--camera`` and ``--render-scale``."""
    if k == 1:
        sim = SimulatedCamera.from_batch(work, truth, seed=100 + seed, n_frames=frames)
        return ForeignCamera(sim) if camera == "foreign" else sim
    if camera == "own":
        return rendered_larger(work, truth, k, 100 + seed, frames)
    sim = SimulatedCamera.from_batch(work, larger(truth, k), seed=100 + seed, n_frames=frames)
    return ForeignCamera(RenderedLarger(sim, k, lambda img, p: img))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    loop_args(ap)
    ap.add_argument("--seeds", default="1-8", help="the drawn cameras' seeds (a session's is 100 + seed)")
    ap.add_argument("--frames-per-view", type=int, default=2)
    ap.add_argument(
        "--camera",
        choices=("foreign", "own"),
        default="foreign",
        help="foreign: behind testkit.foreign_isp (not of the profile's form); own: the simulator's own ISP",
    )
    ap.add_argument(
        "--render-scale",
        type=int,
        default=1,
        help="render at this many times the frame size and average down (the blur before the sampling)",
    )
    ap.add_argument(
        "--without",
        default="",
        help=f"own camera only: comma-separated factors removed from the truth ({', '.join(WITHOUT)})",
    )
    ap.add_argument(
        "--fine-grid",
        action="store_true",
        help="fit the unsharp mask on a grid of amounts every 0.25 and sigmas every 0.15 px (refits saved sessions)",
    )
    a = ap.parse_args()
    drop = [f for f in a.without.split(",") if f]
    if any(f not in WITHOUT for f in drop) or (drop and a.camera != "own"):
        ap.error(f"--without takes {', '.join(WITHOUT)}, with --camera own")
    if a.fine_grid:
        fine_grid()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    work, base, model, frames = prepared(a, a.frames_per_view)
    print(
        "| seed | true defocus (px) | true motion (px) | written: defocus, unsharp | rms / noise | views "
        "| alike: amounts | alike: defocus | reaches the truth |"
    )
    print("|---:|---|---|---|---|---:|---|---|---|")
    reached = 0
    rows = []
    for s in seeds(a.seeds):
        name = (f"t{s}" if a.camera == "foreign" else f"own{s}") + (f"x{a.render_scale}" if a.render_scale > 1 else "")
        name += "".join(f"-no{f}" for f in drop)
        truth = drawn(real_profile(base), s) if a.camera == "foreign" else without(own_camera(base, s), drop)
        t0 = time.perf_counter()
        if not finished(work, name):
            src = source(work, truth, a.camera, s, frames, a.render_scale)
            run_capture(work, model, src, frames=frames, session_id=name, save_crops=False)
        e = calibrate(work, name, a.out / f"{name}{'-fine' if a.fine_grid else ''}.toml", base=a.preset).edges
        if e is None:
            print(f"| {s} | no edge spread functions |")
            continue
        amounts = sorted({x[0] for x in e.alike})
        hit = overlaps(e.defocus_alike, truth.camera.defocus_sigma_px)
        reached += hit
        td, tm = truth.camera.defocus_sigma_px, truth.camera.motion_blur_px[1]
        ti = truth.isp
        sharp = "" if a.camera == "foreign" else f"; unsharp {ti.sharpen_amount:.2f} at {ti.sharpen_sigma_px:.2f} px"
        print(
            f"| {s} | {td[0]:.2f}-{td[1]:.2f} | 0-{tm:.2f}{sharp} | {e.defocus[0]:.2f}-{e.defocus[1]:.2f}, "
            f"{e.amount:g} at {e.sigma:g} px | {e.rms:.4f} / {e.noise_rms:.4f} | {e.n} | "
            f"{', '.join(f'{x:g}' for x in amounts)} | "
            f"{e.defocus_alike[0]:.2f}-{e.defocus_alike[1]:.2f} | {'yes' if hit else 'no'} |",
            flush=True,
        )
        rows.append(
            {
                "seed": s,
                "truth": td,
                "motion": tm,
                "defocus": e.defocus,
                "amount": e.amount,
                "alike": e.alike,
                "determined": e.determined,
                "rms": e.rms,
                "noise_rms": e.noise_rms,
                "camera": a.camera,
                "without": drop,
                "fine_grid": a.fine_grid,
                "s": time.perf_counter() - t0,
            }
        )
    tag = f"-{a.camera}x{a.render_scale}" + "".join(f"-no{f}" for f in drop) + ("-fine" if a.fine_grid else "")
    (a.out / f"edges{tag}.json").write_text(json.dumps(rows, indent=1))
    n = len(rows)
    undetermined = sum(not r["determined"] for r in rows)
    print(
        f"\nsharpening not determined in {undetermined} of {n} sessions; the alike defocus reaches the true "
        f"range in {reached} of {n}"
    )


if __name__ == "__main__":
    main()
