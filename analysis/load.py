"""Read a batch directory and its capture databases into plain data.

No metrics here: this module turns ``batch.json`` and ``captures/*.sqlite``
(schema in ``contracts.capturedb``) into :class:`ReportInput`, checking that
every database belongs to the batch. Only observations that passed the quality
gates (``good = 1``) are kept; the totals are counted for the report.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from analysis.quality import session_quality
from contracts.batchdir import CAPTURES, capture_dbs
from contracts.capturedb import decode_top5, open_db_readonly, read_stability
from contracts.errors import UserError
from contracts.manifest import Batch, Item, load_batch, require_classifier_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pred:
    """A model's top-k on one image: class ids and probabilities, best first."""

    ids: tuple[int, ...]
    probs: tuple[float, ...]

    @property
    def top1(self) -> int:
        return self.ids[0] if self.ids else -1

    @property
    def top1_prob(self) -> float:
        return self.probs[0] if self.probs else 0.0

    @classmethod
    def from_pairs(cls, pairs: Iterable[Sequence[float]]) -> Pred:
        """From ``[[class, prob], ...]`` (``batch.json``) or ``[(class, prob), ...]``."""
        ps = [(int(c), float(p)) for c, p in pairs]
        return cls(tuple(c for c, _ in ps), tuple(p for _, p in ps))


@dataclass(frozen=True)
class Observation:
    """One good observation of a tile in a frame (the capture model's top-5)."""

    item_id: str
    role: str
    frame_idx: int
    sharpness: float
    pred: Pred
    layout_id: str | None = None  # the layout (print) the tile was read with; None in databases before layout ids


@dataclass
class Session:
    """One capture session and what it recorded.

    ``digital`` maps ``(item_id, role)`` to the session model's top-5 on the saved
    PNG; ``observations`` holds only good observations of items in the batch.
    """

    id: str
    path: Path
    batch_id: str
    source: str
    model: str
    model_sha256: str | None
    provider: str
    profile: str | None
    seed: int | None
    started: float
    stopped: float | None
    config: dict[str, Any]
    n_frames: int = 0
    n_obs: int = 0
    n_good: int = 0
    digital: dict[tuple[str, str], Pred] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    digital_from_manifest: int = 0  # items whose digital top-5 came from batch.json
    quality: dict[str, Any] = field(
        default_factory=dict
    )  # medians of the clean tiles' quality metrics (see session_quality)
    label_map: dict[int, int] = field(
        default_factory=dict
    )  # batch class -> the model's class (config "labels"); empty: the same set
    class_names: tuple[str, ...] | None = None  # the model's own class names when they are not the batch's
    layout_id: str | None = None  # the layout (print) the session started with; None before layout ids
    stability: dict[str, float] | None = None  # clean item -> share of mild transforms it stays right under
    unstable: dict[str, list[str]] = field(default_factory=dict)  # clean item -> the mild transforms that flip it
    layouts: dict[str | None, int] = field(default_factory=dict)  # layout id -> observations read with it

    @overload
    def truth(self, cls: int) -> int: ...
    @overload
    def truth(self, cls: None) -> None: ...
    @overload
    def truth(self, cls: int | None) -> int | None: ...

    def truth(self, cls: int | None) -> int | None:
        """A batch class index as the session's model numbers it (its own label set)."""
        return None if cls is None else self.label_map.get(cls, cls)

    @property
    def model_name(self) -> str:
        """The model's short name: ``lite2`` for ``lite2``, ``models/lite2.onnx`` or ``lite2.onnx``."""
        return Path(self.model).stem if self.model.endswith(".onnx") else self.model

    @property
    def duration_s(self) -> float | None:
        return None if self.stopped is None else self.stopped - self.started


@dataclass
class ReportInput:
    """Everything the report is computed from."""

    batch_dir: Path
    batch: Batch
    sessions: list[Session]
    notes: list[str] = field(default_factory=list)

    @property
    def source_models(self) -> list[str]:
        """Names of the models whose top-5 batch.json records, in manifest order."""
        names = [m.name for m in self.batch.models if m.role == "source"]
        for it in self.batch.items:
            for name in it.clean.top5:
                if name not in names:
                    names.append(name)
        return [n for n in names if any(n in it.clean.top5 for it in self.batch.items)]


def manifest_pred(item: Item, role: str, model: str) -> Pred | None:
    """The top-5 that batch.json records for ``model`` on the item's saved PNG."""
    top5 = item.image(role).top5.get(model)
    return None if not top5 else Pred.from_pairs(top5)


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in con.execute(f"PRAGMA table_info({table})")}


