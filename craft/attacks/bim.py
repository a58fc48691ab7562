"""Basic iterative method (Kurakin, Goodfellow & Bengio 2016, https://arxiv.org/abs/1607.02533, eq. 2).

Step α = 1 for ``min(ε+4, ⌈1.25ε⌉)`` iterations; after each step the image is
clipped to the ε-ball around X and to [0, 255]. Starting from the integer X
with α = 1 and an integer ε, every iterate is already on the 8-bit lattice.
"""

from __future__ import annotations

from craft.attacks.base import kurakin_steps
from craft.attacks.iterative import IterativeAttack
from craft.attacks.transforms import InputTransform


class BIM(IterativeAttack):
    name = "bim"
    paper = "https://arxiv.org/abs/1607.02533"
    options = ("steps", "alpha")

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        steps: int | None = None,
        transform: InputTransform | None = None,
        repair_steps: int = 10,
        amp: bool = False,
    ) -> None:
        super().__init__(steps=steps, alpha=alpha, transform=transform, repair_steps=repair_steps, amp=amp)

    def n_steps(self, eps: float) -> int:
        return self.steps if self.steps is not None else kurakin_steps(eps)
