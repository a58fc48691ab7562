"""A user's own torch face detector as the source (``--source module:factory``, issue #25): the protocol, the
ε-bounded vanishing attacks and the sticker on it, the batch it writes, and the refusals (real PNet weights)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app import main
from contracts.detection import Detections, found
from contracts.errors import UserError
from contracts.images import read_item_image
from contracts.manifest import load_batch
from craft.attacks import ATTACKS
from craft.detectors.job import craft_faces, square
from craft.detectors.photos import face_photos, lfw_faces
from craft.detectors.userdet import UserDetector
from craft.detectors.vanish import Vanish, labels_for
from craft.sources import is_face_source, load_face_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REF = "pnet_detector:make_detector"


@pytest.fixture(scope="module")
def det() -> UserDetector:
    d = load_face_source(REF)
    assert isinstance(d, UserDetector)
    return d


def _x(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb, np.uint8, copy=True)).permute(2, 0, 1)[None].float()


def test_the_protocol_is_read_and_the_detector_finds_the_faces(det: UserDetector) -> None:
    assert is_face_source(REF) and not is_face_source("lite0")
    assert det.spec.input_size == 96 and det.spec.mean == (127.5,) * 3 and det.spec.score_threshold == 0.95
    rec = det.record(REF)
    assert (rec.kind, rec.ref, rec.arch, rec.role) == ("detector", REF, "PNetFaces", "source")
    assert len(rec.weights_sha256) == 64 and rec.preprocess["decoder"] == "torch-factory"
    labelled = json.loads((Path(__file__).parent / "data" / "face-labels.json").read_text())["faces"]
    for p in [*face_photos()[:2], *lfw_faces(0, 2)]:  # boxes in the photo's pixels; these are square or cropped below
        img = square(p.rgb)
        off = (p.rgb.shape[0] - img.shape[0]) // 2
        truth = np.array(labelled[p.key], np.float64) - [0, off, 0, off]
        d = det.detect(_x(img))[0]
        assert found(truth, d.boxes, 0.5).all(), (p.key, d.boxes, truth)  # on the 96-pixel input, scaled back


@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd"])
def test_eps_attacks_make_the_faces_vanish_inside_the_ball(name: str, det: UserDetector) -> None:
    x = _x(lfw_faces(0, 1)[0].rgb)
    assert len(det.detect(x)[0]) == 1
    res = ATTACKS[name]().attack(Vanish(det), x, labels_for(x), 16.0, generator=torch.Generator().manual_seed(0))
    d = res.adv - x
    assert d.abs().max() <= 16 and torch.equal(res.adv, res.adv.round()) and d.abs().sum() > 0
    with torch.no_grad():
        assert det.energy(res.adv).item() < 0.1 * det.energy(x).item()
    assert len(det.detect(res.adv)[0]) == 0 and Vanish(det)(res.adv).argmax(dim=1).tolist() == [0]


def test_a_batch_crafted_on_it_records_the_detector_and_its_boxes(tmp_path: Path, det: UserDetector) -> None:
    batch = craft_faces(tmp_path, lfw_faces(0, 2), "pgd", (16.0,), mtcnn=det)
    again = load_batch(tmp_path)
    (m,) = again.models
    assert (m.name, m.kind, m.ref, m.preprocess["input_size"]) == (REF, "detector", REF, 96)
    assert again.config["source"] == [REF] and again.config["truth"] is None
    for it in again.items:
        assert it.truth is not None and it.truth.source == REF and it.clean.boxes[REF] == it.truth.boxes
        assert len(it.truth.boxes) == 1 and it.adv.boxes[REF] == []  # pgd ε 16 hid every face, on the saved PNG
        adv = read_item_image(tmp_path, it, "adv")
        assert len(det.detect(_x(adv))[0]) == 0
    before = (tmp_path / "batch.json").read_text()
    craft_faces(tmp_path, lfw_faces(0, 2), "pgd", (16.0,), mtcnn=det)  # resumes: nothing to redo
    assert json.loads((tmp_path / "batch.json").read_text())["items"] == json.loads(before)["items"]
    with pytest.raises(UserError, match="crafted with source"):
        craft_faces(tmp_path, lfw_faces(0, 2), "pgd", (16.0,))  # MTCNN into a batch of the user's detector
    assert len(batch.items) == 2


def test_the_sticker_is_optimised_on_it(tmp_path: Path, det: UserDetector) -> None:
    from craft.detectors.facepatch import FacePatchSettings
    from craft.detectors.patchbatch import craft_face_patch

    s = FacePatchSettings(side_frac=0.6, steps=8, patch_px=32, place="box")  # it gives no landmarks
    batch = craft_face_patch(tmp_path, lfw_faces(0, 2), s, seed=0, mtcnn=det)
    meta = json.loads(next((tmp_path / "patches").glob("*.json")).read_text())
    assert len(batch.items) == 2 and batch.models[0].name == REF and meta["losses"][-1] < meta["losses"][0]
    for it in batch.items:
        assert REF in it.adv.boxes and it.params["patch"]["placement"]["side"] > 0
    with pytest.raises(ValueError, match="gives no landmarks.*--patch-place box"):  # asked for by the eyes: refused
        craft_face_patch(tmp_path / "lm", lfw_faces(0, 2), replace(s, place="landmarks"), seed=0, mtcnn=det)


def test_the_cli_crafts_on_it_and_refuses_what_breaks_the_protocol(
    tmp_path: Path, one_line_error: Callable[..., None]
) -> None:
    out = ["craft", "--out", str(tmp_path / "b"), "--limit", "1", "--attack", "pgd"]
    src = "--source"
    one_line_error([*out, src, "no_such_module_xyz:make"], "--source no_such_module_xyz:make", "cannot import")
    one_line_error([*out, src, "pnet_detector:NOT_CALLABLE"], "is not callable")
    one_line_error([*out, src, "pnet_detector:make_a_string"], "returned str, not a torch nn.Module")
    one_line_error([*out, src, "pnet_detector:make_classifier_shaped"], "forward must return (scores, boxes)")
    one_line_error([*out, src, "pnet_detector:make_detached"], "no gradient to the input")
    one_line_error([*out, src, "pnet_detector:make_no_threshold"], "has no score_threshold")
    one_line_error([*out, src, f"{REF},lite0"], "not in an ensemble")
    one_line_error([*out, src, REF, "--target", "ll"], "--target")
    assert main([*out, src, REF, "--eps", "16"]) == 0
    (it,) = load_batch(tmp_path / "b").items
    assert it.id == "skimage-astronaut-pgd-e16" and it.truth is not None and it.truth.source == REF
    assert len(Detections.from_json(it.truth.boxes)) >= 1 and it.adv.boxes[REF] == []


def test_its_batch_is_printed_captured_and_reported_like_an_mtcnn_batch(
    tmp_path: Path, det: UserDetector, capture_and_report_faces: Callable[[Path, str], str]
) -> None:
    from craft.attacks.spec import AttackSettings
    from photoproof import print_sheets

    out = tmp_path / "batch"
    craft_faces(out, lfw_faces(0, 2), "bim", (16.0,), settings=AttackSettings(steps=3), mtcnn=det)
    print_sheets(out)
    text = capture_and_report_faces(out, "csv")
    assert f"truth faces: {REF}'s own detections" in text and f"{REF} (white-box) bim ε=16: hides 1.00" in text
    rows = json.loads((out / "report" / "faces_transfer.json").read_text())["rows"]
    assert {row["detector"] for row in rows} == {f"{REF} (source, white-box)", "centerface"}


def test_the_python_api_crafts_on_it_with_truth_from_a_labels_file(tmp_path: Path) -> None:
    import photoproof as pp

    labels = Path(__file__).parent / "data" / "face-labels.json"
    batch = pp.craft(REF, out=tmp_path / "b", attack="pgd", eps=16, limit=2, truth=str(labels))
    assert [m.ref for m in batch.models] == [REF] and batch.config["truth"]["file"] == "face-labels.json"
    assert [it.id for it in batch.items] == ["skimage-astronaut-pgd-e16", "matplotlib-grace-hopper-pgd-e16"]
    for it in batch.items:
        assert it.truth is not None and it.truth.source == "labels" and len(it.truth.boxes) == 1
        assert it.adv.boxes[REF] == []  # pgd ε 16 hid every face it found
