"""A user's own torch face detector as the source: ``craft --source my_module:make_detector`` (docs/detectors.md).

The factory (called once, as a classifier's factory is: :mod:`craft.loaders`) returns an
``nn.Module`` that declares itself a face detector. The protocol, in one place::

    class MyFaces(torch.nn.Module):
        task = "face-detector"   # required: a face detector, not a classifier
        score_threshold = 0.5    # required: a candidate scoring above it is a face (0 < t < 1)
        nms_iou = 0.3            # optional (0.3): boxes overlapping a better one by more are dropped
        input_size = 0           # optional (0): any size; N: the image is resized to N x N first
        mean = (0.0, 0.0, 0.0)   # optional: (x - mean) / std per channel, 0..255 units, before forward
        std = (1.0, 1.0, 1.0)
        channel_order = "RGB"    # optional: "RGB" or "BGR"

        def forward(self, x):    # x: N x 3 x H x W float (after the resize and normalisation above)
            return scores, boxes # N x K face probabilities in 0..1, and N x K x 4 boxes (x0, y0, x1, y1, x's pixels)

``K`` candidates per image (a dense head before thresholding and NMS, as SSD, RetinaFace
or CenterFace's heatmap). The scores must be differentiable with respect to ``x``:
the ε-bounded attacks ascend their gradient. :class:`UserDetector` wraps the module:

- ``detect``: scores above the threshold, :func:`contracts.detection.nms`, boxes scaled
  back to the image's pixels;
- ``energy``: the vanishing energy, per image the summed hinge
  ``max(0, logit(s) - logit(t) + κ)`` over every candidate, as MTCNN's stages
  (:mod:`craft.detectors.vanish`, in the spirit of the disappearance attacks of
  Xie et al. 2017, https://arxiv.org/abs/1703.08603);
- ``forward``: faces found per image (the goal check of :class:`craft.detectors.vanish.Vanish`).

:func:`load_user_detector` checks the protocol when it loads (a one-line error naming
the factory and saying what to do) and runs the module once on a grey image to check
its outputs and that a gradient reaches the input.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from contracts.detection import Detections, nms
from contracts.errors import UserError
from contracts.manifest import ModelRecord

log = logging.getLogger(__name__)

TASK = "face-detector"
PROBE_PX = 128  # the grey probe image's side when the detector takes any size
MAX_SIDE = 4096


@dataclass(frozen=True)
class UserDetectorSpec:
    """What the module declares (the protocol's attributes), checked."""

    score_threshold: float
    nms_iou: float = 0.3
    input_size: int = 0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decoder": "torch-factory",
            "score": self.score_threshold,
            "nms_iou": self.nms_iou,
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
        }


def is_detector(obj: Any) -> bool:
    """Whether a factory's result declares the face-detector protocol (``task = "face-detector"``)."""
    return isinstance(obj, nn.Module) and getattr(obj, "task", None) == TASK


