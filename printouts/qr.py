"""The QR code that names each sheet: ``photoproof:<batch_id>:<sheet_index>:<layout_id>``.

The layout id (:func:`contracts.layout.layout_id`) tells prints of one batch apart, so
that capture reads a photo of an older sheet with that sheet's own layout. Sheets printed
before layout ids carry ``photoproof:<batch_id>:<sheet_index>``.

Encoded with OpenCV's ``QRCodeEncoder`` at error correction level L and drawn as
vector modules, like the markers. Level L keeps the symbol small in modules
(a typical payload fits version 2, 25 x 25), so each module is as large as
possible for the space: what limits reading it from a 720p frame is pixels per
module, not damage to the paper. The recorded box is the symbol itself; the
layout keeps at least ``QUIET_MM`` of white paper around it.
"""

from __future__ import annotations

import cv2
import numpy as np

from printouts.page import MmPage

QUIET_MM = 4.0  # white paper kept around the symbol (3 to 4 modules at the sizes printed)


def payload(batch_id: str, sheet_index: int, layout_id: str) -> str:
    """The text encoded on sheet ``sheet_index`` of batch ``batch_id`` printed with layout ``layout_id``."""
    return f"photoproof:{batch_id}:{sheet_index}:{layout_id}"


def qr_modules(text: str) -> np.ndarray:
    """The symbol's module grid without its quiet zone, ``True`` where black."""
    params = cv2.QRCodeEncoder.Params()
    params.correction_level = cv2.QRCODE_ENCODER_CORRECT_LEVEL_L
    img = np.asarray(cv2.QRCodeEncoder.create(params).encode(text))
    dark = img < 128
    rows = np.flatnonzero(dark.any(axis=1))
    cols = np.flatnonzero(dark.any(axis=0))
    return dark[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def round_trips(text: str, px: int = 8) -> bool:
    """Whether OpenCV's decoder reads ``text`` back from its own symbol (drawn ``px`` pixels per module).

    A few payloads in a hundred do not: the encoder and decoder disagree on them.
    """
    grid = qr_modules(text)
    cells = np.where(grid, 0, 255).astype(np.uint8)
    big = cv2.resize(cells, None, fx=px, fy=px, interpolation=cv2.INTER_NEAREST)
    img = cv2.copyMakeBorder(big, 4 * px, 4 * px, 4 * px, 4 * px, cv2.BORDER_CONSTANT, value=255)
    try:
        got, _, _ = cv2.QRCodeDetector().detectAndDecode(img)
    except cv2.error:
        return False
    return bool(got == text)


def readable_payload(batch_id: str, sheet_index: int, layout_id: str) -> str:
    """:func:`payload`, or a variant that OpenCV reads back (the id in capitals, then with a dot)."""
    for lid in (layout_id, layout_id.upper(), f"{layout_id}.", f"{layout_id.upper()}."):
        text = payload(batch_id, sheet_index, lid)
        if round_trips(text):
            return text
    return payload(batch_id, sheet_index, layout_id)


def draw_qr(page: MmPage, text: str, x: float, y: float, size: float) -> None:
    """Draw the QR symbol for ``text`` in the square (x, y, size, size) mm."""
    grid = qr_modules(text)
    page.modules(grid, x, y, size / grid.shape[0])
