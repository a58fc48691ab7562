"""The sweep's transforms (Kurakin, Goodfellow & Bengio 2016, section 4, and the channel's pose and tone),
one at a time on one image: their strength grids (:data:`TRANSFORMS`) and :func:`apply_transform`. Used by
the classifier sweep (:mod:`sweep.run`) and the face sweep (:mod:`sweep.faces`). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image

from channel import camera
from channel import model as ch
from channel.colour import srgb_encode
from channel.resolution import photograph_tile
from contracts.errors import UserError
from contracts.profile import ChannelProfile, Printer

_WHITE_PRINTER = Printer(paper_white=(1.0, 1.0, 1.0), ink_black=(0.0, 0.0, 0.0), gamut_compression=0.0, dot_gain=0.0)
CAMERA_BLUR_PX = 0.6  # the camera blur of the resolution and angle transforms (as bench/gates.py)
_TILE_PROFILE = ChannelProfile(name="sweep")  # only its sheet_fill mid-range is used (tile scale 1)


@dataclass(frozen=True)
class Transform:
    """One transform: its strength grid (``grid(steps)``, identity first or in the middle) and unit."""

    name: str
    unit: str
    description: str
    grid: Callable[[int], list[float]]


def _one_sided(start: float, stop: float, decimals: int = 3) -> Callable[[int], list[float]]:
    return lambda n: [round(float(v), decimals) for v in np.linspace(start, stop, max(2, n))]


def _two_sided(centre: float, half: float) -> Callable[[int], list[float]]:
    """``steps - 1`` strengths on each side of the identity ``centre`` (``2 * steps - 1`` in all)."""
    return lambda n: [round(float(v), 3) for v in np.linspace(centre - half, centre + half, 2 * max(2, n) - 1)]


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform(
            "brightness",
            "additive δ, 0-255 pixel units",
            "X + δ, clipped to 0..255 (Kurakin et al. 2016, sec. 4)",
            _two_sided(0.0, 48.0),
        ),
        Transform(
            "contrast",
            "factor μ",
            "127.5 + μ (X - 127.5), clipped: contrast about mid-grey (Kurakin et al. scale X by μ)",
            _two_sided(1.0, 0.6),
        ),
        Transform(
            "blur",
            "Gaussian σ, PNG pixels",
            "channel.camera.apply_optics: Gaussian defocus, kernel 2 ceil(3σ) + 1",
            _one_sided(0.0, 3.0),
        ),
        Transform(
            "noise",
            "Gaussian σ, 0-255 pixel units",
            "X + σ z, z ~ N(0, 1) per pixel and channel from --seed (the same z for every σ and both roles of an item)",
            _one_sided(0.0, 24.0),
        ),
        Transform(
            "jpeg",
            "libjpeg quality",
            "channel.camera.apply_jpeg: IJG quality, 4:2:0 (quality 100 is not lossless)",
            _one_sided(100.0, 10.0, 0),
        ),
        Transform(
            "perspective",
            "tilt, degrees out of plane",
            "channel.model.tile_homography: the tile tilted about a random in-plane axis (from --seed), "
            "seen at 10°, area at the centre kept; white outside",
            _one_sided(0.0, 60.0, 1),
        ),
        Transform(
            "resolution",
            "tile side / model input size",
            "channel.resolution.photograph_tile: the tile seen head-on at strength x the model's input size camera "
            f"pixels, camera blur sigma {CAMERA_BLUR_PX} px, rectified back as capture does",
            _one_sided(2.0, 0.25),
        ),
        Transform(
            "angle",
            "viewing angle, degrees off the sheet's normal",
            "channel.resolution.photograph_tile: a tile of the model's input size in camera pixels (head-on), seen at "
            f"this angle about a random in-plane axis (from --seed), camera blur sigma {CAMERA_BLUR_PX} px, rectified "
            "back",
            _one_sided(0.0, 75.0, 1),
        ),
        Transform(
            "tone",
            "printer tone_gamma",
            "channel.model.print_page with tone_gamma, no dot gain, ideal paper and ink, then sRGB-encoded back",
            _one_sided(1.0, 2.0),
        ),
        Transform(
            "dotgain",
            "printer dot_gain (TVI at 50 %)",
            "channel.model.print_page with dot_gain, tone_gamma 1, ideal paper and ink, then sRGB-encoded back",
            _one_sided(0.0, 0.3),
        ),
    )
}
DEFAULT_TRANSFORMS = ("brightness", "contrast", "blur", "noise", "jpeg", "perspective", "tone", "resolution", "angle")
RESAMPLED = ("resolution", "angle")  # applied at the camera's pixel grid, so classified at the model's input size


def check_transforms(transforms: list[str] | None) -> list[str]:
    """Validate ``--transforms``; ``None`` or empty gives the defaults."""
    names = [t.strip().lower() for t in (transforms or []) if t.strip()] or list(DEFAULT_TRANSFORMS)
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise UserError(f"--transforms: unknown transform(s) {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}")
    return list(dict.fromkeys(names))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _neutral_params(**kw: Any) -> ch.ChannelParams:
    """Channel parameters that do nothing, with ``kw`` replaced."""
    lo, hi = _TILE_PROFILE.scene.sheet_fill
    base = {f: 0.0 for f in ch.UNIT_FIELDS} | {
        "sheet_fill": 0.5 * (lo + hi),
        "illuminance": 1.0,
        "exposure": 1.0,
        "colour_temperature_k": 6500.0,
        "jpeg_quality": 100,
    }
    return ch.ChannelParams(**{**base, **kw}, noise_seed=0)


def perspective_matrix(strength: float, axis_deg: float, size: int) -> np.ndarray:
    """The homography of ``perspective`` at ``strength`` (tilt in degrees) about ``axis_deg`` on a ``size`` image."""
    return ch.tile_homography(_neutral_params(tilt_deg=strength, tilt_axis_deg=axis_deg), size, _TILE_PROFILE)


def apply_transform(
    name: str,
    strength: float,
    img: np.ndarray,
    z: np.ndarray | None = None,
    axis_deg: float = 0.0,
    model_px: int | None = None,
) -> np.ndarray:
    """Apply transform ``name`` at ``strength`` to one RGB uint8 image; returns RGB uint8.

    ``z`` is the standard normal field of ``noise``; ``axis_deg`` the tilt axis of ``perspective``
    and ``angle``; ``model_px`` the model's input size, which ``resolution`` and ``angle`` measure
    tiles in (their output is at that size, as capture's crop).
    """
    if name in RESAMPLED:
        size = int(model_px or img.shape[0])
        square = (
            img
            if img.shape[0] == img.shape[1]
            else np.asarray(Image.fromarray(img).resize((img.shape[0], img.shape[0])))
        )
        if name == "resolution":
            return photograph_tile(square, strength * size, 0.0, CAMERA_BLUR_PX, out_size=size)
        return photograph_tile(
            square, size, min(float(strength), 88.0), CAMERA_BLUR_PX, axis_deg=axis_deg, out_size=size
        )
    x = img.astype(np.float32)
    if name == "brightness":
        return _u8(x + strength)
    if name == "contrast":
        return _u8(127.5 + strength * (x - 127.5))
    if name == "blur":
        return _u8(camera.apply_optics(x, _neutral_params(defocus_sigma_px=strength))) if strength > 0 else img
    if name == "noise":
        if z is None:
            raise ValueError("noise needs z")
        return _u8(x + strength * z)
    if name == "jpeg":
        return camera.apply_jpeg(img, int(round(strength)), bgr=False)[0]
    if name == "perspective":
        size = img.shape[0]
        H = perspective_matrix(strength, axis_deg, size)
        return cv2.warpPerspective(
            img,
            H,
            (img.shape[1], size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(255, 255, 255),
        )
    if name in ("tone", "dotgain"):
        printer = (
            replace(_WHITE_PRINTER, tone_gamma=float(strength))
            if name == "tone"
            else replace(_WHITE_PRINTER, dot_gain=float(strength))
        )
        return _u8(255.0 * srgb_encode(ch.print_page(img, printer)))
    raise UserError(f"--transforms: unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")
