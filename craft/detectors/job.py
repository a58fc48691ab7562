"""Craft a face batch: every photo attacked with the vanishing objective on MTCNN, written as a batch directory.

The same contract as a classifier batch (:mod:`contracts.manifest`): ``batch.json``
and ``images/*.png``. What differs is what an item records:

- ``label`` is ``1 face`` from ``detector`` (the attack's goal: no face left);
- ``truth`` holds the source's detections on the saved clean PNG (the faces to hide), or,
  with a labels file (``--truth``, :mod:`contracts.facetruth`), its boxes moved into the
  PNG's square (``truth.source`` ``labels``; the file's name and digest in ``config.truth``);
- each image's ``boxes`` holds the source's detections on that saved PNG, clean and
  adversarial, as ``top5`` does for a classifier.

The source is MTCNN or a user's torch detector (:mod:`craft.detectors.userdet`).

Each photo is centre-cropped to a square (tiles are square) and kept at its own
resolution. A re-run skips items already in ``batch.json`` whose PNGs are intact.
"""

from __future__ import annotations

import io
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from contracts.batchdir import MANIFEST, image_rel
from contracts.detection import Detections, get_detector, weights_path
from contracts.errors import UserError
from contracts.facetruth import SOURCE as LABELS
from contracts.facetruth import FaceTruth
from contracts.manifest import Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, Truth, load_batch, save_batch
from contracts.paths import atomic_write_bytes, resolve_inside, sha256_bytes, sha256_file
from craft.attacks import AttackSettings, AttackSpec, build_attack, parse_spec
from craft.attacks.rng import ItemRng
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import FacePhoto
from craft.detectors.userdet import UserDetector
from craft.detectors.vanish import FaceSource, Vanish, labels_for

log = logging.getLogger(__name__)

FACE = Label(1, "face", "detector")


def square(rgb: np.ndarray) -> np.ndarray:
    """The central square of an ``H x W x 3`` image."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(rgb[y : y + s, x : x + s])


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def mtcnn_record() -> ModelRecord:
    """The source model as ``batch.json`` records it: the three weight files' combined sha256."""
    spec = get_detector("mtcnn")
    folder = weights_path(spec)
    digest = sha256_bytes("".join(sha256_file(folder / f"{n}.pt") for n in ("pnet", "rnet", "onet")).encode())
    return ModelRecord("mtcnn", "mtcnn", "source", digest, spec.weights_package, spec.to_dict(), kind="detector")


def source_record(det: FaceSource) -> tuple[str, ModelRecord]:
    """The source's name (its key in ``boxes``) and its ``batch.json`` record."""
    if isinstance(det, UserDetector):
        return det.name, det.record(det.name)
    return "mtcnn", mtcnn_record()


def truth_names(
    truth: FaceTruth, photos: Sequence[FacePhoto], candidates: Sequence[tuple[str, str]] | None, where: str
) -> dict[str, str]:
    """Photo key -> its name in the labels file; every name known (``candidates``: ``(key, file)`` of every photo
    ``where`` names) and every photo of ``photos`` labelled, or a one-line error."""
    names = truth.match(candidates if candidates is not None else [(p.key, p.file) for p in photos], where)
    missing = [p.key for p in photos if p.key not in names]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(
            f'--truth {truth.file}: no entry for photo {missing[0]}{more}; add "{missing[0]}": [...] under faces '
            "([] when it shows no face), or leave the photo out (--limit, --images)"
        )
    return names


def photo_truth(
    det: FaceSource, ph: FacePhoto, clean: np.ndarray, truth: FaceTruth | None, names: dict[str, str]
) -> tuple[Detections, Detections, str]:
    """The source's detections on the saved clean PNG, the truth faces of ``ph`` and where they came from."""
    found = det.detect(torch.from_numpy(clean.copy()).permute(2, 0, 1)[None].float())[0]
    if truth is None:
        return found, found, source_record(det)[0]
    h, w = ph.rgb.shape[:2]
    boxes, dropped = truth.in_square(names[ph.key], (w, h))
    if dropped:
        log.warning("%s: %d labelled face(s) lie mostly outside the centre square; not counted", ph.key, dropped)
    return found, Detections(boxes, np.ones(len(boxes), np.float32)), LABELS


def _check_resume(batch: Batch, config: dict[str, Any], out: Path) -> None:
    """A resumed face batch keeps its source and its truth (a labels file's digest)."""
    for key in ("source", "truth"):
        if batch.config.get(key) != config.get(key):
            raise UserError(
                f"{out}: crafted with {key} {batch.config.get(key)!r}, not {config.get(key)!r}; resume it with the "
                "same options, or use a new --out"
            )


