"""``layout.json``: where everything sits on each printed sheet, in millimetres.

Coordinates are millimetres from the page's top-left corner, x to the right and
y down (the image convention, so that a homography from mm to camera pixels is
direct). Marker corners are in OpenCV ArUco order: top-left, top-right,
bottom-right, bottom-left of the marker's black square.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts.batchdir import LAYOUT as LAYOUT  # re-exported: the name's old home
from contracts.errors import UserError
from contracts.paths import atomic_write_json
from contracts.validate import check_layout

SCHEMA = "photoproof.layout"
SCHEMA_VERSION = 1


@dataclass
class Marker:
    id: int
    corners_mm: list[list[float]]  # 4 x [x, y]


@dataclass
class Tile:
    item: str
    role: str  # "clean" | "adv"
    image: str  # path of the PNG, relative to the batch directory
    box_mm: list[float]  # [x, y, w, h]


@dataclass
class Patch:
    """A calibration patch: its box and nominal sRGB value (0..255)."""

    kind: str  # "grey" | "colour" | "detail"
    name: str
    box_mm: list[float]
    rgb: list[int] | None = None


@dataclass
class Sheet:
    sheet_id: str
    page: int  # 0-based page index in sheets.pdf
    size_mm: list[float]  # [width, height]
    markers: list[Marker]
    tiles: list[Tile]
    calibration: list[Patch] = field(default_factory=list)
    qr: dict[str, Any] | None = None  # {"payload": str, "box_mm": [x, y, w, h]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sheet:
        return cls(
            sheet_id=str(d["sheet_id"]),
            page=int(d["page"]),
            size_mm=[float(v) for v in d["size_mm"]],
            markers=[Marker(**m) for m in d["markers"]],
            tiles=[Tile(**t) for t in d["tiles"]],
            calibration=[Patch(**p) for p in d.get("calibration", [])],
            qr=d.get("qr"),
        )


@dataclass
class Layout:
    batch_id: str
    paper: str
    aruco_dictionary: str  # an OpenCV name such as "DICT_4X4_1000"
    marker_size_mm: float
    sheets: list[Sheet]
    tile_mm: float = 60.0
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"schema": SCHEMA, **d}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = LAYOUT) -> Layout:
        if d.get("schema") != SCHEMA or d.get("schema_version") != SCHEMA_VERSION:
            raise UserError(
                f"{where}: not a Photoproof layout of schema version {SCHEMA_VERSION}; re-run 'photoproof print'"
            )
        check_layout(d, where)  # types and physical bounds, each error naming the field
        try:
            return cls(
                batch_id=str(d["batch_id"]),
                paper=str(d["paper"]),
                aruco_dictionary=str(d["aruco_dictionary"]),
                marker_size_mm=float(d["marker_size_mm"]),
                sheets=[Sheet.from_dict(s) for s in d["sheets"]],
                tile_mm=float(d.get("tile_mm", 60.0)),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{where}: malformed layout ({type(e).__name__}: {e}); re-run 'photoproof print'") from None

    def marker_index(self) -> dict[int, tuple[Sheet, Marker]]:
        """Map each marker id to its sheet and marker."""
        return {m.id: (s, m) for s in self.sheets for m in s.markers}


def load_layout(batch_dir: Path) -> Layout:
    path = Path(batch_dir) / LAYOUT
    if not path.is_file():
        raise UserError(f"{path}: missing; print the batch first with 'photoproof print {batch_dir}'")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt JSON ({e}); re-run 'photoproof print'") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a JSON object; re-run 'photoproof print'")
    return Layout.from_dict(d, where=str(path))


def check_sheets_pdf(batch_dir: Path, layout: Layout) -> None:
    """Refuse a ``sheets.pdf`` that is not the one this layout was written with (``extra.sheets_pdf_sha256``).

    Skipped when either is absent (a capture station may hold only the layout).
    """
    want = layout.extra.get("sheets_pdf_sha256")
    pdf = Path(batch_dir) / str(layout.extra.get("sheets_pdf", "sheets.pdf"))
    if not isinstance(want, str) or not pdf.is_file():
        return
    from contracts.paths import sha256_file

    if sha256_file(pdf) != want:
        raise UserError(
            f"{pdf}: not the PDF that {Path(batch_dir) / LAYOUT} describes (another print run); re-run 'photoproof "
            f"print {batch_dir}' and print the new sheets"
        )


def save_layout(batch_dir: Path, layout: Layout) -> None:
    atomic_write_json(Path(batch_dir) / LAYOUT, layout.to_dict())
