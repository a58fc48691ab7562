"""``captures/<session>.sqlite``: what capture records and analysis reads.

One database per capture session, in WAL mode. Tables:

- ``meta(key, value)``: ``schema_version`` and ``batch_id``;
- ``sessions``: one row: source, model, execution provider, profile, seed, times;
- ``frames``: one row per processed frame: index, monotonic time, sheets found;
- ``observations``: one row per tile seen in a frame: item, role, quality
  metrics, the ``good`` flag from the quality gates, and the target model's top-5;
- ``digital``: the same model's top-5 on the *saved PNGs* themselves, so that
  the report can put digital and photographed results side by side;
- ``patches`` and ``blur`` (added for ``photoproof calibrate``): the calibration
  strip of each detected sheet, measured at most every 5th frame by ``channel.calibrate``:
  each grey and colour patch's encoded RGB mean and std (0..255), its luma std and
  pixel count; the sheet's edge blur sigma in frame pixels and the frame size.
- ``esf`` (added with them; older databases lack it): the sheet's edge spread function,
  normalised to black 0 and white 1 and binned every ``step_px`` frame pixels about the edge
  (``contracts.strip.esf_profile``), the median over its edges, a JSON array (null: an empty bin),
  from which calibrate fits blur and sharpening. Each edge's is fitted and normalised on the samples within
  ``contracts.strip.ESF_WINDOW_PX`` of it (sessions captured before that: on the sheet's whole window).
- ``patch_noise`` (added with ``esf``): each patch's luma std on means of ``bin_px`` x ``bin_px`` pixels,
  the noise at about the scale a tile is classified at.
- ``jpeg`` (added for calibrate's JPEG quality; older databases lack it): the JPEG quality of the first few
  measured frames, as the range of IJG qualities that fit (``capture.jpegquality``): ``method`` "tables" when
  read from the frame's JPEG file, "pixels" when estimated from the decoded frame's 8x8 DCT lattice (NULL: none
  found).
- ``scene_observations`` (added for ``capture --scene``, :mod:`capture.scene`): one
  row per frame: the classified view ``[x, y, w, h]`` (frame pixels), the object's
  true class when given (``label``), the adversarial patch card seen (``patch``,
  ``patch_target``; NULL and ``patch_present`` 0 when none), how many of its
  markers were found, its area as a share of the view, its side in pixels, its
  in-plane rotation and viewing angle in degrees, its corners in the frame, and
  the model's top-5 on the view. Older databases simply lack the table.

Schema version 2 added ``sessions.layout_id`` and ``observations.layout_id`` (the
layout, :func:`contracts.layout.layout_id`, of the print the session started with and of
the printed sheet each tile was read from) and the ``stability`` table: the model's
top-5 on each clean PNG after each mild transform (:mod:`capture.stability`). Version 1
databases are still read (``READABLE_VERSIONS``): their layout ids are NULL and they
have no stability baseline.

Schema version 3 added ``observations.boxes`` and the ``digital_boxes`` table for a
face-detector session (docs/detectors.md): the target detector's boxes on the tile crop
(crop pixels) or on each saved PNG (PNG pixels), as ``contracts.detection.Detections.to_json``. Such a
row's ``top1`` is 1 when every truth face of the item was found at IoU >= 0.5 and 0
otherwise, and its ``top5`` lists ``[top1]`` and the best face score, so the channel
check reads it as it reads a classifier's; a face session's ``stability`` rows are
encoded the same way (every truth face still found after the mild transform; face
sessions captured before detectors recorded a baseline have none). Classifier rows
leave ``boxes`` NULL; version 1 and 2 databases (no such column) are still read.

Top-5 lists are JSON arrays of class ids and of probabilities, best first.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from contracts.errors import UserError

SCHEMA_VERSION = 3
READABLE_VERSIONS = ("1", "2", "3")  # read by analysis; capture writes only SCHEMA_VERSION

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT,
    provider TEXT NOT NULL,
    profile TEXT,
    seed INTEGER,
    started REAL NOT NULL,
    stopped REAL,
    config TEXT NOT NULL DEFAULT '{}',
    layout_id TEXT
);
CREATE TABLE IF NOT EXISTS frames (
    session_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    t REAL NOT NULL,
    sheets_found INTEGER NOT NULL,
    sheets TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (session_id, idx)
);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    sheet_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clean', 'adv')),
    sharpness REAL NOT NULL,
    tile_px REAL NOT NULL,
    angle_deg REAL NOT NULL,
    clipped REAL NOT NULL,
    good INTEGER NOT NULL,
    top1 INTEGER NOT NULL,
    top1_prob REAL NOT NULL,
    top5_ids TEXT NOT NULL,
    top5_probs TEXT NOT NULL,
    layout_id TEXT,
    boxes TEXT
);
CREATE INDEX IF NOT EXISTS obs_item ON observations (item_id, role);
CREATE TABLE IF NOT EXISTS digital (
    session_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clean', 'adv')),
    top5_ids TEXT NOT NULL,
    top5_probs TEXT NOT NULL,
    PRIMARY KEY (session_id, item_id, role)
);
CREATE TABLE IF NOT EXISTS digital_boxes (
    session_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clean', 'adv')),
    boxes TEXT NOT NULL,
    PRIMARY KEY (session_id, item_id, role)
);
CREATE TABLE IF NOT EXISTS stability (
    session_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    transform TEXT NOT NULL,
    top5_ids TEXT NOT NULL,
    top5_probs TEXT NOT NULL,
    PRIMARY KEY (session_id, item_id, transform)
);
CREATE TABLE IF NOT EXISTS patches (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    sheet_id TEXT NOT NULL,
    patch TEXT NOT NULL,
    mean_r REAL NOT NULL,
    mean_g REAL NOT NULL,
    mean_b REAL NOT NULL,
    std_r REAL NOT NULL,
    std_g REAL NOT NULL,
    std_b REAL NOT NULL,
    std_y REAL NOT NULL,
    n_px INTEGER NOT NULL,
    PRIMARY KEY (session_id, frame_idx, sheet_id, patch)
);
CREATE TABLE IF NOT EXISTS scene_observations (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    view TEXT NOT NULL,
    label INTEGER,
    patch TEXT,
    patch_target INTEGER,
    patch_present INTEGER NOT NULL,
    patch_markers INTEGER NOT NULL,
    patch_share REAL,
    patch_side_px REAL,
    patch_rotation_deg REAL,
    patch_tilt_deg REAL,
    patch_quad TEXT,
    top1 INTEGER NOT NULL,
    top1_prob REAL NOT NULL,
    top5_ids TEXT NOT NULL,
    top5_probs TEXT NOT NULL,
    PRIMARY KEY (session_id, frame_idx)
);
CREATE TABLE IF NOT EXISTS blur (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    sheet_id TEXT NOT NULL,
    sigma_px REAL,
    n_edges INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    PRIMARY KEY (session_id, frame_idx, sheet_id)
);
CREATE TABLE IF NOT EXISTS patch_noise (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    sheet_id TEXT NOT NULL,
    patch TEXT NOT NULL,
    bin_px INTEGER NOT NULL,
    std_y REAL NOT NULL,
    PRIMARY KEY (session_id, frame_idx, sheet_id, patch)
);
CREATE TABLE IF NOT EXISTS jpeg (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    quality_lo INTEGER,
    quality_hi INTEGER,
    method TEXT NOT NULL CHECK (method IN ('tables', 'pixels')),
    PRIMARY KEY (session_id, frame_idx)
);
CREATE TABLE IF NOT EXISTS esf (
    session_id TEXT NOT NULL,
    frame_idx INTEGER NOT NULL,
    sheet_id TEXT NOT NULL,
    step_px REAL NOT NULL,
    esf TEXT NOT NULL,
    PRIMARY KEY (session_id, frame_idx, sheet_id)
);
"""


