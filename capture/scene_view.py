"""The live window of ``capture --scene``: the view square, the patch's outline and a status line over each frame.

The **view** (what the model classifies: the frame's centred square, or that of
``--region``) is outlined in white. When the patch card's markers are found,
the patch's quad is outlined **green** if the frame's top-1 is the patch's
target class and **amber** if not. The status line gives the top-1 class and
its probability, whether the patch is in view with its share of the view and
its viewing angle, and the running counts of the session: frames with and
without the patch, and the target-class rate in each.
:func:`draw_scene` only returns the annotated copy; :mod:`capture.scene` shows it
in a :class:`capture.overlay.Window` unless headless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from capture.overlay import AMBER, BLACK, GREEN, WHITE
from capture.sighting import PatchSighting

BAR_PX = 26  # height of the status bar at the top of the window


@dataclass
class SceneTally:
    """Running counts of a scene session, for its status line.

    ``targets`` are the patch cards' target classes; frames without the patch
    count a hit when their top-1 is one of them (the rate the patch must beat).
    """

    targets: frozenset[int] = field(default_factory=frozenset)
    with_patch: int = 0
    without: int = 0
    hits_with: int = 0  # frames with the patch whose top-1 is that patch's target
    aimed: int = 0  # frames with a patch that has a target (the denominator of hits_with)
    hits_without: int = 0

    def add(self, top1: int, target: int | None, present: bool) -> None:
        """Count one frame: its top-1, and the target of the patch seen in it (when ``present``)."""
        if present:
            self.with_patch += 1
            if target is not None:
                self.aimed += 1
                self.hits_with += int(top1 == target)
        else:
            self.without += 1
            self.hits_without += int(top1 in self.targets)

    def line(self) -> str:
        """``frames with patch W, without O | target rate k/n = r% with, k/n without``."""

        def rate(k: int, n: int) -> str:
            return f"{k}/{n} = {100 * k / n:.0f}%" if n else "-"

        return (
            f"frames with patch {self.with_patch}, without {self.without} | target rate "
            f"{rate(self.hits_with, self.aimed)} with, {rate(self.hits_without, self.without)} without"
        )


def scene_status(
    class_name: str, prob: float, present: bool, share: float | None, tilt_deg: float | None, tally: SceneTally
) -> str:
    """The status line of one frame (ASCII: OpenCV's Hershey fonts have no degree sign)."""
    if present:
        tilt = "?" if tilt_deg is None else f"{tilt_deg:.0f} deg"
        patch = f"patch {100 * (share or 0.0):.1f}% of view, tilt {tilt}"
    else:
        patch = "no patch"
    return f"top-1 {class_name[:24]} {prob:.2f} | {patch} | {tally.line()}"


def draw_scene(
    frame_bgr: np.ndarray, view: tuple[int, int, int, int], quad_px: np.ndarray | None, on_target: bool, status: str
) -> np.ndarray:
    """A copy of the frame with the view square, the patch quad (when found) and ``status`` on top.

    Args:
        frame_bgr: H x W x 3 uint8; not modified.
        view: ``x, y, w, h`` of the classified square in frame pixels.
        quad_px: 4 x 2 patch corners in the frame, or ``None`` when no card was found.
        on_target: the frame's top-1 is the patch's target (green outline; amber otherwise).
    """
    img = frame_bgr.copy()
    x, y, w, h = view
    cv2.rectangle(img, (x + 1, y + 1), (x + w - 2, y + h - 2), WHITE, 2, cv2.LINE_8)
    if quad_px is not None:
        cv2.polylines(img, [np.round(quad_px).astype(np.int32)], True, GREEN if on_target else AMBER, 3, cv2.LINE_8)
    cv2.rectangle(img, (0, 0), (img.shape[1], BAR_PX), BLACK, -1)
    scale = 0.5
    width = cv2.getTextSize(status, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    if width > img.shape[1] - 16:  # shrink to fit the frame's width
        scale = max(0.25, scale * (img.shape[1] - 16) / width)
    cv2.putText(img, status, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 1, cv2.LINE_AA)
    return img


def annotate(
    frame_bgr: np.ndarray,
    view: tuple[int, int, int, int],
    sighting: PatchSighting | None,
    top1: int,
    prob: float,
    class_names: list[str],
    tally: SceneTally,
) -> np.ndarray:
    """The live window's image of one classified frame (``tally`` already counts it)."""
    name = class_names[top1] if 0 <= top1 < len(class_names) else str(top1)
    s = sighting
    status = scene_status(name, prob, s is not None, s.share if s else None, s.tilt_deg if s else None, tally)
    return draw_scene(frame_bgr, view, s.quad_px if s else None, s is not None and top1 == s.card.target, status)
