"""The patch stage of a crafting job: one universal patch per run, then one item per photo.

Unlike the per-item attacks, a patch (:mod:`craft.attacks.patch`) is optimised
over all the batch's images at once, so it runs as a stage of its own:

1. ``patches/<name>.state.pt`` holds the optimisation's checkpoint (every 10
   steps, atomically); a killed run resumes from it.
2. ``patches/<name>.png`` (8-bit) and ``patches/<name>.json`` (settings, sha256,
   loss curve, training items) are written when it finishes; a re-run that finds
   them with a matching sha256 skips the optimisation.
3. Each item is the saved clean PNG with the saved patch PNG pasted at a
   placement drawn from the item's seed (nominal size, random location and
   rotation), recorded in the item's ``params.patch`` so that
   :func:`craft.attacks.patch.paste_uint8` replays it exactly.

Items have ``eps`` 255: inside the patch the change is unbounded. They are
appended to the craft journal (:mod:`contracts.journal`) chunk by chunk, like
every attack's, and folded into ``batch.json`` at the end; a re-optimised patch
re-records its items under the same ids, and the later record wins.

Under torchrun (:mod:`craft.distributed`) the stage runs on rank 0 alone, after
its share of the per-item attacks: the optimisation is one job over all the
images, and the other ranks wait at the final barrier.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from contracts.batchdir import image_rel, patch_rel
from contracts.errors import UserError
from contracts.images import read_png_array
from contracts.journal import JournalWriter
from contracts.manifest import Batch, ImageRecord, Item
from contracts.paths import atomic_write_bytes, resolve_inside, sha256_file
from craft.attacks.eot import EOT, check_eot_memory
from craft.attacks.patch import AdversarialPatch, PatchState, Placement, paste_uint8, sample_placements
from craft.attacks.rng import item_seed
from craft.attacks.spec import AttackSpec

if TYPE_CHECKING:
    from craft.config import CraftConfig
    from craft.images import SourcePhoto

log = logging.getLogger(__name__)


class Crafter(Protocol):
    """What the patch stage uses of the crafting job (``craft.job``): its models, options and writers."""

    out: Path
    cfg: CraftConfig
    device: torch.device
    fixed_target: int | None
    grad_model: torch.nn.Module
    progress: Callable[[str, int], Callable[[int], None]] | None

    def to_tensor(self, arrays: list[np.ndarray]) -> torch.Tensor: ...

    def top5(self, arrays: list[np.ndarray]) -> list[dict[str, list[list[float]]]]: ...

    def write_png(self, rel: str, arr: np.ndarray) -> str: ...


PATCH_EPS = 255.0
DEFAULT_STEPS = 200


def patch_name(spec: AttackSpec, cfg: CraftConfig, fixed: int | None) -> str:
    """``patch[-eot]-<shape>-a<area %>[-t<class>]``, e.g. ``patch-eot-circle-a10-t859``."""
    base = f"{spec.slug}-{cfg.patch_shape}-a{100 * cfg.patch_area:g}"
    return base if fixed is None else f"{base}-t{fixed}"


def build_patch(spec: AttackSpec, cfg: CraftConfig) -> AdversarialPatch:
    """The patch optimiser for ``spec`` (``patch`` or ``patch+eot``) with the run's options."""
    if spec.di:  # CraftConfig.check_patch refuses it first
        raise UserError("--attack patch+di: input diversity is not used with the patch (it has its own placement EOT)")
    transform = EOT(cfg.profile, cfg.eot_samples, cfg.eot_tile_px) if spec.eot else None
    return AdversarialPatch(
        area=cfg.patch_area, shape=cfg.patch_shape, steps=cfg.steps or DEFAULT_STEPS, lr=cfg.lr, transform=transform
    )


