"""Type and range checks for the files a stage reads from outside: ``batch.json`` (with the
records of craft's journal, :mod:`contracts.journal`) and ``layout.json``.

Every check raises :class:`UserError` naming the file and the field, e.g.
``batch.json: items[3].label.index: expected an integer, got '243' (str)``.
A value of the wrong type is never coerced: a label index stored as a string
would otherwise compare unequal to every prediction and halve the accuracy.
"""

from __future__ import annotations

import math
from typing import Any

from contracts.errors import UserError

MAX_SHEET_MM = 2000.0  # larger than A0 (841 x 1189 mm): anything beyond is not a sheet of paper
MAX_MARKER_ID = 100_000
MAX_CLASSES = 1_000_000  # more than any label set (ImageNet-21k has 21,841 classes)
IMAGENET_CLASSES = 1000  # a batch without "classes" is labelled in ImageNet-1k


class Fields:
    """Checks on one JSON object, with error messages that name ``where`` (the file) and the field's path."""

    def __init__(self, where: str, fix: str) -> None:
        self.where, self.fix = where, fix

    def fail(self, field: str, what: str, v: Any = ...) -> UserError:
        got = "" if v is ... else f", got {_show(v)}"
        return UserError(f"{self.where}: {field}: {what}{got}; {self.fix}")

    def obj(self, v: Any, field: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(field, "expected an object", v)
        return v

    def key(self, d: dict[str, Any], k: str, field: str) -> Any:
        if k not in d:
            raise self.fail(f"{field}.{k}" if field else k, "missing")
        return d[k]

    def lst(self, v: Any, field: str, n: int | None = None) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(field, "expected a list", v)
        if n is not None and len(v) != n:
            raise self.fail(field, f"expected {n} values", v)
        return v

    def text(self, v: Any, field: str, empty: bool = False) -> str:
        if not isinstance(v, str) or (not empty and not v):
            raise self.fail(field, "expected a non-empty string" if not empty else "expected a string", v)
        return v

    def integer(self, v: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(field, "expected an integer", v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(field, f"expected {lo if lo is not None else '...'}..{hi if hi is not None else '...'}", v)
        return v

    def number(self, v: Any, field: str, lo: float | None = None, hi: float | None = None) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(field, "expected a finite number", v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(field, f"expected {lo if lo is not None else '...'}..{hi if hi is not None else '...'}", v)
        return float(v)


def _show(v: Any) -> str:
    r = repr(v)
    return f"{r[:60]}{'...' if len(r) > 60 else ''} ({type(v).__name__})"


# -- batch.json ------------------------------------------------------------------


def check_manifest(d: dict[str, Any], where: str) -> None:
    """Types of every field that a later stage reads, unique item ids, sane ε and top-5 lists."""
    f = Fields(where, "fix the field or re-run 'photoproof craft' to rebuild the manifest")
    f.text(f.key(d, "batch_id", ""), "batch_id")
    f.text(f.key(d, "created", ""), "created", empty=True)
    f.obj(f.key(d, "config", ""), "config")
    for i, m in enumerate(f.lst(f.key(d, "models", ""), "models")):
        at = f"models[{i}]"
        f.obj(m, at)
        for k in ("name", "arch", "role", "weights_sha256", "weights_package"):
            f.text(f.key(m, k, at), f"{at}.{k}", empty=k != "name")
        f.obj(f.key(m, "preprocess", at), f"{at}.preprocess")
    classes = d.get("classes")
    n_classes = len(f.lst(classes, "classes")) if classes is not None else IMAGENET_CLASSES
    if n_classes < 1:
        raise f.fail("classes", "expected at least one class name", classes)
    seen: dict[str, int] = {}
    for i, it in enumerate(f.lst(f.key(d, "items", ""), "items")):
        at = f"items[{i}]"
        item_id = check_item(f, it, at, n_classes)
        if item_id in seen:
            raise f.fail(f"{at}.id", f"duplicate item id {item_id!r} (also items[{seen[item_id]}])")
        seen[item_id] = i


def check_unique_ids(items: list[Any], where: str) -> None:
    """Refuse duplicate item ids in ``batch.json`` itself, before craft's journal is folded in
    (the fold keeps one record per id, which would hide them)."""
    f = Fields(where, "fix the field or re-run 'photoproof craft' to rebuild the manifest")
    seen: dict[Any, int] = {}
    for i, it in enumerate(items):
        item_id = it.get("id") if isinstance(it, dict) else None
        if isinstance(item_id, str):
            if item_id in seen:
                raise f.fail(f"items[{i}].id", f"duplicate item id {item_id!r} (also items[{seen[item_id]}])")
            seen[item_id] = i


def check_journal_item(it: Any, where: str) -> None:
    """The same checks as for an item of ``batch.json``, on one record of craft's journal (``where``: file and line)."""
    check_item(Fields(where, "delete the journal file and re-run 'photoproof craft' to redo its items"), it, "item")


def check_item(f: Fields, it: Any, at: str, n_classes: int = MAX_CLASSES) -> str:
    """Types and ranges of one item (``at``: its place, e.g. ``items[3]``); return its id.

    ``n_classes``: the size of the batch's label set; class indices must lie in it.
    """
    top = n_classes - 1
    f.obj(it, at)
    item_id = f.text(f.key(it, "id", at), f"{at}.id")
    src = f.obj(f.key(it, "source", at), f"{at}.source")
    for k in ("file", "sha256", "origin"):
        f.text(f.key(src, k, f"{at}.source"), f"{at}.source.{k}", empty=True)
    label = f.obj(f.key(it, "label", at), f"{at}.label")
    f.integer(f.key(label, "index", f"{at}.label"), f"{at}.label.index", lo=0, hi=top)
    f.text(f.key(label, "name", f"{at}.label"), f"{at}.label.name", empty=True)
    f.text(f.key(label, "source", f"{at}.label"), f"{at}.label.source")
    f.text(f.key(it, "attack", at), f"{at}.attack")
    f.number(f.key(it, "eps", at), f"{at}.eps", lo=0, hi=255)
    f.integer(f.key(it, "seed", at), f"{at}.seed")
    if it.get("target") is not None:
        f.integer(it["target"], f"{at}.target", lo=0, hi=top)
    if "params" in it:
        f.obj(it["params"], f"{at}.params")
    for role in ("clean", "adv"):
        rec = f.obj(f.key(it, role, at), f"{at}.{role}")
        f.text(f.key(rec, "path", f"{at}.{role}"), f"{at}.{role}.path")
        f.text(f.key(rec, "sha256", f"{at}.{role}"), f"{at}.{role}.sha256", empty=True)
        for model, top5 in f.obj(rec.get("top5", {}), f"{at}.{role}.top5").items():
            for j, pair in enumerate(f.lst(top5, f"{at}.{role}.top5.{model}")):
                p = f.lst(pair, f"{at}.{role}.top5.{model}[{j}]", n=2)
                f.integer(p[0], f"{at}.{role}.top5.{model}[{j}][0]", lo=0, hi=top)
                f.number(p[1], f"{at}.{role}.top5.{model}[{j}][1]", lo=0, hi=1.0001)
        for model, boxes in f.obj(rec.get("boxes", {}), f"{at}.{role}.boxes").items():
            _boxes(f, boxes, f"{at}.{role}.boxes.{model}")
    if it.get("truth") is not None:
        truth = f.obj(it["truth"], f"{at}.truth")
        f.text(f.key(truth, "source", f"{at}.truth"), f"{at}.truth.source")
        _boxes(f, f.key(truth, "boxes", f"{at}.truth"), f"{at}.truth.boxes")
    return item_id


def _boxes(f: Fields, v: Any, field: str) -> None:
    """A detector's boxes: ``[{"box": [x0, y0, x1, y1], "score": s}, ...]`` with ``x0 <= x1``, ``y0 <= y1``."""
    for j, row in enumerate(f.lst(v, field)):
        at = f"{field}[{j}]"
        r = f.obj(row, at)
        x0, y0, x1, y1 = (f.number(c, f"{at}.box") for c in f.lst(f.key(r, "box", at), f"{at}.box", n=4))
        if x1 < x0 or y1 < y0:
            raise f.fail(f"{at}.box", "expected x0 <= x1 and y0 <= y1", r["box"])
        f.number(f.key(r, "score", at), f"{at}.score", lo=0, hi=1.0001)


# -- layout.json -----------------------------------------------------------------


def _box(f: Fields, v: Any, field: str, size: tuple[float, float] | None) -> None:
    x, y, w, h = (
        f.number(c, f"{field}[{k}]", lo=-MAX_SHEET_MM, hi=MAX_SHEET_MM) for k, c in enumerate(f.lst(v, field, n=4))
    )
    if w <= 0 or h <= 0:
        raise f.fail(field, "width and height must be > 0", v)
    if size is not None and (x < -1e-6 or y < -1e-6 or x + w > size[0] + 1e-6 or y + h > size[1] + 1e-6):
        raise f.fail(field, f"lies outside the {size[0]:g} x {size[1]:g} mm sheet", v)


def check_layout(d: dict[str, Any], where: str) -> None:
    """Types and physical bounds of every sheet, marker, tile and patch (no 100 GiB page rasters)."""
    f = Fields(where, "re-run 'photoproof print' to rebuild it")
    f.text(f.key(d, "batch_id", ""), "batch_id")
    f.text(f.key(d, "paper", ""), "paper", empty=True)
    f.text(f.key(d, "aruco_dictionary", ""), "aruco_dictionary")
    f.number(f.key(d, "marker_size_mm", ""), "marker_size_mm", lo=1, hi=MAX_SHEET_MM)
    if "tile_mm" in d:
        f.number(d["tile_mm"], "tile_mm", lo=1, hi=MAX_SHEET_MM)
    if "extra" in d:
        f.obj(d["extra"], "extra")
    ids: set[int] = set()
    for i, s in enumerate(f.lst(f.key(d, "sheets", ""), "sheets")):
        at = f"sheets[{i}]"
        f.obj(s, at)
        f.text(f.key(s, "sheet_id", at), f"{at}.sheet_id")
        f.integer(f.key(s, "page", at), f"{at}.page", lo=0, hi=100_000)
        size = tuple(
            f.number(v, f"{at}.size_mm[{k}]", lo=10, hi=MAX_SHEET_MM)
            for k, v in enumerate(f.lst(f.key(s, "size_mm", at), f"{at}.size_mm", n=2))
        )
        for j, m in enumerate(f.lst(f.key(s, "markers", at), f"{at}.markers")):
            mat = f"{at}.markers[{j}]"
            f.obj(m, mat)
            mid = f.integer(f.key(m, "id", mat), f"{mat}.id", lo=0, hi=MAX_MARKER_ID)
            if mid in ids:
                raise f.fail(f"{mat}.id", f"marker id {mid} is used twice")
            ids.add(mid)
            for k, item in enumerate(f.lst(m.get("pairs", []), f"{mat}.pairs")):
                f.text(item, f"{mat}.pairs[{k}]")
            for k, c in enumerate(f.lst(f.key(m, "corners_mm", mat), f"{mat}.corners_mm", n=4)):
                for v in f.lst(c, f"{mat}.corners_mm[{k}]", n=2):
                    f.number(v, f"{mat}.corners_mm[{k}]", lo=-1e-6, hi=MAX_SHEET_MM)
        for j, t in enumerate(f.lst(f.key(s, "tiles", at), f"{at}.tiles")):
            tat = f"{at}.tiles[{j}]"
            f.obj(t, tat)
            f.text(f.key(t, "item", tat), f"{tat}.item")
            if f.key(t, "role", tat) not in ("clean", "adv"):
                raise f.fail(f"{tat}.role", "expected 'clean' or 'adv'", t["role"])
            f.text(f.key(t, "image", tat), f"{tat}.image")
            _box(f, f.key(t, "box_mm", tat), f"{tat}.box_mm", size)  # type: ignore[arg-type]
        for j, p in enumerate(f.lst(s.get("calibration", []), f"{at}.calibration")):
            pat = f"{at}.calibration[{j}]"
            f.obj(p, pat)
            f.text(f.key(p, "kind", pat), f"{pat}.kind")
            f.text(f.key(p, "name", pat), f"{pat}.name")
            _box(f, f.key(p, "box_mm", pat), f"{pat}.box_mm", size)  # type: ignore[arg-type]
            if p.get("rgb") is not None:
                for v in f.lst(p["rgb"], f"{pat}.rgb", n=3):
                    f.integer(v, f"{pat}.rgb", lo=0, hi=255)
        if s.get("qr") is not None:
            qr = f.obj(s["qr"], f"{at}.qr")
            f.text(f.key(qr, "payload", f"{at}.qr"), f"{at}.qr.payload")
            _box(f, f.key(qr, "box_mm", f"{at}.qr"), f"{at}.qr.box_mm", size)  # type: ignore[arg-type]
