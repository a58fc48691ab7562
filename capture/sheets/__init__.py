"""Sheet finding: from a frame to tiles cut out at the model's input size.

- ``detect``: ArUco markers to a RANSAC homography per sheet, each sheet attributed to its print;
- ``crops``: a found sheet's tiles warped to the model's input size and judged (``SheetDetector.crop_tiles``);
- ``local``: each pair of a dense sheet located through its own markers;
- ``hits``: :class:`SheetHit` and :class:`TileCrop`, what ``detect`` yields;
- ``qr``: sheet identity from each sheet's QR code, followed between frames;
- ``scale``: the check that the sheet was printed at the size ``layout.json`` gives;
- ``quality``: tile metrics (sharpness, size, angle, clipping) and the quality gates;
- ``strip``: the calibration strip measured during capture, for ``photoproof calibrate``.
"""
