"""Iterative least-likely class method (Kurakin, Goodfellow & Bengio 2016, https://arxiv.org/abs/1607.02533, eq. 4).

The basic iterative schedule, descending the loss of ``y_LL = argmin p(y|X)``,
the class the model finds least likely on the clean image.
"""

from __future__ import annotations

import torch
from torch import nn

from craft.attacks.base import Goal
from craft.attacks.bim import BIM


def least_likely(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``argmin p(y|x)`` per image (``N`` long)."""
    with torch.no_grad():
        return model(x).argmin(dim=1)


class LeastLikely(BIM):
    name = "ll"
    paper = "https://arxiv.org/abs/1607.02533"

    def default_goal(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Goal:
        return Goal(least_likely(model, x), True)
