"""Finding sheets and cutting tiles with real OpenCV on rendered camera frames."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.detect import SheetDetector, aruco_dictionary
from capture.quality import QualityGates
from contracts.errors import UserError
from contracts.layout import Layout
from tests.capture_helpers import compose_frame, make_layout, pose_homography, reference_crop, render_sheet, scene, view_angle

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
    refs = {(t.item, t.role): reference_crop(batch_dir, t, SIZE).astype(np.float64) for s in layout.sheets for t in s.tiles}
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


@pytest.mark.parametrize("tilt,axis", [(0, "y"), (30, "x"), (45, "y"), (45, "x")], ids=["front", "30deg-x", "45deg-y", "45deg-x"])
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
        assert abs(c.angle_deg - view_angle(sc.H[sheet.sheet_id], (x + w / 2, y + h / 2))) < 3.0
        assert c.tile_px > 40 and c.sharpness > 0 and 0 <= c.clipped < 0.05 and c.good


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
    poses = {a.sheet_id: dict(fill=0.55, shift=(-0.24, 0.0), roll_deg=5), b.sheet_id: dict(fill=0.55, shift=(0.24, 0.03), tilt_deg=25, roll_deg=-10)}
    sc = scene(batch, layout, poses, blur_sigma=0.8, noise_std=3.0, jpeg_quality=90)
    det = SheetDetector(layout, QualityGates(min_tile_px=30))
    hits = det.detect(sc.frame)
    assert sorted(h.sheet.sheet_id for h in hits) == sorted([a.sheet_id, b.sheet_id])
    for hit in hits:
        crops = det.crop_tiles(sc.frame, hit, SIZE)
        assert {(c.tile.item, c.tile.role) for c in crops} == {(t.item, t.role) for t in hit.sheet.tiles}
        assert all(c.sheet_id == hit.sheet.sheet_id for c in crops)
        assert all(own for _, _, own in _match_scores(batch, layout, crops))


def test_foreign_sheet_is_ignored_with_one_warning(batch: Path, synthetic_batch, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    ours = make_layout(batch)
    other_dir = synthetic_batch(name="other", n_items=3, size=SIZE, seed=5, batch_id="bother-0002")
    theirs = make_layout(other_dir, first_id=200)
    H_ours = pose_homography(ours.sheets[0].size_mm, fill=0.42, shift=(-0.25, 0.0))
    H_theirs = pose_homography(theirs.sheets[0].size_mm, fill=0.42, shift=(0.25, 0.0), roll_deg=15)
    frame = compose_frame([(render_sheet(batch, ours.sheets[0]), H_ours), (render_sheet(other_dir, theirs.sheets[0]), H_theirs)], **NOISY)
    det = SheetDetector(ours)
    with caplog.at_level(logging.WARNING, logger="capture.detect"):
        for _ in range(3):
            hits = det.detect(frame)
            assert [h.sheet.sheet_id for h in hits] == [ours.sheets[0].sheet_id]
    warnings = [r for r in caplog.records if "not in this batch's layout" in r.getMessage()]
    assert len(warnings) == 1
    assert det.foreign_ids and min(det.foreign_ids) >= 200


def test_foreign_sheet_with_the_same_ids_is_told_apart_by_its_qr_code(batch: Path, synthetic_batch, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    ours = make_layout(batch, qr=True)
    other_dir = synthetic_batch(name="other", n_items=3, size=SIZE, seed=5, batch_id="bother-0002")
    theirs = make_layout(other_dir, qr=True)  # same marker ids 0..5, another batch's QR payload
    det = SheetDetector(ours)
    pose = dict(fill=0.95, roll_deg=4)
    mine = compose_frame([(render_sheet(batch, ours.sheets[0], ppm=6), pose_homography(ours.sheets[0].size_mm, **pose))], ppm=6)
    (hit,) = det.detect(mine)
    assert hit.qr_verified is True
    det = SheetDetector(ours)
    foreign = compose_frame([(render_sheet(other_dir, theirs.sheets[0], ppm=6), pose_homography(theirs.sheets[0].size_mm, **pose))], ppm=6)
    with caplog.at_level(logging.WARNING, logger="capture.detect"):
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
def test_scale_warning_when_marker_size_disagrees_with_spacing(batch: Path, marker_scale: float, warn: bool, caplog: pytest.LogCaptureFixture) -> None:
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    page = render_sheet(batch, sheet, marker_scale=marker_scale)
    det = SheetDetector(layout, scale_every=1)
    with caplog.at_level(logging.WARNING, logger="capture.detect"):
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
    for key, c in sharp.items():
        assert blurred[key].sharpness < c.sharpness
        if key[1] == "adv":  # the high-frequency perturbation is what blur erases
            assert c.good and not blurred[key].good
    small = crops(fill=0.45)
    assert all(c.tile_px < 90 and not c.good for c in small.values())
    oblique = crops(fill=0.9, tilt_deg=55)
    assert all(c.angle_deg > 40 and not c.good for c in oblique.values())


def test_unknown_aruco_dictionary_is_a_user_error() -> None:
    with pytest.raises(UserError, match="DICT_NOPE"):
        aruco_dictionary("DICT_NOPE")
