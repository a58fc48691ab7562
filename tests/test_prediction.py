"""The report's prediction check: does a simulated camera give the tiles a real camera's verdicts?

The "real" camera is photographs on disk (``PhotoSource``, as ``capture --photos`` reads a phone's photos):
JPEG files the simulated camera rendered under a profile the check is never told. A profile is calibrated from
one of those sessions (``calibrate``), simulated with ``capture --simulate``, and the report judges it against
the camera's other sessions, leaving out the one it was fitted to. A tiny ONNX model (global mean colour, then a
linear layer): what the check is given is real sessions' tiles, whatever the model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import pytest

import photoproof as pp
from analysis.prediction import DIFFERS, NA, NOT_SHOWN, POINT, PREDICTS, Diff, _judge
from analysis.report import make_report
from capture.session import run_capture
from capture.sources.files import PhotoSource
from channel.calibrate import calibrate
from channel.simulate import SimulatedCamera
from contracts.profile import ChannelProfile, load_profile
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.known import known_profile
from testkit.scenes import tiny_classifier


def _photograph(batch: Path, profile: ChannelProfile, seed: int, n: int, folder: Path) -> Path:
    """``n`` JPEG photos (quality 90) of the batch's sheets under ``profile``: a camera the report cannot see."""
    folder.mkdir(parents=True)
    with SimulatedCamera.from_batch(batch, profile, seed=seed, n_frames=n) as cam:
        for f in cam.frames():
            cv2.imwrite(str(folder / f"IMG_{f.index:04d}.jpg"), f.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pred")
    d = root / "batch"
    write_batch(d, n_items=6, size=64)
    print_batch(d, paper="a4", tile_mm=40.0, layout="pairs", cover=False)
    model = tiny_classifier(root / "tiny.onnx", size=48)
    camera = known_profile(jpeg=100.0)  # the photos' own JPEG is the camera's compression
    for name, seed, n in (("phone-a", 11, 15), ("phone-b", 12, 10), ("phone-c", 13, 10)):
        shots = _photograph(d, camera, seed, n, root / name)
        run_capture(d, model, PhotoSource(shots), session_id=name, save_crops=False)
    calibrate(d, "phone-a", root / "mine.toml")
    mine = load_profile(str(root / "mine.toml"))
    assert mine.calibrated_from == ("phone-a",)
    dark = replace(camera, scene=replace(camera.scene, illuminance=(0.25, 0.3)), name="dark")
    for name, prof, seed in (("sim-mine", mine, 21), ("sim-mine-2", mine, 23), ("sim-dark", dark, 22)):
        cam = SimulatedCamera.from_batch(d, prof, seed=seed, n_frames=10)
        run_capture(d, model, cam, session_id=name, save_crops=False)
    return d, model


def test_a_calibrated_profile_is_judged_against_the_sessions_it_was_not_fitted_to(sessions: tuple[Path, Path]) -> None:
    d, _ = sessions
    res = make_report(d, formats=("json",))
    rows = {r["profile"]: r for r in json.loads((d / "report" / "prediction.json").read_text())["rows"]}
    mine, dark = rows["mine"], rows["dark"]
    assert mine["sessions"] == "sim-mine, sim-mine-2" and dark["sessions"] == "sim-dark"  # one profile, together
    assert mine["left_out"] == "phone-a" and mine["references"] == "phone-b, phone-c"
    assert dark["left_out"] == "" and dark["references"] == "phone-a, phone-b, phone-c"
    assert mine["tiles"] > 0 and mine["photos"] == 6
    # a camera at a quarter of the light changes every tile's mean colour: the check must call it different
    assert dark["verdict"] == DIFFERS, dark
    assert mine["verdict"] in (PREDICTS, POINT, NOT_SHOWN), mine
    assert mine["agreement_pct"] > dark["agreement_pct"]
    assert {r["profile"]: r["verdict"] for r in pp.prediction_check(d)} == {p: r["verdict"] for p, r in rows.items()}
    notes = " ".join(res.notes)
    assert "Prediction check, profile dark (session sim-dark, tiny): differs" in notes
    assert "the profile does not predict this camera" in notes


def test_one_reference_session_is_not_enough_and_says_what_to_capture(sessions: tuple[Path, Path]) -> None:
    d, _ = sessions
    res = make_report(d, sessions=["phone-a", "phone-b", "sim-mine"], formats=("json",))
    note = next(n for n in res.notes if n.startswith("Prediction check, profile mine (session sim-mine, tiny)"))
    assert ": n/a. Only 1 session(s) of the camera with tiny besides those the profile was fitted to (phone-a)" in note
    assert "capture the camera 1 more time(s)" in note
    # simulated sessions alone (the demo, a bench): nothing of a camera to predict, no check and no stale table
    res = make_report(d, sessions=["sim-mine", "sim-dark"], formats=("json",))
    assert not any(n.startswith("Prediction check") for n in res.notes)
    assert not (d / "report" / "prediction.json").exists()


def test_the_rule_on_its_three_differences() -> None:
    near, wide, far = Diff(-1.0, -4.0, +3.0), Diff(-2.0, -7.4, +2.8), Diff(-12.0, -20.0, -6.0)
    assert _judge([near, near, near])[0] == PREDICTS
    assert _judge([wide, near, near])[0] == POINT
    assert _judge([Diff(-6.0, -11.0, +1.0), near, near])[0] == NOT_SHOWN
    assert _judge([near, far, near])[0] == DIFFERS
    assert _judge([near, None, near])[0] == NA
