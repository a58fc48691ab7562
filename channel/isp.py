"""The camera's ISP after the sensor, its per-frame constants and its global curve (numpy, no OpenCV).

A phone or webcam renders every frame through an image signal processor: auto white
balance, auto levels (exposure and contrast stretch), a tone curve, a colour matrix,
and sharpening (Karaimer & Brown 2016, "A software platform for manipulating the camera
imaging pipeline", ECCV; Delbracio et al. 2021, "Mobile computational photography: a tour",
Annu. Rev. Vis. Sci. 7). Here the adaptive steps meter the printed sheet: its paper white
and ink black as they reach the sensor in that frame's light (the sheet fills most of a
frame framed as Photoproof asks), so that the simulated camera, :func:`channel.tile.apply_tile`
and the differentiable twin compute the same per-frame constants from the same
``ChannelParams``:

1. white balance: linear gains ``(W_g / W_c) ** awb_strength`` on the camera's decoded
   values, ``W`` the paper white after the camera's own white balance;
2. levels: ``v -> v + levels_strength * (l_b + (v - b) (l_w - l_b) / (w - b) - v)``, with
   ``b``, ``w`` the mean encoded ink black and paper white after step 1, and
   ``l_b, l_w`` = ``levels_black``, ``levels_white``; clipped to 0..1;
3. ``colour_matrix`` (3x3) on the linear values (decoded with the camera's gamma, clipped to 0..1,
   encoded again), before the tone curve as a camera's colour correction matrix is (Karaimer & Brown 2016);
4. a monotone piecewise-linear tone curve per channel through ``TONE_KNOTS`` knots;
5. an unsharp mask (in ``channel.model`` / the twin).

Steps 1-4 are 256-entry tables per channel on 8-bit codes with the matrix between them (:func:`isp_tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channel.colour import illuminant_rgb
from contracts.profile import TONE_KNOTS, ChannelProfile, Isp


@dataclass(frozen=True)
class IspFrame:
    """The per-frame constants of the ISP's adaptive steps."""

    gains: np.ndarray  # (3,) linear white-balance gains, RGB
    black: float  # encoded ink black after white balance (mean of channels)
    white: float  # encoded paper white after white balance


def _printed(profile: ChannelProfile, coverage: float) -> np.ndarray:
    pr = profile.printer
    g = pr.gamut_compression
    refl = np.asarray(pr.paper_white) * (1.0 - coverage) + np.asarray(pr.ink_black) * coverage
    luma = np.array([0.2126, 0.7152, 0.0722])
    out: np.ndarray = (1.0 - g) * refl + g * float(refl @ luma)
    return out


def frame_constants(
    profile: ChannelProfile,
    illuminance: float,
    gradient: float,
    exposure: float,
    colour_temperature_k: float,
    wb: np.ndarray,
) -> IspFrame:
    """What the ISP meters in one frame: the sheet's paper white and ink black (RGB), mean light.

    ``wb``: the camera's fixed white-balance gains for this frame (``channel.model.wb_gains``).
    """
    light = illuminance * (1.0 - 0.5 * gradient) * exposure * illuminant_rgb(colour_temperature_k)
    gamma = profile.camera.gamma
    white_lin = np.clip(_printed(profile, 0.0) * light * wb, 1e-6, 1.0)
    black_lin = np.clip(_printed(profile, 1.0) * light * wb, 1e-6, 1.0)
    isp = profile.isp
    gains = (white_lin[1] / white_lin) ** isp.awb_strength
    w = float(np.mean(np.clip(white_lin * gains, 0.0, 1.0) ** (1.0 / gamma)))
    b = float(np.mean(np.clip(black_lin * gains, 0.0, 1.0) ** (1.0 / gamma)))
    return IspFrame(gains, b, max(w, b + 1e-3))


def tone(v: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """The monotone piecewise-linear curve through ``knots`` (outputs at 0, 1/16, ..., 1) at ``v`` in 0..1."""
    out: np.ndarray = np.interp(np.clip(v, 0.0, 1.0), np.linspace(0.0, 1.0, TONE_KNOTS), np.asarray(knots))
    return out


def adapt(v: np.ndarray, isp: Isp, gamma: float, frame: IspFrame) -> np.ndarray:
    """Steps 1-2 (white balance, levels) on encoded RGB values ``v`` (..., 3) in 0..1."""
    lin = np.clip(v, 0.0, 1.0) ** gamma * frame.gains
    e = np.clip(lin, 0.0, 1.0) ** (1.0 / gamma)
    stretch = isp.levels_black + (e - frame.black) * (isp.levels_white - isp.levels_black) / (frame.white - frame.black)
    out: np.ndarray = np.clip(e + isp.levels_strength * (stretch - e), 0.0, 1.0)
    return out


def tone_curves(v: np.ndarray, isp: Isp) -> np.ndarray:
    """Step 4, the tone curve of each channel, on (..., 3) values in 0..1."""
    out: np.ndarray = np.stack([tone(v[..., c], k) for c, k in enumerate((isp.tone_r, isp.tone_g, isp.tone_b))], -1)
    return out


def _table(values: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.round(255.0 * np.clip(values, 0.0, 1.0)).astype(np.uint8)[None]
    return out


def isp_tables(isp: Isp, gamma: float, frame: IspFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Steps 1-4 as 8-bit tables (1, 256, 3), RGB: one table when the colour matrix is the identity,
    else the table of steps 1-2 and that of step 4, with the matrix (step 3) to apply between them."""
    v = np.repeat((np.arange(256) / 255.0)[:, None], 3, axis=1)
    if np.allclose(colour_matrix(isp), np.eye(3)):
        return _table(tone_curves(adapt(v, isp, gamma, frame), isp)), None
    return _table(adapt(v, isp, gamma, frame)), _table(tone_curves(v, isp))


def apply_matrix(e: np.ndarray, m: np.ndarray, gamma: float) -> np.ndarray:
    """Step 3 on encoded values ``e`` (..., 3) in 0..1: the matrix ``m`` in linear light."""
    lin = np.clip(np.clip(e, 0.0, 1.0) ** gamma @ m.T, 0.0, 1.0)
    out: np.ndarray = lin ** (1.0 / gamma)
    return out


def colour_matrix(isp: Isp) -> np.ndarray:
    """The 3x3 colour matrix (RGB rows)."""
    return np.asarray(isp.colour_matrix, dtype=np.float64).reshape(3, 3)
