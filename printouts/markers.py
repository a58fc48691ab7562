"""ArUco fiducials: the dictionary, each batch's block of ids, drawing them.

Markers come from OpenCV's ``DICT_4X4_1000`` (4x4 bits have the largest modules
for a given printed size, so they are found from the furthest away; 1000 is the
largest 4x4 dictionary). Every sheet carries eight markers, so the dictionary
holds 125 blocks of eight ids. A batch does not start at id 0: its first block
is ``sha256(batch_id) mod 125`` (``layout.json`` records the first id as
``extra.marker_id_offset``), and sheet ``k`` takes the ``k``-th block after it,
wrapping round from 999 to 0. Ids are unique within a batch, and a sheet of
another batch lying in the same frame usually carries ids this batch's layout
does not know, so capture ignores it: two batches of ``n1`` and ``n2`` sheets
share some block with probability ``(n1 + n2 - 1) / 125`` (0.8% for two single
sheets). When they do, the sheets' QR codes tell them apart.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache

import cv2
import numpy as np

from contracts.errors import UserError
from printouts.geometry import MARKER_MODULES, MARKERS_PER_SHEET
from printouts.page import MmPage

log = logging.getLogger(__name__)

DICTIONARY = "DICT_4X4_1000"
DICTIONARY_SIZE = 1000
ID_BLOCKS = DICTIONARY_SIZE // MARKERS_PER_SHEET  # 125 blocks of eight ids
MAX_SHEETS = ID_BLOCKS


def choose_dictionary(n_sheets: int, hint: str = "") -> str:
    """The dictionary for a batch of ``n_sheets`` sheets (always ``DICT_4X4_1000``).

    Args:
        n_sheets: number of sheets in the batch.
        hint: text appended to the error (e.g. how many items fit on a sheet).

    Raises:
        UserError: when the batch needs more distinct markers than the dictionary has.
    """
    needed = n_sheets * MARKERS_PER_SHEET
    if needed <= DICTIONARY_SIZE:
        return DICTIONARY
    raise UserError(
        f"{n_sheets} sheets need {needed} marker ids, but the largest marker dictionary ({DICTIONARY}) has "
        f"{DICTIONARY_SIZE}, enough for {MAX_SHEETS} sheets; use larger paper or a smaller --tile-mm, or split the "
        f"batch{hint}"
    )


def marker_id_offset(batch_id: str, per_sheet: int = MARKERS_PER_SHEET) -> int:
    """First marker id of the batch's sheet 0: ``per_sheet * (sha256(batch_id) mod (1000 // per_sheet))``.

    The same on every run; eight ids per sheet for a classic sheet (blocks of 125).
    """
    digest = hashlib.sha256(batch_id.encode("utf-8")).digest()
    return per_sheet * (int.from_bytes(digest, "big") % (DICTIONARY_SIZE // per_sheet))


def id_run(first: int, n: int) -> list[int]:
    """``n`` consecutive ids from ``first``, wrapping round from 999 to 0 (every id stays in the dictionary)."""
    return [(first + j) % DICTIONARY_SIZE for j in range(n)]


@cache
def dictionary(name: str) -> cv2.aruco.Dictionary:
    """The OpenCV predefined dictionary called ``name`` (e.g. ``DICT_4X4_1000``)."""
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def sheet_marker_ids(sheet_index: int, offset: int = 0) -> list[int]:
    """The block of marker ids that sheet ``sheet_index`` carries, for a batch whose ids start at ``offset``."""
    first = (offset + sheet_index * MARKERS_PER_SHEET) % DICTIONARY_SIZE
    return list(range(first, first + MARKERS_PER_SHEET))


def id_ranges(ids: list[int]) -> str:
    """``[0, 1, 2, 7, 8]`` -> ``"0-2, 7-8"``: the ids as sorted runs, for people to read."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def marker_modules(dict_name: str, marker_id: int) -> np.ndarray:
    """The marker's module grid (border included), ``True`` where black, row 0 on top."""
    img = cv2.aruco.generateImageMarker(dictionary(dict_name), marker_id, MARKER_MODULES)
    return np.asarray(img) < 128


def draw_marker(page: MmPage, dict_name: str, marker_id: int, x: float, y: float, size: float) -> None:
    """Draw marker ``marker_id`` as vector rectangles with its top-left at (x, y) mm."""
    page.modules(marker_modules(dict_name, marker_id), x, y, size / MARKER_MODULES)
