"""ArUco fiducials: pick a dictionary, give each sheet a block of ids, draw them.

Markers come from OpenCV's predefined 4x4 dictionaries (4x4 bits have the
largest modules for a given printed size, so they are found from the furthest
away). The smallest dictionary that labels the whole batch is chosen: fewer
codes means a larger Hamming distance between them, so fewer false detections.
Sheet ``k`` uses ids ``8k .. 8k+7``, so every marker id is unique in a batch.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import cv2
import numpy as np

from contracts.errors import UserError
from printouts.geometry import MARKER_MODULES, MARKERS_PER_SHEET
from printouts.page import MmPage

log = logging.getLogger(__name__)

# Smallest first; each is (OpenCV name, number of markers).
DICTIONARIES: tuple[tuple[str, int], ...] = (
    ("DICT_4X4_50", 50),
    ("DICT_4X4_100", 100),
    ("DICT_4X4_250", 250),
    ("DICT_4X4_1000", 1000),
)
MAX_SHEETS = DICTIONARIES[-1][1] // MARKERS_PER_SHEET


def choose_dictionary(n_sheets: int, hint: str = "") -> str:
    """The smallest 4x4 dictionary with ``8 * n_sheets`` distinct markers.

    Args:
        n_sheets: number of sheets in the batch.
        hint: text appended to the error (e.g. how many items fit on a sheet).

    Raises:
        UserError: when even the largest dictionary is too small.
    """
    needed = n_sheets * MARKERS_PER_SHEET
    for name, size in DICTIONARIES:
        if needed <= size:
            return name
    name, size = DICTIONARIES[-1]
    raise UserError(
        f"{n_sheets} sheets need {needed} marker ids, but the largest marker dictionary ({name}) has {size}, "
        f"enough for {MAX_SHEETS} sheets; use larger paper or a smaller --tile-mm, or split the batch{hint}"
    )


@lru_cache(maxsize=None)
def dictionary(name: str) -> cv2.aruco.Dictionary:
    """The OpenCV predefined dictionary called ``name`` (e.g. ``DICT_4X4_1000``)."""
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def sheet_marker_ids(sheet_index: int) -> list[int]:
    """The block of marker ids that sheet ``sheet_index`` carries."""
    first = sheet_index * MARKERS_PER_SHEET
    return list(range(first, first + MARKERS_PER_SHEET))


def marker_modules(dict_name: str, marker_id: int) -> np.ndarray:
    """The marker's module grid (border included), ``True`` where black, row 0 on top."""
    img = cv2.aruco.generateImageMarker(dictionary(dict_name), marker_id, MARKER_MODULES)
    return np.asarray(img) < 128


def draw_marker(page: MmPage, dict_name: str, marker_id: int, x: float, y: float, size: float) -> None:
    """Draw marker ``marker_id`` as vector rectangles with its top-left at (x, y) mm."""
    page.modules(marker_modules(dict_name, marker_id), x, y, size / MARKER_MODULES)
