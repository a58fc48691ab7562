"""The progress bar of long jobs: a rich ``Progress`` and its adapter to a job's callback. Torch-free."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from console.terminal import console


def rich_progress(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    """Adapt a rich Progress to the job's ``progress(label, total) -> tick(n)`` callback, with the rate per second."""

    def start(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total, rate="")
        t0 = time.monotonic()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            rate = done[0] / max(time.monotonic() - t0, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f}/s")

        return tick

    return start


def make_progress() -> Progress:
    """The bar: description, bar, done/total, rate, elapsed, ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
