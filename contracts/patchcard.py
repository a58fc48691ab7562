"""Patch cards in ``layout.json``: a printed adversarial patch on its own, framed by four ArUco markers.

``photoproof print --patch-mm S`` adds one page per distinct patch of the batch
(``craft --attack patch``), after the sheets. Each card's record lives in
``layout.json`` under ``extra.patch_cards`` (so that readers of the layout that
know nothing of patches are unaffected)::

    {"name": "patch-square-a10-t859", "image": "patches/patch-square-a10-t859.png",
     "shape": "square", "target": 859, "page": 3, "size_mm": 80.0,
     "box_mm": [x, y, w, h], "cut_mm": [x, y, w, h],
     "markers": [{"id": 912, "corners_mm": [[x, y], ...]}, ...]}

Coordinates are millimetres from the page's top-left corner (as for sheets).
The capture stage's scene mode (``capture --scene``) finds a card by its
markers and maps ``box_mm`` into the frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from contracts.errors import UserError
from contracts.layout import Layout, Marker

EXTRA_KEY = "patch_cards"


@dataclass
class PatchCard:
    name: str
    image: str  # the patch PNG, relative to the batch directory
    shape: str  # "square" | "circle"
    target: int | None
    page: int  # 0-based page of sheets.pdf
    size_mm: float  # printed side of the patch's bounding square
    box_mm: list[float]  # the patch: [x, y, w, h]
    cut_mm: list[float]  # the card to cut out (patch and markers): [x, y, w, h]
    markers: list[Marker]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PatchCard:
        return cls(
            name=str(d["name"]),
            image=str(d["image"]),
            shape=str(d["shape"]),
            target=None if d.get("target") is None else int(d["target"]),
            page=int(d["page"]),
            size_mm=float(d["size_mm"]),
            box_mm=[float(v) for v in d["box_mm"]],
            cut_mm=[float(v) for v in d["cut_mm"]],
            markers=[Marker(int(m["id"]), [[float(v) for v in c] for c in m["corners_mm"]]) for m in d["markers"]],
        )


def patch_cards(layout: Layout, where: str = "layout.json") -> list[PatchCard]:
    """The layout's patch cards (none for a layout printed without ``--patch-mm``)."""
    try:
        return [PatchCard.from_dict(d) for d in layout.extra.get(EXTRA_KEY, [])]
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: malformed patch card ({type(e).__name__}: {e}); re-run 'photoproof print'") from None


def set_patch_cards(layout: Layout, cards: list[PatchCard]) -> None:
    layout.extra[EXTRA_KEY] = [c.to_dict() for c in cards]
