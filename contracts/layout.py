"""``layout.json``: where everything sits on each printed sheet, in millimetres.

Coordinates are millimetres from the page's top-left corner, x to the right and
y down (the image convention, so that a homography from mm to camera pixels is
direct). Marker corners are in OpenCV ArUco order: top-left, top-right,
bottom-right, bottom-left of the marker's black square.

Layout identity: every print has a ``layout_id``, a hash of what it laid out
(:func:`layout_id`), carried in each sheet's QR code and in every capture record. The
newest print's layout is ``layout.json``; every print's layout is also kept as
``layouts/<layout id>.json``, so that a photo of an older sheet is read with its own
layout (:func:`load_layouts`). A ``layout.json`` written before layout ids has none in
its file or its QR codes; its id is computed from its content.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts.batchdir import LAYOUT as LAYOUT  # re-exported: the name's old home
from contracts.batchdir import LAYOUTS
from contracts.errors import UserError
from contracts.paths import atomic_write_json
from contracts.validate import check_layout

SCHEMA = "photoproof.layout"
SCHEMA_VERSION = 2  # 2: markers list the pairs they frame (dense sheets); version 1 files are still read
READABLE_VERSIONS = (1, 2)
ID_HEX = 10  # hex digits of a layout id (40 bits: two prints of one batch never collide by chance)
# extra keys that do not describe where things are (the PDF's hash depends on the QR payloads, which hold the id)
_VOLATILE_EXTRA = ("sheets_pdf", "sheets_pdf_sha256")


@dataclass
class Marker:
    id: int
    corners_mm: list[list[float]]  # 4 x [x, y]
    # the items whose pair (block) this marker frames on a dense sheet; [] for a sheet's frame marker
    pairs: list[str] = field(default_factory=list)


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
            markers=[Marker(m["id"], m["corners_mm"], [str(p) for p in m.get("pairs", [])]) for m in d["markers"]],
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
    layout_id: str = ""  # layout_id(self); "" until computed (from_dict and the printouts stage set it)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for s in d["sheets"]:
            for m in s["markers"]:
                if not m["pairs"]:  # a frame marker: written as in version 1
                    del m["pairs"]
        d = {"schema": SCHEMA, **d}
        return d

    @property
    def id(self) -> str:
        """The layout id (computed from the content when the file had none)."""
        return self.layout_id or layout_id(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = LAYOUT) -> Layout:
        if d.get("schema") != SCHEMA or d.get("schema_version") not in READABLE_VERSIONS:
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
                schema_version=int(d["schema_version"]),  # an old file keeps its version, and so its computed id
                extra=dict(d.get("extra", {})),
                layout_id=str(d.get("layout_id") or ""),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{where}: malformed layout ({type(e).__name__}: {e}); re-run 'photoproof print'") from None

    def marker_index(self) -> dict[int, tuple[Sheet, Marker]]:
        """Map each marker id to its sheet and marker."""
        return {m.id: (s, m) for s in self.sheets for m in s.markers}

    @property
    def dense(self) -> bool:
        """Whether every pair has markers of its own (``printouts.blocks``): its tiles are located by those only."""
        return any(m.pairs for s in self.sheets for m in s.markers)


def layout_id(layout: Layout) -> str:
    """A hash of what ``layout`` lays out: batch, paper, markers, tiles, patches, QR boxes (not QR payloads).

    The first ``ID_HEX`` hex digits of the SHA-256 of its canonical JSON, without the
    QR payloads, their module counts and the PDF's hash (all follow from the id) and
    without the id itself.
    """
    d = layout.to_dict()
    d.pop("layout_id", None)
    d["extra"] = {k: v for k, v in d.get("extra", {}).items() if k not in _VOLATILE_EXTRA}
    for s in d["sheets"]:
        if isinstance(s.get("qr"), dict):
            s["qr"] = {k: v for k, v in s["qr"].items() if k not in ("payload", "modules")}
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_HEX]


def load_layout(batch_dir: Path) -> Layout:
    path = Path(batch_dir) / LAYOUT
    if not path.is_file():
        raise UserError(f"{path}: missing; print the batch first with 'photoproof print {batch_dir}'")
    return _read(path)


def _read(path: Path) -> Layout:
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


def kept_layout_path(batch_dir: Path, lid: str) -> Path:
    """``layouts/<lid>.json``: where the layout of one print is kept."""
    if not lid.isalnum():
        raise UserError(f"layout id {lid!r}: expected hex digits")
    return Path(batch_dir) / LAYOUTS / f"{lid}.json"


def keep_layout(batch_dir: Path, layout: Layout) -> Path:
    """Write ``layout`` to ``layouts/<its id>.json`` (once: the same id is the same layout)."""
    path = kept_layout_path(batch_dir, layout.id)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {**layout.to_dict(), "layout_id": layout.id})
    return path


def load_layouts(batch_dir: Path) -> dict[str, Layout]:
    """Every layout this batch was printed with, by id: ``layout.json`` and ``layouts/*.json`` (the current first).

    A kept file that is unreadable or of another batch is skipped with a warning: it can only
    cost the photos of its own sheets, which are then refused.
    """
    import logging

    current = load_layout(batch_dir)
    out = {current.id: current}
    folder = Path(batch_dir) / LAYOUTS
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem in out:
            continue
        try:
            lay = _read(path)
        except UserError as e:
            logging.getLogger(__name__).warning("%s", e)
            continue
        if lay.batch_id != current.batch_id or lay.id != path.stem:
            logging.getLogger(__name__).warning(
                "%s: not a layout of batch %s with this id; ignored", path, current.batch_id
            )
            continue
        out[lay.id] = lay
    return out


def save_layout(batch_dir: Path, layout: Layout) -> None:
    """Write ``layout.json`` (with its id), and keep a copy as ``layouts/<id>.json``."""
    layout.layout_id = layout.id
    keep_layout(batch_dir, layout)
    atomic_write_json(Path(batch_dir) / LAYOUT, layout.to_dict())
