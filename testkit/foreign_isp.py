"""A camera ISP unlike Photoproof's own (``channel.isp``), for closed-loop checks of ``calibrate``.

Auto levels from each frame's own luma percentiles (1 % and 99 % to 0.03 and 0.95), a logistic
contrast curve per channel, saturation x1.2 in linear light, sharpening by a 4-neighbour
Laplacian, and JPEG at quality 90 again: every step differs in form from the project's ISP
(levels metered on the sheet, piecewise-linear curves, a matrix, an unsharp mask).
"""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from contracts.frames import Frame, FrameSource, MappedSource

BGR_LUMA = np.array([0.114, 0.587, 0.299], np.float32)


def foreign_isp(bgr: np.ndarray, sharpen: float = 0.25) -> np.ndarray:
    """The ISP on one decoded BGR frame; returns the frame after JPEG at quality 90.

    ``sharpen``: the weight of the Laplacian (0.25: an unsharp mask of amount 1 against the 4-neighbour mean).
    """
    img = bgr.astype(np.float32) / 255.0
    y = img @ BGR_LUMA
    lo, hi = np.percentile(y[::4, ::4], (1.0, 99.0))
    img = np.clip((img - lo) / max(float(hi - lo), 1e-3) * 0.92 + 0.03, 0.0, 1.0)
    s = 1.0 / (1.0 + np.exp(-6.0 * (img - 0.5)))
    s0, s1 = 1.0 / (1.0 + math.exp(3.0)), 1.0 / (1.0 + math.exp(-3.0))
    img = (s - s0) / (s1 - s0)  # logistic contrast per channel, 0 -> 0 and 1 -> 1
    lin = img**2.2
    lum = lin @ np.array([0.0722, 0.7152, 0.2126], np.float32)
    lin = np.clip(lum[..., None] + 1.2 * (lin - lum[..., None]), 0.0, 1.0)  # saturation in linear light
    out = (lin ** (1 / 2.2) * 255.0).astype(np.float32)
    if sharpen:
        out = out - sharpen * cv2.Laplacian(out, cv2.CV_32F, ksize=1)  # sharpening
    enc = np.clip(np.round(out), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", enc, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if dec is None:
        raise RuntimeError("JPEG decoding failed")
    return np.asarray(dec)


class ForeignCamera(MappedSource):
    """Any frame source (the simulated camera) with :func:`foreign_isp` on every frame."""

    def __init__(self, inner: FrameSource, sharpen: float = 0.25) -> None:
        super().__init__(inner, f"foreign-isp:{inner.description}")
        self.sharpen = sharpen

    def map(self, frame: Frame) -> Frame:
        return replace(frame, image=foreign_isp(frame.image, self.sharpen))
