"""sweep: Kurakin et al. 2016, section 4: one artificial transform at a time.

- ``transforms``: the transforms, their strength grids, and one transform applied to one image;
- ``run``: ``run_sweep``, which classifies the transformed digital images and writes ``sweep.json``;
- ``faces``: the same transforms on a face batch with a face detector target, and the stability
  baseline (``±ε`` noise, resampling), into ``sweep-faces-<target>.json``;
- ``cli``: ``photoproof sweep``.

Torch-free; reads the batch and an ONNX model, writes ``BATCH/sweep.json`` (``sweep-faces-<target>.json``).
"""
