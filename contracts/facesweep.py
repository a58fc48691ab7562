"""``BATCH/sweep-faces-<target>.json``: a face detector on each face PNG after one artificial transform.

Written by ``photoproof sweep BATCH --model centerface|yunet|FILE.onnx`` on a face
batch (:mod:`sweep.faces`), read by the face report (:mod:`analysis.faces_sweep`).
One file per target detector, so a sweep of CenterFace and one of YuNet sit side by
side. The file is one JSON object::

    {"schema": "photoproof.facesweep", "schema_version": 1, "batch_id": ..., "created": ...,
     "model": {"name", "file", "sha256"}, "seed": 0, "steps": 6, "crop_px": 224,
     "transforms": {name: {"unit", "description", "strengths": [...]}},
     "controls": {name: description},
     "digital":  [{item_id, role, found, boxes}, ...],                 # the saved PNGs, untransformed
     "rows":     [{transform, strength, item_id, role, found, boxes}, ...],
     "control":  [{control, item_id, eps, found, boxes}, ...]}        # the clean PNG through each control

``found`` holds one 0/1 per truth face of the item (``batch.json``'s ``truth``, moved
with the image where a transform moves it): whether the target finds it at IoU 0.5.
``boxes`` are the target's detections in the transformed image's pixels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.errors import UserError
from contracts.paths import atomic_write_json

SCHEMA, SCHEMA_VERSION = "photoproof.facesweep", 1
PREFIX, SUFFIX = "sweep-faces-", ".json"
MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class FaceRow:
    """One image the target saw: which truth faces it found (``found``), and where it put boxes."""

    transform: str  # "digital" for the saved PNG; a control's name for a control row
    strength: float
    item_id: str
    role: str  # clean or adv; a control row is always clean
    found: tuple[bool, ...]
    boxes: list[dict[str, Any]] = field(default_factory=list)
    eps: float | None = None  # a control row: the budget of the noise (the item's ε)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"item_id": self.item_id, "role": self.role, "found": [int(f) for f in self.found]}
        return d | {"boxes": self.boxes}


@dataclass
class FaceSweep:
    """A parsed face sweep: its header, the digital rows, the transform rows and the control rows."""

    path: Path
    header: dict[str, Any]
    digital: list[FaceRow]
    rows: list[FaceRow]
    control: list[FaceRow]

    @property
    def target(self) -> str:
        m = self.header.get("model")
        return str(m.get("name")) if isinstance(m, dict) and m.get("name") else self.path.stem[len(PREFIX) :]


def face_sweep_path(batch_dir: Path, target: str) -> Path:
    """``BATCH/sweep-faces-<target>.json`` (the name reduced to letters, digits, ``._-``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("._") or "target"
    return Path(batch_dir) / f"{PREFIX}{safe[:64]}{SUFFIX}"


def face_sweep_files(batch_dir: Path) -> list[Path]:
    """Every face sweep of the batch, in name order."""
    return sorted(p for p in Path(batch_dir).glob(f"{PREFIX}*{SUFFIX}") if p.is_file())


def write_face_sweep(
    path: Path, header: dict[str, Any], digital: list[FaceRow], rows: list[FaceRow], control: list[FaceRow]
) -> Path:
    """Write the file atomically, stamped with the schema and its version."""
    doc: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **header}
    doc["digital"] = [r.to_dict() for r in digital]
    doc["rows"] = [{"transform": r.transform, "strength": r.strength} | r.to_dict() for r in rows]
    doc["control"] = [{"control": r.transform, "eps": r.eps} | r.to_dict() for r in control]
    atomic_write_json(path, doc)
    return path


def _row(r: Any, transform: str | None, strength: float | None) -> FaceRow:
    if not isinstance(r, dict):
        raise TypeError(f"expected an object, got {type(r).__name__}")
    found = r["found"]
    if not isinstance(found, list) or not all(v in (0, 1, True, False) for v in found):
        raise ValueError("found is not a list of 0/1")
    role = str(r["role"])
    if role not in ("clean", "adv"):
        raise ValueError(f"role {role!r} is not clean or adv")
    boxes = r.get("boxes") or []
    if not isinstance(boxes, list):
        raise ValueError("boxes is not a list")
    if not all(isinstance(b, dict) for b in boxes):
        raise ValueError("boxes is not a list of objects")
    eps = r.get("eps")
    name = {None: r.get("transform"), "control": r.get("control")}.get(transform, transform)
    if not isinstance(name, str):
        raise ValueError("no transform or control name")
    return FaceRow(
        name,
        float(r["strength"]) if strength is None else strength,
        str(r["item_id"]),
        role,
        tuple(bool(v) for v in found),
        boxes,
        None if eps is None else float(eps),
    )


def read_face_sweep(path: Path) -> FaceSweep:
    """Read one face sweep; a corrupt, foreign or malformed file is a UserError naming it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{path}: larger than {MAX_BYTES >> 20} MB; not a face sweep: remove it")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: unreadable or corrupt JSON ({e}); re-run 'photoproof sweep' or remove it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("schema_version") != SCHEMA_VERSION:
        got = (data.get("schema"), data.get("schema_version")) if isinstance(data, dict) else (None, None)
        raise UserError(
            f"{path}: schema {got[0]!r} version {got[1]!r} is not {SCHEMA} version {SCHEMA_VERSION}; re-run "
            "'photoproof sweep' with this version"
        )
    header = {k: v for k, v in data.items() if k not in ("digital", "rows", "control")}
    parts: dict[str, list[FaceRow]] = {"digital": [], "rows": [], "control": []}
    for key, rows in parts.items():
        raw = data.get(key) or []
        if not isinstance(raw, list):
            raise UserError(f"{path}: {key} is not a list; re-run 'photoproof sweep'")
        for i, r in enumerate(raw):
            try:
                t, s = {"digital": ("digital", 0.0), "rows": (None, None), "control": ("control", 0.0)}[key]
                rows.append(_row(r, t, s))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise UserError(
                    f"{path}: {key} row {i} is malformed ({type(e).__name__}: {e}); re-run 'photoproof sweep'"
                ) from None
    return FaceSweep(path, header, parts["digital"], parts["rows"], parts["control"])
