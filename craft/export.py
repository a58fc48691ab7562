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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
import torch

from contracts.modelspec import onnx_metadata
from contracts.paths import atomic_write_bytes

if TYPE_CHECKING:
    from craft.sources import SourceModel

log = logging.getLogger(__name__)

OPSET = 17


def export_source(sm: SourceModel, out: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Write ``sm`` (a :class:`craft.sources.SourceModel`) to ``out`` atomically and return it.

    ``progress(stage)`` is called as each stage starts (trace, check, write).
    """
    from craft.sources import FixedBatch

    tick = progress or (lambda stage: None)
    net = sm.module.net
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"{sm.name}: expected a normalising wrapper around a torch module, got {type(net).__name__}")
    net = net.cpu()
    # A torch.export program's sizes trace as constants: its ONNX graph gets a fixed batch of 1
    # (capture pads and splits batches for such graphs).
    fixed = isinstance(net, FixedBatch) or sm.kind == "pt2"
    batch = net.batch if isinstance(net, FixedBatch) else 1
    shape = tuple(int(v) for v in sm.spec.input_shape(batch))
    buf = io.BytesIO()
    tick("tracing the model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(*shape),),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter (dynamo=False) writes to a file object; the stubs name paths only
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
    _check_export(model, net, shape, 1 if fixed else 2, sm.name)
    tick("writing")
    atomic_write_bytes(Path(out), model.SerializeToString())
    log.info("exported %s to %s", sm.name, out)
    return Path(out)


def _check_export(
    model: onnx.ModelProto, net: torch.nn.Module, shape: tuple[int, ...], batches: int, name: str
) -> None:
    """The exported graph must give torch's logits (within 1e-3 x max(1, max |logit|)) on a batch of random inputs."""
    import numpy as np
    import onnxruntime as ort

    from contracts.errors import UserError

    n = int(shape[0]) * batches
    x = torch.randn(n, *[int(d) for d in shape[1:]], generator=torch.Generator().manual_seed(0))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        got = np.concatenate(
            [sess.run(None, {"input": x[i : i + int(shape[0])].numpy()})[0] for i in range(0, n, int(shape[0]))]
        )
    except Exception as e:
        raise UserError(
            f"{name}: the exported ONNX graph does not run on a batch of {shape[0]} ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160]})"
        ) from None
    with torch.inference_mode():
        want = net(x).float().numpy()
    diff = float(np.abs(got - want).max())
    if diff > 1e-3 * max(1.0, float(np.abs(want).max())):
        raise UserError(
            f"{name}: the exported ONNX graph disagrees with torch by up to {diff:.3g} in the logits; not written"
        )


def export_onnx(name: str, out: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Export the zoo model (or any ``--source`` reference) ``name`` to ``out``."""
    from craft.sources import load_source

    return export_source(load_source(name), out, progress)
