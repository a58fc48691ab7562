"""`calibrate` on a webcam session over dense sheets (print's default layout), framed pair by pair.

The user holds a 1080p webcam close to the sheet, one pair and its four markers filling the frame, and steps
back once per sheet to frame the bottom row with the calibration strip. The framing calibrate fits must be
the fill of the region each frame framed: measured against the whole sheet, close-ups imply a sheet up to
2.4 times the frame's height, which the profile refused (outside 0.01..2) and which would have made the
simulated camera frame whole sheets larger than the frame.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.session import run_capture
from channel.calibrate import calibrate
from channel.simulate import SimulatedCamera
from console.options import DEFAULT_CAMERA, DEFAULT_TARGET
from contracts.layout import load_layout
from contracts.profile import load_profile
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.scenes import tiny_classifier

PRESET = "office-laser-webcam"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("dense-cal") / "batch"
    write_batch(d, n_items=4, size=64)
    print_batch(d, camera=DEFAULT_CAMERA, model=DEFAULT_TARGET)  # one A4 landscape sheet of four pairs
    assert load_layout(d).dense
    model = tiny_classifier(d.parent / "tiny.onnx", size=48)
    cam = SimulatedCamera.from_batch(d, load_profile(PRESET), seed=2, n_frames=40)
    assert cam.regions is not None  # close-ups, pair by pair, and the strip's row
    run_capture(d, model, cam, session_id="web", save_crops=False)
    out = d.parent / "web.toml"
    calibrate(d, "web", out)
    return d, out


def test_the_fitted_framing_is_the_close_ups_fill_not_the_whole_sheets(fitted: tuple[Path, Path]) -> None:
    d, out = fitted
    prof = load_profile(str(out))
    lo, hi = prof.scene.sheet_fill
    # the preset's (0.8, 0.95), less what the simulated camera takes off to keep a tilted pair's markers in the
    # frame, from four close-ups (40 frames, 8 per view): the whole sheet's fill was 1.9 to 2.4
    assert (lo, hi) == pytest.approx(load_profile(PRESET).scene.sheet_fill, abs=0.15) and hi < 1.0, (lo, hi)
    assert "measured: the simulated camera's framing (a dense sheet pair by pair)" in out.read_text()


def test_the_fitted_profile_frames_the_dense_sheet_pair_by_pair_again(fitted: tuple[Path, Path]) -> None:
    d, out = fitted
    prof = load_profile(str(out))
    with SimulatedCamera.from_batch(d, prof, seed=5, n_frames=5) as cam:
        assert cam.regions is not None and len(cam.regions) == 5  # four pairs and the strip's row
        frames = list(cam.frames())
    assert len(frames) == 5
