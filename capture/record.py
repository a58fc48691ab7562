"""Write one capture session into ``BATCH/captures/<session>.sqlite``.

The schema is ``contracts.capturedb``. The database is in WAL mode and a
background timer commits at least every ``commit_every`` seconds, so a session
killed at any moment (even with SIGKILL) leaves a readable file holding
everything up to the last commit. Frame rows are inserted before the
observations cut from them, on one connection, so any committed observation has
its frame.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capture.recordopen import RecordingFailed as RecordingFailed
from capture.recordopen import open_failure
from capture.recordopen import session_lock as session_lock
from capture.sessionrow import Resume, SessionStart, open_session_row
from capture.sheets.quality import TileQuality
from capture.sighting import PatchSighting
from contracts.capturedb import SCHEMA_VERSION, check_db_path, create_db, encode_esf, encode_top5
from contracts.errors import UserError
from contracts.strip import ESF_STEP_PX, NOISE_BIN

log = logging.getLogger(__name__)


@dataclass
class Observation:
    """One observation row (see the ``observations`` table)."""

    frame_idx: int
    sheet_id: str
    item_id: str
    role: str
    quality: TileQuality
    good: bool
    top5_ids: list[int]
    top5_probs: list[float]
    layout_id: str | None = None  # the layout (print) its sheet was read with
    boxes: str | None = None  # a face detector's boxes on the crop, as JSON (schema 3); None for a classifier


class Recorder:
    """Thread-safe writer of one session's rows, committing at least every ``commit_every`` s.

    Args:
        path: the ``.sqlite`` file (created when missing).
        session_id: the session's id (the file's stem).
        batch_id: the batch it belongs to; an existing file of another batch is refused.
        commit_every: the longest time a row waits uncommitted.
    """

    def __init__(
        self,
        path: Path,
        session_id: str,
        batch_id: str,
        commit_every: float = 0.5,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.path, self.session_id, self.batch_id = path, session_id, batch_id
        self.error: RecordingFailed | None = None
        self.failure = ""  # the first failed write's cause (SQLite's words), for the phone
        self._on_failure = on_failure
        self._owns_session = (
            False  # set once start_session has accepted the session: only then does close() touch its row
        )
        check_db_path(path)
        try:
            self._session_lock = session_lock(path.with_suffix(".lock"))
        except OSError as e:
            raise UserError(
                f"{path.parent}: cannot write there ({e.strerror or e}); check the disk and its permissions"
            ) from None
        try:
            self.con: sqlite3.Connection = create_db(path)
            row = self.con.execute("SELECT value FROM meta WHERE key='batch_id'").fetchone()
            version = self.con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error as e:
            self._session_lock.release()
            raise UserError(open_failure(path, e)) from None
        self._lock = threading.RLock()
        self._dirty = False
        self._last_commit = time.monotonic()
        self.commits = 0
        if row is not None and row[0] != batch_id:
            self.con.close()
            self._session_lock.release()
            raise UserError(f"{path}: belongs to batch {row[0]}, not {batch_id}; choose another --session")
        if version is not None and version[0] != str(SCHEMA_VERSION):
            self.con.close()
            self._session_lock.release()
            raise UserError(
                f"{path}: capture schema version {version[0]!r} is not this Photoproof's ({SCHEMA_VERSION}); choose "
                "another --session"
            )
        try:
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('batch_id', ?)", (batch_id,))
            self.con.commit()
        except sqlite3.Error as e:
            self.con.close()
            self._session_lock.release()
            raise UserError(
                f"{path}: cannot write it ({e}); free disk space or choose a writable batch folder"
            ) from None
        self._stop = threading.Event()
        self._timer = threading.Thread(
            target=self._commit_loop, args=(commit_every,), name="capture-commit", daemon=True
        )
        self._timer.start()

    # -- session row ---------------------------------------------------------
    def start_session(self, start: SessionStart) -> Resume:
        """Insert the session row, or reopen it when the same session runs again with the same model.

        ``start.layout_id``: the layout (print) the session starts with; a resumed session keeps its first.
        """
        with self._lock:
            try:
                resume = open_session_row(self.con, self.path, self.session_id, self.batch_id, start)
            except UserError:
                raise
            except sqlite3.Error as e:
                raise self._failed(e) from None
            except (TypeError, ValueError) as e:  # a malformed row in an existing database
                raise UserError(f"{self.path}: malformed session rows ({e}); choose another --session") from None
            self._owns_session = True
            return resume

    def write_digital(self, rows: Iterable[tuple[str, str, Any, Any]], boxes: dict | None = None) -> None:
        """``(item_id, role, top5_ids, top5_probs)`` for every saved PNG; a detector's ``boxes`` per (item, role)."""
        self._write_top5("digital", rows)
        with self._writing(check=False):
            rows_b = [(self.session_id, *key, b) for key, b in (boxes or {}).items()]
            self.con.executemany("INSERT OR REPLACE INTO digital_boxes VALUES (?,?,?,?)", rows_b)
            self.con.commit()

    def _write_top5(self, table: str, rows: Iterable[tuple[str, str, Any, Any]]) -> None:
        """``(item_id, key, top5_ids, top5_probs)`` rows into ``table`` (``digital`` or ``stability``), one commit."""
        with self._writing(check=False):
            for item, key, ids, probs in rows:
                self.con.execute(
                    f"INSERT OR REPLACE INTO {table} VALUES (?,?,?,?,?)",
                    (self.session_id, item, key, *encode_top5(ids, probs)),
                )
            self.con.commit()

    # -- rows ----------------------------------------------------------------
    def outcomes(self) -> list[tuple[str, str, int, bool]]:
        """``(item_id, role, top1, good)`` of every observation the session holds (a resumed session's past)."""
        with self._writing(check=False):
            rows = self.con.execute(
                "SELECT item_id, role, top1, good FROM observations WHERE session_id = ? ORDER BY id",
                (self.session_id,),
            ).fetchall()
        return [(str(i), str(r), int(t), bool(g)) for i, r, t, g in rows]

    def write_stability(self, rows: Iterable[tuple[str, str, Any, Any]]) -> None:
        """``(item_id, transform, top5_ids, top5_probs)``: the digital stability baseline (:mod:`capture.stability`)."""
        self._write_top5("stability", rows)

    def _failed(self, e: sqlite3.Error) -> RecordingFailed:
        """Record the first write failure, tell ``on_failure``, and return the error to raise."""
        if self.error is None:
            self.failure = str(e)
            self.error = RecordingFailed(
                f"{self.path}: writing the capture failed ({e}); the session stopped and keeps what was committed "
                f"before; free disk space (or fix the disk) and re-run the same command to resume"
            )
            log.error("%s: write failed: %s", self.path, e)
            if self._on_failure is not None:
                self._on_failure(self.error)
        return self.error

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    @contextmanager
    def _writing(self, check: bool = True) -> Iterator[None]:
        """Hold the lock (after :meth:`_check` unless ``check`` is false); a database error stops the session."""
        with self._lock:
            if check:
                self._check()
            try:
                yield
            except sqlite3.Error as e:
                raise self._failed(e) from None

    def add_frame(self, idx: int, t: float, sheets: list[str]) -> None:
        with self._writing():
            # INSERT, not INSERT OR REPLACE: a frame index is written once (the session lock keeps writers apart)
            self.con.execute(
                "INSERT INTO frames VALUES (?,?,?,?,?)", (self.session_id, idx, t, len(sheets), json.dumps(sheets))
            )
            self._dirty = True

    def add_observations(self, obs: list[Observation]) -> None:
        rows = []
        for o in obs:
            ids, probs = encode_top5(o.top5_ids, o.top5_probs)
            rows.append(
                (
                    self.session_id,
                    o.frame_idx,
                    o.sheet_id,
                    o.item_id,
                    o.role,
                    float(o.quality.sharpness),
                    float(o.quality.tile_px),
                    float(o.quality.angle_deg),
                    float(o.quality.clipped),
                    int(bool(o.good)),
                    int(o.top5_ids[0]),
                    float(o.top5_probs[0]),
                    ids,
                    probs,
                    o.layout_id,
                    o.boxes,
                )
            )
        with self._writing():
            self.con.executemany(
                "INSERT INTO observations (session_id, frame_idx, sheet_id, item_id, role, sharpness, tile_px, "
                "angle_deg, clipped, good, top1, top1_prob, top5_ids, top5_probs, layout_id, boxes) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self._dirty = True

    # -- calibration strip (added for channel.calibrate) ---------------------
    def add_patches(self, frame_idx: int, sheets: Iterable[Any]) -> None:
        """Strip measurements of one frame: ``channel.calibrate.SheetPatches``, one per detected sheet."""
        with self._writing():
            for s in sheets:
                key = (self.session_id, frame_idx, s.sheet_id)
                rows = [(*key, p.name, *p.mean_rgb, *p.std_rgb, p.std_y, p.n_px) for p in s.patches]
                self.con.executemany("INSERT OR REPLACE INTO patches VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                self.con.execute(
                    "INSERT OR REPLACE INTO blur VALUES (?,?,?,?,?,?,?)",
                    (*key, s.sigma_px, s.n_edges, s.width, s.height),
                )
                binned = [(*key, p.name, NOISE_BIN, p.std_y2) for p in s.patches if p.std_y2 is not None]
                self.con.executemany("INSERT OR REPLACE INTO patch_noise VALUES (?,?,?,?,?,?)", binned)
                if s.esf is not None:
                    self.con.execute(
                        "INSERT OR REPLACE INTO esf VALUES (?,?,?,?,?)", (*key, ESF_STEP_PX, encode_esf(s.esf))
                    )
            self._dirty = True

    def add_jpeg(self, frame_idx: int, lo: int | None, hi: int | None, method: str) -> None:
        """The frame's JPEG quality (``capture.jpegquality``): the range of IJG qualities that fit, read from the
        file's tables or estimated from the pixels (None, None: no JPEG trace found)."""
        with self._writing():
            self.con.execute(
                "INSERT OR REPLACE INTO jpeg VALUES (?,?,?,?,?)", (self.session_id, frame_idx, lo, hi, method)
            )
            self._dirty = True

    # -- scene mode (added for capture --scene) --------------------------------
    def add_scene(
        self,
        frame_idx: int,
        view: list[int],
        label: int | None,
        sighting: PatchSighting | None,
        ids: np.ndarray,
        probs: np.ndarray,
    ) -> None:
        """One ``scene_observations`` row (:func:`scene_row`)."""
        with self._lock:
            self.con.execute(
                "INSERT OR REPLACE INTO scene_observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                scene_row(self.session_id, frame_idx, view, label, sighting, ids, probs),
            )
            self._dirty = True

    def commit(self) -> None:
        """Commit what is pending; a failure stops the session (:class:`RecordingFailed`)."""
        with self._lock:
            self._check()
            if self._dirty:
                try:
                    self.con.commit()
                except sqlite3.Error as e:
                    raise self._failed(e) from None
                self.commits += 1
                self._dirty = False
            self._last_commit = time.monotonic()

    def _commit_loop(self, every: float) -> None:
        while not self._stop.wait(every / 2):
            if time.monotonic() - self._last_commit >= every:
                try:
                    self.commit()
                except RecordingFailed:
                    return  # on_failure has stopped the session

    def close(self, notes: dict[str, Any] | None = None) -> None:
        """Set ``sessions.stopped``, merge ``notes`` into the session config, commit and close. Safe twice."""
        self._stop.set()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join(timeout=2.0)
        with self._lock:
            try:
                if self._owns_session and self.error is None:
                    if notes:
                        row = self.con.execute("SELECT config FROM sessions WHERE id=?", (self.session_id,)).fetchone()
                        try:
                            cfg = json.loads(row[0]) if row and row[0] else {}
                        except (json.JSONDecodeError, RecursionError):
                            cfg = {}
                        cfg = {**(cfg if isinstance(cfg, dict) else {}), **notes}
                        self.con.execute(
                            "UPDATE sessions SET config=? WHERE id=?",
                            (json.dumps(cfg, sort_keys=True), self.session_id),
                        )
                    self.con.execute("UPDATE sessions SET stopped=? WHERE id=?", (time.time(), self.session_id))
                    self.con.commit()
                    self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.con.close()
            except sqlite3.ProgrammingError:
                pass  # already closed
            except sqlite3.Error as e:  # disk full while closing: what was committed stays
                self._failed(e)
                try:
                    self.con.rollback()
                    self.con.close()
                except sqlite3.Error:
                    pass
            finally:
                self._session_lock.release()


def scene_row(
    session_id: str,
    frame_idx: int,
    view: list[int],
    label: int | None,
    s: PatchSighting | None,
    ids: np.ndarray,
    probs: np.ndarray,
) -> tuple[Any, ...]:
    """The ``scene_observations`` row of one frame."""
    t5i, t5p = encode_top5(ids, probs)
    patch = (
        (
            s.card.name,
            s.card.target,
            1,
            s.markers,
            s.share,
            s.side_px,
            s.rotation_deg,
            s.tilt_deg,
            json.dumps(np.round(s.quad_px, 2).tolist()),
        )
        if s is not None
        else (None, None, 0, 0, None, None, None, None, None)
    )
    return (session_id, frame_idx, json.dumps(view), label, *patch, int(ids[0]), float(probs[0]), t5i, t5p)
