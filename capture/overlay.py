"""The live view: tile outlines, labels and a status line drawn over the camera frame.

A tile is outlined **green** when the model is fooled (its top-1 is not the
item's true class), **red** when it sees the true class, and grey until it has
been classified. A thin outline marks an observation below the quality gates, and
its label says why (``capture.feedback.reject_reason``); the status line says why and what to do
(``capture.feedback.gate_hint``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from capture.pipeline import TileKey, TileResult
from capture.sheets.detect import SheetHit
from contracts.layout import Tile

log = logging.getLogger(__name__)

GREEN, RED, GREY, WHITE, BLACK, AMBER = (
    (60, 200, 60),
    (50, 50, 230),
    (160, 160, 160),
    (255, 255, 255),
    (0, 0, 0),
    (0, 190, 255),
)


def _text(
    img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, colour: tuple[int, int, int] = WHITE
) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, BLACK, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


@dataclass
class Outline:
    """A tile to outline: where it is in the frame and whether it passed the gates (``None``: unknown)."""

    sheet_id: str
    tile: Tile
    quad_px: np.ndarray
    good: bool | None
    reason: str = ""  # why it does not count (capture.feedback.reject_reason), shown on its label


def draw_overlay(
    frame_bgr: np.ndarray,
    hits: list[SheetHit],
    outlines: list[Outline],
    results: dict[TileKey, TileResult],
    true_class: dict[str, int],
    class_names: list[str],
    status: str,
) -> np.ndarray:
    """A copy of the frame with every tile outlined and labelled, and ``status`` on top."""
    img = frame_bgr.copy()
    for hit in hits:
        corners = np.array(
            [[0, 0], [hit.sheet.size_mm[0], 0], hit.sheet.size_mm, [0, hit.sheet.size_mm[1]]], np.float64
        )
        p = np.hstack([corners, np.ones((4, 1))]) @ hit.H.T
        if (p[:, 2] > 0).all():
            quad = (p[:, :2] / p[:, 2:]).astype(np.int32)
            cv2.polylines(img, [quad], True, AMBER if hit.scale_warning else WHITE, 1, cv2.LINE_AA)
    for c in outlines:
        key = (c.sheet_id, c.tile.item, c.tile.role)
        r = results.get(key)
        truth = true_class.get(c.tile.item)
        if r is None or truth is None:
            colour, label = GREY, c.tile.role
        else:
            colour = RED if r.top1 == truth else GREEN
            name = class_names[r.top1] if 0 <= r.top1 < len(class_names) else str(r.top1)
            label = f"{c.tile.role}: {name[:18]} {r.prob:.2f}"
        if c.reason:
            label = f"{label} [{c.reason}]"
        quad = c.quad_px.astype(np.int32)
        cv2.polylines(img, [quad], True, colour, 1 if c.good is False else 3, cv2.LINE_AA)
        x, y = int(quad[:, 0].min()), int(quad[:, 1].min())
        _text(img, label, (x + 3, max(14, y - 5)), 0.45, colour)
    cv2.rectangle(img, (0, 0), (img.shape[1], 26), BLACK, -1)
    _text(img, status, (8, 18), 0.55)
    return img


def display_available() -> bool:
    """False when there is no screen to open a window on (no DISPLAY/WAYLAND_DISPLAY on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def window_wanted(headless: bool) -> bool:
    """Whether to open a live window: not ``headless`` and a display exists (warns when one was asked for without a
    display).
    """
    if headless:
        return False
    if not display_available():
        log.warning("no display (DISPLAY is not set): running headless")
        return False
    return True


class Window:
    """An OpenCV window; ``show()`` returns False when the user pressed q or Esc or closed it."""

    def __init__(self, title: str = "photoproof capture") -> None:
        self.title = title
        self.ok = True
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            log.warning("cannot open a window (%s); running headless", str(e).splitlines()[0])
            self.ok = False

    def show(self, img: np.ndarray) -> bool:
        if not self.ok:
            return True
        try:
            cv2.imshow(self.title, img)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                return False
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error as e:
            log.warning("window failed (%s); running headless", str(e).splitlines()[0])
            self.ok = False
            return True

    def close(self) -> None:
        if self.ok:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
