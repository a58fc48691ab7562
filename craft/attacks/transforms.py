"""Input transforms: what the model sees at each gradient step, drawn afresh every step.

A transform maps a batch ``N x 3 x S x S`` (0..255) to ``N·k x 3 x S x S``,
rows ``i·k .. i·k+k-1`` coming from image ``i`` (item-major), and is
differentiable in its input. The attack's gradient is the gradient of the loss
summed over the ``k`` copies and divided by ``k``: an average over transforms.
Parameters are sampled (:meth:`sample`) apart from applying them (:meth:`apply`)
so a draw can be replayed exactly, as kornia does.

- :class:`DiverseInputs`: DI²-FGSM's random resize and pad (Xie et al. 2019).
- :class:`craft.attacks.eot.EOT`: the print-and-photograph channel (Athalye et al. 2018).
- :class:`Compose`: several in a row (EOT first, then DI on every copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from craft.attacks.rng import ItemRng


class InputTransform(Protocol):
    name: str
    repeats: int  # copies of each image in the output

    def __call__(self, x: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        """Sample fresh parameters from ``rng`` (one generator per row of ``x``) and apply them."""

    def params(self) -> dict[str, Any]:
        """Settings recorded in the manifest."""


@dataclass
class DIParams:
    """One draw of :class:`DiverseInputs`: an affine map per row and whether it applies."""

    theta: torch.Tensor  # N x 2 x 3, output -> input normalised coordinates
    apply: torch.Tensor  # N bool


class DiverseInputs:
    """Input diversity (Xie et al. 2019, https://arxiv.org/abs/1803.06978).

    With probability ``prob`` per image and step, shrink the image to a random
    size in ``[S/rate, S)`` and place it at a random offset on an ``S x S``
    mid-grey canvas (nearest-neighbour, as in the paper's code). This is the
    paper's "resize to rnd in [299, 330), pad to 330" with the canvas scaled
    back to the model's input size, so every model of an ensemble accepts it.
    Each row draws four numbers from its own generator, applied or not, so the
    stream per item does not depend on the other items.
    """

    name = "di"
    repeats = 1

    def __init__(self, prob: float = 0.5, rate: float = 1.1, mode: str = "nearest") -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError("DI probability must be in [0, 1]")
        if rate < 1.0:
            raise ValueError("DI rate must be >= 1")
        self.prob, self.rate, self.mode = float(prob), float(rate), mode

    def sample(self, x: torch.Tensor, rng: ItemRng) -> DIParams:
        u = rng.rand((4,), x.new_empty(0, dtype=torch.float32))
        scale = 1.0 / self.rate + (1.0 - 1.0 / self.rate) * u[:, 1]
        centre = (1.0 - scale)[:, None] * (2.0 * u[:, 2:4] - 1.0)
        theta = torch.zeros(len(u), 2, 3, device=u.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
        theta[:, :, 2] = -centre / scale[:, None]
        return DIParams(theta.to(x.dtype), u[:, 0] < self.prob)

    def apply(self, x: torch.Tensor, p: DIParams) -> torch.Tensor:
        grid = F.affine_grid(p.theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x - 127.5, grid, mode=self.mode, padding_mode="zeros", align_corners=False) + 127.5
        return torch.where(p.apply[:, None, None, None], out, x)

    def __call__(self, x: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        return self.apply(x, self.sample(x, rng))

    def params(self) -> dict[str, Any]:
        return {"prob": self.prob, "rate": self.rate, "mode": self.mode}


class Compose:
    """Apply transforms in order; later ones see (and draw per row of) the earlier ones' copies."""

    name = "compose"

    def __init__(self, transforms: Sequence[InputTransform]) -> None:
        self.transforms = list(transforms)
        self.repeats = 1
        for t in self.transforms:
            self.repeats *= t.repeats

    def __call__(self, x: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, rng)
            rng = rng.repeat_interleave(t.repeats)
        return x

    def params(self) -> dict[str, Any]:
        return {t.name: t.params() for t in self.transforms}


def compose(transforms: Sequence[InputTransform]) -> InputTransform | None:
    """``None`` for no transform, the transform itself for one, else a :class:`Compose`."""
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else Compose(transforms)
