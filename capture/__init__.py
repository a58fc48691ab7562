"""capture: find printed sheets in live frames and record what an ONNX model sees.

Torch-free by design: a capture station needs numpy, OpenCV and onnxruntime only.

- ``sources``: frame sources behind :mod:`contracts.frames` (``files``: photos and
  video; ``live``: webcams and stream URLs; ``mjpeg``: the bounded MJPEG reader;
  ``phone``: the HTTPS page a phone's browser streams from);
- ``sheets``: sheet finding (``detect``: ArUco markers to a homography per sheet and its print;
  ``crops``: the tiles cut out and judged; ``local``: a dense sheet's pairs through their own
  markers; ``hits``: what it yields; ``qr``: sheet identity from QR codes; ``scale``:
  the printed-scale check; ``quality``: tile metrics and gates; ``strip``: the
  calibration strip measured during capture); ``jpegquality``: the frames' JPEG quality (file tables, 8x8 DCT
  lattice), recorded with the strip for calibrate;
- ``faces``: the ONNX face detectors (CenterFace, YuNet): preprocessing, decoding, NMS;
  ``facetarget``: a face detector in the classifier's place in the capture loop (a face batch's target);
- ``classify``: the ONNX classifier and its execution provider; ``cachedir``: its private
  per-user cache folder (the TensorRT engine cache);
- ``digital``: the classifier on every batch PNG (the digital top-5; also the sweep's);
- ``stability``: the digital stability baseline (the clean PNGs through mild resampling, blur and JPEG);
- ``pipeline``: the classifier thread; ``record``: the SQLite recorder; ``sessionrow``: its session row (start, resume);
  ``recordopen``: its writer's lock and the one-line failures of opening and writing the database;
  ``session``: ``run_capture``, a session set up and closed; ``cameraloop``: its camera loop and live progress;
- ``stoprule``: when a run stops (``--frames``, ``--duration``, ``--per-tile``), one rule for every loop;
- ``feedback``: each frame's verdicts and gate reasons, for sources that show them (the phone page);
- ``coverage``: how far a session has got and what to show next (sheets not yet seen, tiles failing a gate);
- ``phones``: ``--phone``: one session per connected phone; ``phoneqr``: its page's URL as a QR code;
- ``preview``: ``--preview SOURCE``: detections and gate reasons, recording nothing;
- ``scene``: ``--scene``: the whole view classified (or its faces found), the printed patch card found in it;
  ``sighting``: a patch card seen in a frame; ``scene_view``: its live window (view square, patch
  outline, status line);
- ``overlay``: the live window; ``cli``: ``photoproof capture``'s flags; ``command``: what it does with them.

The simulated camera is a frame source too, but lives with the channel model in
:mod:`channel.simulate`.
"""
