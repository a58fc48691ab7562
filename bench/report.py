"""Time ``build_report`` on a synthetic batch: 200 items, one capture session of 300 frames.

Goal: under 15 s on a 2-core machine. Prints the figure; asserts nothing.
Run: ``python bench/report.py`` from the repository root.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.report import build_report  # noqa: E402
from analysis.synthetic import write_capture_db  # noqa: E402
from testkit.batch import write_batch  # noqa: E402

N_ITEMS, N_FRAMES, TILES_PER_FRAME = 200, 300, 32


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "batch"
        t0 = time.perf_counter()
        batch = write_batch(d, n_items=N_ITEMS, attacks=("fgsm", "bim", "ll"), eps=(2.0, 8.0, 16.0), batch_id="bsynthetic-0001")
        db = write_capture_db(d / "captures" / "bench.sqlite", batch, "bench", n_frames=N_FRAMES, tiles_per_frame=TILES_PER_FRAME)
        with sqlite3.connect(db) as con:
            n_obs = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        t1 = time.perf_counter()
        index = build_report(d)
        t2 = time.perf_counter()
        size = sum(p.stat().st_size for p in index.parent.iterdir())
        print(f"setup: {N_ITEMS} items, {N_FRAMES} frames, {n_obs} observations in {t1 - t0:.1f} s")
        print(f"build_report: {t2 - t1:.2f} s (goal < 15 s); report/ holds {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
