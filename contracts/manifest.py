"""``batch.json``: the manifest that craft writes and every later stage reads.

Schema (version 1) in brief; ``docs/batch-format.md`` is the full reference::

    {"schema": "photoproof.batch", "schema_version": 1, "batch_id": "...",
     "created": "2026-11-22T10:00:00+00:00",
     "config": {...fully resolved craft config...},
     "classes": ["tench", ...] (the label set; absent: ImageNet-1k),
     "models": [{"name": "lite0", "arch": "efficientnet-lite0", "role": "source",
                 "weights_sha256": "...", "weights_package": "...",
                 "preprocess": {...PreprocessSpec...}}],
     "items": [{"id": "...", "source": {...}, "label": {...}, "attack": "fgsm",
                "eps": 16, "seed": 0, "target": null, "params": {...},
                "clean": {"path": "images/...png", "sha256": "...", "top5": {"lite0": [[id, p], ...]}},
                "adv":   {...same...}}]}

A face-detector item (docs/detectors.md) adds ``"truth": {"source": "mtcnn", "boxes":
[{"box": [x0, y0, x1, y1], "score": s}, ...]}`` (the faces to hide, in the PNG's pixels) and,
per image, ``"boxes": {"mtcnn": [...]}`` (the source's detections on that saved PNG) in place
of ``top5``. Both are absent from classifier items, so older batches read unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from contracts import journal
from contracts.batchdir import MANIFEST as MANIFEST  # re-exported: the name's old home
from contracts.errors import UserError
from contracts.paths import atomic_write_json, resolve_inside
from contracts.validate import check_manifest, check_unique_ids

SCHEMA = "photoproof.batch"
SCHEMA_VERSION = 1

Role = Literal["clean", "adv"]
ROLES: tuple[Role, Role] = ("clean", "adv")

# A top-5 list: [[class_id, probability], ...], best first.
Top5 = list[list[float]]


# A detector's boxes on one image: [{"box": [x0, y0, x1, y1], "score": s}, ...] (contracts.detection.Detections).
Boxes = list[dict[str, Any]]


@dataclass
class ImageRecord:
    """One saved PNG and the source model(s)' top-5 (classifiers) or boxes (detectors) measured on that PNG."""

    path: str
    sha256: str
    top5: dict[str, Top5] = field(default_factory=dict)
    boxes: dict[str, Boxes] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["boxes"]:
            d.pop("boxes")
        return d


@dataclass
class Truth:
    """The faces a detector item should hide: ``boxes`` in the clean PNG's pixels, and where they came from
    (``source``: the detector whose clean detections they are, e.g. ``mtcnn``, or ``labels``)."""

    source: str
    boxes: Boxes


@dataclass
class Label:
    """The true class of an item and where it came from.

    ``source`` is one of ``filename`` (foolbox's labelled photos), ``labels.csv``,
    ``folder`` (ImageNet-style sub-folder) or ``clean-prediction`` (no true label
    was known: the source model's clean top-1 stands in for it).
    """

    index: int
    name: str
    source: str


@dataclass
class SourceImage:
    """The photo an item was made from."""

    file: str
    sha256: str
    origin: str


