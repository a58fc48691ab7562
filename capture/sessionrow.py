"""A capture session's row: inserted when the session starts, reopened when the same session runs again.

The schema is ``contracts.capturedb``; :class:`capture.record.Recorder` calls :func:`open_session_row`
under its lock and turns database errors into its recording failure.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionStart:
    """What a session records about itself when it starts (the ``sessions`` row)."""

    source: str
    model: str
    model_sha256: str
    provider: str
    profile: str | None
    seed: int | None
    config: dict[str, Any]
    layout_id: str | None = None  # the layout (print) the session starts with; a resumed session keeps its first


@dataclass
class Resume:
    """Where a re-run of an existing session continues."""

    next_frame: int = 0
    t_offset: float = 0.0
    good_counts: dict[tuple[str, str, str], int] | None = None


def open_session_row(
    con: sqlite3.Connection, path: Path, session_id: str, batch_id: str, start: SessionStart
) -> Resume:
    """Insert the session's row, or reopen it for a re-run with the same model and batch (refused otherwise)."""
    row = con.execute("SELECT model_sha256, config, batch_id FROM sessions WHERE id=?", (session_id,)).fetchone()
    now = time.time()
    if row is None:
        orphans = con.execute("SELECT COUNT(*) FROM frames WHERE session_id=?", (session_id,)).fetchone()[0]
        if orphans:  # rows of this session without its session row: never write over them
            raise UserError(
                f"{path}: holds {orphans} frames of session {session_id!r} but no session row (a damaged "
                "file); choose another --session"
            )
        con.execute(
            "INSERT INTO sessions (id, batch_id, source, model, model_sha256, provider, profile, seed, "
            "started, stopped, config, "
            "layout_id) VALUES (?,?,?,?,?,?,?,?,?,NULL,?,?)",
            (
                session_id,
                batch_id,
                start.source,
                start.model,
                start.model_sha256,
                start.provider,
                start.profile,
                start.seed,
                now,
                json.dumps(start.config, sort_keys=True),
                start.layout_id,
            ),
        )
        con.commit()
        return Resume()
    if row[2] != batch_id:
        raise UserError(
            f"{path}: session {session_id!r} belongs to batch {row[2]!r}, not {batch_id}; choose another --session"
        )
    if row[0] != start.model_sha256:  # refused: the existing session's row is left exactly as it was
        raise UserError(f"{path}: session {session_id!r} was recorded with another model; choose another --session")
    try:
        old = json.loads(row[1] or "{}")
    except (json.JSONDecodeError, RecursionError):
        old = {}
    runs = old.get("runs") if isinstance(old, dict) else None
    runs = runs if isinstance(runs, list) else []
    runs.append({"resumed": now, "source": start.source})
    config = {**start.config, "runs": runs}
    con.execute(
        "UPDATE sessions SET stopped=NULL, provider=?, config=? WHERE id=?",
        (start.provider, json.dumps(config, sort_keys=True), session_id),
    )
    nxt, t = con.execute(
        "SELECT COALESCE(MAX(idx)+1, 0), COALESCE(MAX(t), 0) FROM frames WHERE session_id=?", (session_id,)
    ).fetchone()
    counts = {
        (str(s), str(i), str(r)): int(n)
        for s, i, r, n in con.execute(
            "SELECT sheet_id, item_id, role, COUNT(*) FROM observations WHERE session_id=? AND good=1 GROUP BY "
            "sheet_id, item_id, role",
            (session_id,),
        )
    }
    con.commit()
    log.info("resuming session %s at frame %d", session_id, nxt)
    return Resume(next_frame=int(nxt), t_offset=float(t) + 1.0, good_counts=counts)
