"""Capture's edge spread function does not depend on how many pixels the sheet gives the edge's window.

calibrate's forward model fits and normalises its synthetic edge on the samples within ``ESF_WINDOW_PX`` of the edge;
capture must read a sharpened edge the same way however close the sheet is. Measured when written: the ESFs of one
edge at 3 and 8 px/mm differ by at most 0.004 of the step; normalised over the sheet's whole window (12 and 32 px a
side), as capture did before, by 0.029, which the assertion refuses.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from capture.sheets.strip import _LIN, Edge, edge_esf

ANGLE = math.radians(5.0)  # a slanted edge (ISO 12233)


def sharpened_edge(px_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A black-to-white edge at x = 20 mm of a 40 mm square, seen at ``px_per_mm`` and slanted 5 degrees, blurred by
    1 px and sharpened by an unsharp mask of 1.5 at 1.5 px in frame pixels: the frame (BGR) and its homography."""
    side = int(40 * px_per_mm)
    c, s = math.cos(ANGLE), math.sin(ANGLE)
    H = np.array([[px_per_mm * c, -px_per_mm * s, 0.1 * side], [px_per_mm * s, px_per_mm * c, 0.0], [0, 0, 1.0]])
    k = 4  # rendered at 4 x and averaged down: the pixels' aperture
    yy, xx = np.mgrid[0 : side * k, 0 : side * k].astype(np.float64)
    inv = np.linalg.inv(H)
    u = inv[0, 0] * (xx + 0.5) / k + inv[0, 1] * (yy + 0.5) / k + inv[0, 2]  # sheet x in mm
    lin = np.where(u < 20.0, 0.03, 0.8)
    lin = cv2.resize(lin, (side, side), interpolation=cv2.INTER_AREA)
    lin = cv2.GaussianBlur(lin, (0, 0), 1.0)
    enc = lin ** (1 / 2.2)
    enc = enc + 1.5 * (enc - cv2.GaussianBlur(enc, (0, 0), 1.5))
    img = np.round(255 * np.clip(enc, 0, 1)).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), H


def test_the_esf_of_a_sharpened_edge_is_the_same_close_up_and_from_afar() -> None:
    edge = Edge(np.array([20.0, 8.0]), np.array([20.0, 32.0]), np.array([1.0, 0.0]), 4.0, 4.0, "strip")
    esfs = []
    for ppm in (3.0, 8.0):  # windows of 12 and 32 px on each side of the edge
        frame, H = sharpened_edge(ppm)
        got = edge_esf(frame, H, edge, _LIN)
        assert got is not None and got[1] is not None
        esfs.append(got[1])
    a, b = esfs
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.sum() >= 20
    assert np.nanmax(a) > 1.05  # it overshoots: the mask shows
    assert np.abs(a[ok] - b[ok]).max() < 0.01, np.abs(a[ok] - b[ok]).max()
