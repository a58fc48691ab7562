"""calibrate fits the framing the session saw and the camera's JPEG quality: closed loop on the simulated camera.

A camera with a known framing (the sheet filling 60-75 % of the frame's height, tilted 5-25 deg) and JPEG
quality 80 is captured, its frames decoded (as a webcam's) or saved as JPEG files and read as photos (as a
phone's); calibrate must give them back. Bounds, measured when written (40 frames at 1280 x 720, poses
nearly independent at 0.5 fps; camera seeds 3, 5 and 6):

| key | true | bound | measured when written |
|---|---|---|---|
| jpeg_quality, decoded frames (DCT lattice) | 80 | 78-82 | 80-80 (all three) |
| jpeg_quality, JPEG files (tables) | 80 | exactly 80 | 80-80 |
| sheet_fill | 0.60-0.75 | each end +-0.04 | 0.623-0.750, 0.603-0.752, 0.604-0.753 |
| tilt_deg | 5-25 | each end +-6 deg | 2.2-28.6, 6.8-25.6, 9.8-29.4 |

The tilt is the looser: 40 frames sample it coarsely, and capture's viewing angle carries its own error,
which the fit reads as tilt.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.jpegquality import ijg_table, quality_from_bytes, quality_from_pixels, quality_from_table
from capture.session import run_capture
from capture.sources.files import PhotoSource
from channel.calibrate import calibrate
from channel.simulate import SimulatedCamera
from contracts.profile import ChannelProfile, load_profile, parse_profile
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.scenes import tiny_classifier

FRAMES = 40


def framed() -> ChannelProfile:
    """A camera with a known framing and JPEG quality (the rest fixed, as in tests/test_calibrate.py)."""
    return parse_profile(
        {
            "printer": {"tone_gamma": 1.3, "dot_gain": 0.08, "paper_white": [0.85, 0.86, 0.88],
                        "ink_black": [0.05, 0.05, 0.06], "gamut_compression": 0.25},
            "scene": {"sheet_fill": [0.6, 0.75], "tilt_deg": [5.0, 25.0], "rotation_deg": [-8.0, 8.0],
                      "illuminance": 1.0, "colour_temperature_k": 5000.0, "gradient": 0.0, "glare": 0.0},
            "camera": {"defocus_sigma_px": 0.8, "motion_blur_px": 0.0, "shot_noise": 0.0008, "read_noise": 0.004,
                       "white_balance_error": 0.0, "exposure": 1.0, "jpeg_quality": 80.0, "gamma": 2.2},
        },
        "framed",
        "test profile",
    )  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("calframe") / "batch"
    write_batch(d, n_items=3, size=64)
    print_batch(d, paper="a4", tile_mm=60.0, layout="pairs", cover=False)
    return d, tiny_classifier(d.parent / "tiny.onnx", size=48)


def _notes(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return {
        lines[i + 1].split(" = ")[0]: lines[i]
        for i in range(len(lines) - 1)
        if lines[i].startswith("# ") and " = " in lines[i + 1]
    }


@pytest.mark.slow
def test_framing_and_jpeg_quality_come_back_from_decoded_frames(setup: tuple[Path, Path]) -> None:
    d, model = setup
    cam = SimulatedCamera.from_batch(d, framed(), seed=3, n_frames=FRAMES, fps=0.5)
    run_capture(d, model, cam, session_id="framed", save_crops=False)
    res = calibrate(d, "framed", d.parent / "framed.toml")
    p = load_profile(str(res.path))
    assert 78 <= p.camera.jpeg_quality[0] <= p.camera.jpeg_quality[1] <= 82, p.camera.jpeg_quality
    (f0, f1), (t0, t1) = p.scene.sheet_fill, p.scene.tilt_deg
    assert abs(f0 - 0.6) <= 0.04 and abs(f1 - 0.75) <= 0.04, p.scene.sheet_fill
    assert abs(t0 - 5) <= 6 and abs(t1 - 25) <= 6, p.scene.tilt_deg
    notes = _notes(res.path)
    assert notes["jpeg_quality"].startswith("# estimated: the 8x8 DCT quantiser steps"), notes["jpeg_quality"]
    assert notes["sheet_fill"].startswith("# measured: the simulated camera's framing (whole sheets)")
    assert notes["tilt_deg"].startswith("# measured") and "capture records no in-plane angle" in notes["rotation_deg"]
    assert res.framing is not None and res.framing.rms_px < 0.06 and res.framing.rms_deg < 4.0


def test_jpeg_quality_is_read_from_photos_tables(setup: tuple[Path, Path], tmp_path: Path) -> None:
    d, model = setup
    photos = SimulatedCamera.from_batch(d, framed(), seed=4, n_frames=16, fps=0.5).write_photos(tmp_path / "photos")
    assert len(photos) == 16 and all(quality_from_bytes(p.read_bytes()) == (80, True) for p in photos)
    run_capture(d, model, PhotoSource(tmp_path / "photos"), session_id="photos", save_crops=False)
    con = sqlite3.connect(d / "captures" / "photos.sqlite")
    rows = con.execute("SELECT quality_lo, quality_hi, method FROM jpeg").fetchall()
    con.close()
    assert rows and all(r == (80, 80, "tables") for r in rows), rows
    res = calibrate(d, "photos", tmp_path / "photos.toml")
    assert res.profile.camera.jpeg_quality == (80.0, 80.0)
    assert _notes(res.path)["jpeg_quality"].startswith("# measured: the quantisation tables of")


def test_degenerate_sessions_keep_the_base_and_say_why(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """Too few tile observations for the framing; hostile or absent JPEG rows: the base's keys, with the reason."""
    d, model = setup
    if not (d / "captures" / "photos.sqlite").is_file():
        SimulatedCamera.from_batch(d, framed(), seed=4, n_frames=16, fps=0.5).write_photos(tmp_path / "p")
        run_capture(d, model, PhotoSource(tmp_path / "p"), session_id="photos", save_crops=False)
    bad = d / "captures" / "bad.sqlite"
    shutil.copy(d / "captures" / "photos.sqlite", bad)
    con = sqlite3.connect(bad)
    con.execute("UPDATE sessions SET id='bad'")
    for table in ("frames", "observations", "patches", "blur", "patch_noise", "esf", "jpeg"):
        con.execute(f"UPDATE {table} SET session_id='bad'")
    con.execute("DELETE FROM observations WHERE id NOT IN (SELECT id FROM observations LIMIT 5)")
    con.execute("UPDATE jpeg SET quality_lo=500, quality_hi='x'")  # hostile rows are ignored
    con.commit()
    con.close()
    base = load_profile("office-laser-webcam")
    res = calibrate(d, "bad", tmp_path / "bad.toml")
    assert res.profile.scene.sheet_fill == base.scene.sheet_fill and res.profile.scene.tilt_deg == base.scene.tilt_deg
    assert res.profile.camera.jpeg_quality == base.camera.jpeg_quality
    notes = _notes(res.path)
    assert "too few tile observations" in notes["sheet_fill"] and "not determined" in notes["jpeg_quality"]
    bad.unlink()


