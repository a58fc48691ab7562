"""The printable face sticker (issue #25, part 2): crafted on the real MTCNN, placed by the face's box, printed on
a card of its own, and measured in scene mode by the real CenterFace with and without the card in view."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from analysis.scene import scene_figures
from capture.facetarget import FaceTarget
from capture.scene import run_scene
from capture.sources.files import PhotoSource
from contracts.batchdir import model_path
from contracts.detection import Detections
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.manifest import load_batch
from contracts.patchcard import patch_cards
from testkit.scenes import render_pdf_page

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stickered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two LFW faces with a sticker of 3 steps on MTCNN, printed with a 50 mm card, CenterFace prepared."""
    from contracts.detection import get_detector
    from craft.detectors.facepatch import FacePatchSettings
    from craft.detectors.onnxprep import prepare_onnx
    from craft.detectors.patchbatch import craft_face_patch
    from craft.detectors.photos import lfw_faces
    from printouts.sheets import print_batch

    out = tmp_path_factory.mktemp("sticker") / "batch"
    craft_face_patch(out, lfw_faces(0, 2), FacePatchSettings(steps=3, patch_px=24, place="box"), seed=0)
    print_batch(out, patch_mm=50.0)
    prepare_onnx(get_detector("centerface"), model_path(out, "centerface"))
    return out


def test_the_sticker_is_optimised_placed_by_the_face_and_replays(stickered: Path) -> None:
    from craft.patchjob import replay_item

    batch = load_batch(stickered)
    assert len(batch.items) == 2
    rec = json.loads((stickered / "patches" / "patch-face-square-s50.json").read_text())
    assert len(rec["losses"]) == 3 and rec["losses"][-1] < rec["losses"][0]  # the vanishing energy goes down
    assert rec["train_items"] == [it.id for it in batch.items]
    for it in batch.items:
        assert it.attack == "patch" and it.eps == 255.0 and it.truth is not None
        (box,) = Detections.from_json(it.truth.boxes).boxes  # one face per LFW crop
        pl = it.params["patch"]["placement"]
        assert pl["cx"] == pytest.approx((box[0] + box[2]) / 2, abs=0.1)
        assert pl["cy"] == pytest.approx(box[1] + 0.2 * (box[3] - box[1]), abs=0.1)
        assert pl["side"] == pytest.approx(0.5 * (box[2] - box[0]), abs=0.1)
        saved = cv2.cvtColor(cv2.imread(str(stickered / it.adv.path)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(replay_item(stickered, it), saved)  # the recorded placement replays the PNG
    (card,) = patch_cards(load_layout(stickered))
    assert card.image == "patches/patch-face-square-s50.png" and card.size_mm == 50.0 and card.target is None


def test_a_face_source_refuses_the_patch_with_input_diversity() -> None:
    from craft.config import CraftConfig

    with pytest.raises(UserError, match=r"--attack patch\+di"):
        CraftConfig(source=["mtcnn"], attacks=["patch+di"])


def test_scene_mode_with_a_face_detector_records_each_frame_with_and_without_the_card(
    stickered: Path, tmp_path: Path
) -> None:
    from craft.detectors.photos import face_photos

    (card,) = patch_cards(load_layout(stickered))
    ppm = 4.0
    page = render_pdf_page(stickered / "sheets.pdf", card.page, ppm)
    x, y, w, h = (round(v * ppm) for v in card.cut_mm)
    cut = page[y : y + h, x : x + w]
    face = next(p.rgb for p in face_photos() if p.key == "skimage-astronaut")
    frame = cv2.cvtColor(cv2.resize(face, (720, 720)), cv2.COLOR_RGB2BGR)
    frame = cv2.copyMakeBorder(frame, 0, 0, 280, 280, cv2.BORDER_CONSTANT, value=(200, 200, 200))  # 1280 x 720
    held = frame.copy()
    held[700 - h : 700, 1260 - w : 1260] = cut  # the card held up in the corner, beside the face
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "f0.png"), frame)
    cv2.imwrite(str(photos / "f1.png"), held)
    target = FaceTarget(model_path(stickered, "centerface"), threads=1)
    db = run_scene(stickered, PhotoSource(photos), target, session_id="scene-face")
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT patch_present, patch_markers, label, top1, top1_prob FROM scene_observations ORDER BY frame_idx"
    ).fetchall()
    con.close()
    assert [r[0] for r in rows] == [0, 1] and rows[1][1] == 4 and {r[2] for r in rows} == {1}
    assert rows[0][3] == 1 and rows[0][4] >= 0.5  # CenterFace finds the astronaut without the card
    got = {r["group"]: r for r in scene_figures([db])}
    assert got["without patch"]["frames"] == 1 and got["with patch"]["frames"] == 1
    assert got["with patch"]["fooling_rate"].num == int(rows[1][3] == 0)  # hidden: no face found
    assert got["without patch"]["fooling_rate"].num == 0 and got["with patch"]["target_rate"].n == 0
    from analysis.report import make_report

    make_report(stickered, formats=("csv",))  # the face report: the scene table, and no tile session made of it
    scene = json.loads((stickered / "report" / "scene.json").read_text())["rows"]
    assert {r["group"]: r["frames"] for r in scene}["with patch"] == 1
    assert json.loads((stickered / "report" / "faces_recall.json").read_text())["rows"] == []
    with pytest.raises(UserError, match="--scene"):  # a classifier batch with a face detector: one line
        from printouts.sheets import print_batch
        from testkit.batch import write_batch

        write_batch(tmp_path / "cls", n_items=1, size=32)
        print_batch(tmp_path / "cls")
        run_scene(tmp_path / "cls", PhotoSource(photos), target, session_id="x")
