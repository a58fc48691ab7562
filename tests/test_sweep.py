"""photoproof sweep: transforms on their own, recorded in sweep.json, plotted by the report."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from analysis.report import build_report
from channel import camera
from channel import cli as channel_cli
from channel import model as ch
from contracts.errors import UserError
from contracts.manifest import load_batch
from sweep.cli import register
from sweep.run import run_sweep
from sweep.transforms import DEFAULT_TRANSFORMS, RESAMPLED, TRANSFORMS, apply_transform
from testkit.scenes import tiny_classifier
from testkit.sim import make_test_card

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def setup(synthetic_batch, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A 3-item batch and a tiny model that calls itself lite0 (the batch's source model, so batch.json has its digital
    top-5).
    """
    return synthetic_batch(n_items=3, size=64), tiny_classifier(tmp_path / "tiny.onnx", size=48, name="lite0")


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


def test_sweep_json_has_a_header_and_one_row_per_strength_item_and_role(setup: tuple[Path, Path]) -> None:
    batch_dir, model = setup
    out = run_sweep(batch_dir, model, steps=3, seed=7)
    assert out == batch_dir / "sweep.json" and not list(batch_dir.glob(".sweep.json.*"))  # atomic: no temporary left
    doc = _doc(out)
    assert (
        doc["schema"] == "photoproof.sweep"
        and doc["seed"] == 7
        and doc["model"]["name"] == "lite0"
        and len(doc["model"]["sha256"]) == 64
    )
    assert list(doc["transforms"]) == list(DEFAULT_TRANSFORMS)
    grids = {k: v["strengths"] for k, v in doc["transforms"].items()}
    assert (
        grids["brightness"] == [-48.0, -24.0, 0.0, 24.0, 48.0]
        and grids["blur"] == [0.0, 1.5, 3.0]
        and grids["jpeg"] == [100.0, 55.0, 10.0]
    )
    assert all(v["unit"] for v in doc["transforms"].values())
    n_images = 2 * len(load_batch(batch_dir).items)
    assert len(doc["rows"]) == sum(len(g) for g in grids.values()) * n_images and len(doc["digital"]) == n_images
    for r in doc["rows"]:
        assert set(r) == {"transform", "strength", "item_id", "role", "model", "top1", "top5_ids", "top5_probs"}
        assert r["top1"] == r["top5_ids"][0] and len(r["top5_probs"]) == 5 and r["role"] in ("clean", "adv")
    # the identity strengths give the digital predictions
    digital = {(d["item_id"], d["role"]): d["top5_ids"] for d in doc["digital"]}
    identity = {"brightness": 0.0, "contrast": 1.0, "blur": 0.0, "noise": 0.0, "perspective": 0.0, "tone": 1.0}
    for r in doc["rows"]:
        if identity.get(r["transform"]) == r["strength"]:
            assert r["top5_ids"] == digital[(r["item_id"], r["role"])], r


def test_identity_strengths_leave_the_image_unchanged_and_strength_grows_the_change() -> None:
    card = make_test_card(96)
    z = np.random.default_rng(0).standard_normal(card.shape).astype(np.float32)
    for name, tr in TRANSFORMS.items():
        grid = tr.grid(4)
        outs = [apply_transform(name, s, card, z, 30.0) for s in grid]
        assert all(o.shape == card.shape and o.dtype == np.uint8 for o in outs)
        diffs = [float(np.abs(o.astype(int) - card).mean()) for o in outs]
        if name in ("brightness", "contrast"):
            mid = len(grid) // 2
            assert diffs[mid] == 0 and diffs[0] > diffs[1] > 0 and diffs[-1] > diffs[-2] > 0, (name, diffs)
        elif name == "jpeg":
            assert 0 < diffs[0] < diffs[-1], diffs  # quality 100 is not lossless (4:2:0)
        elif (
            name in RESAMPLED
        ):  # a camera never samples a tile exactly: its mildest strength changes the image a little
            assert diffs[0] < 10 and diffs[-1] > 2 * diffs[0] and diffs[-1] == max(diffs), (name, diffs)
        else:
            assert diffs[0] <= 0.5 and all(b > a for a, b in pairwise(diffs)), (name, diffs)
    # the channel's own stages: blur is its defocus, tone its printer curve
    ref = cv2.GaussianBlur(
        card.astype(np.float32), (camera.gaussian_ksize(2.0),) * 2, 2.0, borderType=cv2.BORDER_REFLECT_101
    )
    assert np.abs(apply_transform("blur", 2.0, card).astype(float) - ref).max() <= 0.5
    grey = np.full((4, 4, 3), 128, np.uint8)
    lin = ch.srgb_decode(np.array(128 / 255.0)) ** 1.5
    assert abs(int(apply_transform("tone", 1.5, grey)[0, 0, 0]) - 255 * (1.055 * lin ** (1 / 2.4) - 0.055)) <= 0.5


