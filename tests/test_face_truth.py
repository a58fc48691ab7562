"""Truth faces from a labels file (``craft --truth FILE``, issue #25): the file's checks, the batch that records it,
and the face report that counts recall against it (real MTCNN, real CenterFace, the simulated camera)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app import main
from contracts.detection import Detections, found
from contracts.errors import UserError
from contracts.facetruth import MAX_BYTES, read_face_truth
from contracts.manifest import load_batch
from craft.detectors.job import craft_faces, truth_names
from craft.detectors.photos import face_photos, lfw_faces, photo_candidates

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = Path(__file__).parent / "data" / "face-labels.json"


def _write(tmp_path: Path, text: str, name: str = "labels.json") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[1, 2]", 'expected {"faces"'),
        ('{"faces": {}, "extra": 1}', "got faces, extra"),
        ('{"faces": {"lfw-000": [[1, 2, 3]]}}', "faces.lfw-000[0]: expected a box"),
        ('{"faces": {"lfw-000": [[1, 2, NaN, 4]]}}', "not a readable JSON labels file (NaN is not a finite number"),
        ('{"faces": {"lfw-000": [[1, 2, 1e999, 4]]}}', "faces.lfw-000[0]: expected a box"),
        ('{"faces": {"lfw-000": [[1, 2, true, 4]]}}', "faces.lfw-000[0]: expected a box"),
        ('{"faces": {"lfw-000": [[10, 2, 5, 4]]}}', "faces.lfw-000[0]: [10, 2, 5, 4] must have 0 <= x0 < x1"),
        ('{"faces": {"lfw-000": [[-1, 2, 5, 4]]}}', "must have 0 <= x0 < x1"),
        ('{"faces": {"lfw-000": {"box": 1}}}', "faces.lfw-000: expected a list"),
        ('{"faces": {"": []}}', "photo names must be printable"),
        ('{"faces": {}}', "faces is empty"),
        ('{"faces": ', "not a readable JSON labels file"),
        ("[" * 100_000, "not a readable JSON labels file"),
    ],
)
def test_a_hostile_labels_file_is_one_line_naming_the_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(UserError) as e:
        read_face_truth(_write(tmp_path, text))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"--truth {tmp_path / 'labels.json'}: ") and needle in msg, msg


def test_size_limits_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="larger than 4 MB"):
        read_face_truth(_write(tmp_path, " " * (MAX_BYTES + 1)))
    many = json.dumps({"faces": {"lfw-000": [[0, 0, 1, 1]] * 1001}})
    with pytest.raises(UserError, match=r"faces\.lfw-000: expected a list of at most 1000 boxes"):
        read_face_truth(_write(tmp_path, many))
    with pytest.raises(UserError, match="no such file"):
        read_face_truth(tmp_path / "nope.json")


def test_names_are_photos_of_images_and_boxes_lie_inside_them(tmp_path: Path) -> None:
    truth = read_face_truth(LABELS)
    assert truth.record()["faces"] == 5 and truth.record()["source"] == "labels" and len(truth.sha256) == 64
    cand = photo_candidates("samples")
    photos = [p for p in face_photos(lfw=2)]
    assert truth_names(truth, photos, cand, "--images samples")["lfw-001"] == "lfw-001"
    with pytest.raises(UserError, match=r"no entry for photo lfw-002; add \"lfw-002\""):
        truth_names(truth, lfw_faces(0, 3), cand, "--images samples")
    typo = read_face_truth(_write(tmp_path, '{"faces": {"skimage-astronot": []}}'))
    with pytest.raises(UserError, match=r"faces\.skimage-astronot: no such photo in --images samples; did you mean"):
        truth_names(typo, photos, cand, "--images samples")
    # a folder's photo may be named by its file name
    by_file = read_face_truth(_write(tmp_path, '{"faces": {"me.png": [[1, 1, 5, 5]]}}'))
    assert by_file.match([("user-me", "/x/me.png")], "--images x") == {"user-me": "me.png"}
    # Grace Hopper is 512 x 600: the centre square drops 44 rows above; a box mostly above the square is dropped
    hop = read_face_truth(_write(tmp_path, '{"faces": {"h": [[172, 118, 358, 342], [10, 0, 60, 60], [0, 0, 9, 700]]}}'))
    with pytest.raises(UserError, match=r"faces\.h\[2\]: \[0\.0, 0\.0, 9\.0, 700\.0\] lies outside the photo"):
        hop.in_square("h", (512, 600))
    two = read_face_truth(_write(tmp_path, '{"faces": {"h": [[172, 118, 358, 342], [10, 0, 60, 120]]}}'))
    boxes, dropped = two.in_square("h", (512, 600))
    assert dropped == 0 and boxes.tolist() == [[172, 74, 358, 298], [10, 0, 60, 76]]  # 76 of its 120 rows inside
    edge = read_face_truth(_write(tmp_path, '{"faces": {"h": [[10, 0, 60, 50]]}}'))
    assert edge.in_square("h", (512, 600))[1] == 1  # 6 of its 50 rows are inside the square


def test_the_sticker_is_placed_by_the_largest_labelled_face(tmp_path: Path) -> None:
    from craft.detectors.facepatch import FacePatchSettings, face_placement
    from craft.detectors.patchbatch import craft_face_patch

    s = FacePatchSettings(steps=2, patch_px=16, place="box")
    truth = read_face_truth(LABELS)
    batch = craft_face_patch(tmp_path, lfw_faces(0, 2), s, truth=truth, candidates=photo_candidates("samples"))
    labels = json.loads(LABELS.read_text())["faces"]
    for it in batch.items:
        assert it.truth is not None and it.truth.source == "labels" and batch.config["truth"]["file"] == LABELS.name
        box = np.array(labels[it.id.split("-patch")[0]], np.float64)[0]
        assert it.params["patch"]["placement"] == face_placement(box, s).to_dict()


def test_a_classifier_source_refuses_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["craft", "--out", str(tmp_path / "b"), "--truth", str(LABELS)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--truth: true face boxes are for a face-detector source" in err


def test_craft_records_the_labels_and_refuses_unknown_photos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    bad = _write(tmp_path, '{"faces": {"lfw-000": [], "nobody": []}}', "bad.json")
    argv = ["craft", "--out", str(out), "--source", "mtcnn", "--attack", "fgsm", "--eps", "2", "--limit", "2"]
    assert main([*argv, "--truth", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--truth bad.json: faces.nobody: no such photo in --images samples" in err
    assert main([*argv, "--truth", str(LABELS)]) == 0
    assert "2 clean PNGs hold faces labelled in face-labels.json" in " ".join(capsys.readouterr().out.split())
    batch = load_batch(out)
    rec = batch.config["truth"]
    assert (
        rec["source"] == "labels"
        and rec["file"] == "face-labels.json"
        and rec["sha256"] == read_face_truth(LABELS).sha256
    )
    by_key = {it.id: it for it in batch.items}
    hop = by_key["matplotlib-grace-hopper-fgsm-e2"]
    assert hop.truth is not None and hop.truth.source == "labels"
    assert Detections.from_json(hop.truth.boxes).boxes.tolist() == [[172, 74, 358, 298]]  # moved into the square
    assert "mtcnn" in hop.clean.boxes and hop.clean.boxes["mtcnn"] != hop.truth.boxes  # the source's own, kept apart
    assert main([*argv]) == 2  # the same --out without the labels: a different truth
    assert "crafted with truth" in capsys.readouterr().err


def test_the_face_report_counts_recall_against_the_labels(
    tmp_path: Path, capture_and_report_faces: Callable[[Path, str], str]
) -> None:
    from craft.attacks.spec import AttackSettings
    from photoproof import print_sheets

    out = tmp_path / "batch"
    craft_faces(out, lfw_faces(0, 2), "bim", (16.0,), settings=AttackSettings(steps=2), truth=read_face_truth(LABELS),
                candidates=photo_candidates("samples"))  # fmt: skip
    print_sheets(out)
    text = capture_and_report_faces(out, "html,csv")
    assert "truth faces: the labels file face-labels.json" in text and "mtcnn finds" in text
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["truth"]["source"] == "labels" and report["truth"]["file"] == "face-labels.json"
    assert "the labels file face-labels.json" in (out / "report" / "index.html").read_text()
    # recall, digital: recomputed here from the recorded boxes and the labels, not from MTCNN's detections
    labels = json.loads(LABELS.read_text())["faces"]
    con = sqlite3.connect(out / "captures" / "sim.sqlite")
    try:
        digital = dict(
            ((i, r), Detections.from_json(json.loads(b)).boxes)
            for i, r, b in con.execute("SELECT item_id, role, boxes FROM digital_boxes")
        )
    finally:
        con.close()
    rows = {
        (row["image"], row["seen"]): row
        for row in json.loads((out / "report" / "faces_recall.json").read_text())["rows"]
    }
    for role in ("clean", "adv"):
        hits = [
            int(found(np.array(labels[it.split("-bim")[0]], np.float64), digital[(it, role)], 0.5).sum())
            for it in ("lfw-000-bim-e16", "lfw-001-bim-e16")
        ]
        assert (rows[(role, "digital")]["k"], rows[(role, "digital")]["n"]) == (sum(hits), 2)
