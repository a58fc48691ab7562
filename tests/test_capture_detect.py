"""Finding sheets and cutting tiles with real OpenCV on rendered camera frames."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.classify import CPU, OnnxClassifier
from capture.pipeline import ClassifierWorker, LatestSlot, loop_threads
from capture.session import run_capture
from capture.sheets.detect import SheetDetector, TileCrop, aruco_dictionary
from capture.sheets.quality import QualityGates
from capture.sources.files import PhotoSource
from channel.simulate import SimulatedCamera
from contracts.errors import UserError
from contracts.layout import Layout
from contracts.profile import load_profile
from printouts.markers import marker_id_offset
from printouts.sheets import print_batch
from testkit.scenes import (
    compose_frame,
    make_layout,
    pose_homography,
    reference_crop,
    render_pdf_page,
    render_sheet,
    scene,
    tiny_classifier,
    view_angle,
)

SIZE = 64
NOISY = dict(blur_sigma=1.2, noise_std=4.0, jpeg_quality=80)


@pytest.fixture
def batch(synthetic_batch) -> Path:  # type: ignore[no-untyped-def]
    return synthetic_batch(n_items=6, size=SIZE)


def _project(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ H.T
    return p[:, :2] / p[:, 2:]


def _match_scores(batch_dir: Path, layout: Layout, crops: list) -> list[tuple[float, float, bool]]:
    """Per crop: (correlation with its own PNG, mean abs diff, whether it is the right tile).

    The right tile: its item's PNGs match it better than any other item's, and its
    role is right: the adversarial perturbation (adv - clean) correlates with
    (crop - clean) for an adversarial tile and not for a clean one.
    """
    refs = {
        (t.item, t.role): reference_crop(batch_dir, t, SIZE).astype(np.float64) for s in layout.sheets for t in s.tiles
    }
    out = []
    for c in crops:
        x = c.crop_rgb.astype(np.float64)
        own = refs[(c.tile.item, c.tile.role)]
        corr = float(np.corrcoef(x.ravel(), own.ravel())[0, 1])
        mad = float(np.abs(x - own).mean())
        best_item = min(refs, key=lambda k: np.abs(x - refs[k]).mean())[0]
        clean, adv = refs[(c.tile.item, "clean")], refs[(c.tile.item, "adv")]
        delta_corr = float(np.corrcoef((x - clean).ravel(), (adv - clean).ravel())[0, 1])
        role_ok = delta_corr > 0.1 if c.tile.role == "adv" else delta_corr < 0.07
        out.append((corr, mad, best_item == c.tile.item and role_ok))
    return out


@pytest.mark.parametrize(
    "tilt,axis", [(0, "y"), (30, "x"), (45, "y"), (45, "x")], ids=["front", "30deg-x", "45deg-y", "45deg-x"]
)
def test_all_tiles_recovered_under_perspective_blur_and_noise(batch: Path, tilt: float, axis: str) -> None:
    layout = make_layout(batch, cols=3, rows=2)
    sheet = layout.sheets[0]
    sc = scene(batch, layout, {sheet.sheet_id: dict(tilt_deg=tilt, tilt_axis=axis, roll_deg=12, fill=0.85)}, **NOISY)
    det = SheetDetector(layout, QualityGates(min_tile_px=40, min_sharpness=1), focal_px=1280)  # the helper's camera
    hits = det.detect(sc.frame)
    assert len(hits) == 1 and hits[0].sheet.sheet_id == sheet.sheet_id
    hit = hits[0]
    assert len(hit.marker_ids) >= 5 and hit.reproj_px < 1.5
    corners = np.array([[0, 0], sheet.size_mm, [sheet.size_mm[0], 0], [0, sheet.size_mm[1]]], float)
    assert np.abs(_project(hit.H, corners) - _project(sc.H[sheet.sheet_id], corners)).max() < 1.5
    crops = det.crop_tiles(sc.frame, hit, SIZE)
    assert sorted((c.tile.item, c.tile.role) for c in crops) == sorted((t.item, t.role) for t in sheet.tiles)
    for corr, mad, own_best in _match_scores(batch, layout, crops):
        assert own_best and corr > 0.9 and mad < 20
    for c in crops:
        assert c.crop_rgb.shape == (SIZE, SIZE, 3) and c.crop_rgb.dtype == np.uint8
        x, y, w, h = c.tile.box_mm
        assert abs(c.quality.angle_deg - view_angle(sc.H[sheet.sheet_id], (x + w / 2, y + h / 2))) < 3.0
        assert c.quality.tile_px > 40 and c.quality.sharpness > 0 and 0 <= c.quality.clipped < 0.05 and c.good


def test_one_corner_marker_covered(batch: Path) -> None:
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    sc = scene(batch, layout, {sheet.sheet_id: dict(tilt_deg=20, roll_deg=-8, fill=0.85)}, **NOISY)
    covered = sheet.markers[0]
    quad = _project(sc.H[sheet.sheet_id], np.asarray(covered.corners_mm, float)).astype(np.int32)
    frame = sc.frame.copy()
    cv2.fillConvexPoly(frame, cv2.convexHull(quad), (40, 90, 200))  # a thumb over the top-left marker
    det = SheetDetector(layout)
    (hit,) = det.detect(frame)
    assert covered.id not in hit.marker_ids
    crops = det.crop_tiles(frame, hit, SIZE)
    assert len(crops) == len(sheet.tiles)
    assert all(own for _, _, own in _match_scores(batch, layout, crops))


def test_two_sheets_in_one_frame(batch: Path) -> None:
    layout = make_layout(batch, n_sheets=2)
    a, b = layout.sheets
    poses = {
        a.sheet_id: dict(fill=0.55, shift=(-0.24, 0.0), roll_deg=5),
        b.sheet_id: dict(fill=0.55, shift=(0.24, 0.03), tilt_deg=25, roll_deg=-10),
    }
    sc = scene(batch, layout, poses, blur_sigma=0.8, noise_std=3.0, jpeg_quality=90)
    det = SheetDetector(layout, QualityGates(min_tile_px=30))
    hits = det.detect(sc.frame)
    assert sorted(h.sheet.sheet_id for h in hits) == sorted([a.sheet_id, b.sheet_id])
    for hit in hits:
        crops = det.crop_tiles(sc.frame, hit, SIZE)
        assert {(c.tile.item, c.tile.role) for c in crops} == {(t.item, t.role) for t in hit.sheet.tiles}
        assert all(c.sheet_id == hit.sheet.sheet_id for c in crops)
        assert all(own for _, _, own in _match_scores(batch, layout, crops))


def test_foreign_sheet_is_ignored_with_one_warning(
    batch: Path, synthetic_batch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    ours = make_layout(batch)
    other_dir = synthetic_batch(name="other", n_items=3, size=SIZE, seed=5, batch_id="bother-0002")
    theirs = make_layout(other_dir, first_id=200)
    H_ours = pose_homography(ours.sheets[0].size_mm, fill=0.42, shift=(-0.25, 0.0))
    H_theirs = pose_homography(theirs.sheets[0].size_mm, fill=0.42, shift=(0.25, 0.0), roll_deg=15)
    frame = compose_frame(
        [(render_sheet(batch, ours.sheets[0]), H_ours), (render_sheet(other_dir, theirs.sheets[0]), H_theirs)], **NOISY
    )
    det = SheetDetector(ours)
    with caplog.at_level(logging.WARNING, logger="capture.sheets.detect"):
        for _ in range(3):
            hits = det.detect(frame)
            assert [h.sheet.sheet_id for h in hits] == [ours.sheets[0].sheet_id]
    warnings = [r for r in caplog.records if "not in this batch's layout" in r.getMessage()]
    assert len(warnings) == 1
    assert det.foreign_ids and min(det.foreign_ids) >= 200


def test_foreign_sheet_with_the_same_ids_is_told_apart_by_its_qr_code(
    batch: Path, synthetic_batch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    ours = make_layout(batch, qr=True)
    other_dir = synthetic_batch(name="other", n_items=3, size=SIZE, seed=5, batch_id="bother-0002")
    theirs = make_layout(other_dir, qr=True)  # same marker ids 0..5, another batch's QR payload
    det = SheetDetector(ours)
    pose = dict(fill=0.95, roll_deg=4)
    mine = compose_frame(
        [(render_sheet(batch, ours.sheets[0], ppm=6), pose_homography(ours.sheets[0].size_mm, **pose))], ppm=6
    )
    (hit,) = det.detect(mine)
    assert hit.qr_verified is True
    det = SheetDetector(ours)
    foreign = compose_frame(
        [(render_sheet(other_dir, theirs.sheets[0], ppm=6), pose_homography(theirs.sheets[0].size_mm, **pose))], ppm=6
    )
    with caplog.at_level(logging.WARNING, logger="capture.sheets.detect"):
        assert det.detect(foreign) == []
    assert any("bother-0002" in r.getMessage() for r in caplog.records)


def test_tiles_partly_outside_the_frame_are_skipped(batch: Path) -> None:
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    sc = scene(batch, layout, {sheet.sheet_id: dict(fill=0.85, shift=(0.38, 0.0))}, **NOISY)
    det = SheetDetector(layout)
    (hit,) = det.detect(sc.frame)
    crops = det.crop_tiles(sc.frame, hit, SIZE)
    inside = []
    for t in sheet.tiles:
        x, y, w, h = t.box_mm
        q = _project(sc.H[sheet.sheet_id], np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], float))
        if q.min() >= 0 and (q[:, 0] <= 1279).all() and (q[:, 1] <= 719).all():
            inside.append((t.item, t.role))
    assert 0 < len(inside) < len(sheet.tiles)
    assert sorted((c.tile.item, c.tile.role) for c in crops) == sorted(inside)


@pytest.mark.parametrize("marker_scale,warn", [(1.0, False), (0.94, True)], ids=["as-laid-out", "markers-6pct-small"])
def test_scale_warning_when_marker_size_disagrees_with_spacing(
    batch: Path, marker_scale: float, warn: bool, caplog: pytest.LogCaptureFixture
) -> None:
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    page = render_sheet(batch, sheet, marker_scale=marker_scale)
    det = SheetDetector(layout, scale_every=1)
    with caplog.at_level(logging.WARNING, logger="capture.sheets.detect"):
        for k, tilt in enumerate([0, 15, 30, 20, 10, 25]):
            frame = compose_frame([(page, pose_homography(sheet.size_mm, tilt_deg=tilt, fill=0.8))], seed=k, **NOISY)
            (hit,) = det.detect(frame)
    assert hit.scale_warning is warn
    assert abs(hit.scale_ratio - marker_scale) < 0.015
    assert any("actual size" in r.getMessage() for r in caplog.records) is warn


def test_quality_gates_flag_blurred_small_and_oblique_tiles(batch: Path) -> None:
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    gates = QualityGates(min_sharpness=100, min_tile_px=90, max_angle_deg=40)
    det = SheetDetector(layout, gates, focal_px=1280)

    def crops(blur: float = 0.6, **pose: float) -> dict:
        sc = scene(batch, layout, {sheet.sheet_id: pose}, blur_sigma=blur, noise_std=2)
        (hit,) = det.detect(sc.frame)
        return {(c.tile.item, c.tile.role): c for c in det.crop_tiles(sc.frame, hit, SIZE)}

    sharp, blurred = crops(fill=0.9), crops(fill=0.9, blur=2.2)
    assert sharp.keys() == blurred.keys() and len(sharp) == len(sheet.tiles)

    def own(t: TileCrop) -> list[str]:  # the tile's own verdict, before its pair is judged together
        return gates.failures(t.quality, t.reproj_px)

    for key, c in sharp.items():
        assert blurred[key].quality.sharpness < c.quality.sharpness
        assert c.good == sharp[(key[0], "clean")].good and not blurred[key].good  # pairs are judged together
        if key[1] == "adv":  # the high-frequency perturbation is what blur erases
            assert not own(c) and own(blurred[key]) == ["sharpness"]
    small = crops(fill=0.45)
    assert all(c.quality.tile_px < 90 and not c.good for c in small.values())
    oblique = crops(fill=0.9, tilt_deg=55)
    assert all(c.quality.angle_deg > 40 and not c.good for c in oblique.values())


def test_unknown_aruco_dictionary_is_a_user_error() -> None:
    with pytest.raises(UserError, match="DICT_NOPE"):
        aruco_dictionary("DICT_NOPE")


# -- sheet identity, with real printouts -------------------------------------------

A4_MM = [210.0, 297.0]


def _print(synthetic_batch, name: str, batch_id: str, seed: int) -> tuple[Path, Layout]:  # type: ignore[no-untyped-def]
    d = synthetic_batch(name=name, n_items=3, size=SIZE, seed=seed, batch_id=batch_id)
    return d, print_batch(d, paper="a4", tile_mm=60.0, cover=False)


def _batch_id_sharing_ids_with(batch_id: str) -> str:
    """Another batch id whose sheets carry the same marker ids (1 in 125 do)."""
    want = marker_id_offset(batch_id)
    return next(b for k in range(10_000) if marker_id_offset(b := f"bother-{k:04d}") == want)


def _photo(pages: list[tuple[Path, tuple[float, float], float]], seed: int = 0) -> np.ndarray:
    """A 1280 x 720 photo of printed A4 sheets: (batch dir, shift, roll) each, sheets 0.9 of the frame high."""
    ppm = 6.0
    layers = [
        (
            render_pdf_page(d / "sheets.pdf", 0, ppm),
            pose_homography(A4_MM, fill=0.9, shift=shift, roll_deg=roll, tilt_deg=10),
        )
        for d, shift, roll in pages
    ]
    return compose_frame(layers, ppm, blur_sigma=1.0, noise_std=3.0, jpeg_quality=85, seed=seed)


def test_a_sheet_of_another_batch_in_the_frame_is_not_recorded(
    synthetic_batch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    ours_dir, ours = _print(synthetic_batch, "ours", "b20261122-3f9c1a2e", seed=0)
    theirs_dir, theirs = _print(synthetic_batch, "theirs", "b20261123-0badcafe", seed=5)
    their_ids = {m.id for m in theirs.sheets[0].markers}
    assert not their_ids & {m.id for m in ours.sheets[0].markers}  # each batch has its own block of ids
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        frame = _photo([(ours_dir, (-0.2, 0.0), 3.0 * k), (theirs_dir, (0.2, 0.0), -4.0)], seed=k)
        cv2.imwrite(str(photos / f"IMG_{k}.png"), frame)
    model = tiny_classifier(tmp_path / "tiny.onnx", size=SIZE)
    with caplog.at_level(logging.WARNING, logger="capture.sheets.detect"):
        db = run_capture(
            ours_dir,
            model,
            PhotoSource(photos),
            session_id="mixed",
            gates=QualityGates(min_sharpness=1, min_tile_px=40),
            save_crops=False,
        )
    con = sqlite3.connect(db)
    try:
        frames = [json.loads(r[0]) for r in con.execute("SELECT sheets FROM frames ORDER BY idx")]
        observed = set(con.execute("SELECT sheet_id, item_id, role FROM observations"))
        (config,) = con.execute("SELECT config FROM sessions").fetchone()
    finally:
        con.close()
    assert frames == [[ours.sheets[0].sheet_id]] * 2
    assert observed == {(ours.sheets[0].sheet_id, t.item, t.role) for t in ours.sheets[0].tiles}
    assert set(json.loads(config)["foreign_markers"]) == their_ids
    assert len([r for r in caplog.records if "not in this batch's layout" in r.getMessage()]) == 1


def test_a_sheet_of_another_batch_with_the_same_marker_ids_is_rejected_by_its_qr_code(
    synthetic_batch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    ours_dir, ours = _print(synthetic_batch, "ours", "b20261122-3f9c1a2e", seed=0)
    other_id = _batch_id_sharing_ids_with(ours.batch_id)
    theirs_dir, theirs = _print(synthetic_batch, "theirs", other_id, seed=5)
    assert [m.id for m in theirs.sheets[0].markers] == [m.id for m in ours.sheets[0].markers]
    det = SheetDetector(ours)
    with caplog.at_level(logging.WARNING, logger="capture.sheets.qr"):
        assert det.detect(_photo([(theirs_dir, (0.0, 0.0), 5.0)])) == []  # alone: its QR code names the other batch
        both = det.detect(_photo([(ours_dir, (-0.2, 0.0), 0.0), (theirs_dir, (0.2, 0.0), 5.0)], seed=1))
    assert [(h.sheet.sheet_id, h.qr_verified) for h in both] == [(ours.sheets[0].sheet_id, True)]
    assert (
        float(
            np.linalg.norm(both[0].H[:2, 2] - pose_homography(A4_MM, fill=0.9, shift=(-0.2, 0.0), tilt_deg=10)[:2, 2])
        )
        < 20
    )  # the left one
    warnings = [r.getMessage() for r in caplog.records if "QR code reads" in r.getMessage()]
    assert len(warnings) == 1 and other_id in warnings[0]
    assert det.foreign_qr == {(theirs.sheets[0].qr or {})["payload"]}

    # Still in view with its code unreadable (a thumb over it): it stays another batch's sheet.
    det = SheetDetector(ours)
    H = pose_homography(A4_MM, fill=0.9, tilt_deg=10, roll_deg=5.0)
    page = render_pdf_page(theirs_dir / "sheets.pdf", 0, 6.0)
    assert det.detect(compose_frame([(page, H)], 6.0, blur_sigma=1.0, noise_std=3.0)) == []
    x, y, w, h = theirs.sheets[0].qr["box_mm"]
    covered = page.copy()
    covered[round(y * 6) : round((y + h) * 6), round(x * 6) : round((x + w / 2) * 6)] = 255
    for k in range(8):  # past the retry interval: read again, unreadable, still rejected
        assert det.detect(compose_frame([(covered, H)], 6.0, blur_sigma=1.0, noise_std=3.0, seed=k)) == []


def test_qr_code_is_read_in_simulated_720p_frames(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    d, layout = _print(synthetic_batch, "ours", "b20261122-3f9c1a2e", seed=0)
    assert layout.sheets[0].qr["box_mm"][2] >= 30.0
    det = SheetDetector(layout, qr_every=1)  # read the code in every frame
    verdicts = []
    with SimulatedCamera.from_batch(d, load_profile("office-laser-webcam"), seed=1, n_frames=20) as cam:
        for frame in cam.frames():
            verdicts += [h.qr_verified for h in det.detect(frame.image)]
    assert len(verdicts) >= 18 and verdicts.count(True) >= 0.9 * len(verdicts) and False not in verdicts


def test_classifier_thread_holds_opencv_to_the_cores_onnxruntime_leaves(tmp_path: Path) -> None:
    clf = OnnxClassifier(tiny_classifier(tmp_path / "tiny.onnx"), providers=[CPU], threads=1)
    assert loop_threads(clf, cores=4) == 3 and loop_threads(clf, cores=1) == 1
    before = cv2.getNumThreads()
    slot = LatestSlot()
    worker = ClassifierWorker(clf, None, slot, [])  # type: ignore[arg-type]  # no job: nothing is recorded
    worker.start()
    try:
        deadline = time.monotonic() + 5.0
        while cv2.getNumThreads() != loop_threads(clf) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cv2.getNumThreads() == loop_threads(clf)
    finally:
        slot.close()
        worker.join(5.0)
    assert cv2.getNumThreads() == before
