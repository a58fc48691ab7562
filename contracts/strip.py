"""The strip-measuring protocol: how capture measures the calibration strip, and what calibrate assumes of it.

:mod:`capture.sheets.strip` measures the printed calibration strip while capturing;
:mod:`channel.calibrate` fits a channel profile to the measurements it recorded
(the ``patches`` and ``blur`` tables of :mod:`contracts.capturedb`). Both follow
these constants, so a change here changes what both sides mean.
"""

from __future__ import annotations

import numpy as np

PATCH_EVERY = 5  # measure the strip on every 5th frame
INSET = 0.25  # leave this fraction of the patch side out on each side (blur and registration)
ESF_GAMMA = 2.2  # edges are fitted on (code / 255) ** 2.2, roughly linear light
EDGE_MM = 4.0  # the widest window on each side of an edge
MIN_EDGE_MM = 2.5  # an edge needs at least this much free room on both sides
END_MM = 1.0  # edge ends left out (corners)
CAPTION_MM = 7.0  # below each tile: its caption (printouts.geometry.CAPTION_MM is 6)
BT601 = np.array([0.299, 0.587, 0.114])  # JPEG's luma (ITU-R BT.601): its noise survives 4:2:0 chroma subsampling
