"""The printouts stage: lay a batch out on printable sheets.

``printouts.sheets.print_batch(batch_dir, paper, tile_mm, layout, cover)``
writes ``BATCH/sheets.pdf`` and ``BATCH/layout.json``. Torch-free.

- ``plan``: check the batch's images and plan the sheets (the ``Layout``, before drawing);
- ``sheets``: draw the planned sheets into ``sheets.pdf`` and save ``layout.json``;
- ``geometry``: paper sizes and where things go on a classic sheet, in millimetres;
- ``blocks``: a dense sheet's grid, every pair with a marker at each corner; ``denseplan``: its ``Layout``;
- ``page``: a reportlab canvas addressed in millimetres;
- ``markers``: ArUco markers, each batch's block of ids;
- ``qr``: the QR code naming each sheet;
- ``calibration``: the calibration strip and the scale ruler;
- ``camera``: ``print --frame-size``: tile size and paper orientation for a camera frame and a model;
- ``cover``: the cover page;
- ``patchcard``: each adversarial patch alone on a card at a stated size, with its own markers;
- ``cli``: ``photoproof print``.
"""
