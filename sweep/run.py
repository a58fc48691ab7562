"""``photoproof sweep``: one artificial transform at a time, at increasing strength.

Section 4 of Kurakin, Goodfellow & Bengio 2016 ("Adversarial examples in the physical
world", https://arxiv.org/abs/1607.02533) measures how much of an adversarial effect
each transform destroys *on its own*: brightness ``X + δ``, contrast ``X · μ``, Gaussian
blur, Gaussian noise and JPEG encoding. This module adds the pose (perspective) and the
printer's tone curve of ``channel.model``. Each transform runs on the digital clean and
adversarial PNG of every item, at the PNG's own resolution (the perturbation's pixel
scale), and the target model's top-5 goes into ``BATCH/sweep.json``, which
``analysis.sweep`` turns into destruction rates. Torch-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from capture.classify import OnnxClassifier
from capture.digital import classify_images, digital_top5
from channel import camera
from channel import model as ch
from channel.colour import srgb_encode
from channel.resolution import photograph_tile
from contracts.batchdir import capture_dbs
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.images import batch_images
from contracts.labels import target_map
from contracts.manifest import ROLES, load_batch, require_classifier_batch
from contracts.profile import ChannelProfile, Printer
from contracts.sweep import BASELINE, SweepRecord, read_sweep, sweep_path, write_sweep

log = logging.getLogger(__name__)

CHUNK = 64  # images classified per call
_WHITE_PRINTER = Printer(paper_white=(1.0, 1.0, 1.0), ink_black=(0.0, 0.0, 0.0), gamut_compression=0.0, dot_gain=0.0)
CAMERA_BLUR_PX = 0.6  # the camera blur of the resolution and angle transforms (as bench/gates.py)
_TILE_PROFILE = ChannelProfile(name="sweep")  # only its sheet_fill mid-range is used (tile scale 1)


@dataclass(frozen=True)
class Transform:
    """One transform: its strength grid (``grid(steps)``, identity first or in the middle) and unit."""

    name: str
    unit: str
    description: str
    grid: Callable[[int], list[float]]


def _one_sided(start: float, stop: float, decimals: int = 3) -> Callable[[int], list[float]]:
    return lambda n: [round(float(v), decimals) for v in np.linspace(start, stop, max(2, n))]


def _two_sided(centre: float, half: float) -> Callable[[int], list[float]]:
    """``steps - 1`` strengths on each side of the identity ``centre`` (``2 * steps - 1`` in all)."""
    return lambda n: [round(float(v), 3) for v in np.linspace(centre - half, centre + half, 2 * max(2, n) - 1)]


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform(
            "brightness",
            "additive δ, 0-255 pixel units",
            "X + δ, clipped to 0..255 (Kurakin et al. 2016, sec. 4)",
            _two_sided(0.0, 48.0),
        ),
        Transform(
            "contrast",
            "factor μ",
            "127.5 + μ (X - 127.5), clipped: contrast about mid-grey (Kurakin et al. scale X by μ)",
            _two_sided(1.0, 0.6),
        ),
        Transform(
            "blur",
            "Gaussian σ, PNG pixels",
            "channel.camera.apply_optics: Gaussian defocus, kernel 2 ceil(3σ) + 1",
            _one_sided(0.0, 3.0),
        ),
        Transform(
            "noise",
            "Gaussian σ, 0-255 pixel units",
            "X + σ z, z ~ N(0, 1) per pixel and channel from --seed (the same z for every σ and both roles of an item)",
            _one_sided(0.0, 24.0),
        ),
        Transform(
            "jpeg",
            "libjpeg quality",
            "channel.camera.apply_jpeg: IJG quality, 4:2:0 (quality 100 is not lossless)",
            _one_sided(100.0, 10.0, 0),
        ),
        Transform(
            "perspective",
            "tilt, degrees out of plane",
            "channel.model.tile_homography: the tile tilted about a random in-plane axis (from --seed), "
            "seen at 10°, area at the centre kept; white outside",
            _one_sided(0.0, 60.0, 1),
        ),
        Transform(
            "resolution",
            "tile side / model input size",
            "channel.resolution.photograph_tile: the tile seen head-on at strength x the model's input size camera "
            f"pixels, camera blur sigma {CAMERA_BLUR_PX} px, rectified back as capture does",
            _one_sided(2.0, 0.25),
        ),
        Transform(
            "angle",
            "viewing angle, degrees off the sheet's normal",
            "channel.resolution.photograph_tile: a tile of the model's input size in camera pixels (head-on), seen at "
            f"this angle about a random in-plane axis (from --seed), camera blur sigma {CAMERA_BLUR_PX} px, rectified "
            "back",
            _one_sided(0.0, 75.0, 1),
        ),
        Transform(
            "tone",
            "printer tone_gamma",
            "channel.model.print_page with tone_gamma, no dot gain, ideal paper and ink, then sRGB-encoded back",
            _one_sided(1.0, 2.0),
        ),
        Transform(
            "dotgain",
            "printer dot_gain (TVI at 50 %)",
            "channel.model.print_page with dot_gain, tone_gamma 1, ideal paper and ink, then sRGB-encoded back",
            _one_sided(0.0, 0.3),
        ),
    )
}
DEFAULT_TRANSFORMS = ("brightness", "contrast", "blur", "noise", "jpeg", "perspective", "tone", "resolution", "angle")
RESAMPLED = ("resolution", "angle")  # applied at the camera's pixel grid, so classified at the model's input size


def check_transforms(transforms: list[str] | None) -> list[str]:
    """Validate ``--transforms``; ``None`` or empty gives the defaults."""
    names = [t.strip().lower() for t in (transforms or []) if t.strip()] or list(DEFAULT_TRANSFORMS)
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise UserError(f"--transforms: unknown transform(s) {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}")
    return list(dict.fromkeys(names))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _neutral_params(**kw: Any) -> ch.ChannelParams:
    """Channel parameters that do nothing, with ``kw`` replaced."""
    lo, hi = _TILE_PROFILE.scene.sheet_fill
    base = {f: 0.0 for f in ch.UNIT_FIELDS} | {
        "sheet_fill": 0.5 * (lo + hi),
        "illuminance": 1.0,
        "exposure": 1.0,
        "colour_temperature_k": 6500.0,
        "jpeg_quality": 100,
    }
    return ch.ChannelParams(**{**base, **kw}, noise_seed=0)


def perspective_matrix(strength: float, axis_deg: float, size: int) -> np.ndarray:
    """The homography of ``perspective`` at ``strength`` (tilt in degrees) about ``axis_deg`` on a ``size`` image."""
    return ch.tile_homography(_neutral_params(tilt_deg=strength, tilt_axis_deg=axis_deg), size, _TILE_PROFILE)


def apply_transform(
    name: str,
    strength: float,
    img: np.ndarray,
    z: np.ndarray | None = None,
    axis_deg: float = 0.0,
    model_px: int | None = None,
) -> np.ndarray:
    """Apply transform ``name`` at ``strength`` to one RGB uint8 image; returns RGB uint8.

    ``z`` is the standard normal field of ``noise``; ``axis_deg`` the tilt axis of ``perspective``
    and ``angle``; ``model_px`` the model's input size, which ``resolution`` and ``angle`` measure
    tiles in (their output is at that size, as capture's crop).
    """
    if name in RESAMPLED:
        size = int(model_px or img.shape[0])
        square = (
            img
            if img.shape[0] == img.shape[1]
            else np.asarray(Image.fromarray(img).resize((img.shape[0], img.shape[0])))
        )
        if name == "resolution":
            return photograph_tile(square, strength * size, 0.0, CAMERA_BLUR_PX, out_size=size)
        return photograph_tile(
            square, size, min(float(strength), 88.0), CAMERA_BLUR_PX, axis_deg=axis_deg, out_size=size
        )
    x = img.astype(np.float32)
    if name == "brightness":
        return _u8(x + strength)
    if name == "contrast":
        return _u8(127.5 + strength * (x - 127.5))
    if name == "blur":
        return _u8(camera.apply_optics(x, _neutral_params(defocus_sigma_px=strength))) if strength > 0 else img
    if name == "noise":
        if z is None:
            raise ValueError("noise needs z")
        return _u8(x + strength * z)
    if name == "jpeg":
        return camera.apply_jpeg(img, int(round(strength)), bgr=False)[0]
    if name == "perspective":
        size = img.shape[0]
        H = perspective_matrix(strength, axis_deg, size)
        return cv2.warpPerspective(
            img,
            H,
            (img.shape[1], size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(255, 255, 255),
        )
    if name in ("tone", "dotgain"):
        printer = (
            replace(_WHITE_PRINTER, tone_gamma=float(strength))
            if name == "tone"
            else replace(_WHITE_PRINTER, dot_gain=float(strength))
        )
        return _u8(255.0 * srgb_encode(ch.print_page(img, printer)))
    raise UserError(f"--transforms: unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")


def _row(
    transform: str, strength: float, item: str, role: str, model: str, ids: np.ndarray, probs: np.ndarray
) -> SweepRecord:
    return SweepRecord(
        transform, strength, item, role, tuple(int(i) for i in ids), tuple(float(p) for p in probs), model
    )


def _kept_rows(batch_dir: Path, sha256: str, seed: int, redo: set[str]) -> tuple[list[SweepRecord], dict[str, Any]]:
    """Rows and grids of an earlier sweep of the same model and seed, for transforms not run again."""
    try:
        old = read_sweep(batch_dir)
    except UserError as e:
        log.warning("%s; replacing it", e)
        return [], {}
    if old is None:
        return [], {}
    model = old.header.get("model")
    if not isinstance(model, dict) or model.get("sha256") != sha256 or old.header.get("seed") != seed:
        log.warning("%s: an earlier sweep of another model or seed; replacing it", sweep_path(batch_dir))
        return [], {}
    transforms = old.header.get("transforms")
    grids = {k: v for k, v in (transforms if isinstance(transforms, dict) else {}).items() if k not in redo}
    return [r for r in old.rows if r.transform in grids], grids


def run_sweep(
    batch_dir: Path,
    model_path: Path,
    transforms: list[str] | None = None,
    steps: int = 6,
    seed: int = 0,
    classifier: OnnxClassifier | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    label_map: dict[str, str] | None = None,
) -> Path:
    """Sweep each transform on its own over ``steps`` strengths; write ``BATCH/sweep.json`` and return its path.

    Args:
        batch_dir: the batch (``batch.json`` and ``images/``).
        model_path: the ONNX target model (ignored when ``classifier`` is given).
        transforms: names from :data:`TRANSFORMS` (default: :data:`DEFAULT_TRANSFORMS`).
        steps: strengths per transform from the identity to the strongest (two-sided
            transforms get ``steps - 1`` on each side of the identity).
        seed: seeds the noise fields and the perspective tilt axes (recorded).
        classifier: an already built classifier (foreign models with flags).
        progress: called as ``progress(transform, done, total)`` after each transform.
        label_map: batch class name -> model class name (``--label-map``); labels map by name
            without it, and the map is recorded in ``sweep.json`` (``labels``) when the sets differ.

    Rows of an earlier ``sweep.json`` for the same model and seed are kept for transforms not run again.
    """
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    names = check_transforms(transforms)
    if not 2 <= int(steps) <= 50:
        raise UserError(f"--levels: expected 2..50 strengths per transform, got {steps}")
    batch = load_batch(batch_dir)
    require_classifier_batch(batch, batch_dir, "sweep")
    clf = classifier or OnnxClassifier(Path(model_path))
    used = {it.label.index for it in batch.items} | {it.target for it in batch.items if it.target is not None}
    lmap = target_map(batch.class_names(), clf.class_names, used, label_map, where=f"--model {clf.path}")
    images = list(batch_images(batch_dir, batch))
    index = {it.id: k for k, it in enumerate(batch.items)}
    rng = np.random.default_rng([int(seed), 0])
    axes = {it.id: float(a) for it, a in zip(batch.items, rng.uniform(0.0, 360.0, len(batch.items)), strict=True)}
    fields: dict[str, np.ndarray] = {}  # one noise field per item (and image shape), shared by its clean and adv PNG

    def z_for(item: str, shape: tuple[int, ...]) -> np.ndarray:
        key = f"{item}|{shape}"
        if key not in fields:
            fields[key] = np.random.default_rng([int(seed), 1, index[item]]).standard_normal(shape, dtype=np.float32)
        return fields[key]

    digital = [
        _row(BASELINE, 0.0, item, role, clf.name, ids, probs)
        for item, role, ids, probs in digital_top5(batch_dir, batch, clf, CHUNK, images)
    ]
    rows, grids = _kept_rows(batch_dir, clf.sha256, int(seed), set(names))
    for done, name in enumerate(names):
        if progress is not None:
            progress(name, done, len(names))
        tr = TRANSFORMS[name]
        grid = tr.grid(int(steps))
        grids[name] = {"unit": tr.unit, "description": tr.description, "strengths": grid}
        jobs = [(s, item, role, im) for s in grid for item, role, im in images]
        outs = [
            apply_transform(
                name, s, im, z_for(item, im.shape) if name == "noise" else None, axes[item], clf.spec.input_size
            )
            for s, item, role, im in jobs
        ]
        ids, probs = classify_images(clf, outs, CHUNK)
        finite = np.isfinite(probs).all(axis=1)
        if not finite.all():
            log.warning(
                "sweep %s: the model gave NaN or infinite outputs on %d of %d images; those are not recorded",
                name,
                int((~finite).sum()),
                len(jobs),
            )
        rows += [
            _row(name, s, item, role, clf.name, ids[k], probs[k])
            for k, (s, item, role, _) in enumerate(jobs)
            if finite[k]
        ]
        log.info("sweep %s: %d strengths x %d images", name, len(grid), len(images))
    header = {
        "batch_id": batch.batch_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"name": clf.name, "file": clf.path.name, "sha256": clf.sha256, "input_size": clf.spec.input_size},
        "seed": int(seed),
        "steps": int(steps),
        "transforms": grids,
        "applied_at": "the PNG's own resolution, before the model's resize and centre crop (resolution and angle: at "
        "the camera's pixel grid, output at the model's input size)",
        "reference": "Kurakin, Goodfellow & Bengio 2016, sec. 4, https://arxiv.org/abs/1607.02533",
    }
    if lmap is not None:
        header["labels"] = {
            "target_classes": list(clf.class_names),
            "map": {str(b): t for b, t in sorted(lmap.items())},
        }
    out = write_sweep(batch_dir, header, digital, rows)
    if progress is not None:
        progress("done", len(names), len(names))
    log.info("wrote %s: %d rows in %.1f s", out, len(rows), time.perf_counter() - t0)
    return out


def digital_baseline_known(batch_dir: Path, model: str) -> bool:
    """Whether the report can find ``model``'s digital top-5: in batch.json or in a capture session."""

    batch = load_batch(Path(batch_dir))
    if batch.items and all(model in it.image(r).top5 for it in batch.items for r in ROLES):
        return True
    for db in capture_dbs(batch_dir):
        try:
            con = open_db_readonly(db)
        except UserError:
            continue  # the report names it; here it only cannot help
        try:
            if con.execute("SELECT 1 FROM sessions WHERE model=? LIMIT 1", (model,)).fetchone():
                return True
        except sqlite3.DatabaseError:
            continue
        finally:
            con.close()
    return False


def strengths_table(names: list[str], steps: int) -> list[tuple[str, str, str]]:
    """(transform, unit, strengths) for the CLI."""
    return [(n, TRANSFORMS[n].unit, ", ".join(f"{v:g}" for v in TRANSFORMS[n].grid(steps))) for n in names]


def clean_accuracy(
    path: Path, batch_dir: Path, names: tuple[str, ...] = RESAMPLED
) -> list[tuple[str, float, int, int]]:
    """(transform, strength, clean top-1 right, n) from a written sweep, for the transforms ``names``."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    truth = {it.id: it.label.index for it in load_batch(Path(batch_dir)).items}
    out: dict[tuple[str, float], list[int]] = {}
    for r in doc.get("rows", []):
        if r.get("transform") in names and r.get("role") == "clean" and r.get("item_id") in truth:
            c = out.setdefault((r["transform"], float(r["strength"])), [0, 0])
            c[0] += int(r["top1"] == truth[r["item_id"]])
            c[1] += 1
    return [(t, s, k, n) for (t, s), (k, n) in out.items()]
