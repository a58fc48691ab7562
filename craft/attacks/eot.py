"""Expectation over Transformation as an input transform (Athalye et al. 2018, https://arxiv.org/abs/1707.07397).

Any gradient attack becomes robust to the print-and-photograph channel by
averaging its gradient over ``samples`` draws of the differentiable channel twin
(:mod:`channel.twin`), whose ranges come from the same channel profile that the
simulated camera uses. The batch is replicated ``samples`` times and pushed
through the model in one forward pass. ``--attack eot`` is BIM with this
transform; ``--attack pgd+eot`` or ``--attack mifgsm --eot`` combine it with others.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from contracts.profile import ChannelProfile, default_profile, tile_px_range
from craft.attacks.rng import ItemRng


def cat_params(parts: list[Any]) -> Any:
    """Concatenate sampled twin parameters along the batch dimension.

    Works for a tensor, a dataclass, a NamedTuple or a dict whose tensor fields
    are batched on dimension 0 (other fields must agree across parts).
    """
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, dict):
        return {k: cat_params([p[k] for p in parts]) for k in first}
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(
            first,
            **{f.name: cat_params([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(first) if f.init},
        )
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(cat_params([getattr(p, f) for p in parts]) for f in first._fields))
    if all(p == first for p in parts):
        return first
    raise TypeError(f"cannot concatenate twin parameters of type {type(first).__name__}")


class EOT:
    """Average the gradient over ``samples`` draws of the channel twin per image and step.

    Args:
        profile: the :class:`~contracts.profile.ChannelProfile` (default: the default preset);
            load a name or ``.toml`` path with :func:`contracts.profile.load_profile` at the CLI edge.
        samples: transforms per image and step (the replication factor of the batch).
        tile_px: the range of the tile's side in camera pixels the twin samples (default: the
            profile's framing of the printouts' default 60 mm tile, ``contracts.profile.tile_px_range``).
    """

    name = "eot"

    def __init__(
        self, profile: ChannelProfile | None = None, samples: int = 8, tile_px: tuple[float, float] | None = None
    ) -> None:
        if samples < 1:
            raise ValueError("EOT needs at least one sample")
        self.profile = profile if profile is not None else default_profile()
        self.repeats = int(samples)
        self.tile_px = (float(tile_px[0]), float(tile_px[1])) if tile_px is not None else tile_px_range(self.profile)
        self._twins: dict[int, Any] = {}

    def twin(self, size: int) -> Any:
        """The channel twin for ``size x size`` images (built once per size)."""
        if size not in self._twins:
            from channel.twin import ChannelTwin

            self._twins[size] = ChannelTwin(self.profile, size, tile_px=self.tile_px)
        return self._twins[size]

    def sample(self, x: torch.Tensor, rng: ItemRng) -> Any:
        """``samples`` draws per image, each from the image's own generator (item-major)."""
        twin = self.twin(x.shape[-1])
        return cat_params([twin.sample(self.repeats, g, g.device, torch.float32) for g in rng.generators])

    def apply(self, x: torch.Tensor, params: Any) -> torch.Tensor:
        """``x``: ``N x 3 x S x S``; returns ``N·samples x 3 x S x S`` photographed copies.

        The twin moves the parameters to ``x``'s device and dtype itself.
        """
        return self.twin(x.shape[-1]).apply(x.repeat_interleave(self.repeats, dim=0), params)

    def __call__(self, x: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        return self.apply(x, self.sample(x, rng))

    def params(self) -> dict[str, Any]:
        """Recorded with each item; ``tile_px``: the range of the tile's side in camera pixels the twin sampled
        (``--eot-tile-px``, or the simulated camera's framing of the printouts' default tile), which
        ``print --frame-size`` checks its layout against."""
        lo, hi = self.tile_px
        return {"samples": self.repeats, "profile": self.profile.name, "tile_px": [round(lo, 1), round(hi, 1)]}
