"""The threat model as a small object: random start, step direction and projection.

As in foolbox 3's ``gradient_descent_base.py``: a norm is three functions, not a
class tree. Photoproof crafts under L∞ only (the budget ε is in 0..255 pixel
units, as in Kurakin et al. 2016), but attacks talk to the norm through this
interface so another one can be slotted in.
"""

from __future__ import annotations

import math

import torch

from craft.attacks.rng import ItemRng


def project(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip ``adv`` to the L∞ ε-ball around ``x`` and to [0, 255] (in place on ``adv``'s result)."""
    return torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp_(0.0, 255.0)


def to_lattice(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Round onto the 8-bit lattice while staying inside the ε-ball and [0, 255].

    ``x`` holds integers, so ``x ± floor(ε)`` are the lattice points nearest the ball's faces.
    """
    e = math.floor(eps + 1e-6)
    return torch.minimum(torch.maximum(adv.round(), x - e), x + e).clamp_(0.0, 255.0)


class Linf:
    """L∞: uniform random start, signed steps, box projection."""

    name = "linf"

    @staticmethod
    def random_start(x: torch.Tensor, eps: float, rng: ItemRng) -> torch.Tensor:
        """``x + U(-ε, ε)`` per pixel, drawn from each item's generator, clipped to [0, 255]."""
        noise = rng.rand(x.shape[1:], x).mul_(2 * eps).sub_(eps)
        return (x + noise).clamp_(0.0, 255.0)

    @staticmethod
    def direction(g: torch.Tensor) -> torch.Tensor:
        """The steepest-ascent direction under L∞: the sign of the gradient."""
        return g.sign()

    @staticmethod
    def bounds(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel ``(low, high)`` of the ε-ball intersected with [0, 255], computed once per run."""
        return (x - eps).clamp_(min=0.0), (x + eps).clamp_(max=255.0)

    @staticmethod
    def step(
        adv: torch.Tensor, direction: torch.Tensor, alpha: float, bounds: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """``clip(adv + α·direction)`` into ``bounds``, reusing ``direction``'s buffer (one fused clamp)."""
        low, high = bounds
        return torch.clamp(direction.mul_(alpha).add_(adv), low, high, out=direction)

    @staticmethod
    def project(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
        return project(adv, x, eps)


LINF = Linf()
