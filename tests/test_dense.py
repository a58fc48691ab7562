"""Dense sheets for close-up cameras (issue 28, point 2): every pair has its own markers, a 1080p webcam reads a
sheet pair by pair, a 12 MP still reads it whole, and a reprint's pairs are never read with the wrong layout."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest

from capture.sheets.detect import SheetDetector
from capture.sheets.hits import TileCrop
from capture.sheets.quality import QualityGates
from channel.simulate import SimulatedCamera
from console.options import DEFAULT_CAMERA, DEFAULT_TARGET
from contracts.errors import UserError
from contracts.frames import Frame
from contracts.layout import Layout, load_layout, load_layouts, save_layout
from contracts.manifest import load_batch
from contracts.profile import load_profile
from printouts import camera as pcam
from printouts.denseplan import plan_blocks
from printouts.plan import check_images
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.cli import run_cli

GATES = QualityGates.for_model(260, "lite2")


def _pages(pdf: Path) -> int:
    doc = pdfium.PdfDocument(str(pdf))
    try:
        return len(doc)
    finally:
        doc.close()


def test_the_default_layout_needs_a_quarter_of_the_pages_of_the_whole_sheet_one(
    synthetic_batch: Callable[..., Path],
) -> None:
    # Before dense sheets, 'print' laid pairs out for the default 1080p webcam framing the whole sheet: one pair
    # of 118 mm tiles per A4 sheet (printouts.camera.sheet_plan, still used for --layout adversarial-only), so a
    # 312-item batch took 312 sheets (and could not be printed at all: 312 x 8 marker ids > 1000).
    before = pcam.sheet_plan(DEFAULT_CAMERA, DEFAULT_TARGET, "a4", "pairs", aspect=1.0)
    now = pcam.plan_for_camera(DEFAULT_CAMERA, DEFAULT_TARGET, "a4", "pairs", aspect=1.0)
    assert before.items_per_sheet == 1 and now.items_per_sheet >= 4 * before.items_per_sheet
    assert math.ceil(312 / now.items_per_sheet) <= math.ceil(312 / before.items_per_sheet) / 4
    assert now.framing == "block" and now.tile_px >= pcam.VIEW_MARGIN * now.target_px
    # the command as a new user types it: 9 items, sheets.pdf holds ceil(9 / 4) = 3 sheets and nothing else (the
    # cover is its own file, so a 312-item batch is 78 pages to print, against 312 sheets and a cover before)
    batch = synthetic_batch(n_items=9, size=64)
    r = run_cli("print", str(batch))
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "one pair and its four markers fill the frame" in said and "cm from the paper" in said
    layout = json.loads((batch / "layout.json").read_text())
    assert layout["schema_version"] == 2 and len(layout["sheets"]) == 3
    assert _pages(batch / "sheets.pdf") == 3 and _pages(batch / "cover.pdf") == 1
    assert "wrote" in said and "cover.pdf" in said and "3 page(s), 3 sheet(s)" in said
    # every pair has a marker at each corner of its block, and each marker says which pairs it frames
    for sheet in layout["sheets"]:
        for item in {t["item"] for t in sheet["tiles"]}:
            assert sum(item in m.get("pairs", []) for m in sheet["markers"]) == 4
        assert all(0 <= m["id"] < 1000 for m in sheet["markers"])
    ids = [m["id"] for s in layout["sheets"] for m in s["markers"]]
    assert len(ids) == len(set(ids))


def test_a_dense_batch_uses_nine_ids_per_four_pairs_and_a_larger_one_is_told_how_to_split(
    synthetic_batch: Callable[..., Path],
) -> None:
    batch_dir = synthetic_batch(n_items=2, size=64)
    batch = load_batch(batch_dir)
    sizes = check_images(batch_dir, batch, ("clean", "adv"))
    many = dataclasses.replace(batch, items=[dataclasses.replace(batch.items[k % 2], id=f"i{k}") for k in range(444)])
    lay = plan_blocks(many, sizes, "a4-landscape", 61.0, True, 996)  # a run that wraps round from 999 to 0
    ids = [m.id for s in lay.sheets for m in s.markers]
    assert len(lay.sheets) == 111 and len(ids) == len(set(ids)) == 999 and max(ids) <= 999
    more = dataclasses.replace(many, items=[*many.items, dataclasses.replace(batch.items[0], id="one-more")])
    with pytest.raises(UserError, match="at most 444 items"):
        plan_blocks(more, sizes, "a4-landscape", 61.0, True, 0)


@pytest.fixture(scope="module")
def dense_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four pairs printed for the default webcam and target: one dense A4 landscape sheet."""
    batch = tmp_path_factory.mktemp("dense") / "b"
    write_batch(batch, n_items=4, size=224)
    print_batch(batch, camera=DEFAULT_CAMERA, model=DEFAULT_TARGET)
    return batch


@pytest.fixture(scope="module")
def webcam_frames(dense_batch: Path) -> list[Frame]:
    """A simulated 1080p webcam session over the dense sheet: two frames per pair, from close up, then two of the
    bottom row with the calibration strip and the QR code."""
    profile = load_profile("office-laser-webcam")
    with SimulatedCamera.from_batch(dense_batch, profile, seed=3, n_frames=10) as cam:
        assert cam.regions is not None and len(cam.regions) == 5  # it frames the sheet pair by pair
        return list(cam.frames())


