"""The camera's JPEG quality for ``calibrate``, from what capture recorded (the ``jpeg`` table).

Capture (``capture.jpegquality``) reads the quality from a JPEG file's quantisation tables (photos, a phone's
uploads) or estimates it from the 8x8 DCT lattice of a decoded frame (Fan and de Queiroz 2003); each row is the
range of IJG qualities that fit one frame. Tables win over pixels; a session whose frames show no lattice (a
quality of about 95 or more, or frames resized or processed after their JPEG) leaves the quality undetermined.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_FRAMES = 3  # frames whose pixels must show a lattice before the quality counts as estimated


@dataclass(frozen=True)
class JpegFit:
    """The quality written to the profile (``range``), the one the noise and edges are fitted through
    (``quality``), and how it was found (``note``)."""

    quality: int
    range: tuple[float, float]
    note: str

    @classmethod
    def given(cls, quality: int) -> JpegFit:
        return cls(int(quality), (float(quality),) * 2, "assumed (--jpeg-quality), not measured: the noise was "
                   "fitted through it")  # fmt: skip


JpegRow = tuple[Any, Any, Any]  # quality_lo, quality_hi, method, as capture recorded them


def load_jpeg(con: sqlite3.Connection, session: str) -> list[JpegRow]:
    """The ``jpeg`` rows of ``session``; none for an older capture without the table."""
    try:
        rows = con.execute(
            "SELECT quality_lo, quality_hi, method FROM jpeg WHERE session_id=?", (session,)
        ).fetchall()  # fmt: skip
    except sqlite3.OperationalError:  # an older capture
        return []
    return [(lo, hi, m) for lo, hi, m in rows]


def fit_jpeg(rows: list[JpegRow]) -> JpegFit | None:
    """The JPEG quality of the frames behind ``rows`` (one session's, or several sessions' of one camera), or None
    when capture did not record one (or found no trace of it)."""

    def valid(lo: object, hi: object) -> bool:
        return isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 100

    tables = [(lo, hi) for lo, hi, m in rows if m == "tables" and valid(lo, hi)]
    pixels = [(lo, hi) for lo, hi, m in rows if m == "pixels" and valid(lo, hi)]
    n_pixels = sum(1 for *_, m in rows if m == "pixels")
    if tables:
        return _summary(
            tables,
            f"measured: the quantisation tables of {len(tables)} JPEG frames (libjpeg quality, or the IJG table "
            "nearest another encoder's)",
        )
    if len(pixels) >= MIN_FRAMES and 2 * len(pixels) >= n_pixels:
        return _summary(
            pixels,
            f"estimated: the 8x8 DCT quantiser steps of {len(pixels)} of {n_pixels} decoded frames (Fan and de "
            "Queiroz 2003), matched to libjpeg's tables; the noise and edges were fitted through it",
        )
    return None


def _summary(ranges: list[tuple[float, float]], note: str) -> JpegFit:
    """The frames' quality ranges (lo, hi) as one fit: the median of their centres, from the 5th percentile of the
    lows to the 95th of the highs."""
    q = np.array(ranges, float)
    lo, hi = float(np.quantile(q[:, 0], 0.05)), float(np.quantile(q[:, 1], 0.95))
    return JpegFit(int(round(float(np.median(q.mean(axis=1))))), (float(round(lo)), float(round(hi))), note)