def _num(net: nn.Module, key: str, default: float | None, lo: float, hi: float, where: str) -> float:
    v = getattr(net, key, default)
    if v is None:
        raise UserError(f"{where}: the detector has no {key}; set {key} = <a number in ({lo:g}, {hi:g})> on it")
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise UserError(f"{where}: the detector's {key} must be a number in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def _triple(net: nn.Module, key: str, default: float, where: str, positive: bool) -> tuple[float, float, float]:
    v = getattr(net, key, (default,) * 3)
    vals = list(v.tolist()) if isinstance(v, torch.Tensor) else list(v) if isinstance(v, (list, tuple)) else []
    ok = len(vals) == 3 and all(not isinstance(x, bool) and isinstance(x, (int, float)) for x in vals)
    ok = ok and all(math.isfinite(x) and abs(x) <= 1e4 and (x > 0 or not positive) for x in vals)
    if not ok:
        raise UserError(f"{where}: the detector's {key} must be three {'positive ' if positive else ''}numbers "
                        f"(0..255 units), got {v!r}")  # fmt: skip
    return float(vals[0]), float(vals[1]), float(vals[2])


def read_spec(net: nn.Module, where: str) -> UserDetectorSpec:
    """The protocol's attributes of ``net``, each checked (a one-line error naming it)."""
    size = getattr(net, "input_size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or not (size == 0 or 8 <= size <= MAX_SIDE):
        raise UserError(f"{where}: the detector's input_size must be 0 (any size) or a side of 8..{MAX_SIDE} pixels, "
                        f"got {size!r}")  # fmt: skip
    order = getattr(net, "channel_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise UserError(f"{where}: the detector's channel_order must be 'RGB' or 'BGR', got {order!r}")
    score = _num(net, "score_threshold", None, 0.0, 1.0, where)
    if not 0 < score < 1:
        raise UserError(f"{where}: the detector's score_threshold must lie strictly between 0 and 1, got {score:g}")
    return UserDetectorSpec(
        score_threshold=score,
        nms_iou=_num(net, "nms_iou", 0.3, 0.0, 1.0, where),
        input_size=size,
        mean=_triple(net, "mean", 0.0, where, False),
        std=_triple(net, "std", 1.0, where, True),
        channel_order=str(order),
    )


class UserDetector(nn.Module):
    """A user's face detector (the module docstring's protocol) seen as a source: ``detect``, ``energy``, counts.

    Args:
        net: the factory's module.
        spec: its checked attributes (:func:`read_spec`).
        name: how the batch names it (the factory reference).
        sha256: its weights' digest (:func:`craft.loaders.state_sha256`).
    """

    def __init__(self, net: nn.Module, spec: UserDetectorSpec, name: str, sha256: str = "") -> None:
        super().__init__()
        self.net = net.eval()
        self.spec = spec
        self.name = name
        self.sha256 = sha256
        self.cut = math.log(spec.score_threshold / (1 - spec.score_threshold))

    def run(self, x: torch.Tensor, where: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (``N x 3 x H x W``, RGB 0..255) through the preprocessing and the module: scores ``N x K`` and boxes
        ``N x K x 4`` in ``x``'s pixels. A malformed output is a ``ValueError``."""
        h, w = x.shape[-2:]
        s = self.spec.input_size
        y = F.interpolate(x.float(), size=(s, s), mode="bilinear", align_corners=False) if s else x.float()
        if self.spec.channel_order == "BGR":
            y = y.flip(1)
        mean = torch.tensor(self.spec.mean, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
        y = (y - mean) / std
        out = self.net(y)
        scores, boxes = check_output(out, len(x), where or self.name)
        if s:
            boxes = boxes * torch.tensor([w / s, h / s, w / s, h / s], dtype=boxes.dtype, device=boxes.device)
        return scores, boxes

    def energy(self, x: torch.Tensor, margin: float = 2.0) -> torch.Tensor:
        """Per image (``N``): the summed hinge of every candidate's score logit above the threshold's, minus κ."""
        scores, _ = self.run(x)
        d = torch.logit(scores.float().clamp(1e-6, 1 - 1e-6))
        return torch.relu(d - self.cut + margin).sum(dim=1)

    @torch.no_grad()
    def detect(self, x: torch.Tensor) -> list[Detections]:
        """Faces in each image of ``x`` (``N x 3 x H x W``, 0..255): above the threshold, after NMS."""
        scores, boxes = self.run(x)
        out = []
        for s, b in zip(scores.float().cpu().numpy(), boxes.float().cpu().numpy(), strict=True):
            ok = s > self.spec.score_threshold
            s, b = s[ok], b[ok]
            keep = nms(b, s, self.spec.nms_iou) if len(s) > 1 else np.arange(len(s))
            out.append(Detections(b[keep].astype(np.float32), s[keep].astype(np.float32)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Faces found per image, a float ``N`` tensor."""
        return torch.tensor([float(len(d)) for d in self.detect(x)], device=x.device)

    def record(self, ref: str) -> ModelRecord:
        """Its entry in ``batch.json``: a detector source, its protocol's values as the spec."""
        return ModelRecord(self.name, type(self.net).__name__, "source", self.sha256, "", self.spec.to_dict(),
                           kind="detector", ref=ref)  # fmt: skip


def check_output(out: Any, n: int, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``out`` is ``(scores N x K, boxes N x K x 4)``, floating and finite, scores in 0..1; else a ``ValueError``."""
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(isinstance(t, torch.Tensor) for t in out):
        got = type(out).__name__ if not isinstance(out, (tuple, list)) else f"a {len(out)}-element {type(out).__name__}"
        raise ValueError(f"{where}: forward must return (scores, boxes), two tensors; it returned {got}")
    scores, boxes = out
    if scores.ndim != 2 or scores.shape[0] != n or tuple(boxes.shape) != (*scores.shape, 4):
        raise ValueError(f"{where}: forward must return scores N x K and boxes N x K x 4; for N={n} it returned "
                         f"{list(scores.shape)} and {list(boxes.shape)}")  # fmt: skip
    if not scores.is_floating_point() or not boxes.is_floating_point():
        raise ValueError(
            f"{where}: forward's scores and boxes must be floating point, got {scores.dtype}, {boxes.dtype}"
        )
    with torch.no_grad():
        if not bool(torch.isfinite(scores).all()) or not bool(torch.isfinite(boxes).all()):
            raise ValueError(f"{where}: forward returned non-finite scores or boxes")
        if scores.numel() and (float(scores.min()) < 0 or float(scores.max()) > 1):
            raise ValueError(f"{where}: scores must be face probabilities in 0..1 (apply a sigmoid or softmax)")
    return scores, boxes


def load_user_detector(ref: str, net: nn.Module, sha256: str) -> UserDetector:
    """The factory's module ``net`` as a :class:`UserDetector`, its protocol checked (one-line errors name ``ref``)."""
    where = f"--source {ref}"
    for p in net.parameters():
        p.requires_grad_(False)
    det = UserDetector(net, read_spec(net, where), ref, sha256)
    side = det.spec.input_size or PROBE_PX
    x = torch.full((1, 3, side, side), 128.0, requires_grad=True)
    from craft.loaders import _contained

    try:
        with _contained(where, "running the detector"):
            scores, _ = det.run(x, where)
    except UserError:
        raise
    except ValueError as e:
        raise UserError(f"{e}; see the protocol in docs/detectors.md") from None
    except Exception as e:
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        raise UserError(f"{where}: running the detector on a 1x3x{side}x{side} grey image failed ({why})") from None
    if scores.numel() == 0:
        raise UserError(f"{where}: the detector returned no candidates for a {side}x{side} image (K = 0)")
    if not scores.requires_grad:
        raise UserError(f"{where}: its scores carry no gradient to the input (computed under no_grad, detached or "
                        "through numpy?); the attacks need scores differentiable with respect to x")  # fmt: skip
    (grad,) = torch.autograd.grad(scores.sum(), x, allow_unused=True)
    if grad is None:
        raise UserError(f"{where}: its scores do not depend on the input image; the attacks need their gradient")
    log.info("%s: a face detector (threshold %g, input %s)", where, det.spec.score_threshold, side)
    return det.eval()
