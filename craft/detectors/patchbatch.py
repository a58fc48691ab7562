"""Craft a face batch with the printable sticker (``craft --source mtcnn --attack patch[+eot]``).

One universal sticker is optimised over every photo's largest face
(:mod:`craft.detectors.facepatch`), written as ``patches/<name>.png`` with its record
``patches/<name>.json``; each photo with a face becomes an item whose adversarial PNG
is the clean PNG with the sticker pasted by its face's box or landmarks, recorded in
``params.patch`` (``path``, ``sha256``, ``placement``, ``place`` and, by landmarks, the
five ``landmarks``; :mod:`contracts.facesticker` reads them) as a classifier patch item's is,
so ``photoproof print --patch-mm`` prints the sticker on a card of its own. Items
have ``eps`` 255 (inside the sticker the change is unbounded) and the truth faces of
the vanishing attack's items. A re-run whose sticker PNG matches its record skips the
optimisation.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contracts.batchdir import MANIFEST, image_rel, patch_rel
from contracts.images import read_png_array
from contracts.manifest import Batch, Item, SourceImage, Truth, load_batch, save_batch
from contracts.paths import atomic_write_bytes, resolve_inside, sha256_file
from craft.attacks.eot import EOT
from craft.attacks.patch import Placement, paste_uint8
from craft.detectors.facepatch import FacePatchSettings, area_of_face, face_placement, fit_face_patch, largest_index
from craft.detectors.facepatch import to_uint8 as patch_uint8
from craft.detectors.job import FACE, _png, _save, mtcnn_record, square
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import FacePhoto

log = logging.getLogger(__name__)

PATCH_EPS = 255.0


def sticker_name(eot: bool, s: FacePatchSettings) -> str:
    """``patch[-eot]-face-<shape>-s<side %>[-lm]``, e.g. ``patch-eot-face-square-s50`` (``-lm``: by landmarks)."""
    lm = "-lm" if s.place == "landmarks" else ""
    return f"patch{'-eot' if eot else ''}-face-{s.shape}-s{round(100 * s.side_frac)}{lm}"


def sticker_record(pl: Placement, s: FacePatchSettings, landmarks: np.ndarray | None) -> dict[str, Any]:
    """``params.patch``'s placement part: the placement, how it was found and, by landmarks, the five points used
    (``[[x, y], ...]``: eyes, nose, mouth corners; read by :func:`contracts.facesticker.sticker_of`)."""
    out: dict[str, Any] = {"placement": pl.to_dict(), "place": s.place}
    if s.place == "landmarks" and landmarks is not None:
        out["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in np.reshape(landmarks, (5, 2))]
    return out


def _detect(det: MTCNN, rgb: np.ndarray) -> Any:
    return det.detect(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float())[0]


def craft_face_patch(
    out: Path,
    photos: Sequence[FacePhoto],
    settings: FacePatchSettings,
    *,
    seed: int = 0,
    eot: EOT | None = None,
    mtcnn: MTCNN | None = None,
    config: dict[str, Any] | None = None,
    tick: Callable[[int], None] | None = None,
) -> Batch:
    """Optimise (or reuse) the sticker over ``photos`` and write one item per photo with a face into ``out``."""
    det = mtcnn if mtcnn is not None else MTCNN()
    label = "patch+eot" if eot is not None else "patch"
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).is_file():
        batch = load_batch(out)
    else:
        config = config or {"task": "faces", "source": ["mtcnn"], "attacks": [label], "seed": seed}
        batch = Batch(uuid.uuid4().hex[:12], config, [mtcnn_record()])
    faces = []
    for ph in photos:
        rec, clean = _save(out, image_rel(f"{ph.key}-clean.png"), square(ph.rgb))
        truth = _detect(det, clean)
        rec.boxes = {"mtcnn": truth.to_json()}
        k = largest_index(truth.boxes)
        if k is None:
            log.info("%s: mtcnn finds no face; no sticker item", ph.key)
            continue
        marks = None if truth.landmarks is None else np.asarray(truth.landmarks[k], np.float64)
        faces.append((ph, rec, clean, truth, np.asarray(truth.boxes[k], np.float64), marks))
    if not faces:
        raise ValueError("no photo has a face that mtcnn finds: nothing to put the sticker on")
    name = sticker_name(eot is not None, settings)
    rel_png, rel_json = patch_rel(name, ".png"), patch_rel(name, ".json")
    png, meta = resolve_inside(out, rel_png), resolve_inside(out, rel_json)
    train = [f"{ph.key}-{name}" for ph, *_ in faces]
    rec_meta = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    if png.is_file() and rec_meta.get("sha256") == sha256_file(png) and rec_meta.get("train_items") == train:
        log.info("sticker %s: already optimised", name)
    else:
        patch, losses = fit_face_patch(det, [f[2] for f in faces], [f[4] for f in faces], settings, seed=seed,
                                       eot=eot, on_step=tick, landmarks=[f[5] for f in faces])  # fmt: skip
        png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(png, _png(patch_uint8(patch, settings.shape)))
        record = {"name": name, "path": rel_png, "sha256": sha256_file(png), "seed": seed, "kind": "face sticker",
                  "settings": settings.to_dict(), "face_area": round(area_of_face(settings), 4),
                  "eot": None if eot is None else eot.params(), "train_items": train, "losses": losses}  # fmt: skip
        atomic_write_bytes(meta, json.dumps(record, indent=1).encode())
    sticker, sha_png = read_png_array(png), sha256_file(png)
    done = {it.id for it in batch.items}
    batch.items = [it for it in batch.items if it.id not in train]  # a new sticker re-records its items
    for (ph, rec, clean, truth, box, marks), iid in zip(faces, train, strict=True):
        pl = Placement.from_dict(face_placement(box, settings, None, marks).to_dict())  # as recorded: it replays
        adv_rec, adv = _save(out, image_rel(f"{iid}.png"), paste_uint8(np.array(clean), sticker, settings.shape, pl))
        adv_rec.boxes = {"mtcnn": _detect(det, adv).to_json()}
        params = {"attack": label, "shape": settings.shape, "face_patch": settings.to_dict(),
                  "patch": {"path": rel_png, "sha256": sha_png, **sticker_record(pl, settings, marks)}}  # fmt: skip
        batch.items.append(
            Item(
                id=iid,
                source=SourceImage(ph.file, ph.sha256, ph.file.split(":")[0]),
                label=FACE,
                attack=label,
                eps=PATCH_EPS,
                seed=int(np.random.SeedSequence([seed, zlib.crc32(iid.encode())]).generate_state(1)[0]),
                clean=rec,
                adv=adv_rec,
                params=params,
                truth=Truth("mtcnn", truth.to_json()),
            )
        )
        log.info("%s: %s", iid, "re-recorded" if iid in done else "recorded")
    save_batch(out, batch)
    return batch
