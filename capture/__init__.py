"""capture: find printed sheets in camera frames and record what an ONNX model sees.

Torch-free by design: a capture station needs numpy, OpenCV and onnxruntime only.

- ``sources`` / ``sources_live`` / ``mjpeg``: frame sources (photos, video; webcam, stream URLs);
- ``detect`` / ``scale`` / ``quality``: sheets from ArUco markers, tiles, printed-scale check, quality gates;
- ``classify``: the ONNX classifier and its execution provider;
- ``pipeline`` / ``record`` / ``session``: the classifier thread, the SQLite recorder, ``run_capture``;
- ``overlay``: the live window; ``cli``: ``photoproof capture``;
- ``simulate`` / ``channel``: the simulated print-and-photograph channel.
"""