def test_deterministic_for_a_seed_and_recorded(setup: tuple[Path, Path]) -> None:
    batch_dir, model = setup
    rows = lambda: [r for r in _doc(batch_dir / "sweep.json")["rows"]]  # noqa: E731
    run_sweep(batch_dir, model, ["noise", "perspective"], steps=2, seed=1)
    a = rows()
    run_sweep(batch_dir, model, ["noise", "perspective"], steps=2, seed=1)
    assert rows() == a
    run_sweep(batch_dir, model, ["noise", "perspective"], steps=2, seed=2)
    b = rows()
    strong = lambda rs: [r["top5_probs"] for r in rs if r["strength"] > 0]  # noqa: E731
    assert strong(a) != strong(b) and _doc(batch_dir / "sweep.json")["seed"] == 2


def test_a_later_sweep_of_the_same_model_keeps_the_other_transforms(setup: tuple[Path, Path], tmp_path: Path) -> None:
    batch_dir, model = setup
    run_sweep(batch_dir, model, ["blur"], steps=2)
    run_sweep(batch_dir, model, ["jpeg"], steps=2)
    doc = _doc(batch_dir / "sweep.json")
    assert set(doc["transforms"]) == {"blur", "jpeg"} and {r["transform"] for r in doc["rows"]} == {"blur", "jpeg"}
    other = tiny_classifier(tmp_path / "other.onnx", size=32, name="other")
    run_sweep(batch_dir, other, ["jpeg"], steps=2)  # another model replaces the file
    doc = _doc(batch_dir / "sweep.json")
    assert set(doc["transforms"]) == {"jpeg"} and {r["model"] for r in doc["rows"]} == {"other"}


def test_report_shows_the_sweep(setup: tuple[Path, Path]) -> None:
    batch_dir, model = setup
    run_sweep(batch_dir, model, ["brightness", "blur", "jpeg"], steps=3)
    index = build_report(batch_dir, formats=("html", "csv"))
    html = index.read_text()
    assert "Transformation sweep" in html and "Destruction rate against transform strength" in html
    table = json.loads((index.parent / "sweep.json").read_text())["rows"]
    assert {r["transform"] for r in table} == {"brightness", "blur", "jpeg"} and {r["topk"] for r in table} == {1, 5}
    assert all(
        r["model"] == "lite0" and r["destruction"] is not None for r in table
    )  # digital baseline found in batch.json


def test_bad_arguments_name_the_option(setup: tuple[Path, Path]) -> None:
    batch_dir, model = setup
    with pytest.raises(UserError, match="--transforms: unknown transform.*sharpen"):
        run_sweep(batch_dir, model, ["blur", "sharpen"])
    with pytest.raises(UserError, match="--levels"):
        run_sweep(batch_dir, model, ["blur"], steps=1)
    with pytest.raises(UserError, match="--model .*no such file"):
        run_sweep(batch_dir, batch_dir / "missing.onnx", ["blur"])
    assert not (batch_dir / "sweep.json").exists()


def test_cli_sweep_and_calibrate_arguments(setup: tuple[Path, Path], tmp_path: Path) -> None:
    batch_dir, model = setup
    app = typer.Typer()
    register(app, resolve_model=lambda name, batch: model)
    channel_cli.register(app)
    res = CliRunner().invoke(
        app, ["sweep", str(batch_dir), "--transforms", "blur,noise", "--levels", "2", "--seed", "3"]
    )
    assert res.exit_code == 0, res.output
    assert "sweep.json" in res.output and _doc(batch_dir / "sweep.json")["seed"] == 3
    res = CliRunner().invoke(app, ["calibrate", str(batch_dir), "--session", "none", "--out", str(tmp_path / "x.yaml")])
    assert isinstance(res.exception, UserError) and "--out" in str(res.exception) and ".toml" in str(res.exception)


def test_sweep_and_calibrate_do_not_import_torch() -> None:
    code = (
        "import sys, sweep.run, channel.calibrate, sweep.cli; sys.exit(int('torch' in sys.modules or 'kornia' in "
        "sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
