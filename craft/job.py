"""The crafting job: photos in, a batch directory out.

Resumable and atomic: clean PNGs and adversarial PNGs are written to temporary
names and renamed, and ``batch.json`` is rewritten (atomically) after every
mini-batch, so a kill at any moment leaves a consistent batch. Re-running the
same command skips every item whose files exist with the recorded sha256.
"""

from __future__ import annotations

import io
import logging
import secrets
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image

from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.manifest import MANIFEST, Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, load_batch, save_batch
from contracts.paths import atomic_write_bytes, resolve_inside, sha256_bytes, sha256_file
from craft.attacks import get_attack
from craft.images import SourcePhoto, find_photos, load_rgb
from craft.zoo import get_entry, load_model, resolve_device, weights_sha256

log = logging.getLogger(__name__)

# Options that change what is produced; a resumed run must agree on all of them.
IDENTITY_KEYS = ("images", "limit", "source", "attacks", "eps", "seed", "target")


@dataclass
class CraftConfig:
    """Every option of ``photoproof craft``, fully resolved."""

    images: str = "samples"
    limit: int | None = None
    source: list[str] = field(default_factory=lambda: ["lite0"])
    attacks: list[str] = field(default_factory=lambda: ["fgsm"])
    eps: list[float] = field(default_factory=lambda: [16.0])
    seed: int = 0
    target: str | None = None
    batch_size: int = 16
    device: str = "auto"

    def validate(self) -> None:
        for e in self.eps:
            if not (1 <= e <= 255):
                raise UserError(f"--eps {e:g}: must be in 1..255 (pixel units)")
        for a in self.attacks:
            get_attack(a)
        for s in self.source:
            get_entry(s)
        if len(self.source) != 1:
            raise UserError("--source: ensembles of several source models are not supported yet; give one model")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit {self.limit}: must be at least 1")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.target is not None:
            raise UserError("--target: targeted crafting is not supported yet; omit it (the 'll' attack targets the least-likely class)")


def item_seed(seed: int, item_id: str) -> int:
    """The per-item seed recorded in the manifest: a stable mix of the run seed and the item id."""
    return int(np.random.SeedSequence([seed, zlib.crc32(item_id.encode())]).generate_state(1)[0])


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


