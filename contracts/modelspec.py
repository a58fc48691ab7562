"""A model's preprocessing, resolved once: ONNX metadata keys, flags, sidecar TOML.

Every stage that feeds a model (craft on the torch side; capture and sweep in
onnxruntime) resolves its :class:`~contracts.preprocess.PreprocessSpec` here,
with one explicit precedence, as timm's ``resolve_data_config`` does
(``timm/data/config.py``): for each field,

1. the flags (``--input-size``, ``--mean``, ``--std``, ``--scale``, ``--resize``,
   ``--crop``, ``--channel-order``), then
2. a sidecar ``model.toml`` beside the model file, then
3. the model's own metadata (``photoproof.preprocess`` in an ONNX file that
   ``photoproof models export`` wrote, or a timm model's ``pretrained_cfg``), then
4. defaults inferred from the model's input shape: its side, its layout (NCHW
   or NHWC), the ImageNet mean and std, RGB, bilinear resizing, centre crop.

The input shape has the last word on layout and size: a spec whose size
disagrees with a fixed input side is refused.

Torch-free: capture stations import this module.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.errors import UserError
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

# Keys of the ONNX ``metadata_props`` written by ``photoproof models export`` and read by capture and craft.
META_MODEL = "photoproof.model"
META_ARCH = "photoproof.arch"
META_SPEC = "photoproof.preprocess"
META_CLASSES = "photoproof.classes"
META_WEIGHTS_SHA256 = "photoproof.weights_sha256"

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 0.485, 0.456, 0.406 in 0..255 units
IMAGENET_STD = (58.395, 57.12, 57.375)  # 0.229, 0.224, 0.225
SPEC_FIELDS = ("input_size", "mean", "std", "resize", "crop", "crop_pct", "channel_order")
SIDECAR_KEYS = (*SPEC_FIELDS, "scale", "labels")


def _triple(values: Sequence[float] | None, flag: str) -> tuple[float, float, float] | None:
    if values is None:
        return None
    try:
        v = [float(x) for x in values]
    except (TypeError, ValueError):
        raise UserError(f"{flag}: expected numbers, got {values!r}") from None
    if len(v) == 1:
        v = v * 3
    if len(v) != 3:
        raise UserError(f"{flag}: expected 1 or 3 numbers, got {len(v)}")
    if not all(math.isfinite(x) for x in v):
        raise UserError(f"{flag}: expected finite numbers, got {', '.join(f'{x:g}' for x in v)}")
    return (v[0], v[1], v[2])


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    """``"0.485,0.456,0.406"`` -> floats; a bad element is a one-line error naming ``flag``."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected numbers separated by commas, e.g. 0.485,0.456,0.406") from None


def parse_crop(text: str | float | None, flag: str = "--crop") -> dict[str, Any]:
    """``center``, ``squash``, or a crop fraction such as ``0.875`` (centre crop of that part, timm's crop_pct)."""
    if text is None:
        return {}
    t = str(text).strip().lower()
    if t in ("center", "centre"):
        return {"crop": "center", "crop_pct": 1.0}
    if t == "squash":
        return {"crop": "squash", "crop_pct": 1.0}
    try:
        pct = float(t)
    except ValueError:
        raise UserError(
            f"{flag} {text!r}: expected center, squash or a crop fraction in (0, 1] such as 0.875"
        ) from None
    if not (0.05 <= pct <= 1.0):
        raise UserError(f"{flag} {text!r}: a crop fraction must be in 0.05..1")
    return {"crop": "center", "crop_pct": pct}


