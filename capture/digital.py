"""The target model on the digital PNGs: one routine classifies every batch image.

A capture session records the model's top-5 on every item's saved clean and
adversarial PNG (the ``digital`` table), and the sweep records it as its digital
baseline; both call :func:`digital_top5`, and the sweep classifies its transformed
images with the same :func:`classify_images`. Each image is resized and
centre-cropped per the model's preprocessing spec, as the camera's tiles are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from contracts.images import batch_images
from contracts.manifest import Batch
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

CHUNK = 32  # images per classifier call

Top5Row = tuple[str, str, np.ndarray, np.ndarray]  # item id, role, top-5 ids, top-5 probabilities


class Classifier(Protocol):
    """What :mod:`capture.classify`'s ``OnnxClassifier`` offers here."""

    @property
    def spec(self) -> PreprocessSpec: ...

    def classify(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def classify_images(
    classifier: Classifier, images: Iterable[np.ndarray], chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Top-5 ids and probabilities (``N x 5``) of ``images`` (RGB, any size), resized and centre-cropped per
    the classifier's spec, ``chunk`` at a time (images are consumed lazily)."""
    ids: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    part: list[np.ndarray] = []

    def flush() -> None:
        a, b = classifier.classify(np.stack(part))
        ids.append(a)
        probs.append(b)
        part.clear()

    for im in images:
        part.append(classifier.spec.resize_center_crop(im))
        if len(part) == chunk:
            flush()
    if part:
        flush()
    if not ids:
        return np.zeros((0, 5), np.int64), np.zeros((0, 5), np.float32)
    return np.concatenate(ids), np.concatenate(probs)


def digital_top5(
    batch_dir: Path,
    batch: Batch,
    classifier: Classifier,
    chunk: int = CHUNK,
    images: Sequence[tuple[str, str, np.ndarray]] | None = None,
) -> list[Top5Row]:
    """The model's top-5 on every item's saved clean and adversarial PNG, in manifest order.

    ``images``: the batch's PNGs, when the caller has read them already (:func:`contracts.images.batch_images`).
    An image on which the model outputs NaN or infinity is left out, with a warning.
    """
    todo = images if images is not None else batch_images(batch_dir, batch)
    keys: list[tuple[str, str]] = []

    def arrays() -> Iterable[np.ndarray]:
        for item, role, im in todo:
            keys.append((item, role))
            yield im

    ids, probs = classify_images(classifier, arrays(), chunk)
    finite = np.isfinite(probs).all(axis=1) if len(keys) else np.zeros(0, bool)
    rows: list[Top5Row] = []
    for k, (item, role) in enumerate(keys):
        if finite[k]:
            rows.append((item, role, ids[k], probs[k]))
        else:  # not recorded: the report shows this item's digital figures as n/a
            log.warning(
                "the model gave NaN or infinite outputs on the %s PNG of item %s; its digital prediction is not "
                "recorded",
                role,
                item,
            )
    return rows
