"""A user's own face detector: an ``.onnx`` with a decoder spec beside it, checked like every file from outside."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from capture.faces import OnnxFaceDetector
from capture.facetarget import FaceTarget, is_detector_file
from contracts.detectorfile import read_detector_sidecar
from contracts.errors import UserError
from contracts.images import read_item_image
from contracts.manifest import load_batch


@pytest.fixture(scope="module")
def own(face_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CenterFace as a user would bring it: the network without Photoproof's metadata."""
    m = onnx.load(str(face_batch / "models" / "centerface.onnx"))
    del m.metadata_props[:]
    out = tmp_path_factory.mktemp("own") / "mine.onnx"
    onnx.save(m, str(out))
    return out


def test_an_onnx_with_a_decoder_spec_runs_as_the_zoo_detector_does(own: Path, face_batch: Path) -> None:
    assert not is_detector_file(own)
    with pytest.raises(ValueError, match="mine.detector.toml"):
        OnnxFaceDetector(own)
    own.with_name("mine.detector.toml").write_text('decoder = "centerface"\nname = "my-face"\nscore = 0.5\n')
    assert is_detector_file(own)
    zoo = OnnxFaceDetector(face_batch / "models" / "centerface.onnx")
    mine = FaceTarget(own)
    assert mine.name == "my-face" and mine.detector.spec.decoder == "centerface"
    it = load_batch(face_batch).items[0]
    img = read_item_image(face_batch, it, "clean")
    a, b = zoo.detect(img), mine.detector.detect(img)
    assert len(a) > 0 and np.allclose(a.boxes, b.boxes) and np.allclose(a.scores, b.scores)
    # the normalisation is applied: a std of 2 halves the input, and the detections move
    own.with_name("mine.detector.toml").write_text('decoder = "centerface"\nstd = [2, 2, 2]\nmean = [0, 0, 0]\n')
    c = OnnxFaceDetector(own).detect(img)
    assert len(c) != len(a) or not np.allclose(c.scores, a.scores)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('decoder = "ssd"', "decoder must be one of centerface, yunet"),
        ('decoder = "centerface"\nwhat = 1', "unknown key(s) what"),
        ('decoder = "yunet"\ninput_size = 33', "input_size must be 0 or a multiple of 32"),
        ('decoder = "centerface"\nstd = [1, 0, 1]', "std must be three positive numbers"),
        ('decoder = "centerface"\nmean = [1, 2]', "mean must be three finite numbers"),
        ('decoder = "centerface"\nscore = nan', "score must be a number in 0..1"),
        ('decoder = "centerface"\nname = "a\\u0007b"', "name must be printable"),
        ('decoder = "centerface"\nlayout = "CHWN"', "layout must be one of NCHW, NHWC"),
        ("decoder = [", "not a readable decoder spec"),
        ("x" * 70_000, "larger than 64000 bytes"),
    ],
)
def test_a_hostile_decoder_spec_is_one_line_naming_the_file(own: Path, tmp_path: Path, text: str, needle: str) -> None:
    side = tmp_path / "mine.detector.toml"
    side.write_text(text)
    with pytest.raises(UserError, match="mine.detector.toml") as e:
        read_detector_sidecar(side, own)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_spec_that_does_not_fit_the_network_is_refused(own: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.onnx"
    shutil.copy(own, mine)
    mine.with_name("mine.detector.json").write_text('{"decoder": "yunet", "input_size": 640}')
    with pytest.raises(UserError, match="the yunet decoding reads outputs cls_8"):
        FaceTarget(mine)
