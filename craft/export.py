"""Export a zoo model to ONNX with its preprocessing spec and class names inside.

The ONNX graph takes the *normalised* input (``input``: ``N x 3 x S x S``
float32) and returns ``logits`` (``N x 1000``). Its ``metadata_props`` hold:

- ``photoproof.model``: the zoo name;
- ``photoproof.preprocess``: the :class:`~contracts.preprocess.PreprocessSpec` as JSON;
- ``photoproof.classes``: the 1000 class names as a JSON list;
- ``photoproof.weights_sha256``: the torch weights it came from;

so that capture needs nothing but the ``.onnx`` file.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import onnx
import torch

from contracts.classes import imagenet_names
from contracts.paths import atomic_write_bytes
from craft.zoo import get_entry, load_net, weights_sha256

log = logging.getLogger(__name__)

OPSET = 17


def export_onnx(name: str, out: Path) -> Path:
    """Write ``out`` (atomically) and return it."""
    entry = get_entry(name)
    net = load_net(name)
    s = entry.spec.input_size
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, s, s),),
            buf,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    meta = {
        "photoproof.model": name,
        "photoproof.arch": entry.arch,
        "photoproof.preprocess": entry.spec.to_json(),
        "photoproof.classes": json.dumps(list(imagenet_names())),
        "photoproof.weights_sha256": weights_sha256(name),
    }
    for k, v in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model)
    atomic_write_bytes(Path(out), model.SerializeToString())
    log.info("exported %s to %s", name, out)
    return Path(out)
