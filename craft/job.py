"""The crafting job: photos in, a batch directory out.

Resumable and atomic: clean PNGs and adversarial PNGs are written to temporary
names and renamed, and ``batch.json`` is rewritten (atomically) after every
mini-batch, so a kill at any moment leaves a consistent batch. Re-running the
same command skips every item whose files exist with the recorded sha256.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image

from contracts.classes import imagenet_names, parse_label
from contracts.errors import UserError
from contracts.manifest import MANIFEST, Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, load_batch, save_batch
from contracts.paths import atomic_write_bytes, remove_stale_temps, resolve_inside, sha256_bytes, sha256_file
from contracts.profile import load_profile
from craft.attacks import Attack, AttackSettings, AttackSpec, ItemRng, build_attack, least_likely, parse_spec
from craft.ensemble import ENSEMBLE_MODES, Ensemble
from craft.fastgrad import gradient_model
from craft.images import SourcePhoto, find_photos, load_rgb
from craft.zoo import get_entry, load_model, resolve_device, weights_sha256

log = logging.getLogger(__name__)

# Options that change what is produced; a resumed run must agree on all of them.
# ``attacks`` is compared in canonical form (``--attack bim --eot`` is ``bim+eot``),
# so the ``di``/``eot`` flags are not listed; ``channel`` is the resolved profile of EOT runs.
IDENTITY_KEYS = (
    "images", "limit", "source", "attacks", "eps", "seed", "target", "ensemble", "steps", "alpha", "momentum",
    "random_start", "di_prob", "eot_samples", "profile", "channel", "repair_steps", "amp",
)
TARGET_MODES = ("ll", "random")


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
    ensemble: str = "logits"
    steps: int | None = None
    alpha: float | None = None
    momentum: float | None = None
    random_start: bool | None = None
    di: bool = False
    di_prob: float | None = None
    eot: bool = False
    eot_samples: int = 8
    profile: str = "office-laser-webcam"
    repair_steps: int = 10
    amp: bool = False

    def specs(self) -> list[AttackSpec]:
        """The attacks in canonical form, the ``--di``/``--eot`` flags folded in, duplicates dropped."""
        out: list[AttackSpec] = []
        for a in self.attacks:
            spec = parse_spec(a, di=self.di, eot=self.eot)
            if spec not in out:
                out.append(spec)
        return out

    def settings(self) -> AttackSettings:
        return AttackSettings(
            steps=self.steps, alpha=self.alpha, momentum=self.momentum, random_start=self.random_start,
            di_prob=self.di_prob, eot_samples=self.eot_samples, profile=load_profile(self.profile),
            repair_steps=self.repair_steps, amp=self.amp,
        )

    def target_class(self) -> int | None:
        """The fixed target class of ``--target CLASS``; ``None`` for no target, ``ll`` or ``random``."""
        if self.target is None or self.target in TARGET_MODES:
            return None
        return parse_label(self.target, where="--target")

    def validate(self) -> None:
        """Check every option; a bad one raises a one-line :class:`UserError` naming it."""
        if not self.eps:
            raise UserError("--eps: give at least one value")
        for e in self.eps:
            if not (1 <= e <= 255):
                raise UserError(f"--eps {e:g}: must be in 1..255 (pixel units)")
        if not self.attacks:
            raise UserError("--attack: give at least one attack")
        specs = self.specs()
        if not self.source:
            raise UserError("--source: give at least one model")
        for s in self.source:
            get_entry(s)
        if len(set(self.source)) != len(self.source):
            raise UserError(f"--source {','.join(self.source)}: a model is listed twice")
        if self.ensemble not in ENSEMBLE_MODES:
            raise UserError(f"--ensemble {self.ensemble!r}: choose {' or '.join(ENSEMBLE_MODES)}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit {self.limit}: must be at least 1")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps {self.steps}: must be at least 1")
        if self.alpha is not None and not (0 < self.alpha <= 255):
            raise UserError(f"--alpha {self.alpha:g}: must be in (0, 255] (pixel units)")
        if self.momentum is not None and self.momentum < 0:
            raise UserError(f"--momentum {self.momentum:g}: must be >= 0")
        if self.momentum is not None and not any(s.name == "mifgsm" for s in specs):
            raise UserError("--momentum: only the mifgsm attack uses it; add --attack mifgsm or drop the option")
        if self.random_start is not None and not any(s.name == "pgd" for s in specs):
            raise UserError("--random-start/--no-random-start: only the pgd attack uses it")
        if self.di_prob is not None and not (0 <= self.di_prob <= 1):
            raise UserError(f"--di-prob {self.di_prob:g}: must be in 0..1")
        if self.di_prob is not None and not any(s.di or s.name == "difgsm" for s in specs):
            raise UserError("--di-prob: no attack uses input diversity; add --di or --attack difgsm")
        if self.eot_samples < 1:
            raise UserError(f"--eot-samples {self.eot_samples}: must be at least 1")
        if self.repair_steps < 0:
            raise UserError(f"--repair-steps {self.repair_steps}: must be >= 0")
        load_profile(self.profile)
        if self.target is not None:
            self.target_class()
            if any(s.name == "ll" for s in specs):
                raise UserError("--target: the ll attack picks its own target (the least-likely class); use bim with --target ll")

    def resolved(self) -> dict:  # type: ignore[type-arg]
        """The config as recorded in ``batch.json``: attacks canonical, the EOT channel resolved."""
        d = asdict(self)
        specs = self.specs()
        d["attacks"] = [s.label for s in specs]
        d["channel"] = load_profile(self.profile).to_dict() if any(s.eot for s in specs) else None
        return json.loads(json.dumps(d))


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
        self.entries = [get_entry(s) for s in cfg.source]
        self.entry = self.entries[0]  # its input size is the size of every saved image
        self.progress = progress
        if cfg.amp and self.device.type != "cuda":
            log.warning("--amp: bf16 autocast is used on CUDA only; crafting in fp32 on %s", self.device)
        pairs = [_models(s, str(self.device)) for s in cfg.source]
        refs, fast = [p[0] for p in pairs], [p[1] for p in pairs]
        sizes = [e.spec.input_size for e in self.entries]
        resize = self.entry.spec.resize if self.entry.spec.resize in ("bilinear", "bicubic") else "bicubic"
        # The reference model(s) make every recorded decision; the folded copies compute gradients.
        self.members = refs
        self.model: torch.nn.Module = refs[0] if len(refs) == 1 else Ensemble(refs, sizes, cfg.ensemble, resize)
        self.grad_model: torch.nn.Module = fast[0] if len(fast) == 1 else Ensemble(fast, sizes, cfg.ensemble, resize)
        self.names = imagenet_names()
        self.specs = cfg.specs()
        self.settings = cfg.settings()
        self.fixed_target = cfg.target_class()

    # -- helpers ----------------------------------------------------------
    def to_tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
        return x.to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def top5(self, arrays: list[np.ndarray]) -> list[dict[str, list[list[float]]]]:
        """Each source model's top-5 per image (images at the first model's size, resized for the others)."""
        x = self.to_tensor(arrays)
        logits = self.model.members(x) if isinstance(self.model, Ensemble) else [self.model(x)]
        out: list[dict[str, list[list[float]]]] = [{} for _ in arrays]
        for name, z in zip(self.cfg.source, logits):
            p, i = z.float().softmax(dim=1).topk(5, dim=1)
            for row, ii, pp in zip(out, i.tolist(), p.tolist()):
                row[name] = [[int(c), round(float(q), 6)] for c, q in zip(ii, pp)]
        return out

    @torch.inference_mode()
    def top1(self, arrays: list[np.ndarray]) -> list[int]:
        return self.model(self.to_tensor(arrays)).argmax(dim=1).tolist()

    def write_png(self, rel: str, arr: np.ndarray) -> str:
        data = _png_bytes(arr)
        atomic_write_bytes(resolve_inside(self.out, rel), data)
        return sha256_bytes(data)

    # -- stages -----------------------------------------------------------
    def clean_images(self, photos: list[SourcePhoto], batch: Batch) -> dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]]:
        """Resize/crop every photo to the (first) source model's input size and save it once."""
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
            arrays = [c[1] for c in chunk]
            for (ph, arr, rel, sha), t5, top in zip(chunk, self.top5(arrays), self.top1(arrays)):
                if ph.label is not None:
                    label = Label(ph.label, self.names[ph.label], ph.label_source or "filename")
                else:
                    label = Label(int(top), self.names[int(top)], "clean-prediction")
                out[ph.key] = (arr, ImageRecord(rel, sha, t5), label, SourceImage(ph.file, ph.sha256(), ph.origin))
        return out

    def run(self, photos: list[SourcePhoto], batch: Batch) -> Batch:
        cleans = self.clean_images(photos, batch)
        done = {it.id: it for it in batch.items if self._intact(it)}
        batch.items = list(done.values())
        save_batch(self.out, batch)
        jobs = [(ph, s, e) for s in self.specs for e in self.cfg.eps for ph in photos if self.item_id(ph, s, e) not in done]
        tick = self.progress("crafting", len(jobs)) if self.progress and jobs else (lambda n: None)
        for spec in self.specs:
            attack = build_attack(spec, self.settings)
            for eps in self.cfg.eps:
                todo = [ph for ph in photos if self.item_id(ph, spec, eps) not in done]
                for start in range(0, len(todo), self.cfg.batch_size):
                    chunk = todo[start : start + self.cfg.batch_size]
                    self.attack_chunk(chunk, cleans, spec, attack, eps, batch)
                    save_batch(self.out, batch)
                    tick(len(chunk))
        order = [s.label for s in self.specs]
        batch.items.sort(key=lambda it: (order.index(it.attack) if it.attack in order else len(order), self.cfg.eps.index(it.eps) if it.eps in self.cfg.eps else 0, it.id))
        save_batch(self.out, batch)
        return batch

    def targets(self, x: torch.Tensor, y: torch.Tensor, seeds: list[int]) -> torch.Tensor | None:
        """Per-image target classes of a targeted run (``--target``), else ``None``."""
        mode = self.cfg.target
        if mode is None:
            return None
        if mode == "ll":
            return least_likely(self.model, x)
        if mode == "random":
            return torch.tensor([random_target(s, int(t)) for s, t in zip(seeds, y.tolist())], device=x.device)
        return torch.full_like(y, int(self.fixed_target))  # type: ignore[arg-type]

    def attack_chunk(self, chunk: list[SourcePhoto], cleans: dict, spec: AttackSpec, attack: Attack, eps: float, batch: Batch) -> None:  # type: ignore[type-arg]
        ids = [self.item_id(ph, spec, eps) for ph in chunk]
        seeds = [item_seed(self.cfg.seed, i) for i in ids]
        x = self.to_tensor([cleans[ph.key][0] for ph in chunk])
        y = torch.tensor([cleans[ph.key][2].index for ph in chunk], device=self.device)
        target = self.targets(x, y, seeds)
        res = attack.attack(self.grad_model, x, y, eps, target=target, generator=ItemRng.from_seeds(seeds), check_model=self.model)
        adv_np = res.adv.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        saved = []
        for item_id, arr in zip(ids, adv_np):
            rel = f"images/{item_id}.png"
            sha = self.write_png(rel, arr)
            saved.append((rel, sha, _read_png(resolve_inside(self.out, rel))))
        base = attack.params(eps)
        goal_labels = res.goal.labels.tolist()
        for i, (ph, item_id, s, (rel, sha, arr), t5) in enumerate(zip(chunk, ids, seeds, saved, self.top5([v[2] for v in saved]))):
            _, clean_rec, label, src = cleans[ph.key]
            params = {**base, "repair_steps": int(res.repair_steps[i])}
            if target is None and res.goal.targeted:
                params["ll_class"] = int(goal_labels[i])  # the ll attack's own target
            if target is not None:
                params["target_mode"] = self.cfg.target if self.cfg.target in TARGET_MODES else "class"
            batch.items.append(
                Item(
                    id=item_id, source=src, label=label, attack=spec.label, eps=float(eps), seed=s,
                    clean=clean_rec, adv=ImageRecord(rel, sha, t5),
                    target=int(goal_labels[i]) if target is not None else None, params=params,
                )
            )

    def item_id(self, ph: SourcePhoto, spec: AttackSpec, eps: float) -> str:
        return item_id(ph.key, spec, eps, self.cfg.target, self.fixed_target)

    def _intact(self, it: Item) -> bool:
        for rec in (it.clean, it.adv):
            p = resolve_inside(self.out, rec.path)
            if not p.is_file() or sha256_file(p) != rec.sha256:
                log.warning("%s: %s is missing or changed; it will be crafted again", it.id, rec.path)
                return False
        return True


