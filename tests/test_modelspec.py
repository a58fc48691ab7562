"""Preprocessing specs resolved once (flags > model.toml > metadata > input shape), label sets, ε units. Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contracts.errors import UserError
from contracts.labels import map_labels, read_label_file, read_label_map, target_map
from contracts.modelspec import IMAGENET_MEAN, META_SPEC, read_sidecar, resolve_spec, sidecar_path, spec_overrides
from contracts.preprocess import PreprocessSpec
from contracts.units import eps_both, parse_eps


def test_precedence_flags_over_sidecar_over_metadata_over_shape() -> None:
    meta = {
        META_SPEC: PreprocessSpec(input_size=224, mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), resize="bicubic").to_json()
    }
    shape = [None, 3, 224, 224]
    assert resolve_spec(meta, shape).mean == (1.0, 2.0, 3.0)
    side = spec_overrides(mean=[10.0], std=[20.0], resize="nearest")
    s = resolve_spec(meta, shape, None, side)
    assert (s.mean, s.std, s.resize) == ((10.0,) * 3, (20.0,) * 3, "nearest")
    s = resolve_spec(meta, shape, spec_overrides(mean=[0.5], std=[0.25]), side)
    assert s.mean == (127.5,) * 3 and s.std == (63.75,) * 3 and s.resize == "nearest"
    bare = resolve_spec(None, ["N", 96, 96, 3])
    assert (bare.input_size, bare.layout, bare.mean, bare.resize) == (96, "NHWC", IMAGENET_MEAN, "bilinear")


def test_a_spec_that_does_not_match_the_input_shape_is_refused() -> None:
    with pytest.raises(
        UserError,
        match=r"--source net.onnx: the model takes 240x240 images but the preprocessing says 224 \(from --input-size\)",
    ):
        resolve_spec(None, [1, 3, 240, 240], spec_overrides(input_size=224), where="--source net.onnx")
    with pytest.raises(UserError, match="--input-size"):
        resolve_spec(None, ["N", 3, "H", "W"])
    with pytest.raises(UserError, match="not square"):
        resolve_spec(None, [1, 3, 224, 200])


def test_crop_fraction_keeps_the_centre_like_timm() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[25:75, 25:75] = 255  # the central half is white
    spec = resolve_spec(None, [1, 3, 50, 50], spec_overrides(crop="0.5", resize="nearest"))
    assert spec.crop_pct == 0.5
    out = spec.resize_center_crop(img)
    assert out.shape == (50, 50, 3) and out.min() == 255
    squash = resolve_spec(None, [1, 3, 50, 50], spec_overrides(crop="squash"))
    assert squash.resize_center_crop(np.zeros((80, 40, 3), np.uint8)).shape == (50, 50, 3)
    assert (
        PreprocessSpec(input_size=8).to_dict()
        == PreprocessSpec.from_dict(PreprocessSpec(input_size=8).to_dict()).to_dict()
    )
    with pytest.raises(UserError, match="--crop"):
        spec_overrides(crop="middle")


def test_sidecar_model_toml(tmp_path: Path) -> None:
    model = tmp_path / "net.onnx"
    model.write_bytes(b"")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "model.toml").write_text(
        'input_size = 64\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\ncrop = 0.875\nlabels = "classes.txt"\n'
    )
    sc = read_sidecar(sidecar_path(model))  # type: ignore[arg-type]
    assert (
        sc.overrides["input_size"] == 64
        and sc.overrides["crop_pct"] == 0.875
        and sc.labels == (tmp_path / "classes.txt").resolve()
    )
    (tmp_path / "net.toml").write_text("input_size = 32\nbatch = 3\n")
    with pytest.raises(UserError, match=r"net.toml: unknown key\(s\) batch"):
        read_sidecar(sidecar_path(model))  # type: ignore[arg-type]


def test_label_files_and_maps(tmp_path: Path) -> None:
    f = tmp_path / "classes.txt"
    f.write_text("cat\ndog\n\nCat\n")
    with pytest.raises(UserError, match=r"--labels .*classes.txt: class name 'Cat' appears twice \(lines 1 and 3\)"):
        read_label_file(f)
    batch, target = ["tench", "goldfish", "great white shark"], ["Goldfish", "tench", "shark"]
    assert map_labels(batch, target, [0, 1]) == {0: 1, 1: 0}
    with pytest.raises(UserError, match=r"'great white shark': nearest: 'shark'.*--label-map"):
        map_labels(batch, target, [0, 1, 2])
    m = tmp_path / "map.csv"
    m.write_text("batch,target\ngreat white shark,shark\n")
    assert map_labels(batch, target, [0, 1, 2], read_label_map(m)) == {0: 1, 1: 0, 2: 2}
    assert target_map(batch, batch, [0, 1, 2]) is None


@pytest.mark.parametrize(
    "text, want", [("8/255", [8.0]), ("0.0314", [8.007]), ("16", [16.0]), ("4,8/255,0.5", [4.0, 8.0, 127.5])]
)
def test_eps_units(text: str, want: list[float]) -> None:
    assert parse_eps(text) == want


def test_eps_out_of_range_and_both_units() -> None:
    for bad in ("0", "300", "2/0", "x"):
        with pytest.raises(UserError, match="--eps"):
            parse_eps(bad)
    assert eps_both(8) == "8 (0.03137)"
