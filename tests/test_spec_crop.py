"""The target's crop fraction decides the tile crop in capture as it does the digital PNG's (the spec on both sides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from capture.sheets.detect import SheetDetector
from capture.sheets.quality import QualityGates
from contracts.preprocess import PreprocessSpec
from tests.capture_helpers import make_layout, scene

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
