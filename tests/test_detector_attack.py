"""The vanishing attack on MTCNN through the attack registry, and the face batch it writes (real MTCNN)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from contracts.detection import Detections, found
from contracts.errors import UserError
from contracts.images import read_item_image
from contracts.manifest import load_batch
from craft.attacks import ATTACKS
from craft.detectors.job import craft_faces
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import face_photos, lfw_faces
from craft.detectors.vanish import Vanish, labels_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN()


def _x(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_eps_attack_runs_the_vanishing_objective_inside_the_ball(name: str, mtcnn: MTCNN) -> None:
    x = _x(lfw_faces(0, 1)[0].rgb)
    out = ATTACKS[name](steps=2) if "steps" in ATTACKS[name].options else ATTACKS[name]()
    res = out.attack(Vanish(mtcnn), x, labels_for(x), 8.0, generator=torch.Generator().manual_seed(0))
    d = res.adv - x
    assert d.abs().max() <= 8 and torch.equal(res.adv, res.adv.round()) and d.abs().sum() > 0
    assert res.adv.min() >= 0 and res.adv.max() <= 255
    if name in ("fgsm", "pgd"):
        return  # one step of 8, or pgd's 2.5 eps / 2 steps, overshoots; pgd's default schedule hides (below)
    v = Vanish(mtcnn)
    with torch.no_grad():
        assert v.energy(res.adv).item() < 0.7 * v.energy(x).item()  # the face scores fall (ll: towards "no face")


def test_pgd_at_eps_16_hides_the_face_from_mtcnn(mtcnn: MTCNN) -> None:
    photo = next(p for p in face_photos() if p.key == "skimage-camera")
    x = _x(photo.rgb)
    assert len(mtcnn.detect(x)[0]) == 1
    res = ATTACKS["pgd"]().attack(Vanish(mtcnn), x, labels_for(x), 16.0, generator=torch.Generator().manual_seed(0))
    assert len(mtcnn.detect(res.adv)[0]) == 0
    assert Vanish(mtcnn)(res.adv).argmax(dim=1).tolist() == [0]  # the goal check the lattice step uses


def test_face_batch_records_truth_and_boxes_and_resumes(tmp_path: Path, mtcnn: MTCNN) -> None:
    photos = lfw_faces(0, 2)
    batch = craft_faces(tmp_path, photos, "bim", (4.0,), mtcnn=mtcnn)
    again = load_batch(tmp_path)
    assert [it.id for it in again.items] == ["lfw-000-bim-e4", "lfw-001-bim-e4"]
    assert again.models[0].name == "mtcnn" and again.models[0].kind == "detector"
    for it in again.items:
        assert it.truth is not None and it.truth.source == "mtcnn" and it.label.name == "face"
        truth = Detections.from_json(it.truth.boxes)
        assert it.clean.boxes["mtcnn"] == it.truth.boxes and "mtcnn" in it.adv.boxes
        clean, adv = (read_item_image(tmp_path, it, r).astype(int) for r in ("clean", "adv"))
        assert clean.shape == (270, 270, 3) and np.abs(adv - clean).max() <= 4
        assert len(truth) == 1 and found(truth.boxes, mtcnn.detect(_x(clean.astype(np.uint8)))[0].boxes).all()
    before = (tmp_path / "batch.json").read_text()
    craft_faces(tmp_path, photos, "bim", (4.0,), mtcnn=mtcnn)  # resumes: nothing to redo
    assert json.loads((tmp_path / "batch.json").read_text())["items"] == json.loads(before)["items"]
    assert len(batch.items) == 2


def test_truth_boxes_are_checked_when_read(tmp_path: Path, mtcnn: MTCNN) -> None:
    craft_faces(tmp_path, lfw_faces(0, 1), "fgsm", (2.0,), mtcnn=mtcnn)
    d = json.loads((tmp_path / "batch.json").read_text())
    d["items"][0]["truth"]["boxes"][0]["box"] = [10, 10, 5, 20]
    (tmp_path / "batch.json").write_text(json.dumps(d))
    with pytest.raises(UserError, match=r"items\[0\]\.truth\.boxes\[0\]\.box: expected x0 <= x1"):
        load_batch(tmp_path)


@pytest.mark.slow
def test_craft_cli_with_mtcnn_as_the_source(tmp_path: Path) -> None:
    from testkit.cli import assert_one_line_error, run_cli

    out = tmp_path / "faces"
    r = run_cli("craft", "--out", str(out), "--source", "mtcnn", "--attack", "fgsm", "--eps", "2", "--limit", "1")
    assert r.returncode == 0, r.stderr
    batch = load_batch(out)
    (it,) = batch.items
    assert it.id == "skimage-astronaut-fgsm-e2" and it.truth is not None and len(it.truth.boxes) == 1
    assert batch.config["source"] == ["mtcnn"] and batch.config["attacks"] == ["fgsm"]
    assert "mtcnn finds faces in 1 clean PNGs" in " ".join(r.stdout.split())
    assert_one_line_error(run_cli("craft", "--out", str(out), "--source", "mtcnn,lite0"), "not in an ensemble")
    assert_one_line_error(run_cli("craft", "--out", str(out), "--source", "mtcnn", "--target", "ll"), "--target")


def test_stages_that_measure_classifiers_refuse_a_face_batch(tmp_path: Path, mtcnn: MTCNN) -> None:
    from contracts.manifest import require_classifier_batch

    batch = craft_faces(tmp_path, lfw_faces(0, 1), "fgsm", (2.0,), mtcnn=mtcnn)
    with pytest.raises(UserError, match="face-detector batch.*'photoproof sweep'"):
        require_classifier_batch(batch, tmp_path, "sweep")


@pytest.mark.parametrize("spec", ["bim+di", "pgd+eot"])
def test_input_transforms_run_with_the_vanishing_objective(spec: str, mtcnn: MTCNN) -> None:
    from craft.attacks import AttackSettings, build_attack, parse_spec

    x = _x(lfw_faces(0, 1)[0].rgb)
    attack = build_attack(parse_spec(spec), AttackSettings(steps=2, eot_samples=2))
    res = attack.attack(Vanish(mtcnn), x, labels_for(x), 8.0, generator=torch.Generator().manual_seed(0))
    d = res.adv - x
    assert d.abs().max() <= 8 and d.abs().sum() > 0 and attack.label == spec


def test_hiding_counts_pair_each_detector_with_its_own_clean_finds(mtcnn: MTCNN) -> None:
    from craft.detectors.measure import hide_faces

    photo = lfw_faces(0, 1)[0]
    never: dict[str, Callable[[np.ndarray], Detections]] = {"blind": lambda im: Detections.empty()}
    res = hide_faces(photo, ATTACKS["pgd"](), 16.0, mtcnn, never)
    assert len(res.truth) == 1 and res.counts["mtcnn"] == (1, 1)  # found clean, hidden by pgd
    assert res.counts["blind"] == (0, 0)  # a detector that finds nothing clean has nothing to hide
    assert res.adv is not None and np.abs(res.adv.astype(int) - photo.rgb.astype(int)).max() <= 16
    noise = hide_faces(photo, None, 16.0, mtcnn, {})
    assert noise.counts["mtcnn"] == (0, 1)  # the control: random signs of the same budget hide nothing here