def spec_overrides(
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    scale: float | None = None,
    channel_order: str | None = None,
    resize: str | None = None,
    crop: str | float | None = None,
    where: str = "",
) -> dict[str, Any]:
    """Spec fields from flags (only those given), checked and in the spec's units.

    ``mean``/``std`` are in 0..255 pixel units, or in 0..1 units when every value
    is at most 1 (torchvision's 0.485,0.456,0.406 / 0.229,0.224,0.225). ``scale``
    is a divisor: ``--scale 255`` feeds pixels/255, ``--scale 1`` raw 0..255.
    ``where`` prefixes the flag names in errors (e.g. a sidecar file's name).
    """
    pre = f"{where}: " if where else ""
    m, s = _triple(mean, f"{pre}--mean"), _triple(std, f"{pre}--std")
    if s is not None and any(v <= 0 for v in s):
        raise UserError(f"{pre}--std {', '.join(f'{v:g}' for v in s)}: every value must be > 0")
    if scale is not None:
        if mean is not None or std is not None:
            raise UserError(f"{pre}--scale: give either --scale or --mean/--std, not both")
        if not math.isfinite(float(scale)) or float(scale) <= 0:
            raise UserError(f"{pre}--scale: must be > 0, got {scale}")
        m, s = (0.0, 0.0, 0.0), (float(scale),) * 3
    elif (m is None) != (s is None):
        raise UserError(f"{pre}--mean and --std go together (or use --scale)")
    elif m is not None and s is not None and max(m) <= 1 and max(s) <= 1:
        m = (255.0 * m[0], 255.0 * m[1], 255.0 * m[2])
        s = (255.0 * s[0], 255.0 * s[1], 255.0 * s[2])
    out: dict[str, Any] = {}
    if input_size is not None:
        if not (isinstance(input_size, int) and 8 <= input_size <= 4096):
            raise UserError(f"{pre}--input-size {input_size!r}: expected an integer in 8..4096")
        out["input_size"] = int(input_size)
    if m is not None:
        if s is not None and any(v <= 0 for v in s):
            raise UserError(f"{pre}--std {', '.join(f'{v:g}' for v in s)}: every value must be > 0")
        out["mean"], out["std"] = m, s
    if channel_order is not None:
        if channel_order.upper() not in ("RGB", "BGR"):
            raise UserError(f"{pre}--channel-order: RGB or BGR, got {channel_order!r}")
        out["channel_order"] = channel_order.upper()
    if resize is not None:
        if resize not in ("bicubic", "bilinear", "nearest", "area"):
            raise UserError(f"{pre}--resize {resize!r}: choose bicubic, bilinear, nearest or area")
        out["resize"] = resize
    out.update(parse_crop(crop, f"{pre}--crop"))
    return out


@dataclasses.dataclass(frozen=True)
class Sidecar:
    """A ``model.toml``: spec fields and a labels file (relative to the TOML's folder)."""

    path: Path
    overrides: dict[str, Any]
    labels: Path | None


def sidecar_path(model_file: Path) -> Path | None:
    """``<stem>.toml`` beside the model file, else ``model.toml`` in its folder, else ``None``."""
    for cand in (model_file.with_suffix(".toml"), model_file.parent / "model.toml"):
        if cand.is_file():
            return cand
    return None


