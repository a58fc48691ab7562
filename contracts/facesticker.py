"""Where a face sticker item's sticker is: ``params.patch`` of ``batch.json``, read for capture and the report.

``craft --source mtcnn --attack patch`` (:mod:`craft.detectors.patchbatch`) records on
each item::

    "params": {"patch": {"path": "patches/<name>.png", "sha256": ...,
                         "placement": {"cx", "cy", "side", "angle_deg"},   # PNG pixels, degrees
                         "place": "landmarks" | "box",
                         "landmarks": [[x, y] x 5]}}                       # by landmarks: eyes, nose, mouth corners

``placement`` is the sticker's centre, the side of its square and its rotation
(clockwise on the image, as its y axis points down); ``place`` says what put it
there (a batch older than ``place`` placed it by the box). The values are checked:
a batch is treated as hostile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from contracts.manifest import Item

PLACES = ("box", "landmarks")


@dataclass(frozen=True)
class StickerPlace:
    """The sticker on one item's adversarial PNG: centre, side, rotation, what placed it, and the landmarks used."""

    cx: float
    cy: float
    side: float
    angle_deg: float
    place: str
    landmarks: tuple[tuple[float, float], ...] = ()

    def corners(self) -> list[tuple[float, float]]:
        """The square's four corners (PNG pixels), clockwise from the sticker's own top-left."""
        a = math.radians(self.angle_deg)
        c, s, h = math.cos(a), math.sin(a), self.side / 2
        return [(self.cx + c * u - s * v, self.cy + s * u + c * v) for u, v in ((-h, -h), (h, -h), (h, h), (-h, h))]


def _num(d: dict[str, Any], key: str, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{where}: {key} is not a finite number")
    return float(v)


def sticker_of(it: Item) -> StickerPlace | None:
    """The item's sticker, or ``None`` when it has none (a ValueError naming the item when the record is malformed)."""
    rec = it.params.get("patch") if isinstance(it.params, dict) else None
    if not isinstance(rec, dict) or "placement" not in rec:
        return None
    where = f"{it.id}: params.patch"
    pl = rec["placement"]
    if not isinstance(pl, dict):
        raise ValueError(f"{where}: placement is not an object")
    place = rec.get("place", "box")
    if place not in PLACES:
        raise ValueError(f"{where}: place {place!r} is not box or landmarks")
    raw = rec.get("landmarks") or []
    if not isinstance(raw, list) or len(raw) not in (0, 5):
        raise ValueError(f"{where}: landmarks is not a list of five [x, y]")
    marks = []
    for p in raw:
        if not isinstance(p, list) or len(p) != 2:
            raise ValueError(f"{where}: landmarks is not a list of five [x, y]")
        marks.append((_num({"x": p[0]}, "x", where), _num({"y": p[1]}, "y", where)))
    side = _num(pl, "side", where)
    if side <= 0:
        raise ValueError(f"{where}: side {side:g} is not positive")
    return StickerPlace(_num(pl, "cx", where), _num(pl, "cy", where), side, _num(pl, "angle_deg", where), place,
                        tuple(marks))  # fmt: skip
