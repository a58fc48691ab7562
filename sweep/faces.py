"""``photoproof sweep`` on a face batch: a face detector target under one artificial transform at a time.

The classifier sweep's transforms (:data:`sweep.transforms.TRANSFORMS`, Kurakin et al. 2016,
https://arxiv.org/abs/1607.02533, sec. 4), at the same strengths, on every item's clean
and adversarial PNG; the target (CenterFace, YuNet or a prepared ``.onnx``) runs on
each result and records which truth faces (``batch.json``'s ``truth``: the source's
boxes on the clean PNG) it finds at IoU 0.5. The truth follows the image: scaled to
the 224-pixel tile crop for ``resolution`` and ``angle`` (which, as capture does, see
the tile at the camera's pixel grid and rectify it back to the crop), and moved by the
homography for ``perspective``.

The **stability baseline** (the control rows) asks what the budget does without the
attack, on each clean PNG:

- ``noise``: every pixel moved by ``±ε`` at random (the item's ε;
  :func:`channel.controls.sign_noise`, the control of ``tools.face_hiding``);
- ``resolution``, ``blur``, ``jpeg``: the classifier's mild transforms of the capture
  stability baseline (:func:`capture.stability.mild`): mere resampling.

:mod:`analysis.faces_sweep` turns both into recall and paired hiding with intervals
clustered by photo, and says "not transfer" where noise of the same budget hides as much.
Items with an unbounded perturbation (the face sticker, ε 255) get no noise control.
Torch-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from capture.facetarget import CROP_PX, IOU, FaceTarget, check_pairing, is_detector_file
from capture.stability import TRANSFORMS as MILD
from capture.stability import mild
from channel.controls import sign_noise
from contracts.detection import found
from contracts.errors import UserError
from contracts.facesweep import FaceRow, face_sweep_path, write_face_sweep
from contracts.images import read_item_image
from contracts.manifest import ROLES, Batch, Item, load_batch
from sweep.transforms import RESAMPLED, TRANSFORMS, apply_transform, check_transforms, perspective_matrix

log = logging.getLogger(__name__)

NOISE = "noise"
CONTROLS = (NOISE, *MILD)
MAX_NOISE_EPS = 64.0  # above this the item's perturbation is not an ε-ball (the sticker: 255): no noise control


def _moved(
    truth: np.ndarray, name: str, strength: float, axis: float, out: tuple[int, ...], png: tuple[int, ...]
) -> np.ndarray:
    """The truth boxes in the transformed image (``png``: the PNG's shape, ``out``: the output's)."""
    if name in RESAMPLED:
        sx, sy = out[1] / png[1], out[0] / png[0]
        return truth * np.array([sx, sy, sx, sy], np.float32)
    if name != "perspective" or not len(truth):
        return truth
    corners = np.stack([truth[:, [0, 1]], truth[:, [2, 1]], truth[:, [2, 3]], truth[:, [0, 3]]], axis=1)
    h = perspective_matrix(strength, axis, png[0])
    moved = cv2.perspectiveTransform(corners.reshape(-1, 1, 2).astype(np.float32), h).reshape(-1, 4, 2)
    return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1).astype(np.float32)


def _field(seed: int, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The standard normal field of the ``noise`` transform for the ``k``-th item (as :func:`sweep.run.run_sweep`)."""
    return np.random.default_rng([int(seed), 1, k]).standard_normal(shape, dtype=np.float32)


def _faced(batch: Batch, batch_dir: Path, target: FaceTarget) -> list[Item]:
    """The items with truth faces (square PNGs: craft centre-crops face photos)."""
    items = [it for it in batch.items if it.id in target.truth and len(target.truth[it.id][0])]
    if not items:
        raise UserError(f"{batch_dir}: no item has a truth face (the source found none); nothing to sweep")
    return items


def open_target(batch_dir: Path, model_path: Path) -> tuple[Batch, FaceTarget]:
    """The face batch and its target, or a one-line error for a combination that measures nothing."""
    batch = load_batch(batch_dir)
    check_pairing(batch, batch_dir, is_detector_file(model_path), f"--model {model_path.name}")
    target = FaceTarget(model_path)
    target.bind(batch_dir, batch)
    return batch, target


