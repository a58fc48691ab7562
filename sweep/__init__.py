"""sweep: Kurakin et al. 2016, section 4: one artificial transform at a time.

- ``run``: the transforms, their strength grids, and ``run_sweep``, which classifies the
  transformed digital images and writes ``sweep.json``;
- ``cli``: ``photoproof sweep``.

Torch-free; reads the batch and an ONNX model, writes ``BATCH/sweep.json``.
"""