class _Crafter:
    def __init__(self, out: Path, cfg: CraftConfig, progress: Callable[[str, int], Callable[[int], None]] | None) -> None:
        self.out = out
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.source = cfg.source[0]
        self.entry = get_entry(self.source)
        self.progress = progress
        self.model = load_model(self.source, self.device)
        self.names = imagenet_names()

    # -- helpers ----------------------------------------------------------
    def to_tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    @torch.no_grad()
    def top5(self, arrays: list[np.ndarray]) -> list[list[list[float]]]:
        probs = self.model(self.to_tensor(arrays)).float().softmax(dim=1)
        p, i = probs.topk(5, dim=1)
        return [[[int(c), round(float(q), 6)] for c, q in zip(ii, pp)] for ii, pp in zip(i.tolist(), p.tolist())]

    def write_png(self, rel: str, arr: np.ndarray) -> str:
        data = _png_bytes(arr)
        atomic_write_bytes(resolve_inside(self.out, rel), data)
        return sha256_bytes(data)

    # -- stages -----------------------------------------------------------
    def clean_images(self, photos: list[SourcePhoto], batch: Batch) -> dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]]:
        """Resize/crop every photo to the source model's input size and save it once."""
        known = {it.source.file: it for it in batch.items}
        out: dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]] = {}
        pending: list[tuple[SourcePhoto, np.ndarray, str, str]] = []
        for ph in photos:
            rel = f"images/{ph.key}-clean.png"
            path = resolve_inside(self.out, rel)
            prev = known.get(ph.file)
            if prev is not None and path.is_file() and sha256_file(path) == prev.clean.sha256:
                out[ph.key] = (_read_png(path), prev.clean, prev.label, prev.source)
                continue
            arr = self.entry.spec.resize_center_crop(load_rgb(ph))
            sha = self.write_png(rel, arr)
            pending.append((ph, _read_png(path), rel, sha))
        for start in range(0, len(pending), self.cfg.batch_size):
            chunk = pending[start : start + self.cfg.batch_size]
            for (ph, arr, rel, sha), t5 in zip(chunk, self.top5([c[1] for c in chunk])):
                if ph.label is not None:
                    label = Label(ph.label, self.names[ph.label], ph.label_source or "filename")
                else:
                    label = Label(int(t5[0][0]), self.names[int(t5[0][0])], "clean-prediction")
                out[ph.key] = (arr, ImageRecord(rel, sha, {self.source: t5}), label, SourceImage(ph.file, ph.sha256(), ph.origin))
        return out

    def run(self, photos: list[SourcePhoto], batch: Batch) -> Batch:
        cleans = self.clean_images(photos, batch)
        done = {it.id: it for it in batch.items if self._intact(it)}
        batch.items = list(done.values())
        save_batch(self.out, batch)
        jobs = [(ph, a, e) for a in self.cfg.attacks for e in self.cfg.eps for ph in photos if self.item_id(ph, a, e) not in done]
        tick = self.progress("crafting", len(jobs)) if self.progress and jobs else (lambda n: None)
        for attack_name in self.cfg.attacks:
            attack = get_attack(attack_name)()
            for eps in self.cfg.eps:
                todo = [ph for ph in photos if self.item_id(ph, attack_name, eps) not in done]
                for start in range(0, len(todo), self.cfg.batch_size):
                    chunk = todo[start : start + self.cfg.batch_size]
                    self.attack_chunk(chunk, cleans, attack, eps, batch)
                    save_batch(self.out, batch)
                    tick(len(chunk))
        batch.items.sort(key=lambda it: (self.cfg.attacks.index(it.attack), self.cfg.eps.index(it.eps), it.id))
        save_batch(self.out, batch)
        return batch

    def attack_chunk(self, chunk: list[SourcePhoto], cleans: dict, attack, eps: float, batch: Batch) -> None:  # type: ignore[no-untyped-def]
        ids = [self.item_id(ph, attack.name, eps) for ph in chunk]
        seeds = [item_seed(self.cfg.seed, i) for i in ids]
        gen = torch.Generator(device=self.device).manual_seed(seeds[0])
        x = self.to_tensor([cleans[ph.key][0] for ph in chunk])
        y = torch.tensor([cleans[ph.key][2].index for ph in chunk], device=self.device)
        adv = attack(self.model, x, y, eps, generator=gen)
        adv_np = adv.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        saved = []
        for ph, item_id, arr in zip(chunk, ids, adv_np):
            rel = f"images/{item_id}.png"
            sha = self.write_png(rel, arr)
            saved.append((rel, sha, _read_png(resolve_inside(self.out, rel))))
        for ph, item_id, s, (rel, sha, arr), t5 in zip(chunk, ids, seeds, saved, self.top5([s[2] for s in saved])):
            _, clean_rec, label, src = cleans[ph.key]
            batch.items.append(
                Item(
                    id=item_id, source=src, label=label, attack=attack.name, eps=float(eps), seed=s,
                    clean=clean_rec, adv=ImageRecord(rel, sha, {self.source: t5}), target=None, params=attack.params(eps),
                )
            )

    def item_id(self, ph: SourcePhoto, attack: str, eps: float) -> str:
        return f"{ph.key}-{attack}-e{eps:g}"

    def _intact(self, it: Item) -> bool:
        for rec in (it.clean, it.adv):
            p = resolve_inside(self.out, rec.path)
            if not p.is_file() or sha256_file(p) != rec.sha256:
                log.warning("%s: %s is missing or changed; it will be crafted again", it.id, rec.path)
                return False
        return True


def craft_batch(out: Path, cfg: CraftConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> Batch:
    """Craft (or resume crafting) the batch in ``out`` and return its manifest."""
    cfg.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    photos = find_photos(cfg.images)
    if cfg.limit is not None:
        photos = photos[: cfg.limit]
    resolved = asdict(cfg)
    if (out / MANIFEST).is_file():
        batch = load_batch(out)
        old = {k: batch.config.get(k) for k in IDENTITY_KEYS}
        new = {k: resolved[k] for k in IDENTITY_KEYS}
        if old != new:
            diff = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in IDENTITY_KEYS if old[k] != new[k])
            raise UserError(f"{out}: holds a batch made with other options ({diff}); use a new --out directory")
        log.info("resuming batch %s", batch.batch_id)
    else:
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        batch = Batch(batch_id=f"b{stamp}-{secrets.token_hex(4)}", config={})
    crafter = _Crafter(out, cfg, progress)
    batch.config = {**resolved, "device": str(crafter.device), "torch": torch.__version__}
    entry = crafter.entry
    batch.models = [
        ModelRecord(entry.name, entry.arch, "source", weights_sha256(entry.name), entry.weights_package, entry.spec.to_dict())
    ]
    torch.manual_seed(cfg.seed)
    return crafter.run(photos, batch)


def iter_items(batch: Batch, attack: str | None = None) -> Iterable[Item]:
    return (it for it in batch.items if attack is None or it.attack == attack)
