"""A face batch from a resolved craft config: what ``photoproof craft`` and ``photoproof.craft`` run for a face
detector source (``mtcnn`` or a user's ``module:factory``, docs/detectors.md).

The photos of ``--images``, the truth (``--truth`` checked against them before any
model loads), the source, then the sticker (``patch[+eot]``, :mod:`craft.detectors.patchbatch`)
and the ε-bounded vanishing attacks (:mod:`craft.detectors.job`) into one batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from contracts.errors import UserError
from contracts.manifest import Batch
from craft.attacks import UNIVERSAL
from craft.attacks.eot import EOT
from craft.config import CraftConfig
from craft.detectors.facepatch import DEFAULT_PLACE, FacePatchSettings
from craft.detectors.job import craft_faces, truth_names
from craft.detectors.patchbatch import craft_face_patch
from craft.detectors.photos import find_face_photos, photo_candidates
from craft.sources import load_face_source

Progress = Callable[[str, int], Callable[[int], None]]  # progress(label, total) -> tick(n)


def sticker_settings(cfg: CraftConfig) -> FacePatchSettings:
    """The sticker's settings from ``--patch-area`` (a share of the face box), ``--patch-shape``, ``--steps``,
    ``--lr`` and ``--patch-place`` (default: by MTCNN's landmarks for ``mtcnn``, by the box for a source that
    gives no landmarks)."""
    side = math.sqrt(cfg.patch_area) if cfg.patch_shape == "square" else 2 * math.sqrt(cfg.patch_area / math.pi)
    place = cfg.patch_place or (DEFAULT_PLACE if cfg.source[0] == "mtcnn" else "box")
    return FacePatchSettings(side_frac=side, shape=cfg.patch_shape, steps=cfg.steps or 100, lr=cfg.lr, place=place)


def craft_face_batch(out: Path, cfg: CraftConfig, progress: Progress | None = None) -> Batch:
    """Craft ``cfg`` (a face detector source) into ``out``; ``progress(label, total)`` gives each phase's ticker."""
    photos = find_face_photos(cfg.images, cfg.limit)
    if not photos:
        raise UserError(f"--images {cfg.images}: no photo to craft")
    cand = photo_candidates(cfg.images) if cfg.truth is not None else None
    if cfg.truth is not None:
        truth_names(cfg.truth, photos, cand, f"--images {cfg.images}")  # every name known, every photo labelled
    det = load_face_source(cfg.source[0])
    name = cfg.source[0]
    specs = cfg.specs()
    batch: Batch | None = None
    for spec in (s for s in specs if s.name in UNIVERSAL):
        s = sticker_settings(cfg)
        eot = EOT(cfg.profile, cfg.eot_samples, cfg.eot_tile_px) if spec.eot else None
        tick = progress(f"face sticker on {name} ({spec.label})", s.steps) if progress else None
        batch = craft_face_patch(out, photos, s, seed=cfg.seed, eot=eot, mtcnn=det, config=cfg.resolved(),
                                 tick=tick, truth=cfg.truth, candidates=cand)  # fmt: skip
    rest = [s for s in specs if s.name not in UNIVERSAL]
    if rest:
        total = len(photos) * len(rest) * len(cfg.eps)
        tick = progress(f"vanishing attack on {name}", total) if progress else None
        batch = craft_faces(out, photos, rest, cfg.eps, seed=cfg.seed, settings=cfg.settings(), mtcnn=det,
                            config=cfg.resolved(), tick=tick, truth=cfg.truth, candidates=cand)  # fmt: skip
    if batch is None:
        raise ValueError("--attack: give at least one attack")
    return batch