def read_sidecar(path: Path) -> Sidecar:
    """Read a ``model.toml``::

        input_size = 224
        mean = [0.485, 0.456, 0.406]     # or 0..255 units; or scale = 255
        std = [0.229, 0.224, 0.225]
        resize = "bicubic"
        crop = 0.875                     # center, squash or a fraction
        channel_order = "RGB"
        labels = "classes.txt"           # one class name per line

    Raises:
        UserError: naming the file and the key when a value is wrong or unknown.
    """
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"{path}: not a readable TOML file ({e})") from None
    unknown = sorted(set(d) - set(SIDECAR_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(SIDECAR_KEYS)}")
    crop = d.get("crop")
    if "crop_pct" in d:
        crop = d["crop_pct"] if crop in (None, "center") else crop
    where = str(path)
    ov = spec_overrides(
        d.get("input_size"),
        d.get("mean"),
        d.get("std"),
        d.get("scale"),
        d.get("channel_order"),
        d.get("resize"),
        crop,
        where=where,
    )
    labels = None
    if d.get("labels") is not None:
        if not isinstance(d["labels"], str):
            raise UserError(f"{path}: labels must be a file name (one class name per line)")
        folder = path.parent.resolve()
        labels = (folder / d["labels"]).resolve()
        if folder not in labels.parents:
            raise UserError(
                f"{path}: labels {d['labels']!r} leaves the model's folder; put the label file beside model.toml"
            )
    return Sidecar(path, ov, labels)


MAX_FIXED_BATCH = 256  # a fixed-batch model runs in padded chunks of that size; more is a memory bomb


def check_fixed_batch(n: int | None, where: str) -> int | None:
    """A model's fixed batch size (``None``: dynamic), refused above :data:`MAX_FIXED_BATCH`.

    Every run of such a model takes exactly ``n`` images, padded with zeros: a
    batch fixed to two million would allocate gigabytes for one crop.
    """
    if n is not None and n > MAX_FIXED_BATCH:
        raise UserError(
            f"{where}: its input's batch dimension is fixed to {n}; Photoproof pads every run to that many images, "
            f"so at most {MAX_FIXED_BATCH} is accepted: re-export the model with a dynamic batch dimension"
        )
    return n


def layout_of(shape: Sequence[Any], where: str) -> tuple[str, int | None]:
    """The layout (``NCHW``/``NHWC``) and fixed square side (or ``None``) of an image-batch input shape.

    Raises:
        UserError: the shape has no channel dimension of 3 or is not square.
    """
    dims = list(shape)
    if len(dims) != 4:
        raise UserError(f"{where}: not an image classifier: input shape {dims}, expected [N, 3, S, S] or [N, S, S, 3]")
    if dims[1] == 3 and dims[3] != 3:
        layout, hw = "NCHW", (dims[2], dims[3])
    elif dims[3] == 3 and dims[1] != 3:
        layout, hw = "NHWC", (dims[1], dims[2])
    elif dims[1] == 3 and dims[3] == 3:
        layout, hw = "NCHW", (dims[2], dims[3])
    else:
        raise UserError(
            f"{where}: not an image classifier: input shape {dims} has no channel dimension of 3 (dim 1 for NCHW or "
            "last for NHWC)"
        )
    static = [d if isinstance(d, int) and d > 0 else None for d in hw]
    if static[0] and static[1] and static[0] != static[1]:
        raise UserError(f"{where}: input {static[0]}x{static[1]} is not square; Photoproof tiles are square")
    return layout, static[0] or static[1]


def resolve_spec(
    metadata: Mapping[str, Any] | None,
    input_shape: Sequence[Any] | None,
    overrides: Mapping[str, Any] | None = None,
    sidecar: Mapping[str, Any] | None = None,
    where: str = "--model",
) -> PreprocessSpec:
    """The spec of one model (precedence in the module docstring). Pure: no I/O.

    Args:
        metadata: ONNX ``metadata_props`` (``photoproof.preprocess`` is read), or a
            dict with ``"spec"``: a spec dict from elsewhere (a timm ``pretrained_cfg``
            translated by the caller); ``None`` when there is none.
        input_shape: the model's input shape (``[N, 3, S, S]`` or ``[N, S, S, 3]``;
            dims may be names or ``None``); ``None`` when unknown (TorchScript).
        overrides: fields from flags (:func:`spec_overrides`).
        sidecar: fields from a ``model.toml`` (:func:`read_sidecar`).
        where: how errors name the model (``--source net.onnx``).

    Raises:
        UserError: no input size anywhere, or a spec that does not match the input shape.
    """
    meta = dict(metadata or {})
    base: dict[str, Any] = {}
    if META_SPEC in meta:
        base = PreprocessSpec.from_json(str(meta[META_SPEC])).to_dict()
    elif isinstance(meta.get("spec"), Mapping):
        base = dict(meta["spec"])
    layout, side = layout_of(input_shape, where) if input_shape is not None else (None, None)
    fields: dict[str, Any] = {
        "resize": "bilinear",
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "channel_order": "RGB",
        "crop": "center",
        "crop_pct": 1.0,
    }
    if side:
        fields["input_size"] = side
    fields.update(base)
    for layer in (sidecar or {}, overrides or {}):
        fields.update({k: v for k, v in layer.items() if k in SPEC_FIELDS})
    if not base and not {"mean", "std"} & (set(sidecar or {}) | set(overrides or {})):
        log.warning(
            "%s: no preprocessing in the model, flags or model.toml; assuming the ImageNet mean and std (set "
            "--mean/--std or --scale)",
            where,
        )
    if "input_size" not in fields:
        raise UserError(
            f"{where}: the model's input size is not fixed and nothing names it; give --input-size (or input_size in "
            "model.toml)"
        )
    if layout is not None:
        fields["layout"] = layout
    spec = PreprocessSpec.from_dict(fields)
    if side and side != spec.input_size:
        given = "--input-size" if "input_size" in (overrides or {}) else None
        origin = given or ("model.toml" if "input_size" in (sidecar or {}) else "its metadata")
        raise UserError(
            f"{where}: the model takes {side}x{side} images but the preprocessing says {spec.input_size} "
            f"(from {origin}); fix --input-size or drop it"
        )
    return spec


def onnx_metadata(
    name: str, arch: str, spec: PreprocessSpec, classes: Sequence[str], weights_sha256: str
) -> dict[str, str]:
    """The ``metadata_props`` that ``photoproof models export`` writes."""
    import json

    return {
        META_MODEL: name,
        META_ARCH: arch,
        META_SPEC: spec.to_json(),
        META_CLASSES: json.dumps(list(classes)),
        META_WEIGHTS_SHA256: weights_sha256,
    }
