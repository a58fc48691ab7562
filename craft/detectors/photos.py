"""Photos with faces, from files that installed packages ship (read as files, the packages never imported).

- ``skimage-astronaut`` (Eileen Collins), ``matplotlib-grace-hopper`` and
  ``skimage-camera`` (the cameraman, grey): one face each;
- ``lfw-NN``: the first 100 images of scikit-image's ``lfw_subset.npy`` are 25 x 25
  grey face crops from Labeled Faces in the Wild (Huang et al. 2007); each is
  upscaled six times (bicubic) and given a 60-pixel replicated border, so that a
  detector sees a 270 x 270 image with one face. They are small and soft: a
  supplementary set that gives n, not a substitute for photographs.
  The next 100 are crops without a face (used as negatives).

``np.load(..., allow_pickle=False)`` reads the array; nothing is unpickled.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from contracts.errors import UserError
from contracts.imageio import open_rgb8
from contracts.paths import sha256_file

PHOTOS = (
    ("skimage", "data/astronaut.png", "skimage-astronaut"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib-grace-hopper"),
    ("skimage", "data/camera.png", "skimage-camera"),
)
LFW = ("skimage", "data/lfw_subset.npy")
LFW_UP, LFW_BORDER = 6, 60


@dataclass(frozen=True)
class FacePhoto:
    """One image to find faces in: ``key`` names it in item ids, ``file`` in the manifest (``package:path[#i]``)."""

    key: str
    file: str
    sha256: str
    rgb: np.ndarray  # H x W x 3 uint8


def _package_file(module: str, rel: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(spec.submodule_search_locations[0], rel)
    return p if p.is_file() else None


def lfw_image(crop: np.ndarray) -> np.ndarray:
    """A 25 x 25 grey crop in 0..1 as a ``270 x 270 x 3`` uint8 RGB image (upscaled, border replicated)."""
    g8 = np.clip(np.round(np.asarray(crop, np.float64) * 255), 0, 255).astype(np.uint8)
    side = g8.shape[0] * LFW_UP
    big = cv2.resize(g8, (side, side), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, LFW_BORDER, LFW_BORDER, LFW_BORDER, LFW_BORDER, cv2.BORDER_REPLICATE)
    return np.repeat(np.asarray(big, np.uint8)[..., None], 3, axis=2)


def lfw_faces(start: int = 0, stop: int = 100) -> list[FacePhoto]:
    """LFW crops ``start..stop`` (0..99 hold a face, 100..199 do not)."""
    p = _package_file(*LFW)
    if p is None:
        return []
    arr = np.load(p, allow_pickle=False)
    if arr.ndim != 3 or arr.shape[1:] != (25, 25) or not np.isfinite(arr).all():
        raise UserError(f"{p}: expected N x 25 x 25 grey crops; reinstall scikit-image")
    digest = sha256_file(p)
    return [
        FacePhoto(f"lfw-{i:03d}", f"{LFW[0]}:{LFW[1]}#{i}", digest, lfw_image(arr[i]))
        for i in range(start, min(stop, len(arr)))
    ]


def find_face_photos(images: str, limit: int | None = None) -> list[FacePhoto]:
    """``--images`` for a face detector: ``samples`` (the packaged photos, then the 100 LFW faces) or a folder."""
    if images == "samples":
        photos = face_photos(lfw=100)
    else:
        from craft.images import load_rgb, user_photos

        photos = [
            FacePhoto(p.key, p.file, p.sha256(), np.asarray(load_rgb(p))) for p in user_photos(Path(images))[:limit]
        ]
    return photos[:limit]


def photo_candidates(images: str) -> list[tuple[str, str]]:
    """``(key, file)`` of every photo ``--images`` names, before ``--limit`` (a labels file may name any of them)."""
    if images == "samples":
        return [(p.key, p.file) for p in face_photos(lfw=100)]
    from craft.images import user_photos

    return [(p.key, p.file) for p in user_photos(Path(images))]


def face_photos(lfw: int = 0) -> list[FacePhoto]:
    """The packaged photos with faces, then the first ``lfw`` LFW crops.

    Raises:
        UserError: when none of the packages is installed.
    """
    out = []
    for module, rel, key in PHOTOS:
        p = _package_file(module, rel)
        if p is not None:
            out.append(FacePhoto(key, f"{module}:{rel}", sha256_file(p), np.asarray(open_rgb8(p))))
    out += lfw_faces(0, lfw)
    if not out:
        raise UserError("face photos: none found; install scikit-image and matplotlib (make demo does)")
    return out
