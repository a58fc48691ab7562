"""craft: adversarial images on a torch source model.

- ``config``: :class:`CraftConfig`, every option of ``photoproof craft``, declared once;
- ``options``: the machinery that turns those fields into command-line options;
- ``cli``: ``photoproof craft`` and ``photoproof models``;
- ``job``: the resumable crafting job (photos in, a batch directory out);
- ``outdir``: the batch directory it writes: its lock, the same-options check on resume, the journals folded;
- ``patchjob``: the adversarial patch's stage of the job (one universal patch, then its pasted items);
- ``distributed``: torchrun ranks: which mini-batches each crafts, barriers, ``LOCAL_RANK``'s device;
- ``images``: where the photos come from (packaged samples or a folder);
- ``zoo``: model names to a torch loader and a preprocessing spec;
- ``sources``: any source model by what ``--source`` names (zoo, ONNX, .pt2, TorchScript, factory, an ``nn.Module``);
- ``loaders``: the loaders of ``.pt2``, TorchScript and factory sources (nothing unpickled);
- ``onnxtorch``: an ONNX graph converted to torch (onnx2torch), checked against onnxruntime;
- ``fastgrad``: a copy of a zoo model tuned for input gradients;
- ``ensemble``: ensembles of source models;
- ``export``: a source model to ONNX with its spec and class names in the metadata;
- ``onnxmodel``: ``--model NAME`` or ``FILE.onnx`` as the ONNX file capture and sweep run (exported on demand);
- ``attacks``: the attack registry (one attack per file), input transforms, EOT, the universal patch.
- ``detectors``: face detectors: MTCNN in torch (a white-box source), the vanishing objective,
  the target detectors' ONNX preparation, photos with faces.

Importing this package, ``config``, ``options``, ``cli`` and ``onnxmodel`` is cheap and torch-free;
the sub-modules that need torch (``zoo``, ``attacks``, ``job``, ``patchjob``, ``export``, and the
channel's ``twin``) import it themselves. craft is the only room that imports
:mod:`channel.twin`.
"""