def _session_rows(con: sqlite3.Connection, path: Path) -> list[dict[str, Any]]:
    try:
        lid = "layout_id" if "layout_id" in _columns(con, "sessions") else "NULL AS layout_id"  # schema 1: none
        cur = con.execute(
            "SELECT id, batch_id, source, model, model_sha256, provider, profile, seed, started, stopped, config, "
            f"{lid} FROM sessions ORDER BY started, id"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    except sqlite3.DatabaseError as e:
        raise UserError(f"{path}: cannot read the sessions table ({e}); remove the file or re-capture") from None


def _read_session(con: sqlite3.Connection, path: Path, row: dict[str, Any], batch: Batch) -> Session:
    try:
        config = json.loads(row["config"] or "{}")
    except (json.JSONDecodeError, RecursionError):
        config = {}
    s = Session(
        id=str(row["id"]),
        path=path,
        batch_id=str(row["batch_id"]),
        source=str(row["source"]),
        model=str(row["model"]),
        model_sha256=row["model_sha256"],
        provider=str(row["provider"]),
        profile=row["profile"],
        seed=row["seed"],
        started=float(row["started"]),
        stopped=None if row["stopped"] is None else float(row["stopped"]),
        config=config if isinstance(config, dict) else {},
        layout_id=None if row.get("layout_id") is None else str(row["layout_id"]),
    )
    labels = s.config.get("labels")
    if isinstance(labels, dict):  # capture mapped the batch's labels onto the model's own classes
        try:
            s.label_map = {int(k): int(v) for k, v in dict(labels.get("map") or {}).items()}
            s.class_names = tuple(str(n) for n in labels.get("target_classes") or ()) or None
        except (TypeError, ValueError, AttributeError):
            raise UserError(f"{path}: session {s.id}: malformed label map in its config; re-capture") from None
    known = {it.id for it in batch.items}
    sid = s.id
    s.n_frames = int(con.execute("SELECT COUNT(*) FROM frames WHERE session_id = ?", (sid,)).fetchone()[0])
    s.n_obs, s.n_good = (
        int(v or 0)
        for v in con.execute(
            "SELECT COUNT(*), SUM(good != 0) FROM observations WHERE session_id = ?", (sid,)
        ).fetchone()
    )
    for item_id, role, ids, probs in con.execute(
        "SELECT item_id, role, top5_ids, top5_probs FROM digital WHERE session_id = ?", (sid,)
    ):
        if item_id in known:
            s.digital[(item_id, role)] = Pred.from_pairs(decode_top5(ids, probs))
    unknown = 0
    has_lid = "layout_id" in _columns(con, "observations")
    for lid, n in con.execute(
        f"SELECT {'layout_id' if has_lid else 'NULL'}, COUNT(*) FROM observations WHERE session_id = ? GROUP BY 1",
        (sid,),
    ):
        s.layouts[None if lid is None else str(lid)] = int(n)
    rows = con.execute(
        "SELECT item_id, role, frame_idx, sharpness, top1, top1_prob, top5_ids, top5_probs, "
        f"{'layout_id' if has_lid else 'NULL'} FROM observations WHERE session_id = ? AND good != 0 ORDER BY "
        "frame_idx, id",
        (sid,),
    )
    for item_id, role, frame_idx, sharpness, top1, top1_prob, ids, probs, lid in rows:
        if item_id not in known:
            unknown += 1
            continue
        pairs = decode_top5(ids, probs)
        pred = Pred.from_pairs(pairs) if pairs else Pred((int(top1),), (float(top1_prob),))
        s.observations.append(
            Observation(item_id, role, int(frame_idx), float(sharpness), pred, None if lid is None else str(lid))
        )
    _read_stability(con, s, batch)
    if unknown:
        log.warning("%s: %d good observations name items that are not in batch.json; ignored", path, unknown)
    s.quality = session_quality(con, sid)
    return s


def _read_stability(con: sqlite3.Connection, s: Session, batch: Batch) -> None:
    """The digital stability baseline (``stability`` table, schema 2; absent in older databases)."""
    got = read_stability(con, s.id, {it.id: s.truth(it.label.index) for it in batch.items})
    if got is not None:
        s.stability, flipped = got
        for item_id, names in flipped.items():
            s.unstable.setdefault(item_id, []).extend(names)


def _fill_digital_from_manifest(s: Session, batch: Batch) -> None:
    """Where the digital table lacks an item, use batch.json if the session model is a source model."""
    for it in batch.items:
        for role in ("clean", "adv"):
            if (it.id, role) not in s.digital:
                p = manifest_pred(it, role, s.model_name)
                if p is not None:
                    s.digital[(it.id, role)] = p
                    s.digital_from_manifest += role == "clean"


def _select(files: list[Path], wanted: list[str] | None) -> list[Path]:
    """Files whose stem is wanted, plus files holding a wanted session id (opened only if needed)."""
    if not wanted:
        return files
    chosen = [f for f in files if f.stem in wanted]
    missing = [w for w in wanted if w not in {f.stem for f in chosen}]
    for f in files:
        if not missing or f in chosen:
            continue
        con = open_db_readonly(f)
        try:
            ids = {str(r[0]) for r in con.execute("SELECT id FROM sessions")}
        finally:
            con.close()
        hit = [w for w in missing if w in ids]
        if hit:
            chosen.append(f)
            missing = [w for w in missing if w not in hit]
    if missing:
        have = ", ".join(f.stem for f in files) or "none"
        raise UserError(
            f"--session {', '.join(missing)}: no such capture session in {CAPTURES}/ (sessions there: {have})"
        )
    return sorted(chosen)


def load_input(batch_dir: Path, sessions: list[str] | None = None) -> ReportInput:
    """Read ``batch.json`` and the selected ``captures/*.sqlite``.

    Args:
        batch_dir: the batch directory.
        sessions: session ids or database file stems; ``None`` or empty for all.
    Raises:
        UserError: a missing or corrupt file, a database from another batch, or
            an unknown session name; the message names the file or argument.
    """
    batch_dir = Path(batch_dir)
    batch = load_batch(batch_dir)
    require_classifier_batch(batch, batch_dir, "report")
    inp = ReportInput(batch_dir=batch_dir, batch=batch, sessions=[])
    files = capture_dbs(batch_dir)
    files = _select(files, sessions)
    seen: dict[str, Path] = {}
    for f in files:
        con = open_db_readonly(f)
        try:
            rows = _session_rows(con, f)
            if not rows:
                inp.notes.append(f"{f.name} holds no capture session; skipped.")
                continue
            for row in rows:
                if str(row["batch_id"]) != batch.batch_id:
                    raise UserError(
                        f"{f}: belongs to batch {row['batch_id']!r}, not to this batch {batch.batch_id!r}; "
                        f"move it to that batch's captures/ folder"
                    )
                if sessions and f.stem not in sessions and str(row["id"]) not in sessions:
                    continue
                if str(row["id"]) in seen:
                    raise UserError(
                        f"{f}: session {row['id']!r} is also in {seen[str(row['id'])]}; remove one of the two copies"
                    )
                seen[str(row["id"])] = f
                try:
                    s = _read_session(con, f, row, batch)
                except sqlite3.DatabaseError as e:
                    raise UserError(
                        f"{f}: cannot read the capture tables ({e}); remove the file or re-capture"
                    ) from None
                except (
                    TypeError,
                    ValueError,
                    OverflowError,
                    RecursionError,
                ) as e:  # a value of the wrong type in a row
                    raise UserError(
                        f"{f}: malformed values in session {row['id']!r} ({type(e).__name__}: {e}); remove the file "
                        "or re-capture"
                    ) from None
                _fill_digital_from_manifest(s, batch)
                inp.sessions.append(s)
        finally:
            con.close()
    for s in inp.sessions:
        if s.digital_from_manifest:
            inp.notes.append(
                f"Session {s.id}: digital predictions of {s.digital_from_manifest} items taken from batch.json "
                f"({s.model_name} is a source model)."
            )
        if not any((it.id, "clean") in s.digital for it in batch.items):
            inp.notes.append(
                f"Session {s.id}: no digital predictions recorded for model {s.model}; destruction rates and attack "
                "success are n/a."
            )
        if s.n_good == 0:
            inp.notes.append(
                f"Session {s.id}: no observation passed the quality gates ({s.n_obs} observations in {s.n_frames} "
                "frames)."
            )
    if not inp.sessions:
        inp.notes.insert(
            0,
            f"No capture sessions found in {batch_dir / CAPTURES}: this report shows digital results only. Run "
            "'photoproof capture' to add photographed results.",
        )
    flagged = sum(it.label.source == "clean-prediction" for it in batch.items)
    if flagged:
        inp.notes.append(
            f"{flagged} of {len(batch.items)} items have no true label: the source model's clean prediction stands "
            "in for it (label source 'clean-prediction')."
        )
    return inp


def observations_by_tile(s: Session) -> dict[tuple[str, str], list[Observation]]:
    """Group a session's good observations into tiles ``(item_id, role)``."""
    out: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for o in s.observations:
        out[(o.item_id, o.role)].append(o)
    return out
