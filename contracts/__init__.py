"""Torch-free contracts shared by every Photoproof stage.

The batch directory is the contract between craft, printouts, capture and
analysis (see ``docs/batch-format.md``). This package holds the few pieces every
stage must agree on: safe paths and atomic writes, the ``batch.json`` manifest,
the ``layout.json`` sheet description, the capture database schema, the
preprocessing spec of each model, ImageNet class names and the channel profile.

Nothing here imports torch, so a capture station needs only numpy, OpenCV and
onnxruntime.
"""
