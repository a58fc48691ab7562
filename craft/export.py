"""Export a source model to ONNX with its preprocessing spec and class names inside.

The ONNX graph takes the *normalised* input (``input``: ``N x 3 x S x S``
float32, or ``N x S x S x 3`` for a channels-last model) and returns ``logits``
(``N x classes``). Its ``metadata_props`` (keys in :mod:`contracts.modelspec`) hold:

- ``photoproof.model``: the model's name;
- ``photoproof.preprocess``: the :class:`~contracts.preprocess.PreprocessSpec` as JSON;
- ``photoproof.classes``: the class names as a JSON list;
- ``photoproof.weights_sha256``: the weights (or model file) it came from;

so that capture needs nothing but the ``.onnx`` file. Any source model exports
(a zoo name, a ``.pt2``, TorchScript or a factory), with the spec that
``--input-size``/``--mean``/... or its ``model.toml`` give it.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Callable

import onnx
import torch

from contracts.modelspec import onnx_metadata
from contracts.paths import atomic_write_bytes

log = logging.getLogger(__name__)

OPSET = 17


def export_source(sm: "SourceModel", out: Path, progress: Callable[[str], None] | None = None) -> Path:  # type: ignore[name-defined]  # noqa: F821
    """Write ``sm`` (a :class:`craft.sources.SourceModel`) to ``out`` atomically and return it.

    ``progress(stage)`` is called as each stage starts (trace, check, write).
    """
    from craft.sources import FixedBatch

    tick = progress or (lambda stage: None)
    net = sm.module.net.cpu()
    fixed = isinstance(net, FixedBatch)
    shape = sm.spec.input_shape(net.batch if fixed else 1)
    buf = io.BytesIO()
    tick("tracing the model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(*shape),),  # type: ignore[arg-type]
            buf,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes=None if fixed else {"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    tick("checking the graph")
    model = onnx.load_from_string(buf.getvalue())
    for k, v in onnx_metadata(sm.name, sm.arch, sm.spec, sm.classes, sm.sha256).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model)
    tick("writing")
    atomic_write_bytes(Path(out), model.SerializeToString())
    log.info("exported %s to %s", sm.name, out)
    return Path(out)


def export_onnx(name: str, out: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Export the zoo model (or any ``--source`` reference) ``name`` to ``out``."""
    from craft.sources import load_source

    return export_source(load_source(name), out, progress)
