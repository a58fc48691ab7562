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
from contracts.detection import Detections, iou_matrix
from contracts.facetruth import FaceTruth
from contracts.images import read_png_array
from contracts.manifest import Batch, Item, SourceImage, Truth, load_batch, save_batch
from contracts.paths import atomic_write_bytes, resolve_inside, sha256_file
from craft.attacks.eot import EOT
from craft.attacks.patch import Placement, paste_uint8
from craft.detectors.facepatch import FacePatchSettings, area_of_face, face_placement, fit_face_patch, largest_index
from craft.detectors.facepatch import to_uint8 as patch_uint8
from craft.detectors.job import FACE, _check_resume, _png, _save, photo_truth, source_record, square, truth_names
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import FacePhoto
from craft.detectors.vanish import FaceSource

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


def face_landmarks(seen: Detections, box: np.ndarray) -> np.ndarray | None:
    """The landmarks of the source's detection that best overlaps the truth ``box`` (IoU at least 0.5; the same box
    when the truth is the source's own), or None when the source gives none (a labels file's face it missed, or a
    source without landmarks)."""
    if seen.landmarks is None or not len(seen.boxes):
        return None
    iou = iou_matrix(np.asarray(box, np.float64).reshape(1, 4), np.asarray(seen.boxes, np.float64).reshape(-1, 4))[0]
    k = int(np.argmax(iou))
    return np.asarray(seen.landmarks[k], np.float64) if iou[k] >= 0.5 else None


def _detect(det: FaceSource, rgb: np.ndarray) -> Any:
    return det.detect(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float())[0]


def craft_face_patch(
    out: Path,
    photos: Sequence[FacePhoto],
    settings: FacePatchSettings,
    *,
    seed: int = 0,
    eot: EOT | None = None,
    mtcnn: FaceSource | None = None,
    config: dict[str, Any] | None = None,
    tick: Callable[[int], None] | None = None,
    truth: FaceTruth | None = None,
    candidates: list[tuple[str, str]] | None = None,
) -> Batch:
    """Optimise (or reuse) the sticker over ``photos`` and write one item per photo with a face into ``out``.

    ``mtcnn``: the source (MTCNN, or a user's detector); ``truth``: a labels file's faces place the sticker and are
    the items' truth (else the source's clean detections)."""
    det = mtcnn if mtcnn is not None else MTCNN()
    src, record = source_record(det)
    names = truth_names(truth, photos, candidates, "the photos") if truth is not None else {}
    label = "patch+eot" if eot is not None else "patch"
    out.mkdir(parents=True, exist_ok=True)
    config = {**(config or {"task": "faces", "source": [src], "attacks": [label], "seed": seed}),
              "truth": None if truth is None else truth.record()}  # fmt: skip
    if (out / MANIFEST).is_file():
        batch = load_batch(out)
        _check_resume(batch, config, out)
    else:
        batch = Batch(uuid.uuid4().hex[:12], config, [record])
    faces, unplaced = [], 0
    for ph in photos:
        rec, clean = _save(out, image_rel(f"{ph.key}-clean.png"), square(ph.rgb))
        seen, truth_dets, truth_src = photo_truth(det, ph, clean, truth, names)
        rec.boxes = {src: seen.to_json()}
        k = largest_index(truth_dets.boxes)
        if k is None:
            log.info("%s: no truth face (%s); no sticker item", ph.key, truth_src)
            continue
        box = np.asarray(truth_dets.boxes, np.float64).reshape(-1, 4)[k]
        marks = face_landmarks(seen, box)
        if settings.place == "landmarks" and marks is None:
            log.info("%s: %s gives no landmarks for the truth face; no sticker item", ph.key, src)
            unplaced += 1
            continue
        faces.append((ph, rec, clean, truth_dets, box, truth_src, marks))
    if not faces and unplaced:
        raise ValueError(f"{src} gives no landmarks for the truth faces of {unplaced} photo(s): place the sticker by "
                         "the face's box instead (--patch-place box)")  # fmt: skip
    if not faces:
        raise ValueError(f"no photo has a truth face ({'the labels file' if truth else src}): nothing to put the "
                         "sticker on")  # fmt: skip
    name = sticker_name(eot is not None, settings)
    rel_png, rel_json = patch_rel(name, ".png"), patch_rel(name, ".json")
    png, meta = resolve_inside(out, rel_png), resolve_inside(out, rel_json)
    train = [f"{ph.key}-{name}" for ph, *_ in faces]
    rec_meta = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    if png.is_file() and rec_meta.get("sha256") == sha256_file(png) and rec_meta.get("train_items") == train:
        log.info("sticker %s: already optimised", name)
    else:
        patch, losses = fit_face_patch(det, [f[2] for f in faces], [f[4] for f in faces], settings, seed=seed,
                                       eot=eot, on_step=tick, landmarks=[f[6] for f in faces])  # fmt: skip
        png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(png, _png(patch_uint8(patch, settings.shape)))
        record_json = {"name": name, "path": rel_png, "sha256": sha256_file(png), "seed": seed, "kind": "face sticker",
                  "settings": settings.to_dict(), "face_area": round(area_of_face(settings), 4),
                  "eot": None if eot is None else eot.params(), "train_items": train, "losses": losses}  # fmt: skip
        atomic_write_bytes(meta, json.dumps(record_json, indent=1).encode())
    sticker, sha_png = read_png_array(png), sha256_file(png)
    done = {it.id for it in batch.items}
    batch.items = [it for it in batch.items if it.id not in train]  # a new sticker re-records its items
    for (ph, rec, clean, truth_dets, box, truth_src, marks), iid in zip(faces, train, strict=True):
        pl = Placement.from_dict(face_placement(box, settings, None, marks).to_dict())  # as recorded: it replays
        adv_rec, adv = _save(out, image_rel(f"{iid}.png"), paste_uint8(np.array(clean), sticker, settings.shape, pl))
        adv_rec.boxes = {src: _detect(det, adv).to_json()}
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
                truth=Truth(truth_src, truth_dets.to_json()),
            )
        )
        log.info("%s: %s", iid, "re-recorded" if iid in done else "recorded")
    save_batch(out, batch)
    return batch
