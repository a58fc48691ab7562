"""The adversarial patch (Brown et al. 2017, "Adversarial Patch", https://arxiv.org/abs/1712.09665).

A universal patch, square or circular, is optimised over a set of images at
once: at each step every image gets the patch pasted at a random location,
scale and rotation (Brown et al.'s expectation over transformation), optionally
followed by a draw of the print-and-photograph channel twin (``+eot``), and Adam
ascends the mean attack objective over those copies. Targeted (``--target``):
descend the cross-entropy of the target class; untargeted: ascend the
cross-entropy of each image's true class.

Placement is a :class:`Placement` (centre, side in pixels, rotation); pasting is
:func:`paste`, a pure function used both inside the optimisation (float,
differentiable) and to make each item's PNG, so a recorded placement replays the
saved image exactly. Randomness at step ``k`` comes from a generator seeded with
``(seed, k)``, so a run resumed at step ``k`` draws what an unbroken run draws.
Tensors are ``N x 3 x S x S`` RGB in 0..255; the patch is ``3 x P x P`` in 0..255.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from contracts.errors import UserError
from craft.attacks.rng import ItemRng

log = logging.getLogger(__name__)

SHAPES = ("square", "circle")


@dataclass(frozen=True)
class Placement:
    """Where a patch lands on an ``S x S`` image: centre (pixels), side of its bounding square (pixels), rotation."""

    cx: float
    cy: float
    side: float
    angle_deg: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Placement:
        return cls(float(d["cx"]), float(d["cy"]), float(d["side"]), float(d["angle_deg"]))


MIN_PATCH_PX = 4  # a smaller patch's rounding changes its area by more than a quarter


def patch_side(area: float, image_size: int, shape: str) -> int:
    """Side in pixels of the patch's bounding square so that the patch covers ``area`` of an ``S x S`` image.

    Raises:
        UserError: when that side is under :data:`MIN_PATCH_PX` pixels (the patch would cover
            another area than the one recorded).
    """
    px = area * image_size * image_size
    side = math.sqrt(px) if shape == "square" else 2.0 * math.sqrt(px / math.pi)
    if side < MIN_PATCH_PX - 0.5:
        least = MIN_PATCH_PX**2 / image_size**2 * (1.0 if shape == "square" else math.pi / 4)
        raise UserError(
            f"--patch-area {area:g}: a {shape} of that area is {side:.2g} px wide on the {image_size} px image, "
            f"too small to draw; give --patch-area {least:.2g} or more"
        )
    return int(round(side))


def shape_mask(shape: str, side: int) -> torch.Tensor:
    """``1 x P x P`` float mask: all ones (square) or the inscribed disc (circle), anti-aliased at 4x."""
    if shape == "square":
        return torch.ones(1, side, side)
    k = 4
    c = (torch.arange(side * k, dtype=torch.float64) + 0.5) / k - side / 2
    inside = (c[None, :] ** 2 + c[:, None] ** 2 <= (side / 2) ** 2).to(torch.float32)
    return F.avg_pool2d(inside[None, None], k)[0]


def paste(x: torch.Tensor, patch: torch.Tensor, mask: torch.Tensor, placements: list[Placement]) -> torch.Tensor:
    """Paste ``patch`` (``3 x P x P``, masked by ``mask``, ``1 x P x P``) onto each image of ``x`` at its placement.

    Bilinear resampling through one affine grid per image (``F.affine_grid`` /
    ``F.grid_sample``), differentiable in ``patch``. Deterministic on the CPU.
    """
    n, _, h, w = x.shape
    p = patch.shape[-1]
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    for i, pl in enumerate(placements):
        # output pixel (normalised, align_corners=False) -> patch coordinate (normalised)
        a = math.radians(pl.angle_deg)
        s = pl.side
        cos, sin = math.cos(a), math.sin(a)
        # image normalised coords u = (2X+1)/W - 1; patch coords from rotated, scaled offsets from the centre
        m = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64) * torch.tensor(
            [[w / s, h / s], [w / s, h / s]], dtype=torch.float64
        )
        c = torch.tensor([2 * pl.cx / w - 1, 2 * pl.cy / h - 1], dtype=torch.float64)
        theta[i, :, :2] = m
        theta[i, :, 2] = -(m @ c)
    theta = theta.to(x)
    grid = F.affine_grid(theta, [n, 4, h, w], align_corners=False)
    src = torch.cat([patch, mask.to(patch)], dim=0).unsqueeze(0).expand(n, 4, p, p)
    warped = F.grid_sample(src.to(x), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rgb, alpha = warped[:, :3], warped[:, 3:4]
    return x * (1 - alpha) + rgb * alpha


def sample_placements(
    n: int, image_size: int, side: int, generator: torch.Generator, scale: tuple[float, float], max_angle_deg: float
) -> list[Placement]:
    """``n`` random placements: side ``side·U(scale)``, angle ``U(±max_angle)``, centre uniform where the patch fits."""
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64).tolist()
    out = []
    for a, b, c, d in u:
        s = side * (scale[0] + a * (scale[1] - scale[0]))
        half = min(s / 2, image_size / 2)
        cx = half + b * (image_size - 2 * half)
        cy = half + c * (image_size - 2 * half)
        out.append(Placement(cx, cy, s, (2 * d - 1) * max_angle_deg))
    return out


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of step ``step``: seeded from ``(seed, step)`` so resuming replays the same draws."""
    s = int(np.random.SeedSequence([int(seed), int(step), 0x9A7C]).generate_state(1)[0])
    return torch.Generator().manual_seed(s)


