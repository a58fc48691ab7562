"""An ONNX classifier as a torch module, for gradients (onnx2torch).

``onnx2torch`` (https://github.com/ENOT-AutoDL/onnx2torch) turns an ONNX graph
into a ``torch.fx.GraphModule`` of ordinary torch operations, so any ONNX
classifier becomes a white-box source. The conversion is checked: the converted
module's logits must match onnxruntime's on the packaged sample photos within
``TOLERANCE`` (relative to the largest logit), or the model is refused and the
largest difference is named.

onnx2torch imports ``torchvision`` at import time, for its NonMaxSuppression and
RoiAlign converters only. torchvision is not installed beside this CPU torch
(PyPI's build breaks it), so while onnx2torch is imported a stand-in module takes
its place; a graph with one of those two detection operators is refused with a
clear message. Classifiers do not use them.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contracts.errors import UserError
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

# Refuse a conversion whose logits differ from onnxruntime's by more than this, times max(1, max |logit|).
TOLERANCE = 1e-3
CHECK_PHOTOS = 8  # sample photos the conversion is checked on
_DETECTION_OPS = {"NonMaxSuppression", "RoiAlign"}
# onnx2torch's Slice indexes with a list, which torch warns about on every forward pass.
warnings.filterwarnings(
    "ignore", message="Using a non-tuple sequence for multidimensional indexing", category=UserWarning
)


def _import_onnx2torch() -> types.ModuleType:
    if importlib.util.find_spec("onnx2torch") is None:
        raise UserError(
            "an .onnx source needs the onnx2torch package: pip install --no-deps onnx2torch==1.5.15 (make demo does)"
        )
    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

        def _absent(*_a: object, **_k: object) -> None:
            raise UserError(
                "this ONNX graph uses a detection operator (NonMaxSuppression/RoiAlign) that needs torchvision; use a "
                "classifier"
            )

        ops.nms = ops.roi_align = ops.box_convert = _absent  # type: ignore[attr-defined]
        tv.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops
        try:
            import onnx2torch
        finally:  # the stand-in serves onnx2torch's import only
            sys.modules.pop("torchvision", None)
            sys.modules.pop("torchvision.ops", None)
        return onnx2torch
    import onnx2torch

    return onnx2torch


def convert_onnx(path: Path, where: str) -> nn.Module:
    """The ONNX graph at ``path`` as a frozen torch module in eval mode."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise UserError(
            f"{where}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    ops = {n.op_type for n in model.graph.node}
    if ops & _DETECTION_OPS:
        raise UserError(
            f"{where}: uses {', '.join(sorted(ops & _DETECTION_OPS))}, a detection operator; Photoproof attacks "
            "classifiers"
        )
    o2t = _import_onnx2torch()
    try:
        net = o2t.convert(model)
    except Exception as e:
        raise UserError(
            f"{where}: onnx2torch cannot convert it ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def check_conversion(path: Path, net: nn.Module, spec: PreprocessSpec, photos: list[np.ndarray], where: str) -> float:
    """Compare ``net`` with onnxruntime on ``photos`` (uint8 RGB at the spec's size); return the largest difference.

    Raises:
        UserError: when the difference exceeds ``TOLERANCE · max(1, max |logit|)``.
    """
    import onnxruntime as ort

    x = spec.normalize(np.stack(photos))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    refs, outs = [], []
    step = fixed or len(x)
    for i in range(0, len(x), step):
        part = x[i : i + step]
        n = len(part)
        if fixed and n < fixed:
            part = np.concatenate([part, np.zeros((fixed - n, *part.shape[1:]), part.dtype)])
        refs.append(sess.run(None, {inp.name: part})[0][:n])
        with torch.inference_mode():
            outs.append(net(torch.from_numpy(part)).float().numpy()[:n])
    ref, out = np.concatenate(refs), np.concatenate(outs)
    if ref.shape != out.shape:
        raise UserError(
            f"{where}: the converted model's output {list(out.shape)} differs from onnxruntime's {list(ref.shape)}; it "
            "is refused"
        )
    diff = float(np.abs(ref - out).max())
    bound = TOLERANCE * max(1.0, float(np.abs(ref).max()))
    if not np.isfinite(diff) or diff > bound:
        raise UserError(
            f"{where}: the torch conversion disagrees with onnxruntime by up to {diff:.3g} in the logits on {len(x)} "
            f"sample photos (allowed {bound:.3g}); it is refused as a source (use it as a capture target, or export "
            "your model to .pt2)"
        )
    log.info("%s: converted to torch; logits within %.2g of onnxruntime on %d photos", where, diff, len(x))
    return diff
