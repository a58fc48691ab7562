"""A printable face sticker: one universal patch, placed by each face's box, optimised to make MTCNN's faces vanish.

The adversarial patch of Brown et al. 2017 (https://arxiv.org/abs/1712.09665), made
for a detector as in the physical sticker attacks on face systems (AdvHat, Komkov
and Petiushko 2019, https://arxiv.org/abs/1908.08705: a sticker on the forehead):

- **placement by the face**: the patch's side is ``side_frac`` times the width of
  the face's box (MTCNN's clean detection, the item's truth), its centre on the
  box's vertical axis at ``y0 + rise * h`` (the forehead and brows); only the
  largest face of a photo carries it;
- **expectation over transformation**: at each step every photo gets the patch with
  its placement jittered (scale ±10%, centre ±5% of the box, rotation ±10°), then,
  with ``+eot``, ``samples`` draws of the print-and-photograph channel twin
  (:class:`craft.attacks.eot.EOT`);
- **objective**: Adam descends the vanishing energy (:class:`craft.detectors.vanish.Vanish`:
  every candidate's face margin above its stage's threshold) summed over the copies.

Randomness at step ``k`` comes from :func:`craft.attacks.patch.step_generator`
``(seed, k)``. The patch is ``3 x P x P`` in 0..1 while optimised; every item
image pastes its 8-bit PNG with :func:`craft.attacks.patch.paste_uint8` at the
recorded (unjittered) placement, so the saved PNG replays exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from craft.attacks.eot import EOT
from craft.attacks.patch import Placement, paste, shape_mask, step_generator
from craft.attacks.rng import ItemRng
from craft.detectors.vanish import FaceSource, Vanish

log = logging.getLogger(__name__)

JITTER_SCALE, JITTER_SHIFT, JITTER_DEG = 0.10, 0.05, 10.0


@dataclass(frozen=True)
class FacePatchSettings:
    """The sticker's size, place and optimiser (recorded in each item's ``params``)."""

    side_frac: float = 0.5  # the patch's side / the face box's width
    rise: float = 0.2  # its centre: y0 + rise * box height
    patch_px: int = 64  # the patch image's side in pixels (it is resampled to each face)
    shape: str = "square"
    steps: int = 100
    lr: float = 0.05
    copies: int = 1  # jittered placements per photo and step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def largest_face(boxes: np.ndarray) -> np.ndarray | None:
    """The box (``x0, y0, x1, y1``) of largest area, or ``None``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(b):
        return None
    return b[int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))]


def face_placement(box: np.ndarray, s: FacePatchSettings, jitter: Sequence[float] | None = None) -> Placement:
    """Where the sticker goes on the face ``box``; ``jitter``: four uniforms in 0..1 (scale, dx, dy, angle)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    side, cx, cy, angle = s.side_frac * w, (x0 + x1) / 2, y0 + s.rise * h, 0.0
    if jitter is not None:
        a, b, c, d = jitter
        side *= 1 + JITTER_SCALE * (2 * a - 1)
        cx += JITTER_SHIFT * w * (2 * b - 1)
        cy += JITTER_SHIFT * h * (2 * c - 1)
        angle = JITTER_DEG * (2 * d - 1)
    return Placement(cx, cy, max(side, 2.0), angle)


def init_patch(px: int, seed: int) -> torch.Tensor:
    """Uniform noise in 0..1, ``3 x P x P``, from ``seed``."""
    return torch.rand(3, px, px, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float32)


def fit_face_patch(
    det: FaceSource,
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    s: FacePatchSettings,
    *,
    seed: int,
    eot: EOT | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Optimise one sticker over the photos (``H x W x 3`` uint8, each with its face box); returns the patch
    (``3 x P x P``, 0..1) and the loss per step."""
    vanish = Vanish(det)
    xs = [torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() for im in images]
    mask = shape_mask(s.shape, s.patch_px)
    param = init_patch(s.patch_px, seed).requires_grad_(True)
    opt = torch.optim.Adam([param], lr=s.lr)
    losses: list[float] = []
    for k in range(s.steps):
        g = step_generator(seed, k)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for x, box in zip(xs, boxes, strict=True):
            u = torch.rand(s.copies, 4, generator=g, dtype=torch.float64).tolist()
            with torch.enable_grad():
                img = paste(x.expand(s.copies, -1, -1, -1), param * 255.0, mask, [face_placement(box, s, j) for j in u])
                if eot is not None:
                    img = eot(img, ItemRng([g] * len(img)))
                loss = vanish.energy(img).sum() / len(xs)
                loss.backward()  # per photo: photos differ in size, and memory stays one photo's
            total += float(loss.detach())
        opt.step()
        with torch.no_grad():
            param.clamp_(0.0, 1.0)
        losses.append(round(total, 6))
        if on_step is not None:
            on_step(1)
    return param.detach().clone(), losses


def to_uint8(patch: torch.Tensor, shape: str) -> np.ndarray:
    """The 8-bit sticker ``P x P x 3``; outside a circle it is white (cut away when printed)."""
    arr = (patch.detach().clamp(0, 1) * 255).round()
    if shape == "circle":
        arr = torch.where(shape_mask(shape, arr.shape[-1]) > 0, arr, torch.full_like(arr, 255.0))
    return arr.to(torch.uint8).permute(1, 2, 0).numpy().copy()


def area_of_face(s: FacePatchSettings) -> float:
    """The share of the face box's area the sticker covers (a square box: its width is its height)."""
    return s.side_frac**2 * (1.0 if s.shape == "square" else math.pi / 4)
