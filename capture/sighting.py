"""A printed patch card seen in a frame (``capture --scene``): what :class:`capture.scene.PatchFinder` finds,
the recorder stores (:meth:`capture.record.Recorder.add_scene`) and the live window draws (``scene_view``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts.patchcard import PatchCard


@dataclass
class PatchSighting:
    """One patch card found in a frame."""

    card: PatchCard
    markers: int  # markers of the card found (1..4)
    quad_px: np.ndarray  # 4 x 2: the patch's corners in the frame (TL, TR, BR, BL)
    share: float  # the patch's area inside the view / the view's area
    side_px: float  # sqrt of the patch's area in frame pixels
    rotation_deg: float  # in-plane rotation of the card about the camera axis, -180..180
    tilt_deg: float | None  # viewing angle off the card's normal (None when the pose is ambiguous)
