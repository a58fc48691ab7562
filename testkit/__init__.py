"""testkit: synthetic inputs for the tests and the bench scripts; no product module imports it.

- ``batch``: :func:`~testkit.batch.write_batch`, a fake batch directory (``batch.json``
  and ``images/``) of random-texture images, with fabricated source-model top-5;
- ``scenes``: printed sheets and camera frames with known poses (a layout with ArUco
  markers at known mm positions, page rasters, pinhole projection into a frame), and
  tiny ONNX classifiers built with ``onnx`` (needs the ``craft`` extra);
- ``sim``: a small printed batch (``sheets.pdf`` drawn with reportlab, ``layout.json``)
  and a test card, for the simulator and the twin;
- ``capture``: the capture tests' scene (photos of a printed sheet and a tiny model), the
  capture CLI in a subprocess, a read-only look into its database, and a PNG decompression bomb;
- ``streams``: a local MJPEG-over-HTTP server that drops connections, for the stream tests;
- ``chromium``: headless Debian Chromium driven over the DevTools protocol, with a fake camera
  playing a y4m video (the phone-page tests);
- ``cli``: the real CLI in a subprocess, and the check of its one-line errors;
- ``foreign_isp``: a camera ISP unlike Photoproof's own, as a wrapper of any frame source (calibrate's closed loop);
- ``photos``: real sample photos written as a batch with whatever adversarial images a test makes (no crafting);
- ``known``: a channel profile with every parameter calibrate fits held fixed (the closed-loop calibrate tests);
- ``toys``: weight-free toy torch models for the attack tests (the only module here that imports torch).

Synthetic capture databases for the report are :func:`analysis.synthetic.write_capture_db`.
"""