def run_face_sweep(
    batch_dir: Path,
    model_path: Path,
    transforms: list[str] | None = None,
    steps: int = 6,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Sweep each transform over ``steps`` strengths and run the controls; write and return the face sweep file."""
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    names = check_transforms(transforms)
    if not 2 <= int(steps) <= 50:
        raise UserError(f"--levels: expected 2..50 strengths per transform, got {steps}")
    batch, target = open_target(batch_dir, Path(model_path))
    items = _faced(batch, batch_dir, target)
    index = {it.id: k for k, it in enumerate(batch.items)}
    rng = np.random.default_rng([int(seed), 0])
    axes = {it.id: float(a) for it, a in zip(batch.items, rng.uniform(0.0, 360.0, len(batch.items)), strict=True)}
    det = target.detector

    def look(img: np.ndarray, truth: np.ndarray) -> tuple[tuple[bool, ...], list[dict[str, object]]]:
        d = det.detect(img)
        return tuple(bool(v) for v in found(truth, d.boxes, IOU)), d.to_json()

    pngs: dict[tuple[str, str], np.ndarray] = {
        (it.id, r): read_item_image(batch_dir, it, r) for it in items for r in ROLES
    }
    truth = {it.id: target.truth[it.id][0] for it in items}
    digital = [FaceRow("digital", 0.0, i, r, *look(im, truth[i])) for (i, r), im in pngs.items()]
    rows: list[FaceRow] = []
    grids: dict[str, object] = {}
    fields: dict[str, np.ndarray] = {}  # the noise transform's field per item, shared by its clean and adv PNG
    for done, name in enumerate(names):
        if progress is not None:
            progress(name, done, len(names) + 1)
        tr = TRANSFORMS[name]
        grid = tr.grid(int(steps))
        grids[name] = {"unit": tr.unit, "description": tr.description, "strengths": grid}
        for s in grid:
            for (i, r), im in pngs.items():
                z = fields.setdefault(i, _field(seed, index[i], im.shape)) if name == "noise" else None
                seen = apply_transform(name, s, im, z, axes[i], CROP_PX)
                moved = _moved(truth[i], name, s, axes[i], seen.shape, im.shape)
                rows.append(FaceRow(name, s, i, r, *look(seen, moved)))
        log.info("face sweep %s: %d strengths x %d images", name, len(grid), len(pngs))
    if progress is not None:
        progress("controls", len(names), len(names) + 1)
    control = controls(items, pngs, truth, look, seed, index)
    header = {
        "batch_id": batch.batch_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"name": target.name, "file": target.path.name, "sha256": target.sha256},
        "seed": int(seed),
        "steps": int(steps),
        "crop_px": CROP_PX,
        "iou": IOU,
        "transforms": grids,
        "controls": {
            NOISE: "every pixel and channel of the clean PNG moved by ±ε at random (the item's ε; seed, item)",
            **{m: f"capture.stability.mild({m!r}): mere resampling, at the PNG's size" for m in MILD},
        },
        "reference": "Kurakin, Goodfellow & Bengio 2016, sec. 4, https://arxiv.org/abs/1607.02533",
    }
    out = write_face_sweep(face_sweep_path(batch_dir, target.name), header, digital, rows, control)
    if progress is not None:
        progress("done", len(names) + 1, len(names) + 1)
    log.info("wrote %s: %d rows in %.1f s", out, len(rows), time.perf_counter() - t0)
    return out


def controls(
    items: list[Item],
    pngs: dict[tuple[str, str], np.ndarray],
    truth: dict[str, np.ndarray],
    look: Callable[[np.ndarray, np.ndarray], tuple[tuple[bool, ...], list[dict[str, object]]]],
    seed: int,
    index: dict[str, int],
) -> list[FaceRow]:
    """The stability baseline on each clean PNG: ``±ε`` sign noise (ε-bounded items) and the mild transforms."""
    out: list[FaceRow] = []
    for it in items:
        clean = pngs[(it.id, "clean")]
        if it.eps <= MAX_NOISE_EPS:
            noisy = sign_noise(clean, it.eps, np.random.default_rng([int(seed), 2, index[it.id]]))
            out.append(FaceRow(NOISE, 0.0, it.id, "clean", *look(noisy, truth[it.id]), eps=float(it.eps)))
        for m in MILD:
            out.append(FaceRow(m, 0.0, it.id, "clean", *look(mild(m, clean, CROP_PX), truth[it.id])))
    return out
