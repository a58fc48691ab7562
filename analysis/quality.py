"""A capture session's quality medians for the channel check and the diagnosis: tile size, angle, sharpness,
clipping, the share that passed the gates, the sheets' edge blur and the print's tone on the calibration strip.

Read from one capture database (schema in ``contracts.capturedb``) by :mod:`analysis.load`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any


def _median(values: list[float]) -> float | None:
    vals = sorted(v for v in values if v is not None and v == v)
    if not vals:
        return None
    m = len(vals) // 2
    return vals[m] if len(vals) % 2 else (vals[m - 1] + vals[m]) / 2


def session_quality(con: sqlite3.Connection, sid: str) -> dict[str, Any]:
    """Medians of the clean tiles' quality metrics, for the channel check.

    Over the good observations of clean tiles (those behind clean photographed
    accuracy), or over every clean observation when none passed the gates
    (``over`` says which). ``good_fraction`` is the share of all observations that
    passed the gates; ``blur_sigma_px`` the median edge blur of the sheets (from
    the calibration strip's ``blur`` table) and ``frame_w``/``frame_h`` the most
    common frame size there, when recorded.
    """
    rows = con.execute(
        "SELECT good != 0, tile_px, angle_deg, sharpness, clipped FROM observations WHERE session_id = ? AND role = "
        "'clean'",
        (sid,),
    ).fetchall()
    good = [r for r in rows if r[0]]
    use, over = (good, "good") if good else (rows, "all")
    q: dict[str, Any] = {
        "over": over,
        "n": len(use),
        "tile_px": _median([float(r[1]) for r in use]),
        "angle_deg": _median([float(r[2]) for r in use]),
        "sharpness": _median([float(r[3]) for r in use]),
        "clipped": _median([float(r[4]) for r in use]),
        "good_fraction": (len(good) / len(rows)) if rows else None,
        "blur_sigma_px": None,
        "frame_w": None,
        "frame_h": None,
    }
    try:
        blur = con.execute("SELECT sigma_px, width, height FROM blur WHERE session_id = ?", (sid,)).fetchall()
    except sqlite3.DatabaseError:  # an older database without the blur table
        blur = []
    if blur:
        q["blur_sigma_px"] = _median([float(b[0]) for b in blur if b[0] is not None])
        sizes: dict[tuple[int, int], int] = defaultdict(int)
        for _, w, h in blur:
            sizes[(int(w), int(h))] += 1
        q["frame_w"], q["frame_h"] = max(sizes, key=lambda k: sizes[k])
    q.update(_tone(con, sid))
    return q


def _tone(con: sqlite3.Connection, sid: str) -> dict[str, float | None]:
    """Median luma (BT.601, 0..255) of the strip's black (``g00``) and white (``g10``) patches: the print's tone.

    Digitally these are 0 and 255; ``None`` when the strip was not measured (``patches`` table).
    """
    try:
        rows = con.execute(
            "SELECT patch, mean_r, mean_g, mean_b FROM patches WHERE session_id = ? AND patch IN ('g00', 'g10')", (sid,)
        ).fetchall()
    except sqlite3.DatabaseError:
        rows = []
    luma: dict[str, list[float]] = defaultdict(list)
    for patch, r, g, b in rows:
        luma[str(patch)].append(0.299 * float(r) + 0.587 * float(g) + 0.114 * float(b))
    return {"black_level": _median(luma["g00"]), "paper_white": _median(luma["g10"])}
