"""``BATCH/sweep.json``: one model's top-5 on each PNG after one artificial transform.

Written by ``photoproof sweep`` (:mod:`sweep.run`), read by the report
(:mod:`analysis.sweep`). The file is one JSON object::

    {"schema": "photoproof.sweep", "schema_version": 1, "batch_id": ..., "created": ...,
     "model": {"name", "file", "sha256", "input_size"}, "seed": 0, "steps": 6,
     "transforms": {name: {"unit", "description", "strengths": [...]}},
     "applied_at": ..., "reference": ...,
     "digital": [{item_id, role, model, top1, top5_ids, top5_probs}, ...],   # no transform
     "rows": [{transform, strength, item_id, role, model, top1, top5_ids, top5_probs}, ...]}

:func:`write_sweep` stamps the schema and its version; :func:`read_sweep` refuses
a stamped file of another schema or version. A file without a stamp (a bare list
of rows, or ``{"rows": [...]}``, as a hand-made sweep would be) is read as rows
without a digital baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.batchdir import SWEEP
from contracts.errors import UserError
from contracts.paths import atomic_write_json

SCHEMA, SCHEMA_VERSION = "photoproof.sweep", 1
BASELINE = "digital"  # the transform of the digital rows: none applied
ROW_KEYS = "transform, strength, item_id, role, top1, top5_ids, top5_probs"


@dataclass(frozen=True)
class SweepRecord:
    """One prediction: ``model``'s top-5 on the ``role`` PNG of ``item_id`` after ``transform`` at ``strength``."""

    transform: str
    strength: float
    item_id: str
    role: str
    top5_ids: tuple[int, ...]
    top5_probs: tuple[float, ...]
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "strength": self.strength,
            "item_id": self.item_id,
            "role": self.role,
            "model": self.model,
            "top1": self.top5_ids[0],
            "top5_ids": list(self.top5_ids),
            "top5_probs": [round(p, 6) for p in self.top5_probs],
        }


@dataclass
class SweepFile:
    """A parsed ``sweep.json``: its header (everything but the rows), the digital baseline and the rows."""

    header: dict[str, Any] = field(default_factory=dict)
    digital: list[SweepRecord] = field(default_factory=list)
    rows: list[SweepRecord] = field(default_factory=list)

    @property
    def stamped(self) -> bool:
        """Whether the file carries the schema stamp (written by :func:`write_sweep`)."""
        return self.header.get("schema") == SCHEMA


def sweep_path(batch_dir: Path) -> Path:
    """``BATCH/sweep.json``."""
    return Path(batch_dir) / SWEEP


def write_sweep(batch_dir: Path, header: dict[str, Any], digital: list[SweepRecord], rows: list[SweepRecord]) -> Path:
    """Write ``BATCH/sweep.json`` atomically, stamped with the schema and its version; return its path."""
    doc: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **header}
    doc["digital"] = [{k: v for k, v in r.to_dict().items() if k not in ("transform", "strength")} for r in digital]
    doc["rows"] = [r.to_dict() for r in rows]
    out = sweep_path(batch_dir)
    atomic_write_json(out, doc)
    return out


def _record(r: Any, transform: str | None = None) -> SweepRecord:
    if not isinstance(r, dict):
        raise TypeError(f"expected an object, got {type(r).__name__}")
    ids = tuple(int(c) for c in r.get("top5_ids") or [r["top1"]])
    probs = tuple(float(p) for p in r.get("top5_probs") or [1.0])
    role = str(r["role"])
    if role not in ("clean", "adv"):
        raise ValueError(f"role {role!r} is not clean or adv")
    model = r.get("model")
    return SweepRecord(
        str(r["transform"]) if transform is None else transform,
        float(r["strength"]) if transform is None else 0.0,
        str(r["item_id"]),
        role,
        ids,
        probs,
        None if model is None else str(model),
    )


def read_sweep(batch_dir: Path) -> SweepFile | None:
    """Read ``BATCH/sweep.json``; ``None`` if there is none.

    Raises:
        UserError: naming the file when it is corrupt, stamped with another schema or
            version, or holds a malformed row.
    """
    path = sweep_path(batch_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt JSON ({e}); re-run the sweep or remove the file") from None
    out = SweepFile()
    raw_digital: list[Any] = []
    if isinstance(data, dict):
        if "schema" in data or "schema_version" in data:
            if data.get("schema") != SCHEMA or data.get("schema_version") != SCHEMA_VERSION:
                raise UserError(
                    f"{path}: schema {data.get('schema')!r} version {data.get('schema_version')!r} is not "
                    f"{SCHEMA} version {SCHEMA_VERSION}; re-run 'photoproof sweep' with this version"
                )
        out.header = {k: v for k, v in data.items() if k not in ("digital", "rows")}
        raw_digital = data.get("digital") or []
        data = data.get("rows")
    if not isinstance(data, list) or not isinstance(raw_digital, list):
        raise UserError(f"{path}: expected a list of rows {{{ROW_KEYS}}}")
    for what, items, target, transform in (
        ("digital row", raw_digital, out.digital, BASELINE),
        ("row", data, out.rows, None),
    ):
        for i, r in enumerate(items):
            try:
                target.append(_record(r, transform))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise UserError(
                    f"{path}: {what} {i} is malformed ({type(e).__name__}: {e}); each row needs {ROW_KEYS}"
                ) from None
    return out