def optimise_patch(
    crafter: Crafter,
    attack: AdversarialPatch,
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    train: list[str],
    target: int | None,
    progress: Callable[[str, int], Callable[[int], None]] | None,
) -> tuple[str, str, np.ndarray]:
    """Run (or resume, or skip) the optimisation; return the patch PNG's path, sha256 and pixels."""
    out = crafter.out
    rel_png, rel_json, rel_state = patch_rel(name, ".png"), patch_rel(name, ".json"), patch_rel(name, ".state.pt")
    png, meta, ckpt = (resolve_inside(out, r) for r in (rel_png, rel_json, rel_state))
    if png.is_file() and meta.is_file():
        try:
            rec = json.loads(meta.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = {}
        if rec.get("sha256") == sha256_file(png):
            log.info("patch %s: already optimised", name)
            return rel_png, rec["sha256"], read_png_array(png)
        log.warning("%s: does not match %s; optimising the patch again", png, meta)
    state = PatchState.load(ckpt) if ckpt.is_file() else None
    if state is not None:
        log.info("patch %s: resuming at step %d of %d", name, state.step, attack.steps)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    left = attack.steps - (state.step if state else 0)
    tick = progress(f"patch {name}", left) if progress and left > 0 else None
    seed = crafter.cfg.seed
    res = attack.fit(
        crafter.grad_model, x, y, target=target, seed=seed, state=state, checkpoint=lambda s: s.save(ckpt), on_step=tick
    )
    arr = attack.to_uint8(res.patch)
    sha = crafter.write_png(rel_png, arr)
    record: dict[str, Any] = {
        "name": name,
        "path": rel_png,
        "sha256": sha,
        "seed": seed,
        "target": target,
        "train_items": train,
        "params": attack.params(),
        "side_px": int(arr.shape[0]),
        "area_covered": round(  # what the drawn patch covers; --patch-area is what was asked
            arr.shape[0] ** 2 * (1.0 if attack.shape == "square" else math.pi / 4) / x.shape[-1] ** 2, 6
        ),
        "loss_first": res.losses[:1],
        "loss_last": res.losses[-1:],
        "losses": res.losses,
    }
    atomic_write_bytes(meta, json.dumps(record, indent=1).encode())
    return rel_png, sha, read_png_array(png)


def craft_patch(
    crafter: Crafter,
    photos: list[SourcePhoto],
    cleans: dict[str, Any],
    spec: AttackSpec,
    batch: Batch,
    done: dict[str, Item],
    journal: JournalWriter,
) -> None:
    """The patch stage for ``spec``: optimise (or resume) the patch, then paste it into every photo's clean image.

    ``done`` holds the intact items already recorded; the new items are appended to
    ``batch.items`` and to ``journal``, one mini-batch at a time.
    """
    cfg = crafter.cfg
    fixed = crafter.fixed_target
    name = patch_name(spec, cfg, fixed)
    attack = build_patch(spec, cfg)
    ids = {ph.key: f"{ph.key}-{name}" for ph in photos}
    x = crafter.to_tensor([cleans[ph.key][0] for ph in photos])
    y = torch.tensor([cleans[ph.key][2].index for ph in photos], device=crafter.device)
    if spec.eot:  # every photo, times its placements, times the EOT samples, in one pass
        check_eot_memory(cfg.eot_samples, len(photos) * attack.copies, x.shape[-1], crafter.device, crafter.grad_model)
    rel_png, sha_png, patch = optimise_patch(
        crafter, attack, name, x, y, [ids[ph.key] for ph in photos], fixed, crafter.progress
    )
    todo = [
        ph
        for ph in photos
        if ids[ph.key] not in done or done[ids[ph.key]].params.get("patch", {}).get("sha256") != sha_png
    ]
    size = x.shape[-1]
    base = attack.params()
    for start in range(0, len(todo), cfg.batch_size):
        chunk = todo[start : start + cfg.batch_size]
        n0 = len(batch.items)
        saved = []
        for ph in chunk:
            iid = ids[ph.key]
            s = item_seed(cfg.seed, iid)
            drawn = sample_placements(
                1, size, patch.shape[0], torch.Generator().manual_seed(s), (1.0, 1.0), attack.max_angle_deg
            )[0]
            pl = Placement.from_dict(drawn.to_dict())  # paste exactly what is recorded (rounded), so it replays
            arr = paste_uint8(cleans[ph.key][0], patch, attack.shape, pl)
            rel = image_rel(f"{iid}.png")
            saved.append(
                (ph, iid, s, pl, rel, crafter.write_png(rel, arr), read_png_array(resolve_inside(crafter.out, rel)))
            )
        for (ph, iid, s, pl, rel, sha, _arr), t5 in zip(saved, crafter.top5([v[-1] for v in saved]), strict=True):
            _, clean_rec, label, src = cleans[ph.key]
            params = {**base, "patch": {"path": rel_png, "sha256": sha_png, "placement": pl.to_dict()}}
            if fixed is not None:
                params["target_mode"] = "class"
            batch.items.append(
                Item(
                    id=iid,
                    source=src,
                    label=label,
                    attack=spec.label,
                    eps=PATCH_EPS,
                    seed=s,
                    clean=clean_rec,
                    adv=ImageRecord(rel, sha, t5),
                    target=fixed,
                    params=params,
                )
            )
        journal.append(it.to_dict() for it in batch.items[n0:])


def replay_item(batch_dir: Path, item: Item) -> np.ndarray:
    """Paste the item's recorded patch at its recorded placement onto its clean PNG (what craft saved)."""
    rec = item.params.get("patch")
    if not isinstance(rec, dict):
        raise UserError(f"item {item.id}: has no recorded patch placement (not a patch item)")
    clean = read_png_array(resolve_inside(batch_dir, item.clean.path))
    patch = read_png_array(resolve_inside(batch_dir, str(rec["path"])))
    return paste_uint8(clean, patch, str(item.params.get("shape", "square")), Placement.from_dict(rec["placement"]))
