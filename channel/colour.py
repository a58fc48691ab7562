"""Colour science shared by the numpy channel and its torch twin: constants once, numpy forms here.

- sRGB transfer function and XYZ -> linear sRGB matrix (IEC 61966-2-1:1999);
- Rec. 709 / sRGB luminance weights (ITU-R BT.709);
- the Planckian locus in CIE 1931 xy, cubic approximation of Kim et al. (2002),
  US patent 7,024,034, valid 1667-25000 K.

:mod:`channel.model` uses the numpy functions; :mod:`channel.twin` turns the same
constants into tensors, so the two channels cannot drift apart. Torch-free.
"""

from __future__ import annotations

import numpy as np

XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 / sRGB luminance weights

# sRGB transfer function: linear below the threshold, a 2.4 power above it.
SRGB_DECODE_THRESHOLD = 0.04045  # encoded value
SRGB_ENCODE_THRESHOLD = 0.0031308  # linear value
SRGB_SLOPE = 12.92
SRGB_OFFSET = 0.055
SRGB_SCALE = 1.055  # 1 + SRGB_OFFSET
SRGB_GAMMA = 2.4

# Planckian locus (Kim et al. 2002): x = a/T^3 + b/T^2 + c/T + d, then y = a x^3 + b x^2 + c x + d.
CCT_RANGE_K = (1667.0, 25000.0)
PLANCK_X_LOW = (-0.2661239e9, -0.2343589e6, 0.8776956e3, 0.179910)  # 1667-4000 K
PLANCK_X_HIGH = (-3.0258469e9, 2.1070379e6, 0.2226347e3, 0.240390)  # 4000-25000 K
PLANCK_Y_LOW = (-1.1063814, -1.34811020, 2.18555832, -0.20219683)  # 1667-2222 K
PLANCK_Y_MID = (-0.9549476, -1.37418593, 2.09137015, -0.16748867)  # 2222-4000 K
PLANCK_Y_HIGH = (3.0817580, -5.87338670, 3.75112997, -0.37001483)  # 4000-25000 K
PLANCK_Y_SPLIT_K = 2222.0
PLANCK_SPLIT_K = 4000.0


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded 0..1 to linear 0..1 (IEC 61966-2-1)."""
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= SRGB_DECODE_THRESHOLD, v / SRGB_SLOPE, ((v + SRGB_OFFSET) / SRGB_SCALE) ** SRGB_GAMMA)


def srgb_encode(lin: np.ndarray) -> np.ndarray:
    """Linear 0..1 to sRGB-encoded 0..1 (IEC 61966-2-1), the inverse of :func:`srgb_decode`."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(
        lin <= SRGB_ENCODE_THRESHOLD, SRGB_SLOPE * lin, SRGB_SCALE * np.power(lin, 1.0 / SRGB_GAMMA) - SRGB_OFFSET
    )


def planck_xy(cct_k: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of the Planckian locus, cubic approximation of Kim et al. (2002), 1667-25000 K."""
    t = float(np.clip(cct_k, *CCT_RANGE_K))
    a, b, c, d = PLANCK_X_LOW if t <= PLANCK_SPLIT_K else PLANCK_X_HIGH
    x = a / t**3 + b / t**2 + c / t + d
    a, b, c, d = PLANCK_Y_LOW if t <= PLANCK_Y_SPLIT_K else PLANCK_Y_MID if t <= PLANCK_SPLIT_K else PLANCK_Y_HIGH
    y = a * x**3 + b * x**2 + c * x + d
    return x, y


def illuminant_rgb(cct_k: float) -> np.ndarray:
    """Linear sRGB colour of a light of correlated colour temperature ``cct_k``, luminance 1."""
    x, y = planck_xy(cct_k)
    out: np.ndarray = XYZ_TO_SRGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])
    return out
