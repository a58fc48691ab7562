"""When a capture run stops: one rule for every frame loop (capture, capture --phone, scene, preview).

A run stops at the first of: ``--frames N`` (frames of the session, a resumed one's included),
``--duration S`` (seconds of this run), ``--per-tile K`` (good observations of every tile; capture
only), the source ending, the window closing, or a stop request (Ctrl-C, SIGTERM, a full disk).
The reasons are the strings recorded as ``stopped_by`` in the session's notes. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.errors import UserError

SOURCE_ENDED = "source ended"
WINDOW_CLOSED = "window closed"
STOP_REQUESTED = "stop requested"


@dataclass(frozen=True)
class StopRule:
    """The user's stop conditions, checked when made: each given one is > 0 (a one-line error naming its flag)."""

    frames: int | None = None
    duration: float | None = None
    per_tile: int | None = None

    def __post_init__(self) -> None:
        for flag, v in (("--frames", self.frames), ("--duration", self.duration), ("--per-tile", self.per_tile)):
            if v is not None and v <= 0:
                raise UserError(f"{flag}: must be > 0, got {v}")

    def out_of_time(self, elapsed: float) -> str:
        """``"S s"`` once ``elapsed`` seconds reach ``--duration``; ``""`` before (or without one)."""
        return f"{self.duration:g} s" if self.duration is not None and elapsed >= self.duration else ""

    def reason(self, frames_seen: int, elapsed: float, tiles_done: bool = False) -> str:
        """Why to stop after ``frames_seen`` frames and ``elapsed`` seconds (``""``: go on).

        ``tiles_done``: every tile has its ``--per-tile`` good observations (the classifier thread knows).
        """
        if self.frames is not None and frames_seen >= self.frames:
            return f"{self.frames} frames"
        if self.out_of_time(elapsed):
            return self.out_of_time(elapsed)
        if tiles_done and self.per_tile is not None:
            return f"{self.per_tile} good observations per tile"
        return ""

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left of ``--duration`` (at least 0.1, so that a late start still records a frame); ``None``."""
        return None if self.duration is None else max(0.1, self.duration - elapsed)
