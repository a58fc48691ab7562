"""Ground-truth faces from a labels file: ``craft --source mtcnn --truth faces.json`` (docs/detectors.md).

By default a face batch's truth is the source detector's own boxes on each clean PNG.
A labels file gives the true faces instead, per photo, in the photo's own pixels::

    {"faces": {
        "skimage-astronaut": [[172, 32, 268, 152]],
        "lfw-000": [[75, 70, 190, 205]],
        "IMG_0001.jpg": []
    }}

A photo is named by its key (the name its items carry: ``skimage-astronaut``, ``lfw-000``,
``user-...``) or, for a photo of an ``--images`` folder, its file name. ``[]`` says the
photo shows no face. Boxes are ``[x0, y0, x1, y1]``, pixels of the photo as it is on
disk, before craft's centre square; craft moves them into the square and keeps a box
when at least half of its area lies inside (:meth:`FaceTruth.in_square`).

The file is treated as hostile: at most 4 MB of JSON, one key ``faces``, every name
a known photo (:meth:`FaceTruth.match`), every box four finite numbers with
``x0 < x1``, ``y0 < y1`` inside the photo, at most 1000 boxes a photo; every error is one
line naming the file and the key. Torch-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contracts.errors import UserError
from contracts.paths import sha256_bytes

MAX_BYTES = 4_000_000
MAX_FACES = 1000
MAX_NAME = 200
KEEP_INSIDE = 0.5  # a box keeps at least this share of its area inside the centre square, or it is dropped
SOURCE = "labels"  # Truth.source of an item whose truth came from a labels file


@dataclass(frozen=True)
class FaceTruth:
    """A checked labels file: per photo name, its true face boxes (``N x 4``, the photo's pixels)."""

    file: str  # the file's name, as recorded
    sha256: str
    faces: dict[str, np.ndarray] = field(repr=False)

    def record(self) -> dict[str, Any]:
        """What ``batch.json``'s config records as ``truth``: the file's name and digest, photos and faces."""
        n = sum(len(b) for b in self.faces.values())
        return {"source": SOURCE, "file": self.file, "sha256": self.sha256, "photos": len(self.faces), "faces": n}

    def match(self, photos: Sequence[tuple[str, str]], where: str) -> dict[str, str]:
        """Each name of the file resolved to a photo key among ``photos`` (``(key, file)`` of every photo that
        ``where`` names); an unknown or ambiguous name is a one-line error."""
        by_key = {k: k for k, _ in photos}
        by_file: dict[str, list[str]] = {}
        for k, f in photos:
            by_file.setdefault(Path(f.split(":", 1)[-1].split("#")[0]).name, []).append(k)
        out: dict[str, str] = {}
        for name in self.faces:
            if name in by_key:
                key = name
            elif len(by_file.get(name, [])) == 1:
                key = by_file[name][0]
            elif name in by_file:
                keys = ", ".join(by_file[name][:3])
                raise UserError(
                    f"--truth {self.file}: faces.{name}: names several photos of {where}; use a key ({keys})"
                )
            else:
                from contracts.labels import nearest

                near = nearest(name, list(by_key))
                hint = f"; did you mean {', '.join(near)}?" if near else f" (e.g. {', '.join(list(by_key)[:3])})"
                raise UserError(f"--truth {self.file}: faces.{name}: no such photo in {where}{hint}")
            if key in out.values():
                raise UserError(f"--truth {self.file}: faces.{name}: photo {key} is labelled twice")
            out[name] = key
        return {key: name for name, key in out.items()}

    def in_square(self, name: str, size: tuple[int, int]) -> tuple[np.ndarray, int]:
        """Photo ``name``'s boxes (its size ``(w, h)``) moved into its centre square: ``(boxes, dropped)``, the boxes
        clipped to the square and those with less than half their area inside dropped."""
        w, h = size
        boxes = self.faces[name]
        bad = (boxes[:, 2] > w) | (boxes[:, 3] > h) if len(boxes) else np.zeros(0, bool)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(
                f"--truth {self.file}: faces.{name}[{i}]: {boxes[i].tolist()} lies outside the photo ({w} x {h} "
                "pixels); give boxes in the photo's own pixels"
            )
        s = min(w, h)
        x, y = (w - s) // 2, (h - s) // 2
        moved = boxes - np.array([x, y, x, y], np.float64)
        clipped = np.clip(moved, 0, s)
        keep = _area(clipped) >= KEEP_INSIDE * _area(moved) if len(boxes) else np.zeros(0, bool)
        return clipped[keep].astype(np.float32), int((~keep).sum())


def _area(b: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))


def _box(v: Any, where: str) -> list[float]:
    ok = isinstance(v, list) and len(v) == 4
    ok = ok and all(not isinstance(c, bool) and isinstance(c, (int, float)) and math.isfinite(c) for c in v)
    if not ok:
        raise UserError(f"{where}: expected a box [x0, y0, x1, y1] of four finite numbers, got {str(v)[:80]}")
    x0, y0, x1, y1 = (float(c) for c in v)
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise UserError(f"{where}: {v} must have 0 <= x0 < x1 and 0 <= y0 < y1 (pixels of the photo)")
    return [x0, y0, x1, y1]


def _refuse_constant(c: str) -> Any:
    raise ValueError(f"{c} is not a finite number")


def read_face_truth(path: Path, flag: str = "--truth") -> FaceTruth:
    """Read and check a labels file (the module docstring's form).

    Raises:
        UserError: missing, too large, not JSON, a wrong shape, a bad name or box (one line naming the file and key).
    """
    path = Path(path)
    where = f"{flag} {path}"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{where}: larger than {MAX_BYTES // 1_000_000} MB; a labels file holds boxes only")
        data = path.read_bytes()
        d = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise UserError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise UserError(f"{where}: not a readable JSON labels file ({str(e)[:160]})") from None
    if not isinstance(d, dict) or set(d) != {"faces"} or not isinstance(d["faces"], dict):
        keys = ", ".join(map(str, d)) if isinstance(d, dict) else type(d).__name__
        raise UserError(f'{where}: expected {{"faces": {{photo: [[x0, y0, x1, y1], ...]}}}}, got {keys[:80]}')
    faces: dict[str, np.ndarray] = {}
    for name, boxes in d["faces"].items():
        if not 0 < len(name) <= MAX_NAME or not name.isprintable():
            raise UserError(f"{where}: faces: photo names must be printable text of 1 to {MAX_NAME} characters")
        at = f"{where}: faces.{name}"
        if not isinstance(boxes, list) or len(boxes) > MAX_FACES:
            raise UserError(f"{at}: expected a list of at most {MAX_FACES} boxes ([] for a photo without a face)")
        rows = [_box(b, f"{at}[{i}]") for i, b in enumerate(boxes)]
        faces[name] = np.array(rows, np.float64).reshape(-1, 4)
    if not faces:
        raise UserError(f"{where}: faces is empty; label at least one photo")
    return FaceTruth(path.name, sha256_bytes(data), faces)


def describe(config: dict[str, Any], source: str) -> str:
    """Which truth a face batch used, for the report: the labels file (name, digest) or the source's detections."""
    t = config.get("truth")
    if isinstance(t, dict) and t.get("source") == SOURCE:
        return (f"the labels file {t.get('file')} (sha256 {str(t.get('sha256'))[:12]}, {t.get('faces')} faces in "
                f"{t.get('photos')} photos), moved into each clean PNG's square")  # fmt: skip
    return f"{source}'s own detections on each clean PNG"
