"""Errors that help a new user (issue 28, point 5): each names what was typed and what to do, in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from capture.sources.live import CameraSource, cameras_that_open
from contracts.errors import UserError
from testkit.cli import assert_one_line_error, run_cli
from testkit.scenes import make_layout, tiny_classifier


def test_report_of_a_missing_folder_names_the_folder_typed(tmp_path: Path) -> None:
    r = run_cli("report", "nosuchdir", cwd=tmp_path)
    assert_one_line_error(r, "nosuchdir", "photoproof craft")
    assert ".report-" not in r.stderr
    assert not (tmp_path / "nosuchdir").exists()  # nothing made on the way


def test_report_of_a_folder_without_a_batch(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run_cli("report", "empty", cwd=tmp_path)
    assert_one_line_error(r, "batch.json", "photoproof craft")
    assert ".report-" not in r.stderr and list((tmp_path / "empty").iterdir()) == []


def test_a_missing_camera_lists_those_that_open_and_not_itself() -> None:
    here = cameras_that_open()
    missing = next(i for i in range(10, 100) if i not in here)
    with pytest.raises(UserError) as e:
        CameraSource(missing, open_timeout=0.5).open()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"--camera {missing}:")
    assert msg.count(str(missing)) == 1  # named once, never offered again
    if here:
        assert f"cameras that open here: {', '.join(map(str, here))}" in msg
    else:
        assert "no camera opens here" in msg and "--phone" in msg


def _capture_cli(batch: Path, model: Path, *args: str) -> list[str]:
    return ["capture", str(batch), "--model", str(model), *args]


@pytest.fixture
def printed(synthetic_batch: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    batch = synthetic_batch(n_items=2, size=64)
    make_layout(batch)
    return batch, tiny_classifier(tmp_path / "tiny.onnx", size=48)


def test_missing_camera_through_the_cli_is_one_line_without_opencv_log(printed: tuple[Path, Path]) -> None:
    batch, model = printed
    r = run_cli(*_capture_cli(batch, model, "--camera", "57", "--headless"))
    assert_one_line_error(r, "--camera 57")
    assert "WARN" not in r.stderr and "VIDEOIO" not in r.stderr


def test_photos_none_of_which_is_an_image_record_nothing(printed: tuple[Path, Path], tmp_path: Path) -> None:
    """Before, a folder of files that only looked like photos recorded an empty session and exited 0."""
    batch, model = printed
    shots = tmp_path / "DCIM"
    shots.mkdir()
    (shots / "IMG_1.jpg").write_text("not a JPEG")
    (shots / "IMG_2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    r = run_cli(*_capture_cli(batch, model, "--photos", str(shots), "--headless"))
    assert_one_line_error(r, f"--photos {shots}", "IMG_1.jpg, IMG_2.png", "JPEG, HEIC")
    assert "starting" not in r.stdout and not list((batch / "captures").glob("*.sqlite"))


def test_exactly_one_source_lists_every_source(printed: tuple[Path, Path]) -> None:
    batch, model = printed
    for extra in ([], ["--simulate", "--photos", str(batch)]):
        r = run_cli(*_capture_cli(batch, model, *extra))
        assert_one_line_error(
            r, "exactly one source", "--camera", "--url", "--video", "--photos", "--phone", "--simulate"
        )


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--frames", "0"),
        ("--duration", "-1"),
        ("--duration", "nan"),
        ("--per-tile", "0"),
        ("--fps", "0"),
        ("--frame-size", "-640x480"),
        ("--connect-timeout", "0"),
        ("--max-angle-deg", "120"),
        ("--max-clipped", "2"),
        ("--min-sharpness", "-1"),
    ],
)
def test_bad_values_are_refused_before_the_model_loads(tmp_path: Path, flag: str, value: str) -> None:
    # the model does not exist and the batch is empty: an error about the flag proves it came first
    (tmp_path / "b").mkdir()
    r = run_cli("capture", str(tmp_path / "b"), "--model", str(tmp_path / "none.onnx"), "--simulate", flag, value)
    assert_one_line_error(r, flag)
    assert "none.onnx" not in r.stderr
