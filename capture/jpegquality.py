"""The camera's JPEG quality, for ``photoproof calibrate``: read from a JPEG file's tables, or estimated from pixels.

- A JPEG file (``--photos``, a phone's upload, an MJPEG stream) carries its quantisation tables:
  :func:`quality_from_bytes` reads the luminance table (Pillow) and gives the libjpeg (IJG) quality
  whose scaled standard table (ITU-T T.81 Annex K, Table K.1) it is, or, for another encoder's table,
  the IJG quality whose table is closest on a log scale (an "IJG-equivalent" quality).
- A frame that arrives decoded (a webcam through OpenCV) keeps the traces of its 8x8 quantisation:
  in the blocks aligned with the frame's origin, each low-frequency DCT coefficient sits near a
  multiple of its quantiser step (Fan and de Queiroz 2003, "Identification of bitmap compression
  history: JPEG detection and quantizer estimation", IEEE TIP 12(2)). :func:`quality_from_pixels`
  finds the largest step whose lattice the coefficients follow, for the first ten zig-zag
  positions, and the IJG quality whose table has the most of those steps. A frame that was
  resized, cropped off the 8x8 grid or re-processed after its JPEG shows no lattice: ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# ITU-T T.81 Annex K, Table K.1: the luminance quantisation table at IJG quality 50, row-major.
STANDARD_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.float64,
)  # fmt: skip
ZIGZAG_10 = ((0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0))
MAX_STEP = 40  # the largest quantiser step looked for (IJG quality ~20 and up, at the low frequencies)
ROUNDING_STD = 0.45  # std of a decoded coefficient about its lattice point (8-bit rounding of Y and of R, G, B)
OUTLIERS = 0.2  # share of coefficients off the lattice whatever the step (clipped blocks)
MIN_EVIDENCE = 20.0  # total log-likelihood ratio (nats) a lattice needs
MIN_COEFFS = 200  # non-zero coefficients a position needs before its step is estimated
MAX_BLOCKS = 8000  # blocks sampled per frame (evenly), which bounds the cost on 12 MP stills
HEADER_BYTES = 1 << 20  # a JPEG's tables come before its scan; EXIF thumbnails can take up to 64 KiB before them
BGR_LUMA = np.array([0.114, 0.587, 0.299])  # JFIF's Y from B, G, R (ITU-R BT.601)


def ijg_table(quality: int) -> np.ndarray:
    """The IJG (libjpeg ``jpeg_set_quality``) luminance table at ``quality`` 1..100, row-major."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((STANDARD_LUMA * scale + 50) / 100), 1, 255)


IJG_TABLES = np.stack([ijg_table(q) for q in range(1, 101)])  # (100, 64): row q-1 is quality q


def quality_from_table(table: Sequence[int]) -> tuple[int, bool] | None:
    """(IJG quality, exact) of a 64-entry luminance table (row-major); None when it is not one."""
    t = np.asarray(table, np.float64)
    if t.shape != (64,) or not np.all((t >= 1) & (t <= 65535)):
        return None
    same = np.flatnonzero(np.all(IJG_TABLES == t, axis=1))
    if same.size:
        return int(same[-1]) + 1, True
    err = np.sum(np.log(IJG_TABLES / t) ** 2, axis=1)  # another encoder's table: the nearest IJG one
    return int(np.argmin(err)) + 1, False


def quality_from_bytes(data: bytes) -> tuple[int, bool] | None:
    """(quality, exact) from a JPEG file's luminance quantisation table (Pillow reads only the header);
    None when ``data`` is not a readable JPEG or has no usable table."""
    from PIL import Image, UnidentifiedImageError

    from contracts.imageio import open_header

    if not data.startswith(b"\xff\xd8\xff"):
        return None
    try:
        with open_header(data) as im:
            tables = getattr(im, "quantization", None) or {}
            luma = tables.get(0)
            return quality_from_table(list(luma)) if luma is not None and len(luma) == 64 else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def quality_from_file(path: Path) -> int | None:
    """The IJG quality (or IJG-equivalent) of a JPEG file's luminance table; None when unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError:
        return None
    found = quality_from_bytes(head)
    return found[0] if found else None


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.sqrt(2 / 8) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    d[0] /= math.sqrt(2)
    return d


DCT8 = _dct_matrix()  # orthonormal: JPEG's FDCT (T.81 A.3.3) without the level shift


def lattice_step(coeffs: np.ndarray) -> int | None:
    """The quantiser step q (2..``MAX_STEP``) that the coefficients most likely sit on the multiples of; None if none.

    Each candidate is scored by the mean log-likelihood of the coefficients under a lattice of step q
    blurred by the decoder's rounding (a normal of std ``ROUNDING_STD``, with ``OUTLIERS`` of the
    mass spread uniformly, for clipped blocks), relative to no lattice: a divisor of the true step
    scores ``log 2`` less, a multiple or a near miss far less. Zeros sit on every lattice and are left out.
    """
    c = coeffs[np.abs(coeffs) >= 1.0]
    if c.size < MIN_COEFFS:
        return None
    best, best_score = None, 0.0
    for q in range(2, MAX_STEP + 1):
        r = c - q * np.round(c / q)  # |r| <= q / 2: the neighbouring lattice points add nothing at q >= 2
        dens = np.exp(-0.5 * (r / ROUNDING_STD) ** 2) * (q / (ROUNDING_STD * math.sqrt(2 * math.pi)))
        score = float(np.mean(np.log((1 - OUTLIERS) * dens + OUTLIERS)))
        if score > best_score:
            best, best_score = q, score
    return best if best_score * c.size >= MIN_EVIDENCE else None


def block_dct(bgr: np.ndarray) -> np.ndarray:
    """(n, 8, 8) DCT coefficients of the luma of up to ``MAX_BLOCKS`` 8x8 blocks on the frame's own grid."""
    h, w = (bgr.shape[0] // 8) * 8, (bgr.shape[1] // 8) * 8
    grid = bgr[:h, :w].reshape(h // 8, 8, w // 8, 8, 3)  # a view: only the blocks kept are converted
    step = max(1, math.ceil(math.sqrt((h // 8) * (w // 8) / MAX_BLOCKS)))  # every step-th block row and column
    kept = grid[::step, :, ::step].transpose(0, 2, 1, 3, 4).reshape(-1, 8, 8, 3)
    blocks = kept.astype(np.float32) @ BGR_LUMA.astype(np.float32) - 128.0
    d = DCT8.astype(np.float32)
    out: np.ndarray = d @ blocks @ d.T
    return out


def quality_from_pixels(bgr: np.ndarray) -> tuple[int, int] | None:
    """The range of IJG qualities whose table best explains the quantiser steps seen in a decoded frame.

    None when fewer than four of the ten lowest frequencies show a step of 2 or more (no JPEG trace on
    the frame's 8x8 grid, or a quality too high to tell from none: steps of 1).
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3 or min(bgr.shape[:2]) < 64:
        return None
    coeffs = block_dct(bgr)
    steps = {(u, v): lattice_step(coeffs[:, u, v]) for u, v in ZIGZAG_10}
    seen = {k: q for k, q in steps.items() if q is not None}
    if len(seen) < 4:
        return None
    idx = [u * 8 + v for u, v in seen]
    want = np.array(list(seen.values()), np.float64)
    score = np.sum(IJG_TABLES[:, idx] == want, axis=1)
    if score.max() < len(seen) / 2:
        return None
    best = np.flatnonzero(score == score.max()) + 1
    return int(best.min()), int(best.max())
