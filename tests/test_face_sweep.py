"""``photoproof sweep`` on a face batch with CenterFace, its stability baseline, and the face report's tables.

The batch is the suite's ``face_batch`` (two LFW crops, bim ε 16 on the real MTCNN; CenterFace prepared), copied;
the sweep runs the real CenterFace in onnxruntime on every transformed PNG.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from analysis.faces_sweep import (
    NOT_TRANSFER_NOISE,
    TRANSFER,
    load_face_sweeps,
    stability,
    stability_verdict,
)
from capture.faces import OnnxFaceDetector
from channel.controls import sign_noise
from contracts.detection import found
from contracts.facesweep import face_sweep_path, read_face_sweep
from contracts.images import read_item_image
from contracts.manifest import load_batch
from contracts.verdict import clustered_interval
from testkit.cli import assert_one_line_error, run_cli

TRANSFORMS = "blur,perspective,resolution,jpeg"


@pytest.fixture(scope="module")
def swept(face_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the face batch swept with CenterFace (4 transforms, 2 levels) and reported."""
    out = tmp_path_factory.mktemp("facesweep") / "batch"
    shutil.copytree(face_batch, out)
    r = run_cli("sweep", str(out), "--model", "centerface", "--transforms", TRANSFORMS, "--levels", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "stability baseline, centerface bim ε=16" in " ".join(r.stdout.split())
    r = run_cli("report", str(out), "--format", "html,csv")
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_the_identity_strength_reproduces_the_digital_detections(swept: Path) -> None:
    doc = read_face_sweep(face_sweep_path(swept, "centerface"))
    batch = load_batch(swept)
    assert doc.header["model"]["name"] == "centerface" and set(doc.header["transforms"]) == set(TRANSFORMS.split(","))
    digital = {(r.item_id, r.role): r.found for r in doc.digital}
    assert set(digital) == {(it.id, role) for it in batch.items for role in ("clean", "adv")}
    for r in doc.rows:  # blur σ 0 and a 0° tilt change nothing: the same faces found, truth in place
        if (r.transform, r.strength) in (("blur", 0.0), ("perspective", 0.0)):
            assert r.found == digital[(r.item_id, r.role)], r
    # the digital rows are CenterFace's own finds on the saved PNGs, matched to the truth at IoU 0.5
    det = OnnxFaceDetector(swept / "models" / "centerface.onnx")
    for it in batch.items:
        assert it.truth is not None
        truth = np.array([b["box"] for b in it.truth.boxes], np.float32)
        for role in ("clean", "adv"):
            hit = found(truth, det.detect(read_item_image(swept, it, role)).boxes)
            assert tuple(bool(v) for v in hit) == digital[(it.id, role)]


def test_resampled_transforms_see_the_224_pixel_crop_with_the_truth_scaled(swept: Path) -> None:
    doc = read_face_sweep(face_sweep_path(swept, "centerface"))
    sharp = [r for r in doc.rows if r.transform == "resolution" and r.strength == 2.0 and r.role == "clean"]
    assert sharp and all(r.found == (True,) for r in sharp)  # twice the crop's pixels: every clean face still found
    boxes = [b["box"] for r in sharp for b in r.boxes]
    assert boxes and max(max(b) for b in boxes) <= 224.5  # boxes in the crop's pixels, not the 270-pixel PNG's


def test_the_noise_control_spends_exactly_the_items_budget(swept: Path) -> None:
    doc = read_face_sweep(face_sweep_path(swept, "centerface"))
    batch = load_batch(swept)
    noise = [r for r in doc.control if r.transform == "noise"]
    assert {r.item_id for r in noise} == {it.id for it in batch.items} and all(r.eps == 16.0 for r in noise)
    assert {r.transform for r in doc.control} == {"noise", "resolution", "blur", "jpeg"}
    img = read_item_image(swept, batch.items[0], "clean")
    d = sign_noise(img, 16, np.random.default_rng(0)).astype(int) - img.astype(int)
    inside = (img >= 16) & (img <= 239)
    assert np.all(np.abs(d[inside]) == 16) and abs(float((d[inside] > 0).mean()) - 0.5) < 0.02


def test_the_report_tables_the_sweep_and_the_stability_verdict(swept: Path) -> None:
    rows = json.loads((swept / "report" / "faces_sweep.json").read_text())["rows"]
    assert {r["transform"] for r in rows} == {"none", *TRANSFORMS.split(",")}
    none = next(r for r in rows if r["transform"] == "none")
    assert "photos)" in none["recall_clean"] and "[" in none["hiding"] or none["hiding"] == "n/a"
    stab = json.loads((swept / "report" / "faces_stability.json").read_text())["rows"]
    assert len(stab) == 1 and stab[0]["target"] == "centerface" and stab[0]["verdict"]
    batch = load_batch(swept)
    (sweep,) = load_face_sweeps(swept, batch)[0]
    (s,) = stability(sweep, batch)
    assert s.adversarial.n == sum(1 for r in sweep.digital if r.role == "clean" for f in r.found if f)
    assert stab[0]["verdict"] == s.verdict
    assert (swept / "report" / "faces_stability.csv").is_file()
    from analysis.faces_api import face_summary

    api = [r for r in face_summary(swept) if r["measure"] == "stability"]
    assert {r["image"] for r in api} == {"adv", "noise", "resampling"} and {r["figure_is"] for r in api} == {s.verdict}
    assert next(r for r in api if r["image"] == "adv")["n"] == s.adversarial.n


def test_the_verdict_says_not_transfer_when_noise_of_the_same_budget_hides_as_much() -> None:
    attack = clustered_interval([(5, 5), (4, 5), (5, 5), (5, 5)])  # 19/20
    noise = clustered_interval([(5, 5), (5, 5), (4, 5), (5, 5)])  # as much: YuNet on the soft LFW crops
    none = clustered_interval([(0, 5), (0, 5), (0, 5), (0, 5)])
    assert stability_verdict(attack, noise, none) == NOT_TRANSFER_NOISE
    strong = clustered_interval([(9, 10)] * 8)
    assert stability_verdict(strong, none, none) == TRANSFER
    assert stability_verdict(clustered_interval([(1, 10)] * 3), clustered_interval([(0, 10)] * 3), none).startswith(
        "inconclusive"
    )


def test_nonsense_combinations_are_refused_in_one_line(face_batch: Path, synthetic_batch: Callable[..., Path]) -> None:
    b = str(face_batch)
    assert_one_line_error(run_cli("sweep", b), "--model", "centerface")
    assert_one_line_error(run_cli("sweep", b, "--model", "mtcnn"), "torch detector")
    assert_one_line_error(run_cli("sweep", b, "--model", "lite0"), "not a face detector")
    assert_one_line_error(run_cli("sweep", b, "--model", "centerface", "--label-map", "x.csv"), "describe classifiers")
    assert_one_line_error(run_cli("sweep", b, "--model", "centerface", "--transforms", "warp"), "--transforms", "warp")
    classifier = synthetic_batch()
    onnx = str(face_batch / "models" / "centerface.onnx")
    assert_one_line_error(run_cli("sweep", str(classifier), "--model", onnx), "a face detector", "classifier batch")


def test_a_hostile_face_sweep_file_is_refused_naming_it(tmp_path: Path) -> None:
    from contracts.errors import UserError

    path = face_sweep_path(tmp_path, "../evil name")
    assert path.parent == tmp_path and path.name == "sweep-faces-evil_name.json"
    for text, needle in (
        ("{not json", "corrupt JSON"),
        ('{"schema": "photoproof.sweep", "schema_version": 1}', "is not photoproof.facesweep"),
        ('{"schema": "photoproof.facesweep", "schema_version": 1, "rows": [{"transform": "blur"}]}', "rows row 0"),
        ('{"schema": "photoproof.facesweep", "schema_version": 1, "digital": [{"item_id": "a", "role": "adv", '
         '"found": [2]}]}', "digital row 0"),
    ):  # fmt: skip
        path.write_text(text)
        with pytest.raises(UserError, match=needle) as e:
            read_face_sweep(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
