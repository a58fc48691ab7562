"""Projected gradient descent with a random start (Madry et al. 2018, https://arxiv.org/abs/1706.06083).

Start from a uniform random point of the ε-ball, then take ``steps`` signed
steps of size α, projecting onto the ε-ball and [0, 255] after each. Defaults:
10 steps of ``α = 2.5·ε / steps`` (the step rule of Madry et al.'s robustness
library, which lets the iterate cross the ball and come back).
"""

from __future__ import annotations

from craft.attacks.iterative import IterativeAttack
from craft.attacks.transforms import InputTransform


class PGD(IterativeAttack):
    name = "pgd"
    paper = "https://arxiv.org/abs/1706.06083"
    options = ("steps", "alpha", "random_start")

    def __init__(
        self,
        *,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = True,
        transform: InputTransform | None = None,
        repair_steps: int = 10,
        amp: bool = False,
    ) -> None:
        super().__init__(
            steps=steps, alpha=alpha, random_start=random_start, transform=transform, repair_steps=repair_steps, amp=amp
        )

    def step_size(self, eps: float) -> float:
        return self.alpha if self.alpha is not None else 2.5 * eps / self.n_steps(eps)