@dataclass
class Item:
    """One (image, attack, ε) triple: a clean and an adversarial PNG."""

    id: str
    source: SourceImage
    label: Label
    attack: str
    eps: float
    seed: int
    clean: ImageRecord
    adv: ImageRecord
    target: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    truth: Truth | None = None  # detector items only

    @property
    def photo(self) -> str:
        """The cluster the item belongs to: its source photo (file and content), shared by every attack and ε of it."""
        return f"{self.source.file}|{self.source.sha256}"

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON; a classifier item has no ``truth`` and no ``boxes`` (the form it always had)."""
        d = asdict(self)
        d["clean"], d["adv"] = self.clean.to_dict(), self.adv.to_dict()
        if self.truth is None:
            d.pop("truth")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        truth = d.get("truth")
        return cls(
            id=str(d["id"]),
            source=SourceImage(**d["source"]),
            label=Label(**d["label"]),
            attack=str(d["attack"]),
            eps=float(d["eps"]),
            seed=int(d["seed"]),
            clean=ImageRecord(**d["clean"]),
            adv=ImageRecord(**d["adv"]),
            target=None if d.get("target") is None else int(d["target"]),
            params=dict(d.get("params", {})),
            truth=None if truth is None else Truth(str(truth["source"]), list(truth["boxes"])),
        )

    def image(self, role: str) -> ImageRecord:
        """The clean image for ``role == "clean"``, else the adversarial one."""
        return self.clean if role == "clean" else self.adv


@dataclass
class ModelRecord:
    """A model used by a stage: its weights hash and its preprocessing spec."""

    name: str
    arch: str
    role: str
    weights_sha256: str
    weights_package: str
    preprocess: dict[str, Any]
    kind: str = "zoo"  # zoo, onnx, pt2, torchscript or factory
    ref: str = ""  # what --source named (a file's path or package.module:factory)


@dataclass
class Batch:
    """The whole manifest."""

    batch_id: str
    config: dict[str, Any]
    models: list[ModelRecord] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    classes: list[str] | None = None  # the label set; None: ImageNet-1k
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "batch_id": self.batch_id,
            "created": self.created,
            "config": self.config,
            "models": [asdict(m) for m in self.models],
            **({"classes": list(self.classes)} if self.classes is not None else {}),
            "items": [i.to_dict() for i in self.items],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = MANIFEST) -> Batch:
        if d.get("schema") != SCHEMA:
            raise UserError(f"{where}: not a Photoproof batch manifest (schema is {d.get('schema')!r})")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise UserError(
                f"{where}: schema version {d.get('schema_version')!r} is not supported (this Photoproof reads "
                f"{SCHEMA_VERSION})"
            )
        check_manifest(d, where)  # types, unique ids and ranges, each error naming the field
        try:
            return cls(
                batch_id=str(d["batch_id"]),
                created=str(d["created"]),
                config=dict(d["config"]),
                models=[ModelRecord(**m) for m in d["models"]],
                items=[Item.from_dict(i) for i in d["items"]],
                classes=None if d.get("classes") is None else [str(c) for c in d["classes"]],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"{where}: malformed manifest ({type(e).__name__}: {e}); re-run 'photoproof craft' to rebuild it"
            ) from None

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def class_names(self) -> tuple[str, ...]:
        """The batch's label set: ``classes``, or the ImageNet-1k names when it has none."""
        if self.classes is not None:
            return tuple(self.classes)
        from contracts.classes import imagenet_names

        return imagenet_names()

    def model(self, role: str = "source") -> list[ModelRecord]:
        return [m for m in self.models if m.role == role]


def is_face_batch(batch: Batch) -> bool:
    """A batch crafted on a face detector (``craft --source mtcnn``): its items carry truth faces."""
    return any(it.truth is not None for it in batch.items) or any(m.kind == "detector" for m in batch.models)


def require_classifier_batch(batch: Batch, batch_dir: Path, command: str) -> None:
    """Refuse a face-detector batch in a stage that measures classifiers only (so far: sweep and capture --scene).

    Its items carry no class to score, and a classifier's top-5 on a face tile would be a figure about nothing.
    """
    if is_face_batch(batch):
        raise UserError(
            f"{batch_dir}: a face-detector batch (craft --source mtcnn); 'photoproof {command}' measures classifiers "
            "only so far: capture its sheets with --model centerface or yunet, then 'photoproof report' "
            "(docs/detectors.md)"
        )


def load_batch(batch_dir: Path) -> Batch:
    """Read and validate ``batch_dir/batch.json`` with craft's journal folded in
    (:mod:`contracts.journal`); check every path stays inside."""
    path = Path(batch_dir) / MANIFEST
    if not Path(batch_dir).is_dir():
        raise UserError(f"{batch_dir}: no such batch directory; create one with 'photoproof craft --out {batch_dir}'")
    if not path.is_file():
        raise UserError(f"{path}: missing; this is not a batch directory (run 'photoproof craft' first)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt JSON ({e}); restore it or re-run 'photoproof craft'") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a JSON object")
    if isinstance(d.get("items"), list) and journal.journal_files(Path(batch_dir)):
        check_unique_ids(d["items"], str(path))  # the fold below would hide duplicates
        d["items"], _ = journal.merge(d["items"], Path(batch_dir))
    batch = Batch.from_dict(d, where=str(path))
    root = Path(batch_dir).resolve()
    for it in batch.items:
        for role in ROLES:
            resolve_inside(Path(batch_dir), it.image(role).path, root=root)
    return batch


def save_batch(batch_dir: Path, batch: Batch) -> None:
    """Write ``batch.json`` atomically."""
    atomic_write_json(Path(batch_dir) / MANIFEST, batch.to_dict())


def compact_batch(batch_dir: Path, batch: Batch, folded: list[Path]) -> None:
    """Write ``batch`` (which holds the journal's items) as ``batch.json``, then delete the
    journal files ``folded`` into it. A crash in between leaves duplicates that reads merge."""
    save_batch(batch_dir, batch)
    journal.remove(folded)