def craft_faces(
    out: Path,
    photos: Sequence[FacePhoto],
    attacks: str | Sequence[AttackSpec] = "pgd",
    eps: Sequence[float] = (16.0,),
    *,
    seed: int = 0,
    settings: AttackSettings | None = None,
    mtcnn: FaceSource | None = None,
    config: dict[str, Any] | None = None,
    tick: Callable[[int], None] | None = None,
    truth: FaceTruth | None = None,
    candidates: Sequence[tuple[str, str]] | None = None,
) -> Batch:
    """Attack every photo at every ε with each attack (``NAME[+di][+eot]``) on the source; write the batch to ``out``.

    ``mtcnn``: the source (MTCNN by default, or a :class:`~craft.detectors.userdet.UserDetector`); ``truth``: a
    labels file's faces in place of the source's clean detections (``candidates``: every photo its names may name).
    ``config`` is recorded in ``batch.json`` (the CLI's resolved config); ``tick(1)`` is called per item.
    """
    specs = [parse_spec(attacks)] if isinstance(attacks, str) else list(attacks)
    det = mtcnn if mtcnn is not None else MTCNN()
    name, record = source_record(det)
    names = truth_names(truth, photos, candidates, "the photos") if truth is not None else {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    if config is None:
        labels = [s.label for s in specs]
        config = {"task": "faces", "source": [name], "attacks": labels, "eps": [float(e) for e in eps], "seed": seed}
    config = {**config, "truth": None if truth is None else truth.record()}
    if (out / MANIFEST).is_file():
        batch = load_batch(out)
        _check_resume(batch, config, out)
    else:
        batch = Batch(uuid.uuid4().hex[:12], config, [record])
    done = {it.id for it in batch.items if _intact(out, it)}
    batch.items = [it for it in batch.items if it.id in done]
    for ph in photos:
        clean = square(ph.rgb)
        rel_clean = image_rel(f"{ph.key}-clean.png")
        rec_clean, clean = _save(out, rel_clean, clean)
        x = torch.from_numpy(clean.copy()).permute(2, 0, 1)[None].float()
        seen, truth_dets, truth_src = photo_truth(det, ph, clean, truth, names)
        rec_clean.boxes = {name: seen.to_json()}
        for spec, e in ((s, e) for s in specs for e in eps):
            atk = build_attack(spec, settings or AttackSettings())
            item_id = f"{ph.key}-{spec.slug}-e{e:g}"
            if item_id in done:
                if tick is not None:
                    tick(1)
                continue
            s = int(np.random.SeedSequence([seed, zlib.crc32(item_id.encode())]).generate_state(1)[0])
            res = atk.attack(Vanish(det), x, labels_for(x), float(e), generator=ItemRng.from_seeds([s]))
            adv = res.adv[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            rec_adv, adv = _save(out, image_rel(f"{item_id}.png"), adv)
            found = det.detect(torch.from_numpy(adv.copy()).permute(2, 0, 1)[None].float())[0]
            rec_adv.boxes = {name: found.to_json()}
            params = {**atk.params(float(e)), "repair_steps": int(res.repair_steps[0])}
            batch.items.append(
                Item(
                    id=item_id,
                    source=SourceImage(ph.file, ph.sha256, ph.file.split(":")[0]),
                    label=FACE,
                    attack=spec.label,
                    eps=float(e),
                    seed=s,
                    clean=rec_clean,
                    adv=rec_adv,
                    params=params,
                    truth=Truth(truth_src, truth_dets.to_json()),
                )
            )
            save_batch(out, batch)  # atomic, after each item: a crash loses at most the item in progress
            log.info("%s: %d faces clean, %d adversarial", item_id, len(seen), len(found))
            if tick is not None:
                tick(1)
    save_batch(out, batch)
    return batch


def _save(out: Path, rel: str, arr: np.ndarray) -> tuple[ImageRecord, np.ndarray]:
    """Write ``arr`` as a PNG at ``rel`` and return its record and the array read back from the bytes."""
    data = _png(arr)
    atomic_write_bytes(resolve_inside(out, rel), data)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return ImageRecord(rel, sha256_bytes(data)), back


def _intact(out: Path, it: Item) -> bool:
    for rec in (it.clean, it.adv):
        p = resolve_inside(out, rec.path)
        if not p.is_file() or sha256_file(p) != rec.sha256:
            return False
    return True