@lru_cache(maxsize=4)
def _models(name: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The reference model and its folded gradient copy, loaded once per process (both frozen)."""
    ref = load_model(name, device)
    return ref, gradient_model(ref)


def item_id(key: str, spec: AttackSpec, eps: float, target: str | None = None, fixed: int | None = None) -> str:
    """``<photo>-<attack>-e<ε>[-t<target>]``, e.g. ``foolbox-00-mifgsm-di-e16-tll``."""
    base = f"{key}-{spec.slug}-e{eps:g}"
    if target is None:
        return base
    return f"{base}-t{target if target in TARGET_MODES else fixed}"


def random_target(seed: int, label: int, classes: int = 1000) -> int:
    """A class drawn uniformly from those other than ``label``, from the item's seed."""
    t = int(np.random.default_rng([seed, 1]).integers(classes - 1))
    return t + 1 if t >= label else t


def craft_batch(out: Path, cfg: CraftConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> Batch:
    """Craft (or resume crafting) the batch in ``out`` and return its manifest."""
    cfg.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    photos = find_photos(cfg.images)
    if cfg.limit is not None:
        photos = photos[: cfg.limit]
    resolved = cfg.resolved()
    if (out / MANIFEST).is_file():
        batch = load_batch(out)
        defaults = CraftConfig().resolved()
        old = {k: batch.config.get(k, defaults.get(k)) for k in IDENTITY_KEYS}
        new = {k: resolved.get(k) for k in IDENTITY_KEYS}
        if old != new:
            diff = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in IDENTITY_KEYS if old[k] != new[k])
            raise UserError(f"{out}: holds a batch made with other options ({diff}); use a new --out directory")
        log.info("resuming batch %s", batch.batch_id)
        remove_stale_temps(out, (MANIFEST,))  # half-written files of a killed run
        remove_stale_temps(out / "images")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--out {out}: cannot create the batch folder ({e.strerror or e}); choose a writable folder") from None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        batch = Batch(batch_id=f"b{stamp}-{secrets.token_hex(4)}", config={})
    crafter = _Crafter(out, cfg, progress)
    batch.config = {**resolved, "device": str(crafter.device), "torch": torch.__version__}
    batch.models = [
        ModelRecord(e.name, e.arch, "source", weights_sha256(e.name), e.weights_package, e.spec.to_dict()) for e in crafter.entries
    ]
    torch.manual_seed(cfg.seed)
    return crafter.run(photos, batch)


def iter_items(batch: Batch, attack: str | None = None) -> Iterable[Item]:
    return (it for it in batch.items if attack is None or it.attack == attack)
