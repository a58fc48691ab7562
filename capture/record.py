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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from capture.sheets.quality import TileQuality
from contracts.capturedb import create_db, encode_top5
from contracts.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Resume:
    """Where a re-run of an existing session continues."""

    next_frame: int = 0
    t_offset: float = 0.0
    good_counts: dict[tuple[str, str, str], int] | None = None


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


class Recorder:
    """Thread-safe writer of one session's rows, committing at least every ``commit_every`` s.

    Args:
        path: the ``.sqlite`` file (created when missing).
        session_id: the session's id (the file's stem).
        batch_id: the batch it belongs to; an existing file of another batch is refused.
        commit_every: the longest time a row waits uncommitted.
    """

    def __init__(self, path: Path, session_id: str, batch_id: str, commit_every: float = 0.5) -> None:
        self.path, self.session_id, self.batch_id = path, session_id, batch_id
        try:
            self.con: sqlite3.Connection = create_db(path)
        except sqlite3.DatabaseError as e:
            raise UserError(f"{path}: cannot open it as a capture database ({e}); choose another --session") from None
        self._lock = threading.RLock()
        self._dirty = False
        self._last_commit = time.monotonic()
        self.commits = 0
        row = self.con.execute("SELECT value FROM meta WHERE key='batch_id'").fetchone()
        if row is not None and row[0] != batch_id:
            self.con.close()
            raise UserError(f"{path}: belongs to batch {row[0]}, not {batch_id}; choose another --session")
        self.con.execute("INSERT OR IGNORE INTO meta VALUES ('batch_id', ?)", (batch_id,))
        self.con.commit()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._commit_loop, args=(commit_every,), name="capture-commit", daemon=True)
        self._timer.start()

    # -- session row ---------------------------------------------------------
    def start_session(
        self, *, source: str, model: str, model_sha256: str, provider: str, profile: str | None, seed: int | None, config: dict[str, Any]
    ) -> Resume:
        """Insert the session row, or reopen it when the same session runs again with the same model."""
        with self._lock:
            row = self.con.execute("SELECT model_sha256, config FROM sessions WHERE id=?", (self.session_id,)).fetchone()
            now = time.time()
            if row is None:
                self.con.execute(
                    "INSERT INTO sessions (id, batch_id, source, model, model_sha256, provider, profile, seed, started, stopped, config) VALUES (?,?,?,?,?,?,?,?,?,NULL,?)",
                    (self.session_id, self.batch_id, source, model, model_sha256, provider, profile, seed, now, json.dumps(config, sort_keys=True)),
                )
                self.con.commit()
                return Resume()
            if row[0] != model_sha256:
                raise UserError(f"{self.path}: session {self.session_id!r} was recorded with another model; choose another --session")
            old = json.loads(row[1] or "{}")
            runs = old.get("runs", [])
            runs.append({"resumed": now, "source": source})
            config = {**config, "runs": runs}
            self.con.execute("UPDATE sessions SET stopped=NULL, provider=?, config=? WHERE id=?", (provider, json.dumps(config, sort_keys=True), self.session_id))
            nxt, t = self.con.execute("SELECT COALESCE(MAX(idx)+1, 0), COALESCE(MAX(t), 0) FROM frames WHERE session_id=?", (self.session_id,)).fetchone()
            counts = {
                (str(s), str(i), str(r)): int(n)
                for s, i, r, n in self.con.execute(
                    "SELECT sheet_id, item_id, role, COUNT(*) FROM observations WHERE session_id=? AND good=1 GROUP BY sheet_id, item_id, role", (self.session_id,)
                )
            }
            self.con.commit()
            log.info("resuming session %s at frame %d", self.session_id, nxt)
            return Resume(next_frame=int(nxt), t_offset=float(t) + 1.0, good_counts=counts)

    def write_digital(self, rows: Iterable[tuple[str, str, Any, Any]]) -> None:
        """``(item_id, role, top5_ids, top5_probs)`` for every saved PNG."""
        with self._lock:
            for item, role, ids, probs in rows:
                self.con.execute("INSERT OR REPLACE INTO digital VALUES (?,?,?,?,?)", (self.session_id, item, role, *encode_top5(ids, probs)))
            self.con.commit()

    # -- rows ----------------------------------------------------------------
    def add_frame(self, idx: int, t: float, sheets: list[str]) -> None:
        with self._lock:
            self.con.execute("INSERT OR REPLACE INTO frames VALUES (?,?,?,?,?)", (self.session_id, idx, t, len(sheets), json.dumps(sheets)))
            self._dirty = True

    def add_observations(self, obs: list[Observation]) -> None:
        rows = []
        for o in obs:
            ids, probs = encode_top5(o.top5_ids, o.top5_probs)
            rows.append((
                self.session_id, o.frame_idx, o.sheet_id, o.item_id, o.role, float(o.quality.sharpness), float(o.quality.tile_px),
                float(o.quality.angle_deg), float(o.quality.clipped), int(bool(o.good)), int(o.top5_ids[0]), float(o.top5_probs[0]), ids, probs,
            ))
        with self._lock:
            self.con.executemany(
                "INSERT INTO observations (session_id, frame_idx, sheet_id, item_id, role, sharpness, tile_px, angle_deg, clipped, good, "
                "top1, top1_prob, top5_ids, top5_probs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self._dirty = True

    # -- calibration strip (added for channel.calibrate) ---------------------
    def add_patches(self, frame_idx: int, sheets: Iterable[Any]) -> None:
        """Strip measurements of one frame: ``channel.calibrate.SheetPatches``, one per detected sheet."""
        with self._lock:
            for s in sheets:
                self.con.executemany(
                    "INSERT OR REPLACE INTO patches VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(self.session_id, frame_idx, s.sheet_id, p.name, *p.mean_rgb, *p.std_rgb, p.std_y, p.n_px) for p in s.patches],
                )
                self.con.execute("INSERT OR REPLACE INTO blur VALUES (?,?,?,?,?,?,?)",
                                 (self.session_id, frame_idx, s.sheet_id, s.sigma_px, s.n_edges, s.width, s.height))
            self._dirty = True

    def commit(self) -> None:
        with self._lock:
            if self._dirty:
                self.con.commit()
                self.commits += 1
                self._dirty = False
            self._last_commit = time.monotonic()

    def _commit_loop(self, every: float) -> None:
        while not self._stop.wait(every / 2):
            if time.monotonic() - self._last_commit >= every:
                try:
                    self.commit()
                except sqlite3.Error as e:  # pragma: no cover - disk full and the like
                    log.error("%s: commit failed: %s", self.path, e)

    def close(self, notes: dict[str, Any] | None = None) -> None:
        """Set ``sessions.stopped``, merge ``notes`` into the session config, commit and close. Safe twice."""
        self._stop.set()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join(timeout=2.0)
        with self._lock:
            try:
                if notes:
                    row = self.con.execute("SELECT config FROM sessions WHERE id=?", (self.session_id,)).fetchone()
                    cfg = json.loads(row[0]) if row and row[0] else {}
                    cfg.update(notes)
                    self.con.execute("UPDATE sessions SET config=? WHERE id=?", (json.dumps(cfg, sort_keys=True), self.session_id))
                self.con.execute("UPDATE sessions SET stopped=? WHERE id=?", (time.time(), self.session_id))
                self.con.commit()
                self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.con.close()
            except sqlite3.ProgrammingError:
                pass  # already closed
