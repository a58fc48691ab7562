"""Torch-free contracts shared by every Photoproof stage: the whole batch contract.

The batch directory is the only contract between craft, printouts, capture, the
sweep and analysis (``docs/batch-format.md``, ``docs/architecture.md``). Every
stage reads and writes it through these modules:

- ``batchdir``: the names of the batch's files and folders, and the session-name rule;
- ``paths``: paths kept inside the batch, atomic writes, sha256;
- ``manifest``: ``batch.json`` (items, images, models, the source model's top-5);
- ``journal``: craft's append-only journal of finished items, folded into ``batch.json``;
- ``images``: the one reader of the batch's PNGs;
- ``imageio``: photos from outside (craft's inputs, ``capture --photos``) as 8-bit RGB: 16-bit and
  float images scaled, decompression bombs refused;
- ``layout``: ``layout.json`` (sheets, markers, tiles, calibration patches);
- ``patchcard``: the printed patch cards recorded in ``layout.json``;
- ``validate``: type and range checks of ``batch.json`` (and the journal's records) and ``layout.json``;
- ``capturedb``: the schema of ``captures/<session>.sqlite`` and its read-only opener;
- ``sweep``: the ``sweep.json`` schema, its writer and its version-checking reader;
- ``facesweep``: a face batch's sweep with one detector target (``sweep-faces-<target>.json``) and its stability
  baseline;
- ``facesticker``: where a face sticker item's sticker was placed (``params.patch``: box or landmarks), checked;
- ``preprocess``: a model's preprocessing spec;
- ``detection``: the face detectors' specs and weight files, detections (boxes, scores) and their
  JSON form, IoU, non-maximum suppression and matching (docs/detectors.md);
- ``detectorfile``: a user's own face detector's decoder spec (``my.detector.toml`` beside ``my.onnx``), checked;
- ``facetruth``: truth faces from a labels file (``craft --truth faces.json``), checked as hostile input;
- ``modelspec``: a foreign model's spec resolved once (flags > ``model.toml`` > metadata > defaults);
- ``labels``: label sets: label files, names resolved in a set, the batch-to-target class map;
- ``units``: ε in 0-255 pixel units and in the [0, 1] convention;
- ``profile``: the channel profile (TOML): its schema, reader and writer; the presets in ``profiles``;
- ``strip``: the protocol for measuring the calibration strip (capture) that calibrate relies on;
- ``calibration``: ``calibrations/<profile>.json``, what calibrate fitted (keys against the base, tone curves,
  residuals per strip patch, edge spread function), kept in the batch for the report;
- ``verdict``: the channel check's one verdict rule (live capture line, report, summary, API) and clustered intervals;
- ``framing``: camera pixels per printed millimetre when the sheet fills the frame (print and capture);
- ``frames``: the frame-source interface every camera, file and simulation implements;
- ``intervals``: the Wilson score interval (analysis and the sweep's tables);
- ``classes``: ImageNet-1k class names and label parsing;
- ``errors``: :class:`UserError`, the one-line error the CLI prints;
- ``lock``: the exclusive lock a writer holds (a capture session, a batch being crafted);
- ``signals``: SIGINT and SIGTERM, and the exit status they give.

What the command line prints, and the flags several commands share, live in ``console``.

Nothing here imports torch, so a capture station needs only numpy, OpenCV and
onnxruntime.
"""
