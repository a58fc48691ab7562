"""Read-only batches and capture databases, and frames too small to be a scene.

A folder is made read-only with ``chmod`` (or, as root, whom permissions do not
stop, with the immutable attribute ``chattr +i``; skipped where neither works).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.classify import OnnxClassifier
from capture.scene import run_scene
from capture.session import run_capture
from capture.sheets.quality import QualityGates
from capture.sources.files import PhotoSource
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
GATES = QualityGates(min_sharpness=1, min_tile_px=40)


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` (files and folders) read-only for this process while the block runs."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", *map(str, paths)], capture_output=True).returncode:
            subprocess.run([chattr or "true", "-i", *map(str, paths)], capture_output=True)
            pytest.skip("running as root on a file system without the immutable attribute")
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)
        else:
            for p, m in modes.items():
                p.chmod(m)


def test_print_into_a_read_only_batch_is_one_line(setup: tuple[Path, Path, Path]) -> None:
    batch, _, _ = setup  # it has a layout.json, which print must replace
    with read_only(batch):
        r = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "print", str(batch)], capture_output=True, text=True, timeout=300
        )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "layout.json" in lines[0] and "writable" in lines[0], lines
    assert (batch / "layout.json").is_file()  # nothing lost


def test_a_capture_database_on_a_read_only_folder_is_read_or_named_read_only(setup: tuple[Path, Path, Path]) -> None:
    batch, model, photos = setup
    db = run_capture(batch, model, PhotoSource(photos), session_id="ro", gates=GATES, save_crops=False)
    con = open_db_readonly(db)
    n = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    con.close()
    caps = db.parent
    for extra in caps.glob("ro.sqlite-*"):
        extra.unlink()  # as copied from a finished capture: no -wal, no -shm
    files = [p for p in caps.iterdir() if p.is_file()]
    with read_only(caps, *files):
        con = open_db_readonly(db)  # SQLite cannot create its -shm here: read as an immutable file
        assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == n
        con.close()
    wal = Path(f"{db}-wal")
    c = sqlite3.connect(db)  # leave rows in a write-ahead log, as a killed capture would
    c.execute("PRAGMA wal_autocheckpoint=0")
    c.execute("INSERT INTO meta VALUES ('probe', 'x')")
    c.commit()
    shutil.copy(wal, caps / "kept.wal")
    c.close()  # the last connection checkpoints and removes the log: put the copy back
    shutil.move(caps / "kept.wal", wal)
    Path(f"{db}-shm").unlink(missing_ok=True)
    files = [p for p in caps.iterdir() if p.is_file()]
    with read_only(caps, *files), pytest.raises(UserError) as e:
        open_db_readonly(db)
    msg = str(e.value)
    assert "read-only, not damaged" in msg and "corrupt" not in msg and "remove" not in msg and "\n" not in msg


def test_scene_frames_smaller_than_a_view_are_skipped(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    batch, model, _ = setup
    tiny = tmp_path / "tiny-frames"
    tiny.mkdir()
    for k, v in enumerate((0, 200)):
        cv2.imwrite(str(tiny / f"p{k}.png"), np.full((1, 1, 3), v, np.uint8))
    cv2.imwrite(str(tiny / "p9.png"), np.full((120, 160, 3), 90, np.uint8))
    db = run_scene(batch, PhotoSource(tiny), OnnxClassifier(model), session_id="scene-tiny", label=1)
    con = open_db_readonly(db)
    n = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    notes = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0])
    con.close()
    assert n == 1 and notes["too_small_frames"] == 2 and notes["scene_frames"] == 1
