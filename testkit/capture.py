"""A capture scene for the session tests: photos of a printed sheet, a tiny model, and the CLI in a subprocess.

:func:`photo_setup` builds what the ``setup`` fixture (``tests/conftest.py``) hands to
the capture tests; :func:`start_capture` runs ``photoproof capture`` in a subprocess
until it has recorded some observations (for SIGKILL, SIGTERM and lock tests);
:func:`db_rows` reads a capture database read-only.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from contracts.capturedb import open_db_readonly, readonly_uri
from testkit.scenes import make_layout, scene, tiny_classifier

ROOT = Path(__file__).resolve().parents[1]

# The capture CLI alone, with the model argument taken as a path (no model zoo, no torch).
SCRIPT = """
import sys
from pathlib import Path
import typer
from capture import cli
app = typer.Typer()
@app.callback()
def main() -> None: pass
cli.register(app, resolve_model=lambda name, batch: Path(name))
app(sys.argv[1:])
"""


def photo_setup(batch: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A one-sheet layout for ``batch``, a tiny model, and a folder of 3 photos of the sheet plus one without it."""
    layout = make_layout(batch)
    sheet = layout.sheets[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, tilt in enumerate([0, 20, 35]):
        sc = scene(
            batch,
            layout,
            {sheet.sheet_id: dict(tilt_deg=tilt, roll_deg=5 * k, fill=0.8)},
            blur_sigma=0.8,
            noise_std=3,
            jpeg_quality=90,
            seed=k,
        )
        cv2.imwrite(str(photos / f"IMG_{k + 1}.jpg"), sc.frame)
    cv2.imwrite(str(photos / "IMG_9.jpg"), np.full((720, 1280, 3), 90, np.uint8))  # the sheet out of view
    model = tiny_classifier(tmp_path / "tiny.onnx", size=48)
    return batch, model, photos


def db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` on the capture database ``db``, opened read-only."""
    con = open_db_readonly(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def start_capture(batch_dir: Path, model: Path, photos: Path, session: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``capture --photos --loop`` in a subprocess, returned once its database holds 30 observations."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-c",
        SCRIPT,
        "capture",
        str(batch_dir),
        "--model",
        str(model),
        "--photos",
        str(photos),
        "--loop",
        "--headless",
        "--session",
        session,
        "--min-sharpness",
        "1",
        "--min-tile-px",
        "40",
        "--no-crops",
    ]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    db = batch_dir / "captures" / f"{session}.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            con = sqlite3.connect(readonly_uri(db), uri=True, timeout=0.2)
            n = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
            con.close()
            if n >= 30:
                return proc, db
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the capture subprocess recorded nothing within 60 s")


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` zeros: tiny on disk, huge once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z, row = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )
    return path
