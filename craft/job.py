"""The crafting job: photos in, a batch directory out.

Resumable and atomic: clean PNGs and adversarial PNGs are written to temporary
names and renamed, and each mini-batch's items are appended to the craft
journal (:mod:`contracts.journal`, fsync'd) once their PNGs are on disk; the
journal is folded into ``batch.json`` once, at the end (also after Ctrl-C), so
bookkeeping grows linearly with the items and a kill at any moment leaves a
consistent batch. Re-running the same command skips every item whose files
exist with the recorded sha256. Under torchrun the work is shared between
processes (:mod:`craft.distributed`). A universal attack (``--attack patch``)
is a stage of its own (:mod:`craft.patchjob`), run by rank 0 alone after its
share of the per-item attacks; its items go through the same journal.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from contracts.batchdir import IMAGES, MANIFEST, image_rel
from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.images import read_png_array
from contracts.journal import JournalWriter, journal_files
from contracts.manifest import Batch, ImageRecord, Item, Label, SourceImage, compact_batch, load_batch
from contracts.paths import atomic_write_bytes, remove_stale_temps, resolve_inside, sha256_bytes, sha256_file
from craft.attacks import UNIVERSAL, Attack, AttackSpec, ItemRng, build_attack, least_likely
from craft.attacks.eot import check_eot_memory
from craft.attacks.rng import item_seed
from craft.config import TARGET_MODES, CraftConfig
from craft.distributed import Dist
from craft.ensemble import Ensemble
from craft.fastgrad import gradient_model
from craft.images import SourcePhoto, find_photos, load_rgb
from craft.outdir import check_identity, fold_journal, lock_out
from craft.patchjob import craft_patch
from craft.sources import ModelOptions, SourceModel, load_source
from craft.zoo import resolve_device

log = logging.getLogger(__name__)


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class _Crafter:
    def __init__(
        self,
        out: Path,
        cfg: CraftConfig,
        progress: Callable[[str, int], Callable[[int], None]] | None,
        dist: Dist | None = None,
    ) -> None:
        dist = Dist() if dist is None else dist
        self.out = out
        self.cfg = cfg
        self.dist = dist
        self.device = resolve_device(dist.device(cfg.device))
        self.progress = progress
        if cfg.amp and self.device.type != "cuda":
            log.warning("--amp: bf16 autocast is used on CUDA only; crafting in fp32 on %s", self.device)
        pairs = [_models(s, str(self.device), cfg.model_options()) for s in cfg.source]
        self.sources: list[SourceModel] = [p[0] for p in pairs]
        self.entry = self.sources[0]  # its spec decides the size and crop of every saved image
        for sm in self.sources[1:]:
            if sm.classes != self.entry.classes:
                raise UserError(
                    f"--source {sm.ref}: its {len(sm.classes)} classes are not the label set of {self.entry.ref} "
                    f"({len(self.entry.classes)} classes); an ensemble's members must share one label set"
                )
        refs, fast = [p[0].module for p in pairs], [p[1] for p in pairs]
        sizes = [sm.spec.input_size for sm in self.sources]
        resize = self.entry.spec.resize if self.entry.spec.resize in ("bilinear", "bicubic") else "bicubic"
        # The reference model(s) make every recorded decision; the folded copies compute gradients.
        self.members = refs
        self.model: torch.nn.Module = refs[0] if len(refs) == 1 else Ensemble(refs, sizes, cfg.ensemble, resize)
        self.grad_model: torch.nn.Module = fast[0] if len(fast) == 1 else Ensemble(fast, sizes, cfg.ensemble, resize)
        self.names = self.entry.classes
        self.specs = cfg.specs()
        self.settings = cfg.settings()
        self.fixed_target = cfg.target_class(self.names)
        if any(s.eot and s.name not in UNIVERSAL for s in self.specs):
            check_eot_memory(cfg.eot_samples, cfg.batch_size, max(sizes), self.device, self.grad_model)

    # -- helpers ----------------------------------------------------------
    def to_tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
        return x.to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def top5(self, arrays: list[np.ndarray]) -> list[dict[str, list[list[float]]]]:
        """Each source model's top-5 per image (images at the first model's size, resized for the others)."""
        x = self.to_tensor(arrays)
        logits = self.model.members(x) if isinstance(self.model, Ensemble) else [self.model(x)]
        return top5_records([sm.name for sm in self.sources], logits)

    @torch.inference_mode()
    def top1(self, arrays: list[np.ndarray]) -> list[int]:
        return self.model(self.to_tensor(arrays)).argmax(dim=1).tolist()

    def write_png(self, rel: str, arr: np.ndarray) -> str:
        data = _png_bytes(arr)
        atomic_write_bytes(resolve_inside(self.out, rel), data)
        return sha256_bytes(data)

    # -- stages -----------------------------------------------------------
    def clean_images(
        self, photos: list[SourcePhoto], batch: Batch
    ) -> dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]]:
        """Resize/crop every photo to the (first) source model's input size and save it once."""
        known = {it.source.file: it for it in batch.items}
        out: dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]] = {}
        pending: list[tuple[SourcePhoto, np.ndarray, str, str]] = []
        for ph in photos:
            rel = image_rel(f"{ph.key}-clean.png")
            path = resolve_inside(self.out, rel)
            prev = known.get(ph.file)
            if prev is not None and path.is_file() and sha256_file(path) == prev.clean.sha256:
                out[ph.key] = (read_png_array(path), prev.clean, prev.label, prev.source)
                continue
            arr = self.entry.spec.resize_center_crop(load_rgb(ph))
            sha = self.write_png(rel, arr)
            pending.append((ph, read_png_array(path), rel, sha))
        for start in range(0, len(pending), self.cfg.batch_size):
            chunk = pending[start : start + self.cfg.batch_size]
            arrays = [c[1] for c in chunk]
            for (ph, arr, rel, sha), t5, top in zip(chunk, self.top5(arrays), self.top1(arrays), strict=True):
                if ph.label is not None:
                    label = Label(ph.label, self.names[ph.label], ph.label_source or "filename")
                else:
                    label = Label(int(top), self.names[int(top)], "clean-prediction")
                out[ph.key] = (arr, ImageRecord(rel, sha, t5), label, SourceImage(ph.file, ph.sha256(), ph.origin))
        return out

    def run(self, photos: list[SourcePhoto], batch: Batch) -> Batch:
        """Craft this process's share of what ``batch`` lacks; items go to the journal as they finish.

        ``batch`` holds only intact items (see :meth:`open`). Mini-batch ``k`` of the job
        is this process's when ``self.dist.mine(k)`` (all of them in a one-process run).
        """
        cleans = self.clean_images(photos, batch)
        done = {it.id: it for it in batch.items}
        chunks: list[tuple[AttackSpec, float, list[SourcePhoto]]] = []
        per_item = [s for s in self.specs if s.name not in UNIVERSAL]
        for spec in per_item:
            for eps in self.cfg.eps:
                todo = [ph for ph in photos if self.item_id(ph, spec, eps) not in done]
                chunks += [
                    (spec, eps, todo[i : i + self.cfg.batch_size]) for i in range(0, len(todo), self.cfg.batch_size)
                ]
        mine = [c for k, c in enumerate(chunks) if self.dist.mine(k)]
        attacks = {spec: build_attack(spec, self.settings) for spec in per_item}

        def steps(spec: AttackSpec, eps: float) -> int:  # gradient steps per image (1 for a one-step attack)
            return int(getattr(attacks[spec], "n_steps", lambda e: 1)(eps))

        # Progress counts image-steps: every gradient step of every image (n_steps(ε) per image).
        total = sum(steps(spec, eps) * len(chunk) for spec, eps, chunk in mine)
        what = "crafting (image-steps)"
        label = f"{what}, rank {self.dist.rank}'s share of {self.dist.world} processes" if self.dist.active else what
        tick = self.progress(label, total) if self.progress and total else (lambda n: None)
        with JournalWriter(self.out, self.dist.rank) as journal:
            for spec, eps, chunk in mine:
                n0, ticked = len(batch.items), [0]
                expected = steps(spec, eps) * len(chunk)

                def on_step(n: int = len(chunk), ticked: list[int] = ticked, expected: int = expected) -> None:
                    n = min(n, expected - ticked[0])
                    ticked[0] += n
                    tick(n)

                attacks[spec].on_step = on_step
                self.attack_chunk(chunk, cleans, spec, attacks[spec], eps, batch)
                journal.append(it.to_dict() for it in batch.items[n0:])
                tick(expected - ticked[0])  # a one-step attack (or one that stopped early) completes its share here
            # A patch is optimised over all the images at once: rank 0 runs the stage while
            # the other ranks wait at craft_batch's barrier (which does not time out).
            for spec in self.specs:
                if spec.name in UNIVERSAL and self.dist.leader:
                    craft_patch(self, photos, cleans, spec, batch, done, journal)
        return batch

    def open(self, resolved: dict[str, object]) -> None:
        """Rank 0, before anyone crafts: create or resume the batch, keeping only intact items,
        and fold any journal left by a killed run into ``batch.json``."""
        if (self.out / MANIFEST).is_file():
            folded = journal_files(self.out)
            batch = load_batch(self.out)
            batch.items = [it for it in batch.items if self._intact(it)]
            log.info("resuming batch %s (%d items done)", batch.batch_id, len(batch.items))
            remove_stale_temps(self.out, (MANIFEST,))  # half-written files of a killed run (the other ranks wait)
            remove_stale_temps(self.out / IMAGES)
        else:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError(
                    f"--out {self.out}: cannot create the batch folder ({e.strerror or e}); choose a writable folder"
                ) from None
            stamp = datetime.now(UTC).strftime("%Y%m%d")
            batch, folded = Batch(batch_id=f"b{stamp}-{secrets.token_hex(4)}", config={}), []
        batch.config = {**resolved, "device": str(self.device), "torch": torch.__version__}
        batch.models = [sm.record("source") for sm in self.sources]
        batch.classes = None if self.names == imagenet_names() else list(self.names)
        compact_batch(self.out, batch, folded)

    def finish(self) -> Batch:
        """Rank 0, once every rank is done: fold the journals into ``batch.json``, items in job order."""
        return fold_journal(self.out, [s.label for s in self.specs], self.cfg.eps)

    def targets(self, x: torch.Tensor, y: torch.Tensor, seeds: list[int]) -> torch.Tensor | None:
        """Per-image target classes of a targeted run (``--target``), else ``None``."""
        mode = self.cfg.target
        if mode is None:
            return None
        if mode == "ll":
            return least_likely(self.model, x)
        if mode == "random":
            return torch.tensor(
                [random_target(s, int(t), len(self.names)) for s, t in zip(seeds, y.tolist(), strict=True)],
                device=x.device,
            )
        if self.fixed_target is None:  # CraftConfig.validate parsed --target into a class
            raise RuntimeError(f"--target {mode!r} was not resolved to a class")
        return torch.full_like(y, self.fixed_target)

    def attack_chunk(
        self,
        chunk: list[SourcePhoto],
        cleans: dict[str, tuple[np.ndarray, ImageRecord, Label, SourceImage]],
        spec: AttackSpec,
        attack: Attack,
        eps: float,
        batch: Batch,
    ) -> None:
        ids = [self.item_id(ph, spec, eps) for ph in chunk]
        seeds = [item_seed(self.cfg.seed, i) for i in ids]
        x = self.to_tensor([cleans[ph.key][0] for ph in chunk])
        y = torch.tensor([cleans[ph.key][2].index for ph in chunk], device=self.device)
        target = self.targets(x, y, seeds)
        res = attack.attack(
            self.grad_model, x, y, eps, target=target, generator=ItemRng.from_seeds(seeds), check_model=self.model
        )
        adv_np = res.adv.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        saved = []
        for item_id, arr in zip(ids, adv_np, strict=True):
            rel = image_rel(f"{item_id}.png")
            sha = self.write_png(rel, arr)
            saved.append((rel, sha, read_png_array(resolve_inside(self.out, rel))))
        base = attack.params(eps)
        goal_labels = res.goal.labels.tolist()
        for i, (ph, item_id, s, (rel, sha, _arr), t5) in enumerate(
            zip(chunk, ids, seeds, saved, self.top5([v[2] for v in saved]), strict=True)
        ):
            _, clean_rec, label, src = cleans[ph.key]
            params = {**base, "repair_steps": int(res.repair_steps[i])}
            if target is None and res.goal.targeted:
                params["ll_class"] = int(goal_labels[i])  # the ll attack's own target
            if target is not None:
                params["target_mode"] = self.cfg.target if self.cfg.target in TARGET_MODES else "class"
            batch.items.append(
                Item(
                    id=item_id,
                    source=src,
                    label=label,
                    attack=spec.label,
                    eps=float(eps),
                    seed=s,
                    clean=clean_rec,
                    adv=ImageRecord(rel, sha, t5),
                    target=int(goal_labels[i]) if target is not None else None,
                    params=params,
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


def top5_records(names: list[str], logits: list[torch.Tensor]) -> list[dict[str, list[list[float]]]]:
    """Per image, each source model's top-5 as recorded: ``{name: [[class, p], ...]}`` keyed by the model's
    name (:func:`craft.sources.source_name`), p to 6 places."""
    out: list[dict[str, list[list[float]]]] = [{} for _ in range(len(logits[0]))]
    for name, z in zip(names, logits, strict=True):
        p, i = z.float().softmax(dim=1).topk(5, dim=1)
        for row, ii, pp in zip(out, i.tolist(), p.tolist(), strict=True):
            row[name] = [[int(c), round(float(q), 6)] for c, q in zip(ii, pp, strict=True)]
    return out


_MODELS: dict[tuple[str, str, str], tuple[SourceModel, torch.nn.Module]] = {}


def _models(ref: str, device: str, opts: ModelOptions) -> tuple[SourceModel, torch.nn.Module]:
    """The source model and its folded gradient copy, loaded once per process (both frozen)."""
    from craft.sources import IN_MEMORY

    key = (
        ref,
        device,
        f"{opts.key()}|{id(IN_MEMORY.get(ref))}",
    )  # a module handed over again under the same name is a new model
    if key not in _MODELS:
        if len(_MODELS) >= 4:
            _MODELS.pop(next(iter(_MODELS)))
        sm = load_source(ref, opts, device)
        _MODELS[key] = (sm, gradient_model(sm.module))
    return _MODELS[key]


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


def craft_batch(
    out: Path, cfg: CraftConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None
) -> Batch:
    """Craft (or resume crafting) the batch in ``out`` and return its manifest."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    resolved = cfg.resolved()
    dist = Dist.from_env()
    if (out / MANIFEST).is_file():  # every rank checks before any writes, so all agree
        check_identity(out, resolved)
    lock = lock_out(out) if dist.leader else None
    dist.start()
    try:
        crafter = _Crafter(out, cfg, progress, dist)  # loads the models: their label set reads the photos' labels
        photos = find_photos(cfg.images, crafter.names)
        if cfg.limit is not None:
            photos = photos[: cfg.limit]
        if dist.leader:
            crafter.open(resolved)
        dist.barrier()
        batch = load_batch(out)
        torch.manual_seed(cfg.seed)
        if not dist.active:
            try:
                crafter.run(photos, batch)
            finally:  # one process: fold in what is done, also after Ctrl-C or an error
                batch = crafter.finish()
            return batch
        crafter.run(photos, batch)
        dist.barrier()  # every rank's journal is complete
        if dist.leader:
            crafter.finish()
        dist.barrier()
        return load_batch(out)
    finally:
        dist.stop()
        if lock is not None:
            lock.release()
