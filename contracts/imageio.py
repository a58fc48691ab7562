"""Photos from outside, as 8-bit RGB: high bit depths scaled properly, bombs and NaN refused.

Pillow's ``convert("RGB")`` clips 16-bit and 32-bit greyscale and float images
to 0..255, which turns most of them into blank white (or black) pictures that
would then be labelled and attacked. :func:`to_rgb8` scales them instead, and
refuses what cannot be scaled honestly. Pillow's decompression-bomb guard
(``Image.MAX_IMAGE_PIXELS``) stays on; :func:`open_rgb8` turns it into the same
one-line refusal as any other unreadable file.

This module reads photos from outside (craft's ``--images``, ``capture --photos``,
MJPEG frames); a batch's own PNGs are read strictly, never converted, by
:mod:`contracts.images`. A phone's HEIC/HEIF file (iPhones save them) is read by
pi-heif (libheif) when its name says so; its opener is never registered with
Pillow, so bytes from a stream or a page never reach libheif.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Everything that Pillow raises for a file it cannot, or will not, decode.
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError)
HEIF_SUFFIXES = (".heic", ".heif", ".hif")  # read by pi-heif, by name only


def _heif(path: Path, decode: bool = True) -> Image.Image | None:
    """A HEIC/HEIF photo through pi-heif (pillow-heif's decoder), upright by the file's own transforms (libheif
    applies them), HDR brought to 8 bits; ``decode=False`` reads and checks the container only (``None``).
    Pillow's pixel limit holds as for any photo, before a pixel is decoded."""
    import pi_heif

    try:
        heif = pi_heif.open_heif(path)
        w, h = heif.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and w * h > 2 * limit:
            raise Image.DecompressionBombError(f"{w}x{h} pixels exceeds the limit of {2 * limit} pixels")
        return heif.to_pillow() if decode else None
    except RuntimeError as e:  # libheif's decoder: a file that is not what its container says
        raise ValueError(str(e)) from None


def has_image_header(path: Path) -> bool:
    """Whether ``path`` starts as an image that :func:`open_rgb8` may read (the header only, no pixels decoded)."""
    try:
        if path.suffix.lower() in HEIF_SUFFIXES:
            _heif(path, decode=False)
        else:
            with Image.open(path):
                pass
    except UNREADABLE:
        return False
    return True


@contextmanager
def open_header(data: bytes) -> Iterator[Image.Image]:
    """Pillow's lazy open of ``data`` (the header: size, format, tables; no pixels decoded), for callers that bound
    the size themselves. Pillow's bomb warning (1 to 2 x ``MAX_IMAGE_PIXELS``) is left out: nothing is decoded
    here, and the caller refuses the size in its own words; above 2 x it still raises ``DecompressionBombError``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
    with im:
        yield im


def to_rgb8(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB; 16-bit and float greyscale are scaled, not clipped.

    Integer images whose values fit in 0..255 are kept as they are; values up to
    65535 are 16-bit and divided by 257 (65535 -> 255). Float images in 0..1 are
    multiplied by 255, float images in 0..255 kept, others scaled like 16-bit.

    Raises:
        ValueError: NaN or infinite pixels, negative values, or values beyond 16 bits.
    """
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float64)
        if a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"{im.mode} image with NaN or infinite pixels")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 65535:
            raise ValueError(
                f"{im.mode} image with values in {lo:g}..{hi:g}, outside 0..65535; convert it to 8-bit first"
            )
        if im.mode == "F" and hi <= 1.0:
            a = a * 255.0
        elif hi > 255 or im.mode.startswith("I;16"):
            a = a / 257.0
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def open_rgb8(path: Path) -> Image.Image:
    """Open a photo as 8-bit RGB, upright per its EXIF orientation.

    Raises:
        FileNotFoundError: no such file.
        One of :data:`UNREADABLE`: corrupt, not an image, a decompression bomb, or not convertible.
    """
    if path.suffix.lower() in HEIF_SUFFIXES and (heif := _heif(path)) is not None:
        return to_rgb8(heif)
    with Image.open(path) as im:
        im.load()
        return to_rgb8(ImageOps.exif_transpose(im))
