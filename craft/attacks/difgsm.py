"""Diverse-inputs iterative FGSM, DI²-FGSM (Xie et al. 2019, https://arxiv.org/abs/1803.06978).

The iterative FGSM with a random resize-and-pad of the input at every step
(:class:`~craft.attacks.transforms.DiverseInputs`, probability p = 0.5).
Defaults: 10 steps of ``α = ε / steps``. ``mifgsm+di`` is the paper's M-DI²-FGSM.
"""

from __future__ import annotations

from craft.attacks.iterative import IterativeAttack
from craft.attacks.transforms import Compose, DiverseInputs, InputTransform


class DIFGSM(IterativeAttack):
    name = "difgsm"
    paper = "https://arxiv.org/abs/1803.06978"
    options = ("steps", "alpha", "di_prob")

    def __init__(
        self,
        *,
        steps: int = 10,
        alpha: float | None = None,
        di_prob: float = 0.5,
        transform: InputTransform | None = None,
        repair_steps: int = 10,
        amp: bool = False,
    ) -> None:
        di = DiverseInputs(prob=di_prob)
        t = di if transform is None else Compose([transform, di])
        super().__init__(steps=steps, alpha=alpha, transform=t, repair_steps=repair_steps, amp=amp)

    @property
    def label(self) -> str:
        """``difgsm`` plus any extra transform (DI itself is implied by the name)."""
        ts = getattr(self.transform, "transforms", [self.transform])
        return "+".join([self.name, *(t.name for t in ts if t.name != "di")])
