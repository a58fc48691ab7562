"""Any source model: ONNX converted to torch, .pt2, TorchScript, factories; bad input is one line (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app import main
from contracts.errors import UserError
from contracts.modelspec import spec_overrides
from contracts.paths import sha256_file
from craft.export import export_onnx
from craft.job import CraftConfig, craft_batch
from craft.sources import load_source
from craft.zoo import load_model, load_net

pytestmark = pytest.mark.slow

LITE = spec_overrides(mean=[127.0], std=[128.0], resize="bicubic")  # lite0's preprocessing, as flags


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    net = load_net("lite0")
    x = torch.zeros(2, 3, 224, 224)
    ep = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    torch.export.save(ep, str(d / "lite0.pt2"))
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(net, x[:1]), str(d / "lite0.pt"))
    export_onnx("lite1", d / "lite1.onnx")
    return {"pt2": d / "lite0.pt2", "torchscript": d / "lite0.pt", "onnx": d / "lite1.onnx", "dir": d}


def _fooled(batch, name: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {it.id: int(it.adv.top5[name][0][0]) != it.label.index for it in batch.items}


def test_onnx_converted_lite1_gives_the_attack_success_of_the_zoo_lite1(files: dict[str, Path], tmp_path: Path) -> None:
    opts = dict(limit=6, attacks=["fgsm"], eps=[2.0], seed=0)
    zoo = craft_batch(tmp_path / "zoo", CraftConfig(source=["lite1"], **opts))  # type: ignore[arg-type]
    conv = craft_batch(tmp_path / "onnx", CraftConfig(source=[str(files["onnx"])], **opts))  # type: ignore[arg-type]
    assert conv.models[0].kind == "onnx" and conv.models[0].weights_sha256 == sha256_file(files["onnx"])
    assert conv.models[0].preprocess == zoo.models[0].preprocess  # read from the ONNX metadata
    fz, fc = _fooled(zoo, "lite1"), _fooled(conv, "lite1")
    assert fz == fc, (fz, fc)
    assert 0 < sum(fz.values()) < len(fz), "ε=2 should fool some photos and not others"
    for a, b in zip(zoo.items, conv.items, strict=True):
        za = np.asarray(Image.open(tmp_path / "zoo" / a.adv.path), np.int16)
        ca = np.asarray(Image.open(tmp_path / "onnx" / b.adv.path), np.int16)
        assert (za != ca).mean() < 0.01  # the same gradient signs, but where the gradient is ~0


@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
@pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"
)  # inside torch.export.load
def test_torchscript_and_pt2_sources_craft_a_batch(files: dict[str, Path], tmp_path: Path, kind: str) -> None:
    spec = {**LITE, "input_size": 224} if kind == "torchscript" else LITE  # TorchScript carries no input shape
    batch = craft_batch(
        tmp_path / kind, CraftConfig(source=[str(files[kind])], limit=2, attacks=["fgsm"], eps=[8.0], model_spec=spec)
    )
    rec = batch.models[0]
    assert (rec.kind, rec.name, rec.weights_sha256) == (kind, "lite0", sha256_file(files[kind]))
    assert len(batch.items) == 2
    # The recorded top-1 on the saved PNGs is what the zoo's lite0 says about them.
    ref = load_model("lite0")
    for it in batch.items:
        x = (
            torch.from_numpy(np.array(Image.open(tmp_path / kind / it.adv.path).convert("RGB")))
            .permute(2, 0, 1)[None]
            .float()
        )
        with torch.no_grad():
            assert int(ref(x).argmax()) == int(it.adv.top5["lite0"][0][0])


def test_pt2_export_to_onnx_carries_the_spec(files: dict[str, Path], tmp_path: Path) -> None:
    from capture.classify import OnnxClassifier

    out = tmp_path / "from-pt2.onnx"
    assert (
        main(
            [
                "models",
                "export",
                str(files["pt2"]),
                "--out",
                str(out),
                "--mean",
                "127",
                "--std",
                "128",
                "--resize",
                "bicubic",
            ]
        )
        == 0
    )
    clf = OnnxClassifier(out, providers=["CPUExecutionProvider"])
    assert clf.spec == load_source("lite0").spec and len(clf.class_names) == 1000 and clf.name == "lite0"


FACTORY = """
import torch
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))
"""


def test_bad_sources_are_one_line_errors(
    files: dict[str, Path], tmp_path: Path, one_line_error: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynets.py").write_text(FACTORY)
    (tmp_path / "seven.txt").write_text("\n".join("abcdefg"))
    (tmp_path / "ten.txt").write_text("\n".join("abcdefghij"))
    (tmp_path / "dup.txt").write_text("cat\ndog\ncat\n")
    out = ["craft", "--out", str(tmp_path / "b"), "--limit", "1", "--input-size", "32"]
    one_line_error([*out, "--source", "mynets:biuld"], "--source mynets:biuld", "did you mean build")
    one_line_error([*out, "--source", "mynet:build"], "cannot import 'mynet'")
    one_line_error(
        [*out, "--source", "mynets:build", "--labels", "ten.txt"],
        "outputs 7 classes but --labels ten.txt names 10",
    )
    one_line_error([*out, "--source", "mynets:build", "--labels", "dup.txt"], "dup.txt", "'cat' appears twice")
    one_line_error(
        [*out[:-2], "--source", str(files["onnx"]), "--input-size", "224"],
        "takes 240x240 images but the preprocessing says 224",
    )
    one_line_error([*out, "--source", "weights.pth"], "does not unpickle")
    # The factory with its own label set crafts (its output size matches --labels).
    assert main([*out, "--source", "mynets:build", "--labels", "seven.txt", "--mean", "0.5", "--std", "0.5"]) == 0
    batch = json.loads((tmp_path / "b" / "batch.json").read_text())
    assert batch["classes"] == list("abcdefg") and batch["models"][0]["kind"] == "factory"
    assert batch["models"][0]["preprocess"]["mean"] == [127.5] * 3


def test_pt2_with_pickled_payload_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    import zipfile

    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(files["pt2"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("weights_config.json"):
                data = data.replace(b'"use_pickle": false', b'"use_pickle": true', 1)
                assert b'"use_pickle": true' in data
            dst.writestr(info, data)
    with pytest.raises(UserError, match="does not unpickle"):
        load_source(str(bad))
    opaque = tmp_path / "opaque.pt2"
    with zipfile.ZipFile(files["pt2"]) as src, zipfile.ZipFile(opaque, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("lite0/data/constants/opaque_obj_0", b"\x80\x04N.")  # a pickle
    with pytest.raises(UserError, match="opaque_obj_0.*does not unpickle"):
        load_source(str(opaque))
