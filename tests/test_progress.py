"""Progress that says what to do next (issue 28, point 4): sheets seen k of N, tiles with enough good
observations m of M, the sheets not yet seen and the tiles that keep failing a gate, and why; the
duration clock starts at the first frame. The same on the phone page, in headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from capture.cameraloop import Progress
from capture.classify import OnnxClassifier
from capture.phones import PhoneCapture
from capture.session import run_capture
from capture.sheets.quality import QualityGates
from capture.sources.files import PhotoSource
from contracts.frames import Frame
from testkit.capture import db_rows
from testkit.chromium import Chromium, chromium_exe, write_y4m
from testkit.scenes import make_layout, scene, tiny_classifier

PASS = QualityGates(min_sharpness=1, min_tile_px=40)
NEVER_SHARP = QualityGates(min_sharpness=1e9, min_tile_px=40)  # every tile fails the sharpness gate: "blurred"


def _two_sheets_one_shown(batch: Path, tmp_path: Path, n: int) -> tuple[Path, int]:
    """A two-sheet layout and ``n`` photos that show only its first sheet; the layout's tile count."""
    layout = make_layout(batch, n_sheets=2)
    photos = tmp_path / "photos"
    photos.mkdir()
    first = layout.sheets[0].sheet_id
    for k in range(n):
        sc = scene(batch, layout, {first: dict(tilt_deg=5 * (k % 3), fill=0.8)}, blur_sigma=0.6, seed=k)
        cv2.imwrite(str(photos / f"IMG_{k + 1:02d}.jpg"), sc.frame)
    return photos, sum(len(s.tiles) for s in layout.sheets)


def _session(
    batch: Path, model: Path, photos: Path, gates: QualityGates, per_tile: int | None = None
) -> list[Progress]:
    seen: list[Progress] = []
    run_capture(
        batch,
        model,
        PhotoSource(photos),
        gates=gates,
        classifier=OnnxClassifier(model),
        on_progress=seen.append,
        save_crops=False,
        per_tile=per_tile,
    )
    return seen


@pytest.fixture
def two_sheets(synthetic_batch: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path, int]:
    batch = synthetic_batch(n_items=12, size=64)
    photos, n_tiles = _two_sheets_one_shown(batch, tmp_path, 6)
    return batch, tiny_classifier(tmp_path / "tiny.onnx", size=48), photos, n_tiles


def test_progress_names_the_sheet_not_yet_seen_and_counts_tiles_with_enough(
    two_sheets: tuple[Path, Path, Path, int],
) -> None:
    batch, model, photos, n_tiles = two_sheets
    last = _session(batch, model, photos, PASS, per_tile=2)[-1]
    cov = last.coverage
    assert cov is not None and last.done
    assert (cov.sheets_seen, cov.sheets_total, cov.unseen) == (1, 2, ["sheet 2"])
    assert cov.tiles_total == n_tiles and cov.enough == 2
    assert 0 < cov.tiles_enough <= n_tiles // 2  # only the first sheet's tiles can have any
    assert cov.failing == []
    line = cov.line()
    assert line.startswith(f"sheets seen 1 of 2, tiles with >= 2 good observations {cov.tiles_enough} of {n_tiles}")
    assert "not yet seen: sheet 2" in line


def test_progress_names_the_tiles_that_keep_failing_and_why(two_sheets: tuple[Path, Path, Path, int]) -> None:
    batch, model, photos, n_tiles = two_sheets
    cov = _session(batch, model, photos, NEVER_SHARP)[-1].coverage
    assert cov is not None and cov.tiles_enough == 0 and cov.enough == 1
    assert len(cov.failing) == 4  # three named, then "3 more": the six tiles of the sheet in view
    assert all("on sheet 1: blurred (6 of 6)" in f for f in cov.failing[:3]) and cov.failing[3] == "3 more"
    assert "keep failing: " in cov.line()


class _LateStart(PhotoSource):
    """Photos that start coming only after ``delay`` seconds, as a phone that scans the QR code late."""

    def __init__(self, folder: Path, delay: float) -> None:
        super().__init__(folder, loop=True)
        self.delay = delay

    def frames(self) -> Iterator[Frame]:
        time.sleep(self.delay)
        yield from super().frames()


def test_the_duration_clock_starts_at_the_first_frame(two_sheets: tuple[Path, Path, Path, int]) -> None:
    batch, model, photos, _ = two_sheets
    t0 = time.monotonic()
    seen: list[Progress] = []
    db = run_capture(
        batch,
        model,
        _LateStart(photos, delay=2.0),
        duration=1.0,
        gates=PASS,
        classifier=OnnxClassifier(model),
        on_progress=seen.append,
        save_crops=False,
    )
    assert time.monotonic() - t0 >= 3.0  # the wait, then a whole second of frames
    (times,) = zip(*db_rows(db, "SELECT t FROM frames ORDER BY idx"), strict=True)
    assert len(times) >= 3 and times[0] < 0.5 and times[-1] >= 0.9  # clocked from the first frame
    assert seen[-1].stopped_by == "1 s" and seen[-1].elapsed < 2.0


def test_the_phone_page_shows_the_sheets_to_show_next_and_the_failing_tiles(
    two_sheets: tuple[Path, Path, Path, int], tmp_path: Path
) -> None:
    chromium_exe()
    batch, model, photos, n_tiles = two_sheets
    y4m = write_y4m(tmp_path / "camera.y4m", (cv2.imread(str(p)) for p in sorted(photos.iterdir())), fps=5)
    pc = PhoneCapture(
        batch,
        model,
        OnnxClassifier(model),
        bind="127.0.0.1",
        port=0,
        frames=8,
        session="coverage",
        gates=NEVER_SHARP,
        cert_dir=tmp_path / "config",
    )
    br = Chromium(tmp_path / "chromium", pc.start(), y4m)
    try:
        assert br.wait_for("document.body && document.body.dataset.done", 120) == "1"
        progress = br.evaluate("document.body.dataset.progress")
        assert progress == f"sheets seen 1 of 2, tiles with a good observation 0 of {n_tiles}"
        assert br.evaluate("document.body.dataset.unseen") == "sheet 2"
        assert "Show next: sheet 2" in br.evaluate("document.getElementById('unseen').innerText")
        failing = br.evaluate("document.getElementById('failing').innerText")
        assert failing.startswith("Keep failing: ") and "on sheet 1: blurred" in failing, failing
        assert progress in br.evaluate("document.getElementById('progress-text').innerText")
    finally:
        br.close()
        pc.stop()