def _cut(det: SheetDetector, frames: list[Frame]) -> list[tuple[Frame, TileCrop]]:
    return [(f, c) for f in frames for h in det.detect(f.image) for c in det.crop_tiles(f.image, h, 260)]


def _where_it_is(frame: Frame, crop: TileCrop) -> float:
    """Largest distance (px) between the crop's corners and where the simulator put that tile's box."""
    H = np.asarray(frame.truth["sheets"][0]["H_mm_to_px"])  # type: ignore[index]
    x, y, w, h = crop.tile.box_mm
    s = min(w, h)
    x, y = x + (w - s) / 2, y + (h - s) / 2
    pts = np.array([[x, y, 1], [x + s, y, 1], [x + s, y + s, 1], [x, y + s, 1]]) @ H.T
    return float(np.abs(pts[:, :2] / pts[:, 2:3] - crop.quad_px).max())


def test_a_1080p_webcam_framing_part_of_a_dense_sheet_cuts_every_pair_where_it_is(
    dense_batch: Path, webcam_frames: list[Frame]
) -> None:
    layout = load_layout(dense_batch)
    w, h = webcam_frames[0].image.shape[1], webcam_frames[0].image.shape[0]
    for f in webcam_frames:  # the sheet's corners are out of the frame: the camera sees a part of it
        H = np.asarray(f.truth["sheets"][0]["H_mm_to_px"])  # type: ignore[index]
        sw, sh = layout.sheets[0].size_mm
        c = np.array([[0, 0, 1], [sw, 0, 1], [sw, sh, 1], [0, sh, 1]]) @ H.T
        c = c[:, :2] / c[:, 2:3]
        assert not ((c[:, 0] >= 0) & (c[:, 0] < w) & (c[:, 1] >= 0) & (c[:, 1] < h)).all()
    det = SheetDetector(layout, GATES, batch_dir=dense_batch)
    cut = _cut(det, webcam_frames)
    assert {(c.tile.item, c.tile.role) for _, c in cut} == {(t.item, t.role) for t in layout.sheets[0].tiles}
    assert all(_where_it_is(f, c) < 3.0 for f, c in cut)  # each crop is the tile it is recorded as
    assert all(c.layout_id == layout.id for _, c in cut)
    good = sum(c.good for _, c in cut)
    assert good >= 0.9 * len(cut), [c.fail for _, c in cut]
    assert min(c.quality.tile_px for _, c in cut) >= pcam.VIEW_MARGIN * GATES.min_tile_px


def test_a_reprint_framed_pair_by_pair_is_never_read_with_the_wrong_layout(
    dense_batch: Path, webcam_frames: list[Frame], tmp_path: Path
) -> None:
    first = load_layout(dense_batch)  # the frames show this print
    batch = tmp_path / "b"
    shutil.copytree(dense_batch, batch)
    second = print_batch(batch, camera=(1280, 720), model=DEFAULT_TARGET)  # the same grid, another layout id
    assert second.id != first.id and set(load_layouts(batch)) == {first.id, second.id}
    ids = [{m.id for s in lay.sheets for m in s.markers} for lay in (first, second)]
    assert not ids[0] & ids[1]  # the reprint took marker ids that the kept print does not use
    det = SheetDetector(second, GATES, batch_dir=batch, layouts=load_layouts(batch))
    cut = _cut(det, webcam_frames)
    assert len({c.tile.item for _, c in cut}) == 4 and all(c.layout_id == first.id for _, c in cut)
    assert all(_where_it_is(f, c) < 3.0 for f, c in cut)
    # a print whose marker ids are the same as the kept one's cannot be told from it without its QR code,
    # which a close-up does not show: its tiles are not cut
    same_ids = Layout.from_dict(first.to_dict())
    same_ids.layout_id, same_ids.extra = "", {**first.extra, "camera": {**first.extra["camera"], "width": 1000}}
    save_layout(batch, same_ids)
    assert same_ids.id != first.id
    det = SheetDetector(same_ids, GATES, batch_dir=batch, layouts=load_layouts(batch))
    cut = _cut(det, webcam_frames)
    assert all(c.layout_id == first.id for _, c in cut) and det.unresolved > 0
    # printing again with the first options is the first print again: the same layout id and marker ids
    again = print_batch(batch, camera=DEFAULT_CAMERA, model=DEFAULT_TARGET)
    assert again.id == first.id and {m.id for s in again.sheets for m in s.markers} == ids[0]


def test_a_12_mp_still_framing_the_dense_sheet_whole_cuts_every_pair(dense_batch: Path) -> None:
    lab = load_profile("careful-lab")
    # the page is rendered at 300 dpi to keep the test fast, under a 12 MP still's sampling of it: the sharpness
    # gate, which would then judge the raster, is left out (tests/test_gates_fidelity.py checks it at full dpi)
    gates = QualityGates.for_model(260, "lite2", min_sharpness=0.0)
    with SimulatedCamera.from_batch(dense_batch, lab, seed=0, n_frames=1, dpi=300) as cam:
        assert cam.regions is None  # 12 MP: the whole sheet gives tiles enough pixels
        frames = list(cam.frames())
    assert frames[0].image.shape[:2] == (3024, 4032)
    layout = load_layout(dense_batch)
    det = SheetDetector(layout, gates, batch_dir=dense_batch)
    for f in frames:
        cut = _cut(det, [f])
        assert len(cut) == 8 and all(_where_it_is(f, c) < 4.0 for f, c in cut)
        assert sum(c.good for _, c in cut) >= 6, [c.fail for _, c in cut]
