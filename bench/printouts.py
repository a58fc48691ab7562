"""Benchmark ``photoproof print``: a 100-item synthetic batch of 224 px PNGs.

Prints how long ``print_batch`` takes (goal: under 10 s on a 2-core machine),
pages per second and the size of ``sheets.pdf``. Reports figures; asserts nothing.

    python bench/printouts.py [--items 100] [--size 224] [--paper a4] [--tile-mm 60] [--layout pairs] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from printouts.sheets import print_batch  # noqa: E402
from testkit.batch import write_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--size", type=int, default=224, help="image side in pixels")
    ap.add_argument("--paper", default="a4")
    ap.add_argument("--tile-mm", type=float, default=60.0)
    ap.add_argument("--layout", default="pairs")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-printouts-") as tmp:
        batch_dir = Path(tmp) / "batch"
        t0 = time.perf_counter()
        write_batch(batch_dir, n_items=args.items, size=args.size)
        print(
            f"synthetic batch: {args.items} items, {args.size}x{args.size} px PNGs, built in "
            f"{time.perf_counter() - t0:.2f} s"
        )
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            layout = print_batch(batch_dir, paper=args.paper, tile_mm=args.tile_mm, layout=args.layout, cover=True)
            times.append(time.perf_counter() - t0)
        pages = len(layout.sheets) + 1
        tiles = sum(len(s.tiles) for s in layout.sheets)
        best, median = min(times), statistics.median(times)
        mb = (batch_dir / "sheets.pdf").stat().st_size / 1e6
        print(
            f"print_batch ({args.paper}, {args.tile_mm:g} mm, {args.layout}): {pages} pages, {tiles} tiles, "
            f"{layout.aruco_dictionary} ids from {layout.extra['marker_id_offset']}, "
            f"{layout.sheets[0].qr['box_mm'][2]:g} mm QR codes"
        )
        print(f"time: best {best:.2f} s, median {median:.2f} s over {len(times)} run(s) (goal < 10 s)")
        print(f"throughput: {pages / best:.1f} pages/s, {tiles / best:.0f} tiles/s; sheets.pdf {mb:.1f} MB")


if __name__ == "__main__":
    main()
