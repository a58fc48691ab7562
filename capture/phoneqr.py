"""The phone page's URL as a QR code (segno): a module array, a BGR image for the live window, and half-block
text for the terminal. Shown by ``photoproof capture --phone`` (:mod:`capture.phones`).
"""

from __future__ import annotations

import numpy as np


def qr_matrix(text: str, border: int = 4) -> np.ndarray:
    """The QR code of ``text`` as a uint8 array (1 = dark), with a quiet zone of ``border`` modules (segno)."""
    import segno

    m = np.array([list(row) for row in segno.make(text, error="m").matrix], np.uint8)
    return np.pad(m, border)


def qr_image(text: str, scale: int = 6) -> np.ndarray:
    """The QR code of ``text`` as a BGR image for the live window."""
    m = qr_matrix(text)
    img = np.where(np.kron(m, np.ones((scale, scale), np.uint8)) > 0, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def qr_terminal(text: str) -> str:
    """The QR code of ``text`` drawn with half-block characters, two rows of modules per line (dark on light)."""
    m = qr_matrix(text, border=2)
    if m.shape[0] % 2:
        m = np.vstack([m, np.zeros((1, m.shape[1]), np.uint8)])
    chars = {(0, 0): "\u2588", (1, 0): "\u2584", (0, 1): "\u2580", (1, 1): " "}  # light drawn, dark left blank
    return "\n".join(
        "".join(chars[(int(a), int(b))] for a, b in zip(m[r], m[r + 1], strict=True)) for r in range(0, m.shape[0], 2)
    )
