"""Craft's bookkeeping at 10,000 items, the model's cost left out: does it grow linearly?

For every mini-batch of ``--batch-size`` items it does what the crafting job
does after the attack: top-5 records from logits (``craft.job.top5_records``,
random logits from a trivial "model"), the items' records, and one fsync'd
append to the journal (``contracts.journal.JournalWriter``); at the end the
journal is folded into ``batch.json`` (``craft.outdir.fold_journal``), and a
resume's read of ``batch.json`` plus journal is timed too. PNG writing is
per-item work of fixed size and is left out.

For comparison, the old scheme (``batch.json`` rewritten after every
mini-batch) runs at the smaller sizes; its time per item grows with the size.

Prints a table (asserts nothing). Goal: time per item flat from 625 to
10,000 items (ratio near 1, where quadratic would give 16).

Usage (from the repository root)::

    python bench/bookkeeping.py [--sizes 625,1250,2500,5000,10000] [--old-max 1250] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.journal import JournalWriter  # noqa: E402
from contracts.manifest import Batch, ImageRecord, Item, Label, ModelRecord, SourceImage, load_batch, save_batch  # noqa: E402
from craft.job import top5_records  # noqa: E402
from craft.outdir import fold_journal  # noqa: E402

ATTACKS = ["bim"]
EPS = [16.0]


def _chunk_items(start: int, n: int, gen: torch.Generator) -> list[Item]:
    """``n`` items as the job records them, top-5s from random logits (clean and adversarial)."""
    clean = top5_records(["lite0"], [torch.randn(n, 1000, generator=gen)])
    adv = top5_records(["lite0"], [torch.randn(n, 1000, generator=gen)])
    out = []
    for k in range(n):
        i = start + k
        key = f"photo-{i:05d}"
        out.append(
            Item(
                id=f"{key}-bim-e16",
                source=SourceImage(f"/data/photos/{key}.jpg", f"{i:064x}", "user"),
                label=Label(i % 1000, f"class {i % 1000}", "labels.csv"),
                attack="bim",
                eps=16.0,
                seed=1_000_003 * i % 2**32,
                clean=ImageRecord(f"images/{key}-clean.png", f"{i + 1:064x}", clean[k]),
                adv=ImageRecord(f"images/{key}-bim-e16.png", f"{i + 2:064x}", adv[k]),
                params={"steps": 20, "alpha": 1.0, "repair_steps": 0, "repair_steps_max": 10},
            )
        )
    return out


def _new_batch(d: Path) -> Batch:
    batch = Batch(
        "bbench-0001",
        {"images": "/data/photos", "attacks": ATTACKS, "eps": EPS, "seed": 0, "source": ["lite0"]},
        [ModelRecord("lite0", "efficientnet-lite0", "source", "0" * 64, "bench", {"input_size": 224})],
    )
    d.mkdir(parents=True, exist_ok=True)
    save_batch(d, batch)
    return batch


def journal_run(d: Path, n: int, bs: int) -> dict[str, float]:
    """The job's scheme: append per mini-batch, fold once. Returns seconds per phase."""
    _new_batch(d)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    with JournalWriter(d) as w:
        for start in range(0, n, bs):
            w.append(asdict(it) for it in _chunk_items(start, min(bs, n - start), gen))
    t1 = time.perf_counter()
    resumed = load_batch(d)  # what a resume after a kill reads: batch.json + journal
    t2 = time.perf_counter()
    batch = fold_journal(d, ATTACKS, EPS)
    t3 = time.perf_counter()
    assert len(resumed.items) == n == len(batch.items)
    return {"append": t1 - t0, "resume_read": t2 - t1, "fold": t3 - t2, "total": t1 - t0 + t3 - t2}


def old_run(d: Path, n: int, bs: int) -> dict[str, float]:
    """The former scheme: ``batch.json`` rewritten (atomically, fsync'd) after every mini-batch."""
    batch = _new_batch(d)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for start in range(0, n, bs):
        batch.items += _chunk_items(start, min(bs, n - start), gen)
        save_batch(d, batch)
    return {"total": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="625,1250,2500,5000,10000")
    ap.add_argument("--old-max", type=int, default=1250, help="largest size run with the old scheme (it is quadratic)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
        f"mini-batches of {args.batch_size}; each figure is one run"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            r = journal_run(Path(tmp) / f"j{n}", n, args.batch_size)
            old = old_run(Path(tmp) / f"o{n}", n, args.batch_size)["total"] if n <= args.old_max else None
            rows.append({"items": n, **r, "old_total": old})
    print(
        f"{'items':>7} {'append s':>9} {'fold s':>7} {'total s':>8} {'µs/item':>8} {'resume read s':>14} "
        f"{'old scheme s':>13} {'old µs/item':>12}"
    )
    for r in rows:
        n = r["items"]
        old = "-" if r["old_total"] is None else f"{r['old_total']:.2f}"
        old_per = "-" if r["old_total"] is None else f"{r['old_total'] / n * 1e6:.0f}"
        print(
            f"{n:>7} {r['append']:>9.2f} {r['fold']:>7.2f} {r['total']:>8.2f} {r['total'] / n * 1e6:>8.0f} "
            f"{r['resume_read']:>14.2f} {old:>13} {old_per:>12}"
        )
    first, last = rows[0], rows[-1]
    growth = (last["total"] / last["items"]) / (first["total"] / first["items"])
    print(
        f"time per item at {last['items']} over {first['items']} items: {growth:.2f}x (linear: 1; quadratic: "
        f"{last['items'] / first['items']:.0f})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"load_average": load, "cpus": os.cpu_count(), "rows": rows, "per_item_growth": growth}, indent=2
            )
        )


if __name__ == "__main__":
    main()
