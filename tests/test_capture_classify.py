"""OnnxClassifier with real onnxruntime on tiny onnx.helper models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.classify import CPU, OnnxClassifier, default_providers
from contracts.errors import UserError
from contracts.labels import read_label_file
from contracts.modelspec import spec_overrides
from contracts.preprocess import PreprocessSpec
from testkit.scenes import identity_model, tiny_classifier


def _crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_photoproof_model_reads_spec_classes_and_name_from_metadata(tmp_path: Path) -> None:
    spec = PreprocessSpec(input_size=48, resize="bilinear", mean=(120.0, 110.0, 100.0), std=(60.0, 60.0, 60.0))
    path = tiny_classifier(tmp_path / "m.onnx", size=48, spec=spec, name="lite9")
    clf = OnnxClassifier(path)
    assert (
        clf.spec == spec and clf.name == "lite9" and clf.class_names[3] == "tiger shark"
    )  # the helper names 1000 classes as ImageNet does
    assert clf.provider == CPU and default_providers()[-1] == CPU
    assert len(clf.sha256) == 64
    x = _crops(7, 48)
    ids, probs = clf.classify(x)
    assert ids.shape == (7, 5) and probs.shape == (7, 5)
    assert (np.diff(probs, axis=1) <= 1e-7).all() and (probs > 0).all() and (probs.sum(axis=1) <= 1 + 1e-6).all()
    logits = clf.logits(x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_array_equal(ids[:, 0], p.argmax(1))
    np.testing.assert_allclose(probs[:, 0], p.max(1), rtol=1e-5)
    one_by_one = np.concatenate([clf.classify(x[i : i + 1])[0] for i in range(7)])
    np.testing.assert_array_equal(one_by_one, ids)  # batching does not change the answer


def test_foreign_nhwc_model_layout_from_shape_and_spec_from_flags(tmp_path: Path) -> None:
    path = tiny_classifier(tmp_path / "foreign.onnx", size=40, layout="NHWC", metadata=False)
    clf = OnnxClassifier(path, overrides=spec_overrides(scale=255.0, channel_order="bgr"))
    assert clf.spec.layout == "NHWC" and clf.spec.input_size == 40
    assert clf.spec.mean == (0.0, 0.0, 0.0) and clf.spec.std == (255.0,) * 3 and clf.spec.channel_order == "BGR"
    assert clf.name == "foreign" and len(clf.class_names) == 1000
    ids, _ = clf.classify(_crops(3, 40))
    assert ids.shape == (3, 5)
    assert OnnxClassifier(tiny_classifier(tmp_path / "nchw.onnx", metadata=False)).spec.layout == "NCHW"


def test_torchvision_style_mean_std_in_unit_range_become_pixel_units() -> None:
    f = spec_overrides(input_size=224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    assert f["input_size"] == 224
    assert np.allclose(f["mean"], (123.675, 116.28, 103.53)) and np.allclose(f["std"], (58.395, 57.12, 57.375))
    with pytest.raises(UserError, match="--scale"):
        spec_overrides(mean=[0.5], std=[0.5], scale=255)


def test_a_model_that_is_not_an_image_classifier_is_refused(tmp_path: Path) -> None:
    path = identity_model(tmp_path / "identity.onnx")
    with pytest.raises(UserError, match=r"identity\.onnx.*not an image classifier"):
        OnnxClassifier(path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match="junk.onnx: not a readable ONNX model"):
        OnnxClassifier(junk)


def test_class_count_must_match_the_labels(tmp_path: Path) -> None:
    path = tiny_classifier(tmp_path / "ten.onnx", n_classes=10, metadata=False)
    with pytest.raises(
        UserError, match=r"ten\.onnx: it outputs 10 classes but the ImageNet-1k labels name 1000.*--labels"
    ):
        OnnxClassifier(path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing {i}" for i in range(10)) + "\n")
    clf = OnnxClassifier(path, class_names=read_label_file(labels))
    assert clf.class_names[9] == "thing 9" and clf.n_classes == 10
    with pytest.raises(UserError, match="--labels"):
        OnnxClassifier(path, class_names=["a", "b"])


def test_dynamic_input_size_needs_input_size_flag(tmp_path: Path) -> None:
    path = tiny_classifier(tmp_path / "dyn.onnx", metadata=False, static_size=False)
    with pytest.raises(UserError, match="--input-size"):
        OnnxClassifier(path)
    assert OnnxClassifier(path, overrides=spec_overrides(input_size=56)).spec.input_size == 56


def test_input_size_flag_that_contradicts_the_model_is_refused(tmp_path: Path) -> None:
    path = tiny_classifier(tmp_path / "m32.onnx", size=32, metadata=False)
    with pytest.raises(UserError, match="32x32.*--input-size"):
        OnnxClassifier(path, overrides=spec_overrides(input_size=64))


def test_missing_model_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--model .*nope.onnx: no such file"):
        OnnxClassifier(tmp_path / "nope.onnx")
