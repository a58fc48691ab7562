"""Basic iterative method (Kurakin, Goodfellow & Bengio 2016, https://arxiv.org/abs/1607.02533, eq. 2).

Step α = 1 for ``min(ε+4, ⌈1.25ε⌉)`` iterations; after each step the image is
clipped to the ε-ball around X and to [0, 255].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from craft.attacks.base import Attack, Goal, ascent_gradient, kurakin_steps, project


class BIM(Attack):
    name = "bim"
    paper = "https://arxiv.org/abs/1607.02533"

    def __init__(self, *, alpha: float = 1.0, steps: int | None = None) -> None:
        self.alpha = alpha
        self.steps = steps

    def n_steps(self, eps: float) -> int:
        return self.steps if self.steps is not None else kurakin_steps(eps)

    def run(self, model: nn.Module, x: torch.Tensor, goal: Goal, eps: float, generator: torch.Generator | None) -> torch.Tensor:
        adv = x.clone()
        for _ in range(self.n_steps(eps)):
            g = ascent_gradient(model, adv, goal.labels, goal.targeted)
            adv = project(adv + self.alpha * g.sign(), x, eps)
        return adv

    def params(self, eps: float) -> dict[str, Any]:
        return {"alpha": self.alpha, "steps": self.n_steps(eps)}
