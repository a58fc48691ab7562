"""Real sample photos as a batch, without crafting: each item's adversarial image is whatever a test makes of it.

:func:`foolbox_photos` reads foolbox's ImageNet photos (with their labels) at a model's input size;
:func:`photo_batch` writes a batch directory (``batch.json`` and ``images/``) of given clean and adversarial
arrays, for tests that need a real model's verdicts on real photos through the real print and camera.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from contracts.manifest import Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, save_batch
from contracts.preprocess import PreprocessSpec


@dataclass(frozen=True)
class PhotoItem:
    """One item: the photo ``key``, its clean and adversarial arrays (HxWx3 uint8), its label, attack and ε."""

    key: str
    clean: np.ndarray
    adv: np.ndarray
    label: int
    attack: str = "fgsm"
    eps: float = 16.0


class Photo(Protocol):
    """What :func:`foolbox_photos` reads of a sample photo (``craft.images.SourcePhoto``)."""

    key: str
    path: Path
    origin: str
    label: int | None


def foolbox_photos(photos: Iterable[Photo], size: int = 224) -> dict[str, tuple[np.ndarray, int]]:
    """foolbox's ImageNet photos among ``photos`` (``craft.images.sample_photos()``), resized and centre-cropped to
    ``size``: key -> (array, label)."""
    spec = PreprocessSpec(input_size=size)
    out = {}
    for p in photos:
        if p.origin == "foolbox" and p.label is not None:
            with Image.open(p.path) as im:
                out[p.key] = (spec.resize_center_crop(im.convert("RGB")), int(p.label))
    return out


def photo_batch(d: Path, items: Sequence[PhotoItem], batch_id: str, attacks: Sequence[str] = ()) -> None:
    """Write ``items`` as a batch with source model lite0 (no top-5 recorded: capture classifies the PNGs);
    ``attacks`` is recorded as craft's ``--attack`` order."""
    (d / "images").mkdir(parents=True)
    out = []
    for it in items:
        name = f"{it.key}-{it.attack}-e{it.eps:g}"
        recs = {}
        for role, arr in (("clean", it.clean), ("adv", it.adv)):
            rel = f"images/{name}-{role}.png"
            Image.fromarray(arr).save(d / rel)
            recs[role] = ImageRecord(path=rel, sha256=hashlib.sha256((d / rel).read_bytes()).hexdigest(), top5={})
        digest = hashlib.sha256(it.clean.tobytes()).hexdigest()
        out.append(
            Item(
                id=name,
                source=SourceImage(file=f"{it.key}.png", sha256=digest, origin="test"),
                label=Label(index=it.label, name=str(it.label), source="filename"),
                attack=it.attack,
                eps=it.eps,
                seed=0,
                clean=recs["clean"],
                adv=recs["adv"],
            )
        )
    model = ModelRecord(
        name="lite0",
        arch="efficientnet-lite0",
        role="source",
        weights_sha256="0" * 64,
        weights_package="test",
        preprocess=PreprocessSpec(input_size=224).to_dict(),
    )
    config = {"seed": 0, **({"attacks": list(attacks)} if attacks else {})}
    save_batch(d, Batch(batch_id=batch_id, config=config, models=[model], items=out))
