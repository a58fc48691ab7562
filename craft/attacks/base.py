"""What every attack shares: the call signature, the budget checks and the final projection.

In the manner of foolbox 3: settings go to the constructor, the budget ε to the
call. ``Attack.__call__`` does the bookkeeping once (ε checks, the ε-ball and
[0, 255] clip, the 8-bit lattice); a subclass implements only :meth:`run`.
All tensors are ``N x 3 x S x S`` RGB in 0..255 pixel units (float).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from contracts.errors import UserError


def kurakin_steps(eps: float) -> int:
    """Iterations of Kurakin et al.'s iterative methods: ``min(ε+4, ⌈1.25ε⌉)`` (α = 1)."""
    return int(min(eps + 4, math.ceil(1.25 * eps)))


def ascent_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Gradient of the attack objective w.r.t. ``x``, oriented so that ascending it helps the attack.

    Untargeted: ``+∇ CE(f(x), y)``; targeted: ``-∇ CE(f(x), t)``.
    """
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return -grad if targeted else grad


def project(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip ``adv`` to the L∞ ε-ball around ``x`` and to [0, 255]."""
    return torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp_(0.0, 255.0)


def to_lattice(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Round onto the 8-bit lattice while staying inside the ε-ball and [0, 255].

    ``x`` holds integers, so ``x ± floor(ε)`` are the lattice points nearest the ball's faces.
    """
    e = math.floor(eps + 1e-6)
    return torch.minimum(torch.maximum(adv.round(), x - e), x + e).clamp_(0.0, 255.0)


@dataclass
class Goal:
    """What the attack aims at: the labels to move away from, or a target to reach."""

    labels: torch.Tensor  # true labels (untargeted) or target classes (targeted)
    targeted: bool


class Attack(abc.ABC):
    """Base class of every attack; see the module docstring."""

    name: ClassVar[str]
    paper: ClassVar[str]

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        *,
        target: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Attack a batch.

        Args:
            model: takes ``N x 3 x S x S`` pixels in 0..255, returns logits.
            x: clean images, integer values in 0..255.
            y: true labels, ``N`` long.
            eps: L∞ budget in 0..255 pixel units, in (0, 255].
            target: target classes (``N`` long) for a targeted attack, else ``None``.
            generator: the source of randomness for attacks that use any.

        Returns:
            Adversarial images on the 8-bit lattice, within ε of ``x`` and in [0, 255].
        """
        if not (0 < eps <= 255):
            raise UserError(f"--eps {eps:g}: must be in 1..255 (pixel units)")
        goal = Goal(target, True) if target is not None else self.default_goal(model, x, y)
        with torch.enable_grad():
            adv = self.run(model, x, goal, float(eps), generator)
        return to_lattice(project(adv.detach(), x, eps), x, eps)

    def default_goal(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Goal:
        """Untargeted by default; the least-likely-class attack overrides this."""
        return Goal(y, False)

    @abc.abstractmethod
    def run(self, model: nn.Module, x: torch.Tensor, goal: Goal, eps: float, generator: torch.Generator | None) -> torch.Tensor:
        """Return adversarial images (float; projected and rounded by the caller)."""

    def params(self, eps: float) -> dict[str, Any]:
        """The resolved settings recorded in the manifest."""
        return {}
