"""The face sticker placed by MTCNN's landmarks (issue #25): the real MTCNN on a real face photo finds the five
points, the sticker lands above the eyes and between them, turns with the head, and the batch records where."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from contracts.errors import UserError
from contracts.facesticker import sticker_of
from contracts.manifest import load_batch
from craft.attacks.patch import paste_uint8
from craft.detectors.facepatch import FACE_W_PER_EYES, RISE_PER_EYES, FacePatchSettings, face_placement, largest_index
from craft.detectors.measure import to_tensor
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import face_photos

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), centre-cropped to a square as craft does."""
    from craft.detectors.job import square

    (p,) = [p for p in face_photos() if p.key == "skimage-astronaut"]
    return np.array(square(p.rgb))


def _face(mtcnn: MTCNN, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = mtcnn.detect(to_tensor(img))[0]
    k = largest_index(d.boxes)
    assert k is not None and d.landmarks is not None
    return d.boxes[k].astype(np.float64), d.landmarks[k].astype(np.float64).reshape(5, 2)


def _rotated(img: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` turned ``deg`` counter-clockwise on screen about its centre (edges replicated), and the 2x3 map."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), m


def test_mtcnn_finds_the_five_landmarks_where_a_face_has_them(mtcnn: MTCNN, astronaut: np.ndarray) -> None:
    box, lm = _face(mtcnn, astronaut)
    (exl, eyl), (exr, eyr), (nx, ny), (mlx, mly), (mrx, mry) = lm
    assert box[0] < exl < nx < exr < box[2]  # the eye on the image's left, the nose, the other eye
    assert box[1] < max(eyl, eyr) < ny < min(mly, mry) < box[3]  # eyes above the nose above the mouth
    assert mlx < mrx and 0.25 < (exr - exl) / (box[2] - box[0]) < 0.65


def test_the_landmark_sticker_sits_above_the_eyes_between_them(mtcnn: MTCNN, astronaut: np.ndarray) -> None:
    box, lm = _face(mtcnn, astronaut)
    s = FacePatchSettings(side_frac=0.5, place="landmarks")
    pl = face_placement(box, s, None, lm.reshape(-1))
    el, er, nose = lm[0], lm[1], lm[2]
    d = float(np.linalg.norm(er - el))
    along = (er - el) / d
    up = np.array([along[1], -along[0]])
    rel = np.array([pl.cx, pl.cy]) - (el + er) / 2
    assert abs(float(rel @ along)) < 1e-6 and float(rel @ up) == pytest.approx(RISE_PER_EYES * d)
    assert pl.side == pytest.approx(0.5 * FACE_W_PER_EYES * d)
    assert pl.angle_deg == pytest.approx(math.degrees(math.atan2(er[1] - el[1], er[0] - el[0])))
    pasted = paste_uint8(astronaut, np.full((16, 16, 3), MAGENTA, np.uint8), "square", pl)
    on = np.all(pasted == MAGENTA, axis=2)
    mid = (el + er) / 2
    for point, covered in (
        (mid + 0.55 * d * up, True),  # the forehead just above the eyes' midpoint
        (mid + 0.55 * d * up + 0.4 * d * along, True),
        (mid + 1.3 * d * up, False),  # above its top edge
        (nose, False),
        (lm[3], False),  # the mouth's corners
        (lm[4], False),
    ):
        x, y = (int(round(v)) for v in point)
        assert bool(on[y, x]) is covered, (point, covered)
    assert face_placement(box, FacePatchSettings(place="box")).angle_deg == 0.0


@pytest.mark.parametrize("deg", [20.0, -25.0])
def test_the_sticker_turns_with_the_head(mtcnn: MTCNN, astronaut: np.ndarray, deg: float) -> None:
    box, lm = _face(mtcnn, astronaut)
    s = FacePatchSettings(side_frac=0.5, place="landmarks")
    upright = face_placement(box, s, None, lm.reshape(-1))
    turned, m = _rotated(astronaut, deg)
    box2, lm2 = _face(mtcnn, turned)
    pl = face_placement(box2, s, None, lm2.reshape(-1))
    assert pl.angle_deg == pytest.approx(upright.angle_deg - deg, abs=4.0)  # on screen counter-clockwise: minus
    moved = m @ np.array([upright.cx, upright.cy, 1.0])  # where the upright sticker's centre went
    eyes = pl.side / (0.5 * FACE_W_PER_EYES)  # the eye distance
    assert math.hypot(pl.cx - moved[0], pl.cy - moved[1]) < 0.15 * eyes  # it follows the face
    assert pl.side == pytest.approx(upright.side, rel=0.12)
    pasted = paste_uint8(turned, np.full((16, 16, 3), MAGENTA, np.uint8), "square", pl)
    pts = np.argwhere(np.all(pasted == MAGENTA, axis=2))[:, ::-1].astype(np.float32)
    (_, _), (_, _), rect = cv2.minAreaRect(pts)
    assert min(abs((rect - pl.angle_deg + 45) % 90 - 45), 90) < 3.0  # the pasted square is turned by that angle
    assert face_placement(box2, FacePatchSettings(place="box")).angle_deg == 0.0  # the box placement is not


def test_the_batch_records_the_landmark_placement_and_replays_it(tmp_path: Path, mtcnn: MTCNN) -> None:
    from craft.detectors.patchbatch import craft_face_patch
    from craft.detectors.photos import lfw_faces
    from craft.patchjob import replay_item

    s = FacePatchSettings(steps=2, patch_px=16, place="landmarks")
    batch = craft_face_patch(tmp_path, lfw_faces(0, 2), s, seed=0, mtcnn=mtcnn)
    assert [it.id for it in batch.items] == ["lfw-000-patch-face-square-s50-lm", "lfw-001-patch-face-square-s50-lm"]
    for it in load_batch(tmp_path).items:
        where = sticker_of(it)
        assert where is not None and where.place == "landmarks" and len(where.landmarks) == 5
        (el, er) = np.array(where.landmarks[:2])
        assert where.angle_deg == pytest.approx(math.degrees(math.atan2(er[1] - el[1], er[0] - el[0])), abs=0.1)
        saved = cv2.cvtColor(cv2.imread(str(tmp_path / it.adv.path)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(replay_item(tmp_path, it), saved)
    rec = json.loads((tmp_path / "patches" / "patch-face-square-s50-lm.json").read_text())
    assert rec["settings"]["place"] == "landmarks"
    from analysis.faces_report import sticker_notes

    assert sticker_notes(load_batch(tmp_path)) == ["face sticker placed by the face's landmarks on 2 item(s)"]


def test_a_malformed_record_and_bad_options_are_refused() -> None:
    from contracts.manifest import Item

    it = Item.from_dict(
        {"id": "x", "source": {"file": "f", "sha256": "0" * 64, "origin": "f"},
         "label": {"index": 1, "name": "face", "source": "clean-prediction"},
         "attack": "patch", "eps": 255, "seed": 0, "clean": {"path": "images/a.png", "sha256": "0" * 64},
         "adv": {"path": "images/b.png", "sha256": "0" * 64},
         "params": {"patch": {"placement": {"cx": 1, "cy": 2, "side": 3, "angle_deg": 0}, "place": "landmarks",
                              "landmarks": [[1, 2], [3, "x"], [5, 6], [7, 8], [9, 10]]}}}
    )  # fmt: skip
    with pytest.raises(ValueError, match="x: params.patch"):
        sticker_of(it)
    from craft.config import CraftConfig

    with pytest.raises(UserError, match="--patch-place 'eyes'"):
        CraftConfig(source=["mtcnn"], attacks=["patch"], patch_place="eyes")
    with pytest.raises(UserError, match="--patch-place: places the face sticker"):
        CraftConfig(source=["lite0"], attacks=["patch"], patch_place="box")
    with pytest.raises(UserError, match="--patch-place: only the face sticker"):
        CraftConfig(source=["mtcnn"], attacks=["pgd"], patch_place="box")
