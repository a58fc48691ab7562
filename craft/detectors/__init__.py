"""Face detectors as models: MTCNN as a white-box torch source, CenterFace and YuNet prepared for onnxruntime.

- ``mtcnn``: the three networks and the differentiable cascade (Zhang et al. 2016);
- ``userdet``: a user's own torch face detector (``--source module:factory``): its protocol, checked at load;
- ``vanish``: MTCNN or a user's detector wrapped for the ε-bounded attacks of :mod:`craft.attacks` (faces vanish);
- ``onnxprep``: the target detectors' ONNX files made runnable by plain onnxruntime (capture runs them,
  :mod:`capture.faces`);
- ``photos``: photos with faces that installed packages ship;
- ``job``: a face batch crafted on MTCNN (truth boxes and the source's boxes recorded per item);
- ``facepatch``: the printable face sticker, placed by the face's box and optimised with EOT (Brown et al. 2017);
- ``run``: a face batch from a resolved craft config (the sticker and the vanishing attacks; CLI and Python API);
- ``patchbatch``: a face batch with the sticker (``craft --source mtcnn --attack patch``), printable as a card;
- ``measure``: the digital hiding measurement per photo (``python -m tools.face_hiding`` prints it with intervals).

The specs (names, weight files, thresholds) and the box arithmetic are torch-free, in
:mod:`contracts.detection`; docs/detectors.md is the user's page.
"""
