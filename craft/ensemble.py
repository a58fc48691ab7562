"""Ensembles of source models (Liu et al. 2017, https://arxiv.org/abs/1611.02770; Dong et al. 2018, §3.2).

Attacking several models at once transfers better to an unseen one. The
images live at the first model's input size; each member sees them resized
differentiably (bicubic, antialiased when shrinking, as its preprocessing
spec says) to its own size inside :meth:`Ensemble.members`, so gradients flow
back to the shared image.

- ``logits``: the ensemble's logits are the mean of the members' logits
  (Dong et al. 2018, eq. 7); the loss is the cross-entropy of that mean.
- ``loss``: the loss is the mean of the members' cross-entropies.

Predictions (top-1 checks, the ``ll`` target) use the mean logits in both modes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ENSEMBLE_MODES = ("logits", "loss")


def resize_to(x: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize ``N x C x H x W`` to ``size x size``, differentiably; a no-op at the right size."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    aa = shrink and mode in ("bilinear", "bicubic")
    return F.interpolate(
        x, size=(size, size), mode=mode, align_corners=False if mode != "nearest" else None, antialias=aa
    )


class Ensemble(nn.Module):
    """Several models that take 0..255 pixels, as one.

    Args:
        models: the members, each ``N x 3 x s x s -> N x 1000`` logits.
        sizes: each member's input size ``s``.
        mode: ``logits`` or ``loss`` (module docstring).
        resize: interpolation for members whose size differs from the input's.
    """

    def __init__(
        self, models: Sequence[nn.Module], sizes: Sequence[int], mode: str = "logits", resize: str = "bicubic"
    ) -> None:
        super().__init__()
        if mode not in ENSEMBLE_MODES:
            raise ValueError(f"ensemble mode must be one of {ENSEMBLE_MODES}")
        if len(models) != len(sizes) or not models:
            raise ValueError("one size per model, at least one model")
        self.members_ = nn.ModuleList(models)
        self.sizes = [int(s) for s in sizes]
        self.mode = mode
        self.resize = resize

    def members(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's logits on ``x`` resized to its size."""
        return [m(resize_to(x, s, self.resize)) for m, s in zip(self.members_, self.sizes, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean logits ``N x 1000``."""
        return torch.stack([z.float() for z in self.members(x)]).mean(dim=0)

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The summed-over-images loss that attacks ascend (see :func:`craft.attacks.base.objective`)."""
        if self.mode == "logits":
            return F.cross_entropy(self(x), labels, reduction="sum")
        losses = [F.cross_entropy(z.float(), labels, reduction="sum") for z in self.members(x)]
        return torch.stack(losses).mean()