def create_db(path: Path) -> sqlite3.Connection:
    """Create (or open) a capture database in WAL mode with the schema above."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA_SQL)
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    con.commit()
    return con


def readonly_uri(path: Path) -> str:
    """An SQLite ``file:`` URI that opens ``path`` read-only.

    The path is percent-encoded (``Path.as_uri``), so ``#``, ``?`` and ``%`` in a
    folder name stay part of the file name instead of starting SQLite's query string.
    """
    return Path(os.path.abspath(path)).as_uri() + "?mode=ro"


def check_db_path(path: Path) -> None:
    """Refuse a capture database that is a link to a file outside its batch (``BATCH/captures/x.sqlite``).

    Raises:
        UserError: naming the file.
    """
    batch = Path(os.path.abspath(path)).parent.parent
    if not (path.is_symlink() or path.parent.is_symlink()):
        return
    target, root = path.resolve(), batch.resolve()
    if root not in target.parents:
        raise UserError(
            f"{path}: a link to {target}, outside the batch directory; refusing it (copy the file into "
            f"{batch / 'captures'} instead)"
        )


def _open_checked(uri: str) -> tuple[sqlite3.Connection, str | None]:
    con = sqlite3.connect(uri, uri=True)
    ok = con.execute("PRAGMA quick_check").fetchone()
    if not ok or ok[0] != "ok":
        raise sqlite3.DatabaseError(str(ok))
    return con, dict(con.execute("SELECT key, value FROM meta").fetchall()).get("schema_version")


def _cannot_write(e: sqlite3.Error) -> bool:
    """SQLite could not open the file for want of writing beside it (its ``-shm``), not for damage."""
    name = str(getattr(e, "sqlite_errorname", ""))
    return name in ("SQLITE_CANTOPEN", "SQLITE_PERM") or name.startswith("SQLITE_READONLY")


def _open_read_only_medium(path: Path, e: sqlite3.Error) -> tuple[sqlite3.Connection, str | None]:
    """A capture database on a read-only disk or folder (SQLite cannot create its ``-shm`` there).

    With no write-ahead log pending, every committed row is in the file itself, and
    SQLite reads it as immutable; with one, reading the file alone would miss rows.
    """
    wal = Path(f"{path}-wal")
    fix = "copy the batch folder to a writable disk (or make its captures/ folder writable) and re-run"
    if wal.is_file() and wal.stat().st_size > 0:
        raise UserError(
            f"{path}: read-only, not damaged: SQLite cannot open it ({e}) and its log {wal.name} holds rows not yet "
            f"in the file; {fix}"
        ) from None
    try:
        return _open_checked(readonly_uri(path) + "&immutable=1")
    except sqlite3.DatabaseError as e2:
        raise UserError(
            f"{path}: cannot open it on this read-only folder ({e}), and reading it as a read-only file failed "
            f"({e2}); {fix}"
        ) from None


def open_db_readonly(path: Path) -> sqlite3.Connection:
    """Open a capture database for reading and check that it is one.

    Raises:
        UserError: naming the file when it is missing, corrupt or not a capture db.
    """
    if not path.is_file():
        raise UserError(f"{path}: no such capture database")
    check_db_path(path)
    try:
        con, ver = _open_checked(readonly_uri(path))
    except sqlite3.DatabaseError as e:
        if not _cannot_write(e):
            raise UserError(
                f"{path}: corrupt or not a Photoproof capture database ({e}); remove it or re-capture"
            ) from None
        con, ver = _open_read_only_medium(path, e)
    if ver not in READABLE_VERSIONS:
        raise UserError(
            f"{path}: capture schema version {ver!r} is not supported (this Photoproof reads "
            f"{', '.join(READABLE_VERSIONS)})"
        )
    return con


def schema_version(con: sqlite3.Connection) -> int:
    """The database's schema version (1 when the meta table lacks it)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 1
    except (TypeError, ValueError):
        return 1


