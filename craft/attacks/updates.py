"""Gradient update rules: what an iterative attack does with each new gradient.

An update rule is started once per attack run and then maps the raw gradient of
each step to the vector whose direction (sign, for L∞) is stepped along.
``Plain`` is the basic iterative method; ``Momentum`` is MI-FGSM's accumulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

Step = Callable[[torch.Tensor], torch.Tensor]


class UpdateRule(Protocol):
    def start(self) -> Step:
        """A fresh per-run state: a function from the step's gradient to the update."""

    def params(self) -> dict[str, Any]:
        """Settings recorded in the manifest."""


class Plain:
    """Use each gradient as it is."""

    def start(self) -> Step:
        return lambda g: g

    def params(self) -> dict[str, Any]:
        return {}


class Momentum:
    """Momentum iterative method (Dong et al. 2018, https://arxiv.org/abs/1710.06081, eq. 6).

    ``g_{t+1} = μ·g_t + ∇ / ‖∇‖₁``, the L1 norm taken per image (as a mean, which
    differs from the sum by a constant factor that the sign step ignores).
    """

    def __init__(self, decay: float = 1.0) -> None:
        if decay < 0:
            raise ValueError("momentum decay must be >= 0")
        self.decay = float(decay)

    def start(self) -> Step:
        acc: list[torch.Tensor] = []

        def step(g: torch.Tensor) -> torch.Tensor:
            g = g / g.abs().mean(dim=tuple(range(1, g.dim())), keepdim=True).clamp_min(1e-12)
            if not acc:
                acc.append(g)
            else:
                acc[0] = acc[0].mul_(self.decay).add_(g)
            return acc[0]

        return step

    def params(self) -> dict[str, Any]:
        return {"momentum": self.decay}
