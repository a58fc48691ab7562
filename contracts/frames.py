"""The frame-source interface: open, frames with timestamps, close.

``--camera N``, ``--url URL``, ``--video FILE``, ``--photos DIR`` (in
:mod:`capture.sources`) and ``--simulate`` (in :mod:`channel.simulate`) all
yield :class:`Frame` objects; everything downstream treats them the same.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


@dataclass
class Frame:
    """One camera frame.

    Attributes:
        index: 0-based frame counter of the source.
        t: seconds since the source opened (monotonic clock, or the video's timestamp).
        image: ``H x W x 3`` uint8, **BGR** (OpenCV convention).
        truth: ground truth for simulated frames (e.g. ``{"sheets": [{"page": 1, "H_mm_to_px": 3x3}]}``), else ``None``.
    """

    index: int
    t: float
    image: np.ndarray
    truth: dict[str, Any] | None = field(default=None)


class FrameSource(abc.ABC):
    """Base class of every frame source. Use it as a context manager."""

    #: A short description stored in the session record, e.g. ``camera:0`` or ``video:clip.mp4``.
    description: str = "source"
    #: True for sources that run at their own pace (cameras, streams): a consumer that
    #: falls behind drops stale frames. False for files, which wait for the consumer.
    live: bool = False

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or file. Raise ``UserError`` naming it when it cannot be opened."""

    @abc.abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames until the source ends (or forever, for live sources)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def simulation(self) -> tuple[str, int] | None:
        """``(profile name, seed)`` of a simulated source, recorded with the session; ``None`` for a real one."""
        return None

    def interrupt(self) -> None:
        """Ask a ``frames()`` that is waiting for a frame to return soon. Safe from a signal handler."""
        self._interrupted = True

    @property
    def interrupted(self) -> bool:
        return bool(getattr(self, "_interrupted", False))

    def __enter__(self) -> "FrameSource":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
