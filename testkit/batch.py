"""A synthetic batch directory (``batch.json`` and ``images/``) without torch or a real attack.

The one builder of fake batches for the tests and the bench scripts: random-texture
clean images and ±ε copies, cycling through ``attacks`` x ``eps``. The source model's
top-5 is fabricated but well-formed: clean right with 0.9, adversarial wrong
(``ll`` items reach a fixed target class).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from contracts.batchdir import IMAGES, image_rel
from contracts.manifest import Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, save_batch
from contracts.preprocess import PreprocessSpec


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _top5(cls: int) -> list[list[float]]:
    return [[(cls + k) % 1000, p] for k, p in enumerate((0.9, 0.05, 0.02, 0.01, 0.01))]


def write_batch(
    batch_dir: Path,
    n_items: int = 4,
    size: int = 64,
    seed: int = 0,
    attacks: tuple[str, ...] = ("fgsm",),
    eps: tuple[float, ...] = (16.0,),
    batch_id: str = "btest-0001",
) -> Batch:
    """Write a batch of ``n_items`` items of ``size`` px PNGs into ``batch_dir``; return its manifest.

    Item ``i`` is ``syn-<ii>-<attack>-e<ε>`` of class ``7 i mod 1000``; ``seed`` draws the images.
    """
    batch_dir = Path(batch_dir)
    rng = np.random.default_rng(seed)
    (batch_dir / IMAGES).mkdir(parents=True, exist_ok=True)
    combos = [(a, float(e)) for a in attacks for e in eps]
    spec = PreprocessSpec(input_size=size)
    items = []
    for i in range(n_items):
        attack, e = combos[i % len(combos)]
        label = (i * 7) % 1000
        target = (label + 500) % 1000 if attack == "ll" else None
        base = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        clean = np.asarray(Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC))
        delta = rng.choice([-e, e], size=clean.shape)
        adv = np.clip(clean.astype(np.float64) + delta, 0, 255).astype(np.uint8)
        recs = {}
        for role, arr in (("clean", clean), ("adv", adv)):
            data = _png(arr)
            rel = image_rel(f"syn-{i:02d}-{role}.png")
            (batch_dir / rel).write_bytes(data)
            top1 = label if role == "clean" else (target if target is not None else (label + 1) % 1000)
            recs[role] = ImageRecord(path=rel, sha256=hashlib.sha256(data).hexdigest(), top5={"lite0": _top5(top1)})
        items.append(
            Item(
                id=f"syn-{i:02d}-{attack}-e{e:g}",
                source=SourceImage(file=f"synthetic:{i}", sha256="0" * 64, origin="synthetic"),
                label=Label(index=label, name=f"class {label}", source="filename"),
                attack=attack,
                eps=e,
                seed=seed,
                clean=recs["clean"],
                adv=recs["adv"],
                target=target,
            )
        )
    batch = Batch(
        batch_id=batch_id,
        config={
            "images": "synthetic",
            "attacks": list(attacks),
            "eps": [float(e) for e in eps],
            "seed": seed,
            "source": ["lite0"],
        },
        models=[
            ModelRecord(
                name="lite0",
                arch="efficientnet-lite0",
                role="source",
                weights_sha256="0" * 64,
                weights_package="synthetic",
                preprocess=spec.to_dict(),
            )
        ],
        items=items,
    )
    save_batch(batch_dir, batch)
    return batch
