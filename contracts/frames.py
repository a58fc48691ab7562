"""The frame-source interface: open, frames with timestamps, close.

``--camera N``, ``--url URL``, ``--video FILE``, ``--photos DIR``, ``--phone`` (in
:mod:`capture.sources`) and ``--simulate`` (in :mod:`channel.simulate`) all
yield :class:`Frame` objects; everything downstream treats them the same.

A source that sets ``wants_feedback`` (the phone page) also hears, after each
frame, what the session saw in it: a :class:`FrameReport`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from contracts.profile import ChannelProfile


@dataclass
class Frame:
    """One camera frame.

    Attributes:
        index: 0-based frame counter of the source.
        t: seconds since the source opened (monotonic clock, or the video's timestamp).
        image: ``H x W x 3`` uint8, **BGR** (OpenCV convention).
        truth: ground truth for simulated frames (e.g. ``{"sheets": [{"page": 1, "H_mm_to_px": 3x3}]}``), else ``None``.
        jpeg_quality: the IJG quality read from the frame's JPEG file's quantisation tables, when the source
            decoded a JPEG file (a photo, a phone's upload); ``None`` otherwise (``capture.jpegquality``).
    """

    index: int
    t: float
    image: np.ndarray
    truth: dict[str, Any] | None = field(default=None)
    jpeg_quality: int | None = None


@dataclass
class TileView:
    """One tile as the session saw it in one frame (for a source that shows it, e.g. the phone page).

    Attributes:
        sheet_id, item, role: which tile.
        quad: its corners in frame pixels, TL TR BR BL.
        verdict: ``"fooled"`` (top-1 is not the true class), ``"seen"`` (it is) or ``"pending"``.
        label, prob: the model's latest top-1 class name and probability (``""``, 0 when pending).
        reason: why the observation fails the quality gates (``"move closer"``, ``"too steep"``,
            ``"blurred"``, ...), ``""`` when it passes, ``None`` when the tile was not measured.
        good: good observations of this tile so far.
    """

    sheet_id: str
    item: str
    role: str
    quad: list[list[float]]
    verdict: str
    label: str = ""
    prob: float = 0.0
    reason: str | None = None
    good: int = 0


@dataclass
class FrameReport:
    """What the session saw in one frame, passed to :meth:`FrameSource.feedback`.

    ``frame_index`` is the source's own :attr:`Frame.index`; ``min_good`` of ``per_tile``
    is the progress of the slowest tile; ``done`` comes once, with what stopped the session.
    """

    frame_index: int
    width: int
    height: int
    tiles: list[TileView]
    sheets: list[str]
    min_good: int
    per_tile: int | None
    observations: int
    good: int
    done: bool = False
    stopped_by: str = ""
    # The session's coverage (capture.coverage): sheets seen k of N, tiles with >= ``enough`` good
    # observations m of M, and what to do next (sheets not yet seen, tiles that keep failing a gate).
    sheets_seen: int = 0
    sheets_total: int = 0
    tiles_enough: int = 0
    tiles_total: int = 0
    enough: int = 1
    unseen: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    progress: str = ""  # the counts as one line, as the laptop shows them


class FrameSource(abc.ABC):
    """Base class of every frame source. Use it as a context manager."""

    #: A short description stored in the session record, e.g. ``camera:0`` or ``video:clip.mp4``.
    description: str = "source"
    #: True for sources that run at their own pace (cameras, streams): a consumer that
    #: falls behind drops stale frames. False for files, which wait for the consumer.
    live: bool = False
    #: True for sources that show the session's verdicts (the phone page): the session then
    #: waits for each frame's classification and calls :meth:`feedback` with it.
    wants_feedback: bool = False

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or file. Raise ``UserError`` naming it when it cannot be opened."""

    @abc.abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames until the source ends (or forever, for live sources)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def feedback(self, report: FrameReport) -> None:
        """What the session saw in the frame just yielded (only called when ``wants_feedback``); ignored here."""
        return None

    def simulation(self) -> tuple[ChannelProfile, int] | None:
        """``(profile, seed)`` of a simulated source, recorded with the session (the profile's name, and the
        sessions it was calibrated from, which the report's prediction check leaves out); ``None`` for a real one."""
        return None

    def interrupt(self) -> None:
        """Ask a ``frames()`` that is waiting for a frame to return soon. Safe from a signal handler."""
        self._interrupted = True

    @property
    def interrupted(self) -> bool:
        return bool(getattr(self, "_interrupted", False))

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MappedSource(FrameSource):
    """Another source's frames, each passed through :meth:`map` (a camera's processing added in a test or a bench);
    opening, closing and the simulation record are the inner source's."""

    def __init__(self, inner: FrameSource, description: str) -> None:
        self.inner = inner
        self.description = description

    def map(self, frame: Frame) -> Frame:
        """The frame as this source yields it."""
        return frame

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def simulation(self) -> tuple[ChannelProfile, int] | None:
        return self.inner.simulation()

    def interrupt(self) -> None:
        super().interrupt()
        self.inner.interrupt()

    def frames(self) -> Iterator[Frame]:
        for f in self.inner.frames():
            yield self.map(f)
