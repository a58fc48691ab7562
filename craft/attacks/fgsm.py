"""The "fast" method: one signed gradient step of size ε.

Goodfellow, Shlens & Szegedy 2015 (https://arxiv.org/abs/1412.6572), as used by
Kurakin, Goodfellow & Bengio 2016 (https://arxiv.org/abs/1607.02533, eq. 1):
``X_adv = clip(X + ε·sign(∇J(X, y)), 0, 255)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from craft.attacks.base import Attack, Goal, ascent_gradient


class FGSM(Attack):
    name = "fgsm"
    paper = "https://arxiv.org/abs/1607.02533"

    def run(self, model: nn.Module, x: torch.Tensor, goal: Goal, eps: float, generator: torch.Generator | None) -> torch.Tensor:
        g = ascent_gradient(model, x, goal.labels, goal.targeted)
        return x + eps * g.sign()

    def params(self, eps: float) -> dict[str, Any]:
        return {"steps": 1}
