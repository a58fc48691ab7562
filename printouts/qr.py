"""The QR code that names each sheet: ``photoproof:<batch_id>:<sheet_index>``.

Encoded with OpenCV's ``QRCodeEncoder`` (error correction level M) and drawn as
vector modules, like the markers. The recorded box is the symbol itself; the
caller keeps a white quiet zone of four modules around it.
"""

from __future__ import annotations

import cv2
import numpy as np

from printouts.page import MmPage

QUIET_MODULES = 4


def payload(batch_id: str, sheet_index: int) -> str:
    """The text encoded on sheet ``sheet_index`` of batch ``batch_id``."""
    return f"photoproof:{batch_id}:{sheet_index}"


def qr_modules(text: str) -> np.ndarray:
    """The symbol's module grid without its quiet zone, ``True`` where black."""
    params = cv2.QRCodeEncoder.Params()
    params.correction_level = cv2.QRCODE_ENCODER_CORRECT_LEVEL_M
    img = np.asarray(cv2.QRCodeEncoder.create(params).encode(text))
    dark = img < 128
    rows = np.flatnonzero(dark.any(axis=1))
    cols = np.flatnonzero(dark.any(axis=0))
    return dark[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def draw_qr(page: MmPage, text: str, x: float, y: float, size: float) -> None:
    """Draw the QR symbol for ``text`` in the square (x, y, size, size) mm."""
    grid = qr_modules(text)
    page.modules(grid, x, y, size / grid.shape[0])
