"""Time ``build_report`` on a synthetic batch: 200 items, one capture session of 300 frames.

Goals on a 2-core machine: 200 items under 15 s; 10,000 items under a minute
(``--items 10000``). ``--items 2500,5000,10000`` runs several sizes to show
how the time grows. Prints the figures; asserts nothing.
Run: ``python bench/report.py [--items N[,N...]] [--frames 300]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
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


def run(n_items: int, n_frames: int) -> float:
    """Build a synthetic batch and capture, print and return ``build_report``'s seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "batch"
        t0 = time.perf_counter()
        batch = write_batch(
            d, n_items=n_items, attacks=("fgsm", "bim", "ll"), eps=(2.0, 8.0, 16.0), batch_id="bsynthetic-0001"
        )
        db = write_capture_db(
            d / "captures" / "bench.sqlite", batch, "bench", n_frames=n_frames, tiles_per_frame=TILES_PER_FRAME
        )
        with sqlite3.connect(db) as con:
            n_obs = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        t1 = time.perf_counter()
        index = build_report(d)
        t2 = time.perf_counter()
        size = sum(p.stat().st_size for p in index.parent.iterdir())
        goal = "15 s" if n_items <= N_ITEMS else "60 s"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"setup: {n_items} items, {n_frames} frames, {n_obs} observations in {t1 - t0:.1f} s")
        print(
            f"build_report: {t2 - t1:.2f} s (goal < {goal}; load average {load:.1f} on {os.cpu_count()} CPUs); report/ "
            f"holds {size / 1e6:.1f} MB"
        )
        return t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description="Time build_report on synthetic data.")
    ap.add_argument(
        "--items", default=str(N_ITEMS), help="items in the batch; several, comma-separated, to see the growth"
    )
    ap.add_argument("--frames", type=int, default=N_FRAMES)
    args = ap.parse_args()
    sizes = [int(s) for s in args.items.split(",")]
    times = [run(n, args.frames) for n in sizes]
    if len(sizes) > 1:
        growth = (times[-1] / sizes[-1]) / (times[0] / sizes[0])
        print(
            f"time per item at {sizes[-1]} over {sizes[0]} items: {growth:.2f}x (linear: 1 or less; quadratic: "
            f"{sizes[-1] / sizes[0]:.0f})"
        )


if __name__ == "__main__":
    main()
