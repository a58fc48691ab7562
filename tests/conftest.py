"""Shared fixtures. ``synthetic_batch`` builds a real batch directory without torch."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from PIL import Image

from contracts.manifest import Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, save_batch
from contracts.preprocess import PreprocessSpec


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_synthetic_batch(
    batch_dir: Path, n_items: int = 4, size: int = 64, seed: int = 0, eps: float = 16.0, batch_id: str = "btest-0001"
) -> Batch:
    """Write a batch of random-texture clean images and eps-perturbed copies.

    The images are not adversarial; they exercise the file formats and every
    stage's mechanics. Top-5 entries are fabricated but well-formed.
    """
    rng = np.random.default_rng(seed)
    (batch_dir / "images").mkdir(parents=True, exist_ok=True)
    items = []
    spec = PreprocessSpec(input_size=size)
    for i in range(n_items):
        base = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        clean = np.asarray(Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC))
        delta = rng.choice([-eps, eps], size=clean.shape)
        adv = np.clip(clean.astype(np.float64) + delta, 0, 255).astype(np.uint8)
        recs = {}
        for role, arr in (("clean", clean), ("adv", adv)):
            data = _png(arr)
            rel = f"images/syn-{i:02d}-{role}.png"
            (batch_dir / rel).write_bytes(data)
            cls = (i * 7) % 1000 if role == "clean" else (i * 7 + 1) % 1000
            recs[role] = ImageRecord(path=rel, sha256=hashlib.sha256(data).hexdigest(), top5={"lite0": [[cls, 0.9], [cls + 1, 0.05], [cls + 2, 0.02], [cls + 3, 0.01], [cls + 4, 0.01]]})
        items.append(
            Item(
                id=f"syn-{i:02d}-fgsm-e{int(eps)}",
                source=SourceImage(file=f"synthetic:{i}", sha256="0" * 64, origin="synthetic"),
                label=Label(index=(i * 7) % 1000, name=f"class {(i * 7) % 1000}", source="filename"),
                attack="fgsm",
                eps=eps,
                seed=seed,
                clean=recs["clean"],
                adv=recs["adv"],
            )
        )
    batch = Batch(
        batch_id=batch_id,
        config={"images": "synthetic", "attacks": ["fgsm"], "eps": [eps], "seed": seed, "source": ["lite0"]},
        models=[ModelRecord(name="lite0", arch="efficientnet-lite0", role="source", weights_sha256="0" * 64, weights_package="synthetic", preprocess=spec.to_dict())],
        items=items,
    )
    save_batch(batch_dir, batch)
    return batch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for modules of tiny tensors.

    On a small shared CPU, OpenMP's fork-join and spinning threads cost more than
    they save on tiny tensors (seen 4-30x slower under load). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def synthetic_batch(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``synthetic_batch(n_items=4, size=64) -> batch_dir``."""

    def make(**kw: object) -> Path:
        d = tmp_path / str(kw.pop("name", "batch"))
        make_synthetic_batch(d, **kw)  # type: ignore[arg-type]
        return d

    return make
