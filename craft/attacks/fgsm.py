"""The "fast" method: one signed gradient step of size ε.

Goodfellow, Shlens & Szegedy 2015 (https://arxiv.org/abs/1412.6572), as used by
Kurakin, Goodfellow & Bengio 2016 (https://arxiv.org/abs/1607.02533, eq. 1):
``X_adv = clip(X + ε·sign(∇J(X, y)), 0, 255)``.
"""

from __future__ import annotations

from craft.attacks.iterative import IterativeAttack
from craft.attacks.transforms import InputTransform


class FGSM(IterativeAttack):
    name = "fgsm"
    paper = "https://arxiv.org/abs/1607.02533"
    options = ()

    def __init__(self, *, transform: InputTransform | None = None, repair_steps: int = 10, amp: bool = False) -> None:
        super().__init__(steps=1, transform=transform, repair_steps=repair_steps, amp=amp)

    def step_size(self, eps: float) -> float:
        return eps
