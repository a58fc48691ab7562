"""Face detectors: the box arithmetic (contracts.detection), the ONNX preparation, and the three real detectors
(MTCNN in torch, CenterFace and YuNet in onnxruntime) on the packaged photos with faces."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from capture.faces import OnnxFaceDetector, read_spec
from contracts.detection import DETECTORS, Detections, found, get_detector, iou_matrix, nms
from contracts.errors import UserError
from craft.detectors.onnxprep import fold_dequantize, prepare_onnx
from craft.detectors.photos import face_photos, lfw_faces

if TYPE_CHECKING:
    from craft.detectors.mtcnn import MTCNN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- box arithmetic ----------------------------------------------------------


def test_iou_and_nms_keep_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.4], np.float32)
    m = iou_matrix(boxes, boxes)
    assert np.allclose(np.diag(m), 1) and m[0, 2] == 0 and m[0, 1] == pytest.approx(81 / 119)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 2, 0]  # 0 and 3 overlap by 0.952 > 0.9
    inner = np.array([[0, 0, 10, 10], [2, 2, 6, 6]], np.float32)  # IoU 0.16, but the small one lies inside
    assert nms(inner, np.array([1.0, 0.5]), 0.5).tolist() == [0, 1]
    assert nms(inner, np.array([1.0, 0.5]), 0.5, mode="min").tolist() == [0]


def test_found_matches_each_detection_once() -> None:
    truth = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32)
    one = np.array([[0, 0, 10, 10]], np.float32)
    assert found(truth, one).tolist() == [True, False]  # one detection cannot find two faces
    assert found(truth, np.zeros((0, 4))).tolist() == [False, False]
    assert found(truth, np.array([[5, 5, 15, 15]], np.float32)).tolist() == [False, False]


def test_detections_json_round_trip_and_hostile_rows() -> None:
    d = Detections(np.array([[1.04, 2, 30, 40]], np.float32), np.array([0.98765], np.float32))
    back = Detections.from_json(d.to_json())
    assert back.boxes.tolist() == [[1.0, 2.0, 30.0, 40.0]] and back.scores.tolist() == pytest.approx([0.9877], abs=1e-4)
    for bad in ([{"box": [1, 2, 3], "score": 1}], [{"box": [1, 2, 3, float("nan")], "score": 1}], {"box": 1}):
        with pytest.raises(ValueError, match="truth"):
            Detections.from_json(bad, "truth")
    with pytest.raises(UserError, match="known detectors"):
        get_detector("retinaface")


# -- ONNX preparation ---------------------------------------------------------


def test_folding_dequantize_matches_onnxruntime(tmp_path: Path) -> None:
    """A per-axis int8 DequantizeLinear feeding a Conv: folded to float, the graph gives the same output."""
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 127, (4, 3, 3, 3), dtype=np.int8)
    scale = rng.uniform(0.001, 0.01, 4).astype(np.float32)
    zero = rng.integers(-5, 5, 4).astype(np.int8)
    inits = [numpy_helper.from_array(a, n) for a, n in ((q, "q"), (scale, "s"), (zero, "z"))]
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    folded = fold_dequantize(model)
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    got = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.allclose(got, ref, atol=1e-5)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("detectors")
    return {n: prepare_onnx(get_detector(n), d / f"{n}.onnx") for n in ("centerface", "yunet")}


def test_prepared_files_load_in_onnxruntime_with_their_spec(prepared: dict[str, Path]) -> None:
    yunet = onnx.load(str(prepared["yunet"]))
    assert not any(n.op_type == "DequantizeLinear" for n in yunet.graph.node)
    dims = [d.dim_param for d in onnx.load(str(prepared["centerface"])).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", "", "H", "W"]
    for name, path in prepared.items():
        assert read_spec(path) == DETECTORS[name]


# -- the real detectors on packaged photos -----------------------------------


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {p.key: p.rgb for p in face_photos()}


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    from craft.detectors.mtcnn import MTCNN

    return MTCNN()


def _mtcnn_detect(mtcnn: MTCNN, rgb: np.ndarray) -> Detections:
    import torch

    return mtcnn.detect(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float())[0]


# Where each photo's one face is (drawn by hand around the face, x0 y0 x1 y1).
FACES = {
    "skimage-astronaut": (180, 60, 268, 175),
    "matplotlib-grace-hopper": (175, 122, 355, 335),
    "skimage-camera": (200, 118, 256, 194),
}


@pytest.mark.parametrize("name", ["mtcnn", "centerface", "yunet"])
def test_each_detector_finds_the_faces_and_nothing_else(
    name: str, prepared: dict[str, Path], photos: dict[str, np.ndarray], mtcnn: MTCNN
) -> None:
    detect = (lambda im: _mtcnn_detect(mtcnn, im)) if name == "mtcnn" else OnnxFaceDetector(prepared[name]).detect
    for key, box in FACES.items():
        if name == "yunet" and key == "skimage-camera":
            continue  # YuNet misses the grey, half-turned cameraman (docs/detectors.md)
        d = detect(photos[key])
        assert len(d) == 1 and found(np.array([box]), d.boxes, 0.7).all(), (key, d.boxes)
        assert d.scores[0] >= DETECTORS[name].score
    for neg in lfw_faces(100, 103):  # LFW crops without a face
        assert len(detect(neg.rgb)) == 0, neg.key
    faces = sum(len(detect(p.rgb)) == 1 for p in lfw_faces(0, 10))
    assert faces >= 5  # the small, soft LFW faces: most are found


@pytest.mark.parametrize("name", ["centerface", "yunet"])
def test_reused_input_buffers_give_what_a_fresh_input_gives(
    name: str, prepared: dict[str, Path], photos: dict[str, np.ndarray]
) -> None:
    """detect_many (one reused buffer per thread, runs then decodings) against a fresh float input per image
    (border drawn by OpenCV, decoded with the module's decoders), on images of three sizes, from two threads."""
    import cv2

    from capture.faces import decode_centerface, decode_yunet, model_input

    det = OnnxFaceDetector(prepared[name], threads=1)
    imgs = [photos["skimage-astronaut"], cv2.resize(photos["matplotlib-grace-hopper"], (224, 224))]
    imgs += [np.ascontiguousarray(photos["skimage-astronaut"][40:300, :470]), imgs[0]]

    def fresh(rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        if name == "centerface":
            hn, wn = -(-h // 32) * 32, -(-w // 32) * 32
            blob = model_input(cv2.resize(rgb, (wn, hn)), det.spec)
            heat, scale, off, lms = det.sess.run(None, {det.input: blob})
            d = decode_centerface(heat[0, 0], scale[0], off[0], lms[0], det.score, (hn, wn))
        else:
            f = 640 / max(h, w)
            hn, wn = round(h * f), round(w * f)
            img = cv2.copyMakeBorder(cv2.resize(rgb, (wn, hn)), 0, 640 - hn, 0, 640 - wn, cv2.BORDER_CONSTANT)
            blob = model_input(img, det.spec)
            outs = det.sess.run(det.outputs, {det.input: blob})
            d = decode_yunet(dict(zip(det.outputs, outs, strict=True)), det.score)
        np.testing.assert_array_equal(det.prepare(rgb)[0], blob)  # the same input, to the bit
        keep = nms(d.boxes, d.scores, det.spec.nms_iou)
        return Detections(d.boxes[keep], d.scores[keep]).scaled(w / wn, h / hn)

    want = [fresh(im) for im in imgs]
    assert sum(len(d) for d in want) >= 3
    got: dict[int, list[Detections]] = {}
    threads = [
        threading.Thread(target=lambda k=k: got.update({k: det.detect_many(imgs[k:] + imgs[:k])})) for k in (0, 1)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, dets in got.items():
        for w, g in zip(want[k:] + want[:k], dets, strict=True):
            assert len(w) == len(g)
            np.testing.assert_allclose(g.boxes, w.boxes, atol=1e-3)
            np.testing.assert_allclose(g.scores, w.scores, atol=1e-6)


def test_mtcnn_gradient_reaches_the_pixels(photos: dict[str, np.ndarray], mtcnn: MTCNN) -> None:
    import torch

    from craft.detectors.vanish import Vanish

    x = torch.from_numpy(photos["skimage-camera"].copy()).permute(2, 0, 1)[None].float().requires_grad_(True)
    energy = Vanish(mtcnn).energy(x)
    (g,) = torch.autograd.grad(energy.sum(), x)
    assert energy.item() > 0 and g.abs().sum() > 0
    face = g[0, :, 118:194, 200:256].abs().mean()
    assert face > 3 * g.abs().mean()  # the gradient gathers on the face


def test_classifier_batches_keep_their_form_and_read_as_before(synthetic_batch: Callable[..., Path]) -> None:
    from contracts.manifest import load_batch, save_batch

    d = synthetic_batch(n_items=2)
    raw = json.loads((d / "batch.json").read_text())
    assert all("truth" not in it and "boxes" not in it["clean"] for it in raw["items"])
    batch = load_batch(d)
    assert all(it.truth is None and it.clean.boxes == {} for it in batch.items)
    save_batch(d, batch)
    assert json.loads((d / "batch.json").read_text())["items"] == raw["items"]