@pytest.mark.parametrize("quality", [35, 60, 80, 90])
def test_jpeg_quality_from_tables_and_from_pixels(quality: int) -> None:
    rng = np.random.default_rng(quality)
    smooth = cv2.resize(rng.random((24, 40, 3)).astype(np.float32), (640, 384), interpolation=cv2.INTER_CUBIC)
    img = np.clip(smooth * 200 + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)  # texture at every scale
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    assert quality_from_bytes(buf.tobytes()) == (quality, True)
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    found = quality_from_pixels(dec)
    assert found is not None and found[0] - 2 <= quality <= found[1] + 2, found
    assert quality_from_pixels(dec[3:, 5:]) is None  # off the 8x8 grid: no lattice
    assert quality_from_pixels(cv2.resize(dec, (500, 300), interpolation=cv2.INTER_AREA)) is None
    assert quality_from_pixels(img) is None  # never compressed


def test_hostile_jpeg_headers_give_none() -> None:
    ok, buf = cv2.imencode(".jpg", np.full((32, 32, 3), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75])
    data = buf.tobytes()
    assert quality_from_bytes(data) == (75, True)
    assert quality_from_bytes(data[:40]) is None  # cut inside its tables
    assert quality_from_bytes(b"\xff\xd8\xff" + bytes(200)) is None
    assert quality_from_bytes(b"\x89PNG\r\n\x1a\n") is None
    assert quality_from_table([0] * 64) is None and quality_from_table([1] * 10) is None
    other = np.maximum(1, np.round(ijg_table(70) * 1.07)).astype(int)  # another encoder's scaling: the nearest IJG
    found = quality_from_table(other.tolist())
    assert found is not None and not found[1] and 66 <= found[0] <= 70
