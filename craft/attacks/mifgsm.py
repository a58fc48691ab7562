"""Momentum iterative FGSM (Dong et al. 2018, https://arxiv.org/abs/1710.06081).

Accumulates the L1-normalised gradient with decay μ and steps along the sign of
the accumulator, which stabilises the direction and improves transfer.
Defaults from the paper: μ = 1, 10 steps, ``α = ε / steps``. With ``+di`` it is
M-DI²-FGSM (Xie et al. 2019); with ``+eot`` it averages over the channel.
"""

from __future__ import annotations

from craft.attacks.iterative import IterativeAttack
from craft.attacks.transforms import InputTransform
from craft.attacks.updates import Momentum


class MIFGSM(IterativeAttack):
    name = "mifgsm"
    paper = "https://arxiv.org/abs/1710.06081"
    options = ("steps", "alpha", "momentum")

    def __init__(
        self,
        *,
        steps: int = 10,
        alpha: float | None = None,
        momentum: float = 1.0,
        transform: InputTransform | None = None,
        repair_steps: int = 10,
        amp: bool = False,
    ) -> None:
        super().__init__(
            steps=steps, alpha=alpha, update=Momentum(momentum), transform=transform, repair_steps=repair_steps, amp=amp
        )
