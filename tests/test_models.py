"""The zoo loads real weights, and the ONNX export agrees with torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from contracts.preprocess import PreprocessSpec
from craft.export import export_onnx
from craft.images import load_rgb, sample_photos
from craft.zoo import ZOO, load_model, weights_sha256


@pytest.fixture(scope="session")
def lite2_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx("lite2", tmp_path_factory.mktemp("onnx") / "lite2.onnx")


@pytest.mark.parametrize("name", list(ZOO))
def test_models_load_with_their_specs(name: str) -> None:
    model = load_model(name)
    s = ZOO[name].spec.input_size
    assert s == {"lite0": 224, "lite1": 240, "lite2": 260}[name]
    assert not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        out = model(torch.full((1, 3, s, s), 127.0))
    assert out.shape == (1, 1000)
    assert len(weights_sha256(name)) == 64


def test_onnx_metadata_holds_spec_and_classes(lite2_onnx: Path) -> None:
    meta = ort.InferenceSession(str(lite2_onnx), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert PreprocessSpec.from_json(meta["photoproof.preprocess"]) == ZOO["lite2"].spec
    classes = json.loads(meta["photoproof.classes"])
    assert len(classes) == 1000 and classes[1] == "goldfish"
    assert meta["photoproof.model"] == "lite2"


def test_onnx_matches_torch_on_sample_photos(lite2_onnx: Path) -> None:
    spec = ZOO["lite2"].spec
    photos = sample_photos()
    assert len([p for p in photos if p.origin == "foolbox"]) == 20
    crops = np.stack([spec.resize_center_crop(load_rgb(p)) for p in photos])
    sess = ort.InferenceSession(str(lite2_onnx), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(None, {"input": spec.normalize(crops)})[0]
    with torch.no_grad():
        torch_logits = load_model("lite2")(torch.from_numpy(crops).permute(0, 3, 1, 2).float()).numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-3
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()
    # The real weights are real: most of foolbox's labelled photos are classified right.
    labels = np.array([p.label for p in photos if p.label is not None])
    assert (torch_logits[: len(labels)].argmax(1) == labels).mean() >= 0.7
