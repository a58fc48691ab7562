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
import os
from typing import Any

import torch

from contracts.errors import UserError
from contracts.framing import default_tile_px_range
from contracts.profile import ChannelProfile, default_profile
from craft.attacks.rng import ItemRng

# Float32 input-sized tensors that one EOT forward and backward pass holds per sample at its peak (the
# replicated copies, the twin's intermediates and their gradients): 57-71 measured on CPU (peak RSS;
# 48 px x 500 and 2000 samples, 224 px x 100 samples; a 3-layer model), so 64.
EOT_COPIES_HELD = 64
# The leaf modules' outputs summed over-count what backward keeps (in-place activations, outputs not
# saved): lite0 at 224 px sums 78 MB per image, and a 16 x 8-sample EOT craft peaked at 10.4 GB RSS,
# about 35 MB per copy beyond the twin's (one run); so half the sum is counted.
ACTIVATIONS_OVERCOUNT = 2


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory free on ``device`` (the GPU's or the machine's free memory); ``None`` when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


def activation_bytes(model: torch.nn.Module, size: int, device: torch.device) -> int:
    """Bytes of the activations one image leaves for the backward pass: the outputs of every leaf module, summed."""
    total = [0]

    def hook(_m: torch.nn.Module, _i: Any, out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def check_eot_memory(
    samples: int,
    images: int,
    size: int,
    device: torch.device,
    model: torch.nn.Module | None = None,
    flag: str = "--eot-samples",
) -> None:
    """Refuse an EOT run whose replicated batch (``images x samples`` copies of ``3 x size x size``) cannot fit.

    The batch is replicated ``samples`` times in one pass, so memory grows with their
    product: per copy, the twin's float32 copies and the ``model``'s activations. Beyond
    the device's memory the run would fail (or swap) mid-job.
    """
    have = device_memory(device)
    if have is None:
        return
    acts = activation_bytes(model, size, device) if model is not None else 0
    per = 3 * size * size * 4 * EOT_COPIES_HELD + acts // ACTIVATIONS_OVERCOUNT
    need = images * samples * per
    if need <= have:
        return
    fit = have // max(1, images * per)
    advice = f"use {flag} {fit} or fewer" if fit >= 1 else "not even one sample fits"
    raise UserError(
        f"{flag} {samples}: EOT would hold about {need / 2**30:.0f} GiB ({images} images x {samples} samples of "
        f"{size}x{size} px) on {device.type}, which has {have / 2**30:.0f} GiB free; {advice}"
        + (", or give a smaller --batch-size" if images > 1 else "")
    )


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
            tiles of the default print layout at the profile's frame size, ``contracts.framing.default_tile_px_range``).
    """

    name = "eot"

    def __init__(
        self, profile: ChannelProfile | None = None, samples: int = 8, tile_px: tuple[float, float] | None = None
    ) -> None:
        if samples < 1:
            raise ValueError("EOT needs at least one sample")
        self.profile = profile if profile is not None else default_profile()
        self.repeats = int(samples)
        self.tile_px = (
            (float(tile_px[0]), float(tile_px[1])) if tile_px is not None else default_tile_px_range(self.profile)
        )
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
        (``--eot-tile-px``, or the default print layout's tiles at the profile's camera), which
        ``print --frame-size`` checks its layout against."""
        lo, hi = self.tile_px
        return {"samples": self.repeats, "profile": self.profile.name, "tile_px": [round(lo, 1), round(hi, 1)]}
