"""The whole channel on one image tile (:func:`apply_tile`): the stages of ``channel.model`` and
``channel.camera`` in order, so that the differentiable twin (``channel.twin``) can be checked against them with the
same sampled :class:`channel.model.ChannelParams`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from channel.camera import apply_isp, apply_jpeg, apply_optics, apply_sensor, sensor_curve
from channel.model import (
    STAGES,
    ChannelParams,
    illuminant_rgb,
    light_field,
    print_page,
    tile_homography,
    wb_gains,
)
from contracts.profile import ChannelProfile


# ----------------------------------------------------------------------------- one tile
def apply_tile(
    tile: np.ndarray, params: ChannelParams, profile: ChannelProfile, stages: Sequence[str] = STAGES
) -> np.ndarray:
    """Run the channel on one RGB tile (S, S, 3; uint8 or floats 0..255) and return float32 0..255 RGB.

    Stages left out of ``stages`` are identities; without ``sensor`` the linear signal is
    returned times 255. Noise comes from ``params.noise_seed``. The twin's ``apply`` follows
    the same steps (``channel.twin``).
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"stages: unknown {sorted(unknown)}; expected some of {STAGES}")
    x: np.ndarray = np.asarray(tile, dtype=np.float64) / 255.0
    size = x.shape[0]
    white = np.ones(3)
    if "print" in stages:
        x = print_page(np.clip(np.round(x * 255), 0, 255).astype(np.uint8), profile.printer)
        white = print_page(np.full((1, 1, 3), 255, np.uint8), profile.printer)[0, 0]
    x = x.astype(np.float32)
    if "pose" in stages:
        x = cv2.warpPerspective(
            x,
            tile_homography(params, size, profile),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=tuple(float(w) for w in white),
        )
    if "light" in stages:
        uv = (np.arange(size, dtype=np.float64) + 0.5) / size
        gain, glare = light_field(params, uv[None, :], uv[:, None])
        colour = params.exposure * illuminant_rgb(params.colour_temperature_k)
        x = x * gain[..., None] + (0.0 if glare is None else glare[..., None])
        x = (x * colour).astype(np.float32)
    if "optics" in stages:
        x = apply_optics(x, params)
    if "sensor" in stages:
        noise = np.random.default_rng(params.noise_seed).standard_normal(x.shape, dtype=np.float32)
        x = apply_sensor(x, sensor_curve(params, profile.camera, wb_gains(profile, params)), noise)
    else:
        x = np.clip(x * 255.0, 0, 255)
    if "isp" in stages:
        x = apply_isp(np.round(np.clip(x, 0, 255)).astype(np.uint8), profile, params)
    if "jpeg" in stages:
        x = apply_jpeg(np.round(x).astype(np.uint8), params.jpeg_quality, bgr=False)[0]
    return np.asarray(x, dtype=np.float32)
