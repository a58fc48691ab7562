"""Foreign targets, torch-free: the spec's crop decides the tile crop in capture, and sweep maps labels onto the model's
own classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from capture.sheets.detect import SheetDetector
from capture.sheets.quality import QualityGates
from contracts.preprocess import PreprocessSpec
from testkit.scenes import make_layout, scene

SIZE = 48


def test_tile_crop_keeps_the_central_part_the_spec_keeps(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    batch = synthetic_batch(n_items=2, size=64)
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    sc = scene(batch, layout, {sheet.sheet_id: dict(tilt_deg=10, roll_deg=5, fill=0.85)})
    det = SheetDetector(layout, QualityGates(min_tile_px=20, min_sharpness=0), focal_px=1280)
    (hit,) = det.detect(sc.frame)
    spec = PreprocessSpec(input_size=SIZE, crop_pct=0.5)
    for c in det.crop_tiles(sc.frame, hit, SIZE, spec.crop_pct):
        with Image.open(batch / c.tile.image) as im:
            want = spec.resize_center_crop(im).astype(np.float64)  # the digital PNG as the model sees it
            whole = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC), np.float64)
        got = c.crop_rgb.astype(np.float64)
        corr = np.corrcoef(got.ravel(), want.ravel())[0, 1]
        assert corr > 0.85 and corr > np.corrcoef(got.ravel(), whole.ravel())[0, 1] + 0.2, corr


def test_sweep_maps_the_batch_labels_onto_a_foreign_label_set(synthetic_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pytest

    from analysis.load import load_input
    from analysis.sweep import load_sweep, sweep_points
    from contracts.classes import imagenet_names
    from contracts.errors import UserError
    from sweep.run import run_sweep
    from testkit.scenes import tiny_classifier

    batch = synthetic_batch(n_items=3, size=64)  # labels: ImageNet classes 0, 7, 14
    names = ["not a batch class", imagenet_names()[14], "another", imagenet_names()[0], imagenet_names()[7]]
    model = tiny_classifier(tmp_path / "five.onnx", size=48, n_classes=5, classes=names, name="five")
    out = run_sweep(batch, model, ["blur"], steps=2)
    doc = json.loads(out.read_text())
    assert doc["labels"]["map"] == {"0": 3, "7": 4, "14": 1} and doc["labels"]["target_classes"] == names
    inp = load_input(batch)
    rows = load_sweep(batch)
    assert rows is not None
    # By hand: blur at strength 0 (the identity), clean accuracy at top-1 in the model's own classes.
    truth = {it.id: {0: 3, 7: 4, 14: 1}[it.label.index] for it in inp.batch.items}
    ident = [r for r in rows if r.transform == "blur" and r.strength == 0.0 and r.role == "clean"]
    right = sum(r.pred.ids[0] == truth[r.item_id] for r in ident)
    pt = [p for p in sweep_points(inp, rows) if p.transform == "blur" and p.strength == 0.0 and p.topk == 1]
    assert pt and pt[0].rates["clean_acc"].num == right and pt[0].rates["clean_acc"].n == 3
    short = tiny_classifier(tmp_path / "short.onnx", size=48, n_classes=3, classes=names[:3], name="short")
    with pytest.raises(UserError, match="--label-map"):
        run_sweep(batch, short, ["blur"], steps=2)
