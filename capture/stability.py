"""The digital stability baseline: how much clean accuracy the model loses to mild changes with no camera at all.

A photograph always resamples, blurs and compresses a little. A model that is unsure
of a photo can lose it to those alone, and a channel check against the pristine
digital figure would then blame the camera for the model's fragility. So every capture
session also records the target model's top-5 on each clean PNG after each of three
mild transforms (the sweep's, at one strength each; Kurakin et al. 2016,
https://arxiv.org/abs/1607.02533, sec. 4): ``resolution`` (the tile seen head-on at
twice the model's input size in camera pixels, camera blur sigma 0.6 px, and rectified
back, as :mod:`sweep` does), ``blur`` (Gaussian sigma 1 px at the PNG's resolution)
and ``jpeg`` (IJG quality 75, 4:2:0). The report's baseline accuracy is the share of
(photo, transform) pairs still right (:mod:`contracts.verdict`).

A face detector target (:mod:`capture.facetarget`) records the same rows from the same
images (:func:`mild_clean`): its top-1 is 1 when every truth face, scaled to the
transformed image, is still found at IoU 0.5, as on its tiles.

Torch-free: the ONNX target classifies (or detects on) the transformed images.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path

import cv2
import numpy as np

from capture.digital import Classifier, Top5Row, classify_images
from channel.camera import apply_jpeg
from channel.resolution import photograph_tile
from contracts.images import read_item_image
from contracts.manifest import Batch

log = logging.getLogger(__name__)

RESOLUTION_X = 2.0  # the tile spans this many times the model's input size in camera pixels
CAMERA_BLUR_PX = 0.6  # sweep.transforms.CAMERA_BLUR_PX
BLUR_SIGMA_PX = 1.0
JPEG_QUALITY = 75
TRANSFORMS = ("resolution", "blur", "jpeg")


def mild(name: str, img: np.ndarray, model_px: int) -> np.ndarray:
    """``img`` (RGB uint8) through the mild transform ``name``, at the PNG's own resolution."""
    if name == "resolution":
        side = img.shape[0]
        square = img if img.shape[0] == img.shape[1] else cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        return photograph_tile(square, RESOLUTION_X * model_px, 0.0, CAMERA_BLUR_PX, out_size=side)
    if name == "blur":
        return cv2.GaussianBlur(img, (0, 0), BLUR_SIGMA_PX, borderType=cv2.BORDER_REFLECT_101)
    if name == "jpeg":
        return apply_jpeg(img, JPEG_QUALITY, bgr=False)[0]
    raise ValueError(f"unknown mild transform {name!r}; choose from {', '.join(TRANSFORMS)}")


def mild_clean(
    batch_dir: Path, batch: Batch, model_px: int, items: Collection[str] | None = None
) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(item id, transform, image)``: every clean PNG (of ``items``, default all) through each mild transform."""
    for it in batch.items:
        if items is None or it.id in items:
            img = read_item_image(batch_dir, it, "clean")
            for name in TRANSFORMS:
                yield it.id, name, mild(name, img, model_px)


def stability_top5(batch_dir: Path, batch: Batch, classifier: Classifier) -> list[Top5Row]:
    """The model's top-5 on every clean PNG after each mild transform: ``(item id, transform, ids, probs)``.

    Items whose PNG cannot be read or whose outputs are not finite are left out, with a warning.
    """
    keys: list[tuple[str, str]] = []

    def images() -> Iterator[np.ndarray]:
        for item, name, img in mild_clean(batch_dir, batch, classifier.spec.input_size):
            keys.append((item, name))
            yield img

    ids, probs = classify_images(classifier, images())
    rows: list[Top5Row] = []
    for k, (item, name) in enumerate(keys):
        if np.isfinite(probs[k]).all():
            rows.append((item, name, ids[k], probs[k]))
        else:
            log.warning(
                "non-finite outputs on item %s's clean PNG after %s; left out of the stability baseline", item, name
            )
    return rows