@dataclass
class PatchState:
    """What a resumed run needs: the float patch (0..1), Adam's state and the steps done."""

    patch: torch.Tensor
    optim: dict[str, Any]
    step: int
    losses: list[float]

    def save(self, path: Path) -> None:
        """Write atomically (``torch.save`` to a temporary name, then rename)."""
        tmp = path.with_name(path.name + ".tmp")
        torch.save(
            {
                "patch": self.patch.detach().cpu(),
                "optim": self.optim,
                "step": self.step,
                "losses": torch.tensor(self.losses),
            },
            tmp,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> PatchState:
        """Read with ``weights_only=True``; a corrupt file is a one-line error naming it."""
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return cls(d["patch"], d["optim"], int(d["step"]), [float(v) for v in d["losses"].tolist()])
        except Exception as e:  # noqa: BLE001 - any unreadable file means the same thing
            raise UserError(
                f"{path}: unreadable patch checkpoint ({type(e).__name__}); delete it to start the patch again"
            ) from None


class AdversarialPatch:
    """Optimise a universal patch (Brown et al. 2017); settings in the constructor, images at :meth:`fit`.

    Args:
        area: share of the image area the patch covers at nominal scale, in (0, 0.5].
        shape: ``square`` or ``circle``.
        steps: Adam steps.
        lr: Adam's learning rate, on the patch in 0..1 units.
        scale: range of the side's random scale factor around the nominal side.
        max_angle_deg: rotations drawn from ``±max_angle_deg``.
        transform: an input transform applied after pasting (the channel twin, :class:`craft.attacks.eot.EOT`).
        copies: placements per image and step.
    """

    name: ClassVar[str] = "patch"
    paper: ClassVar[str] = "https://arxiv.org/abs/1712.09665"

    def __init__(
        self,
        *,
        area: float = 0.1,
        shape: str = "square",
        steps: int = 200,
        lr: float = 0.05,
        scale: tuple[float, float] = (0.8, 1.2),
        max_angle_deg: float = 22.5,
        transform: Any = None,
        copies: int = 1,
    ) -> None:
        check_patch_options(area, shape, lr)
        if steps < 1 or copies < 1:
            raise UserError("--steps: the patch needs at least one step")
        self.area, self.shape, self.steps, self.lr = float(area), shape, int(steps), float(lr)
        self.scale, self.max_angle_deg = (float(scale[0]), float(scale[1])), float(max_angle_deg)
        self.transform, self.copies = transform, int(copies)

    @property
    def label(self) -> str:
        return "patch+eot" if self.transform is not None else "patch"

    def side(self, image_size: int) -> int:
        return patch_side(self.area, image_size, self.shape)

    def init_patch(self, side: int, seed: int) -> torch.Tensor:
        """Uniform random start in 0..1 from ``seed``."""
        return torch.rand(3, side, side, generator=torch.Generator().manual_seed(int(seed)))

    def loss(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
        """The mean loss to descend: CE to the target, or minus CE to the true class."""
        ce = F.cross_entropy(model(x).float(), labels)
        return ce if targeted else -ce

    def fit(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        target: int | None,
        seed: int,
        state: PatchState | None = None,
        checkpoint: Callable[[PatchState], None] | None = None,
        every: int = 10,
        on_step: Callable[[int], None] | None = None,
    ) -> PatchState:
        """Optimise the patch over the images ``x`` (``N x 3 x S x S``, 0..255) with labels ``y``.

        Args:
            target: the target class, or ``None`` for untargeted.
            seed: seeds the start and every step's draws.
            state: a checkpoint to resume from.
            checkpoint: called with the state every ``every`` steps and at the end.
        Returns:
            The final state; ``state.patch`` is ``3 x P x P`` in 0..1.
        """
        size, dev = x.shape[-1], x.device
        side = self.side(size)
        mask = shape_mask(self.shape, side).to(x)
        if state is None:
            state = PatchState(self.init_patch(side, seed), {}, 0, [])
        if tuple(state.patch.shape) != (3, side, side):
            raise UserError(
                f"patch checkpoint holds a {tuple(state.patch.shape)} patch, this run needs 3x{side}x{side}; delete it "
                "to start again"
            )
        param = state.patch.to(x).clone().requires_grad_(True)
        opt = torch.optim.Adam([param], lr=self.lr)
        if state.optim:
            opt.load_state_dict(state.optim)
        n = len(x)
        xs = x.repeat_interleave(self.copies, dim=0)
        lab = (
            torch.full((n * self.copies,), int(target), device=dev)
            if target is not None
            else y.repeat_interleave(self.copies)
        )
        losses = list(state.losses)
        for k in range(state.step, self.steps):
            g = step_generator(seed, k)
            pl = sample_placements(len(xs), size, side, g, self.scale, self.max_angle_deg)
            with torch.enable_grad():
                img = paste(xs, param * 255.0, mask, pl)
                if self.transform is not None:
                    img = self.transform(img, ItemRng([g] * len(img)))
                    rep = getattr(self.transform, "repeats", 1)
                    loss = self.loss(model, img, lab.repeat_interleave(rep), target is not None)
                else:
                    loss = self.loss(model, img, lab, target is not None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            with torch.no_grad():
                param.clamp_(0.0, 1.0)
            losses.append(round(float(loss.detach()), 6))
            if on_step is not None:
                on_step(1)
            if checkpoint is not None and ((k + 1) % every == 0 or k + 1 == self.steps):
                checkpoint(PatchState(param.detach().cpu().clone(), opt.state_dict(), k + 1, losses))
        return PatchState(param.detach().cpu().clone(), opt.state_dict(), self.steps, losses)

    def to_uint8(self, patch: torch.Tensor) -> np.ndarray:
        """The 8-bit patch image ``P x P x 3``; outside a circle it is white (cut away when printed)."""
        arr = (patch.detach().cpu().clamp(0, 1) * 255).round()
        if self.shape == "circle":
            m = shape_mask(self.shape, arr.shape[-1])
            arr = torch.where(m > 0, arr, torch.full_like(arr, 255.0))
        return arr.to(torch.uint8).permute(1, 2, 0).numpy().copy()

    def params(self) -> dict[str, Any]:
        """The settings recorded in the manifest."""
        out: dict[str, Any] = {
            "area": self.area,
            "shape": self.shape,
            "steps": self.steps,
            "lr": self.lr,
            "optimizer": "adam",
            "scale": list(self.scale),
            "max_angle_deg": self.max_angle_deg,
            "copies": self.copies,
        }
        if self.transform is not None:
            out["eot"] = self.transform.params()
        return out


def check_patch_options(area: float, shape: str, lr: float) -> None:
    """Validate ``--patch-area``, ``--patch-shape`` and ``--lr``; errors name the option."""
    if not (0 < area <= 0.5):
        raise UserError(f"--patch-area {area:g}: must be a share of the image area in (0, 0.5], e.g. 0.1")
    if shape not in SHAPES:
        raise UserError(f"--patch-shape {shape!r}: choose {' or '.join(SHAPES)}")
    if not (0 < lr <= 1):
        raise UserError(f"--lr {lr:g}: must be in (0, 1] (Adam on the patch in 0..1 units)")


def paste_uint8(clean: np.ndarray, patch: np.ndarray, shape: str, placement: Placement) -> np.ndarray:
    """Replay a recorded placement: paste the 8-bit ``patch`` (``P x P x 3``) onto the 8-bit ``clean`` image.

    Returns the 8-bit item image exactly as ``photoproof craft`` saved it.
    """
    x = torch.from_numpy(np.ascontiguousarray(clean)).permute(2, 0, 1)[None].float()
    p = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float()
    out = paste(x, p, shape_mask(shape, p.shape[-1]), [placement])
    return out[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy().copy()
