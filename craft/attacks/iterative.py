"""The one gradient loop that fgsm, bim, ll, pgd, mifgsm and difgsm share.

::

    x₀ = x, or a random point of the ε-ball (PGD)
    repeat T times:
        g = mean over transforms t of ∇ₓ J(f(t(xᵢ)), y)      (input transform: none, DI, EOT)
        u = update(g)                                         (plain, or momentum)
        xᵢ₊₁ = clip_{x,ε}(xᵢ + α·sign(u))                     (the L∞ norm object)

Each attack is this loop with its paper's settings; they differ only in their
constructor defaults and in how ``T`` and ``α`` follow from ε.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from craft.attacks.base import Attack, Goal, ascent_gradient
from craft.attacks.norms import LINF, Linf
from craft.attacks.rng import ItemRng
from craft.attacks.transforms import InputTransform
from craft.attacks.updates import Plain, UpdateRule


class IterativeAttack(Attack):
    """Iterative L∞ gradient attack; see the module docstring.

    Args:
        steps: iterations ``T`` (``None``: the attack's default, see :meth:`n_steps`).
        alpha: step size in pixel units (``None``: the attack's default, see :meth:`step_size`).
        random_start: start from a uniform random point of the ε-ball (Madry et al. 2018).
        update: gradient update rule (:class:`~craft.attacks.updates.Plain` or ``Momentum``).
        norm: the threat model object (L∞).
        transform, repair_steps, amp: see :class:`~craft.attacks.base.Attack`.
    """

    default_steps: int = 10

    def __init__(
        self,
        *,
        steps: int | None = None,
        alpha: float | None = None,
        random_start: bool = False,
        update: UpdateRule | None = None,
        norm: Linf = LINF,
        transform: InputTransform | None = None,
        repair_steps: int = 10,
        amp: bool = False,
    ) -> None:
        super().__init__(transform=transform, repair_steps=repair_steps, amp=amp)
        if steps is not None and steps < 1:
            raise ValueError("steps must be >= 1")
        if alpha is not None and alpha <= 0:
            raise ValueError("alpha must be > 0")
        self.steps = steps
        self.alpha = alpha
        self.random_start = random_start
        self.update = update if update is not None else Plain()
        self.norm = norm

    def n_steps(self, eps: float) -> int:
        """Iterations at budget ε; default ``default_steps``."""
        return self.steps if self.steps is not None else self.default_steps

    def step_size(self, eps: float) -> float:
        """Step α at budget ε; default ``ε / T`` (the whole budget spread over the steps)."""
        return self.alpha if self.alpha is not None else eps / self.n_steps(eps)

    def run(self, model: nn.Module, x: torch.Tensor, goal: Goal, eps: float, rng: ItemRng) -> torch.Tensor:
        norm, alpha = self.norm, self.step_size(eps)
        bounds = norm.bounds(x, eps)
        adv = norm.random_start(x, eps, rng) if self.random_start else x
        update = self.update.start()
        for _ in range(self.n_steps(eps)):
            g = ascent_gradient(model, adv, goal.labels, goal.targeted, self.transform, rng, self.amp)
            adv = norm.step(adv, norm.direction(update(g)), alpha, bounds)
            if self.on_step is not None:  # progress display: one call per gradient step of the batch
                self.on_step()
        return adv

    def settings(self, eps: float) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": self.n_steps(eps), "alpha": self.step_size(eps)}
        if self.random_start:
            out["random_start"] = True
        out.update(self.update.params())
        return out
