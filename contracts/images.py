"""The one reader of a batch's PNGs (``images/*.png``, written by craft).

Every stage that reads a crafted image (printouts, capture's digital top-5, the
sweep, craft itself when it resumes, the report's gallery) decodes it here, so all
agree on what a batch PNG is: a lossless 8-bit PNG, read without changing a pixel
value. Grey and palette images are expanded to RGB exactly; an alpha channel is
accepted only when it is fully opaque; anything else (16-bit, float, a
decompression bomb) is refused with one line. Photos from outside the batch
(craft's inputs, ``capture --photos``) are converted instead, by
:mod:`contracts.imageio`, whose list of decoder failures this reader shares.
Torch-free (Pillow and numpy).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from contracts.errors import UserError
from contracts.imageio import UNREADABLE
from contracts.manifest import ROLES, Batch, Item, Role
from contracts.paths import resolve_inside

_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA")


def _decode(source: Path | bytes) -> Image.Image:
    """The RGB image in ``source``; raises ``ValueError`` saying what is wrong with it."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            fmt = im.format
            im.load()
            img = im.copy()
    except UNREADABLE as e:  # corrupt, truncated, or a decompression bomb
        raise ValueError(f"not a readable PNG ({type(e).__name__}: {str(e)[:120]})") from None
    if fmt != "PNG":
        raise ValueError(f"is a {fmt} file, not a PNG")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        if img.convert("RGBA").getchannel("A").getextrema() != (255, 255):
            raise ValueError("has transparent pixels; save it as an opaque RGB PNG")
    if img.mode not in _MODES:
        raise ValueError(f"PNG mode {img.mode} is not 8-bit RGB or grey; save it as an 8-bit RGB PNG")
    return img if img.mode == "RGB" else img.convert("RGB")


def read_png(path: Path, data: bytes | None = None) -> Image.Image:
    """Decode the batch PNG at ``path`` (or its bytes ``data``, already read) into an RGB image.

    Raises:
        UserError: naming ``path`` when it is not a readable, opaque 8-bit PNG.
    """
    try:
        return _decode(data if data is not None else Path(path))
    except ValueError as e:
        raise UserError(f"{path}: {e}; re-run 'photoproof craft' to rewrite it") from None


def read_png_array(path: Path, data: bytes | None = None) -> np.ndarray:
    """:func:`read_png` as an ``H x W x 3`` uint8 RGB array."""
    return np.asarray(read_png(path, data), dtype=np.uint8).copy()


def read_item_image(batch_dir: Path, item: Item, role: Role) -> np.ndarray:
    """The ``role`` PNG of ``item`` as an ``H x W x 3`` uint8 RGB array.

    Raises:
        UserError: naming the file and the item when the path leaves the batch or the PNG cannot be read.
    """
    path = resolve_inside(Path(batch_dir), item.image(role).path)
    try:
        return np.asarray(_decode(path), dtype=np.uint8).copy()
    except ValueError as e:
        raise UserError(
            f"{path}: cannot read the {role} PNG of item {item.id} ({e}); re-run 'photoproof craft'"
        ) from None


def batch_images(batch_dir: Path, batch: Batch) -> Iterator[tuple[str, Role, np.ndarray]]:
    """``(item id, role, RGB array)`` of every item's clean and adversarial PNG, in manifest order, read lazily."""
    for it in batch.items:
        for role in ROLES:
            yield it.id, role, read_item_image(batch_dir, it, role)
