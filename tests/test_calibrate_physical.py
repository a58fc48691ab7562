"""calibrate's edge fit on a camera whose lens blurs before the sensor samples (``channel.supersample``).

The simulated camera blurs its frame after sampling the page; under about a pixel of defocus its edges keep the
sampled edge's sub-pixel steps, and the edge fit, which models a lens, reads them low (docs/physical-fidelity.md,
"The simulator blurs after sampling"). Rendered at twice the frame size with the blur scaled, averaged down, the
same session is what the fit models, and the fit must give the defocus back. Measured for the known profile with
0.5 px of defocus, 30 frames (6 strip views) at 1280 x 720, JPEG 95: 0.489-0.499 px written, residual 0.0089 of
the step against the median edge's noise of 0.0102 (before the camera encoded at the truth's quality, its frames were
at JPEG 100: 0.487-0.503 px, 0.0108 against 0.0104). The simulator's own order gave 0.355-0.471 px and 0.0174 against
0.0113, which the assertions below would refuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.jpegquality import quality_from_pixels
from capture.session import run_capture
from channel.calibrate import calibrate
from channel.supersample import rendered_larger
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.known import known_profile
from testkit.scenes import tiny_classifier

DEFOCUS = 0.5


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("phys") / "batch"
    write_batch(d, n_items=3, size=64)
    print_batch(d, paper="a4", tile_mm=60.0, layout="pairs", cover=False)
    return d, tiny_classifier(d.parent / "tiny.onnx", size=48)


def test_a_lens_blur_of_half_a_pixel_comes_back(batch: tuple[Path, Path]) -> None:
    d, model = batch
    prof = known_profile(defocus=DEFOCUS)
    cam = rendered_larger(d, prof, 2, seed=1, n_frames=30)
    assert cam.description.startswith("rendered-x2:")
    run_capture(d, model, cam, session_id="lens", save_crops=False)
    res = calibrate(d, "lens", d.parent / "lens.toml", jpeg_quality=95)
    lo, hi = res.profile.camera.defocus_sigma_px
    assert DEFOCUS - 0.05 <= lo <= hi <= DEFOCUS + 0.05, (lo, hi)
    e = res.edges
    assert e is not None and e.n == 6 and e.amount == 0
    assert e.rms <= 1.3 * e.noise_rms, (e.rms, e.noise_rms)  # the edges fit within their own noise


def test_the_lens_first_camera_encodes_at_its_own_jpeg_quality(batch: tuple[Path, Path]) -> None:
    """The camera rendering at 2 x encodes at 100; the frame it gives must carry the truth's JPEG (found when the
    misfit diagnosis removed JPEG and nothing changed: every lens-first session had been encoded at 100)."""
    d, _ = batch
    cam = rendered_larger(d, known_profile(defocus=DEFOCUS, jpeg=60.0), 2, seed=3, n_frames=2)
    cam.open()
    try:
        frame = next(iter(cam.frames()))
    finally:
        cam.close()
    assert [s["params"]["jpeg_quality"] for s in frame.truth["sheets"]] == [60] * len(frame.truth["sheets"])
    got = quality_from_pixels(frame.image)  # the quantiser steps left on the frame's 8 x 8 grid
    assert got is not None and got[0] <= 60 <= got[1], got