def decode_top5(ids: str, probs: str) -> list[tuple[int, float]]:
    """``[(class_id, probability), ...]`` from the two JSON columns.

    Raises:
        ValueError: malformed JSON, or lists of different lengths (never silently truncated).
    """
    i, p = json.loads(ids), json.loads(probs)
    if not isinstance(i, list) or not isinstance(p, list) or len(i) != len(p):
        raise ValueError(f"top-5 ids {ids[:40]!r} and probabilities {probs[:40]!r} do not pair up")
    return [(int(a), float(b)) for a, b in zip(i, p, strict=True)]


def encode_esf(esf: Any) -> str:
    """An edge spread function as a JSON array, NaN (an empty bin) as null."""
    return json.dumps([round(float(x), 4) if x == x else None for x in esf])


def decode_esf(text: str) -> list[float]:
    """:func:`encode_esf` back; null as NaN. Raises ValueError on anything but a list of numbers and nulls."""
    got = json.loads(text)
    if not isinstance(got, list) or not all(x is None or isinstance(x, int | float) for x in got):
        raise ValueError("esf: expected a JSON array of numbers")
    return [float("nan") if x is None else float(x) for x in got]


def has_column(con: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (older schema versions lack some)."""
    return any(row[1] == column for row in con.execute(f"PRAGMA table_info({table})"))


def encode_top5(ids: Any, probs: Any) -> tuple[str, str]:
    return json.dumps([int(i) for i in ids]), json.dumps([round(float(p), 6) for p in probs])


def read_stability(
    con: sqlite3.Connection, session_id: str, truth: dict[str, int]
) -> tuple[dict[str, float], dict[str, list[str]]] | None:
    """A session's digital stability baseline (the ``stability`` table, :mod:`capture.stability`).

    Per item of ``truth`` (item id -> the right top-1: a class, or 1 "face" for a face detector's rows), the share
    of mild transforms under which its top-1 stays right, and the transforms that flip it. ``None`` when the session
    recorded none: a schema-1 database, or a face session captured before detectors recorded one.

    Raises:
        ValueError: a malformed top-5 row.
    """
    try:
        rows = con.execute(
            "SELECT item_id, transform, top5_ids, top5_probs FROM stability WHERE session_id = ?", (session_id,)
        ).fetchall()
    except sqlite3.DatabaseError:  # a schema-1 database: no such table
        return None
    per: dict[str, list[bool]] = {}
    flipped: dict[str, list[str]] = {}
    for item_id, name, ids, probs in rows:
        if item_id in truth:
            pairs = decode_top5(ids, probs)
            right = bool(pairs) and pairs[0][0] == truth[item_id]
            per.setdefault(item_id, []).append(right)
            if not right:
                flipped.setdefault(item_id, []).append(str(name))
    if not per:
        return None
    return {k: sum(v) / len(v) for k, v in per.items()}, flipped
