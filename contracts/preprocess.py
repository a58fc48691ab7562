"""One preprocessing spec per model, read by the torch path and the ONNX path.

A spec says how an 8-bit RGB image becomes the model's input tensor:

1. ``crop = "center"``: resize so that the shorter side equals
   ``input_size / crop_pct`` with ``resize`` (bicubic for EfficientNet-Lite),
   then centre-crop to ``input_size`` square (``crop_pct`` 1.0 keeps the whole
   shorter side; timm's usual 0.875 keeps its central 87.5 %);
   ``crop = "squash"``: resize the whole image to ``input_size`` square;
2. reorder channels to ``channel_order``;
3. ``y = (p - mean) / std`` with ``p`` in 0..255 pixel units
   (EfficientNet-Lite: mean 127, std 128, i.e. ``(x*255 - 127) / 128``);
4. lay out as ``NCHW`` or ``NHWC``.

Steps 1 and 2-4 are separate so that attacks work in pixel space (0..255) and
apply 2-4 inside the differentiable model wrapper (see ``craft.models``), while
capture applies them in numpy before onnxruntime. Both read this dataclass, in
the spirit of timm's ``resolve_data_config``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

from contracts.errors import UserError

Resize = Literal["bicubic", "bilinear", "nearest", "area"]

_PIL_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become a model input. ``mean``/``std`` are in 0..255 units."""

    input_size: int
    resize: Resize = "bicubic"
    crop: Literal["center", "squash"] = "center"
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.input_size, int) and 8 <= self.input_size <= 4096):
            raise UserError(f"preprocessing: input_size must be an integer in 8..4096, got {self.input_size!r}")
        if self.resize not in _PIL_RESAMPLE:
            raise UserError(f"preprocessing: resize must be one of {sorted(_PIL_RESAMPLE)}, got {self.resize!r}")
        if self.crop not in ("center", "squash"):
            raise UserError(f"preprocessing: crop must be center or squash, got {self.crop!r}")
        if not (isinstance(self.crop_pct, (int, float)) and 0.05 <= float(self.crop_pct) <= 1.0):
            raise UserError(f"preprocessing: crop_pct must be in 0.05..1, got {self.crop_pct!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise UserError(f"preprocessing: channel order must be RGB or BGR, got {self.channel_order!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise UserError(f"preprocessing: layout must be NCHW or NHWC, got {self.layout!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise UserError("preprocessing: mean and std need three values each")
        if not all(math.isfinite(float(v)) for v in (*self.mean, *self.std)) or any(float(s) <= 0 for s in self.std):
            raise UserError(
                f"preprocessing: mean and std must be finite numbers and std > 0, "
                f"got mean {list(self.mean)} std {list(self.std)}"
            )

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if not d["extra"]:
            d.pop("extra")
        if d["crop_pct"] == 1.0:
            d.pop("crop_pct")  # batches of the zoo keep the form they always had
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        try:
            return cls(
                input_size=int(d["input_size"]),
                resize=d.get("resize", "bicubic"),
                crop=d.get("crop", "center"),
                mean=tuple(float(v) for v in d.get("mean", (127.0,) * 3)),  # type: ignore[arg-type]
                std=tuple(float(v) for v in d.get("std", (128.0,) * 3)),  # type: ignore[arg-type]
                channel_order=d.get("channel_order", "RGB"),
                layout=d.get("layout", "NCHW"),
                extra=dict(d.get("extra", {})),
                crop_pct=float(d.get("crop_pct", 1.0)),
            )
        except UserError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"preprocessing spec is malformed ({e}); expected keys input_size, resize, mean, std, channel_order, "
                "layout"
            ) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PreprocessSpec:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, RecursionError) as e:
            raise UserError(f"preprocessing spec is not valid JSON: {e}") from None

    # -- numpy implementation ---------------------------------------------
    def resize_center_crop(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """Resize and crop as the spec says (module docstring, step 1).

        Args:
            image: a PIL image or an ``HxWx3`` uint8 RGB array.

        Returns:
            ``input_size x input_size x 3`` uint8 RGB array.
        """
        img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        img = img.convert("RGB")
        w, h = img.size
        s = self.input_size
        if (w, h) != (s, s) and self.crop == "squash":
            img = img.resize((s, s), _PIL_RESAMPLE[self.resize])
        elif (w, h) != (s, s) or self.crop_pct < 1.0:
            scale = s / self.crop_pct / min(w, h)
            nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
            img = img.resize((nw, nh), _PIL_RESAMPLE[self.resize])
            left, top = (nw - s) // 2, (nh - s) // 2
            img = img.crop((left, top, left + s, top + s))
        return np.asarray(img, dtype=np.uint8).copy()

    def normalize(self, batch_rgb: np.ndarray) -> np.ndarray:
        """Turn ``N x S x S x 3`` uint8 RGB crops into the model's float32 input.

        The crops must already be ``input_size`` square (see ``resize_center_crop``).
        """
        if batch_rgb.ndim != 4 or batch_rgb.shape[-1] != 3:
            raise ValueError(f"expected N x H x W x 3 RGB, got shape {batch_rgb.shape}")
        x: np.ndarray = batch_rgb.astype(np.float32)
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def input_shape(self, batch: int | str = "N") -> tuple[int | str, ...]:
        s = self.input_size
        return (batch, 3, s, s) if self.layout == "NCHW" else (batch, s, s, 3)


# The zoo's input sizes (craft.zoo holds the full entries; tests check that the two agree),
# for the torch-free stages that lay sheets out for a model (``photoproof print --model lite2``).
ZOO_INPUT_SIZES: dict[str, int] = {"lite0": 224, "lite1": 240, "lite2": 260}
