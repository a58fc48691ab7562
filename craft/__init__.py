"""craft: adversarial images on a torch source model.

- ``config``: :class:`CraftConfig`, every option of ``photoproof craft``, declared once;
- ``options``: the machinery that turns those fields into command-line options;
- ``cli``: ``photoproof craft`` and ``photoproof models``;
- ``job``: the resumable crafting job (photos in, a batch directory out);
- ``distributed``: torchrun ranks: which mini-batches each crafts, barriers, ``LOCAL_RANK``'s device;
- ``images``: where the photos come from (packaged samples or a folder);
- ``zoo``: model names to a torch loader and a preprocessing spec;
- ``fastgrad``: a copy of a zoo model tuned for input gradients;
- ``ensemble``: ensembles of source models;
- ``export``: a zoo model to ONNX with its spec in the metadata;
- ``attacks``: the attack registry (one attack per file), input transforms, EOT.

Importing this package, ``config``, ``options`` and ``cli`` is cheap and torch-free;
the sub-modules that need torch (``zoo``, ``attacks``, ``job``, ``export``, and the
channel's ``twin``) import it themselves. craft is the only room that imports
:mod:`channel.twin`.
"""
