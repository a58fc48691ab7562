"""The GPU check's figures (``bench/gpu.py``): a throughput as the median of timed runs, and their table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Figure:
    """A throughput: the median of ``n`` timed runs, with the slowest and the fastest."""

    what: str
    unit: str
    median: float
    low: float
    high: float
    n: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    what: str, unit: str, work: int, fn: Callable[[], object], reps: int, device: torch.device, note: str = ""
) -> Figure:
    """Run ``fn`` once to warm up, then ``reps`` times; ``work`` units per run."""
    fn()
    _sync(device)
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        rates.append(work / (time.perf_counter() - t0))
    return Figure(what, unit, statistics.median(rates), min(rates), max(rates), reps, note)


def print_table(figs: list[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("what", "median", "min - max", "n", "x bare", "note")
    for f in figs:
        ratio = f.extra.get("vs_bare")
        t.add_row(
            f.what,
            f"{f.median:,.1f} {f.unit}",
            f"{f.low:,.1f} - {f.high:,.1f}",
            str(f.n),
            "" if ratio is None else f"{ratio:.2f}x",
            f.note,
        )
    Console(width=180).print(t)
