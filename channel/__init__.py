"""channel: the print-scene-camera model, from a PDF page to a camera frame.

One channel profile (:mod:`contracts.profile`, a TOML file) describes the printer,
the scene and the camera; every module here reads it.

- ``model``: the channel's parameters and the numpy/OpenCV stages before the camera (print, pose, light);
  ``camera``: the camera's stages (optics, sensor, ISP, JPEG); ``tile``: every stage on one image tile;
- ``isp``: the camera's ISP after the sensor (white balance, levels, colour matrix, tone curves), its per-frame
  constants, shared by the model and the twin;
- ``colour``: the colour science both channels share (sRGB, XYZ, luma, Planckian locus);
- ``resolution``: a tile photographed at N camera pixels and an angle (the gates' and the sweep's measurement);
- ``motion``: hand-held motion, the smooth drift of every channel parameter between frames;
- ``simulate``: the simulated camera, a frame source rendering the batch's sheets (``batchpages``: a printed
  batch's pages, checked and rendered when first shown, and its framing); ``scratch``: the per-thread
  buffers its render threads reuse from frame to frame; ``fastframe``: the frame path it takes (the unsharp mask
  only around the sheets, the desk's pre-sharpened noise bank); ``page``: a sheet's page rendered, printed into a
  pyramid and placed in the frame; ``views``: where a close-up camera points on a dense sheet, pair by pair;
  ``threads``: OpenCV on one thread while the simulated camera's render threads fill the cores;
  ``supersample``: the simulated camera rendered at k x its frame size and averaged down, so that its lens blurs
  before the sensor samples (calibrate's edge-fit test and bench);
- ``calibrate``: fits a profile to the calibration strip measured in a capture and writes it;
  ``calibrate_fit``: the printer's tone and colour and the camera's noise fitted to the strip's patches;
  ``calibrate_isp``: what it fits beyond the printer (the camera's ISP) and its checks of the strip;
  ``calibrate_edges``: blur and sharpening from the edges' spread functions (ISO 12233 slanted edge);
  ``calibrate_framing``: the sheet fill and tilt under which the simulated camera frames tiles as the session saw
  them; ``calibrate_jpeg``: the JPEG quality capture read or estimated; ``calibrate_notes``: the comment beside
  each key (measured, estimated or from the base); ``calibrate_record``: what the fit is written into the batch as,
  for the report;
  ``cli``: ``photoproof calibrate``; ``search``: the one-dimensional searches the fits use;
- ``threads``: OpenCV's own threads while the simulated camera renders frames on its thread pool;
- ``twin``: the differentiable torch/kornia twin that EOT samples from;
- ``controls``: the perturbation budget spent with no gradient (``±ε`` random signs), the attacks' control.

Only ``twin`` imports torch, and only ``craft`` imports ``twin``: the rest is
torch-free, so a capture station can simulate and calibrate.
"""
