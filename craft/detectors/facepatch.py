"""A printable face sticker: one universal patch, placed by each face's box or landmarks, to make MTCNN's faces vanish.

The adversarial patch of Brown et al. 2017 (https://arxiv.org/abs/1712.09665), made
for a detector as in the physical sticker attacks on face systems (AdvHat, Komkov
and Petiushko 2019, https://arxiv.org/abs/1908.08705: a sticker on the forehead):

- **placement by the face** (``place``), on the largest face of each photo only:

  - ``box``: the patch's side is ``side_frac`` times the width of the face's box
    (MTCNN's clean detection, the item's truth), its centre on the box's vertical
    axis at ``y0 + rise * h`` (the forehead and brows), upright;
  - ``landmarks``: from the two eyes of MTCNN's five landmarks (ONet, Zhang et al.
    2016): the patch turns with the eyes' line, its side is ``side_frac`` times a face
    width of :data:`FACE_W_PER_EYES` eye distances, its centre :data:`RISE_PER_EYES`
    eye distances above the eyes' midpoint, perpendicular to their line. The two
    constants are the medians over the first 8 LFW crops (the sticker's training
    faces in ``tools.face_sticker``), so on an upright face the two placements agree
    on average; the landmarks add the head's roll and follow the eyes, not the box.
    Accessories aligned by facial landmarks are those of Sharif et al. 2016
    (eyeglass frames, https://doi.org/10.1145/2976749.2978392) and AdvHat's forehead
    sticker on the landmark-aligned face (Komkov and Petiushko 2019);
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
FACE_W_PER_EYES = 2.16  # MTCNN's box width / the eye distance: median of LFW crops 0-7 (2.03-2.38)
RISE_PER_EYES = 0.54  # the box placement's centre above the eyes' midpoint / the eye distance (0.48-0.62)
PLACES = ("box", "landmarks")
DEFAULT_PLACE = "landmarks"  # a worn sticker turns with the head; the box does not (docs/detectors.md)


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
    place: str = DEFAULT_PLACE  # landmarks (the eyes' line), or box

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def largest_face(boxes: np.ndarray) -> np.ndarray | None:
    """The box (``x0, y0, x1, y1``) of largest area, or ``None``."""
    k = largest_index(boxes)
    return None if k is None else np.asarray(boxes, np.float64).reshape(-1, 4)[k]


def largest_index(boxes: np.ndarray) -> int | None:
    """The index of the box of largest area, or ``None``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))) if len(b) else None


def face_placement(
    box: np.ndarray,
    s: FacePatchSettings,
    jitter: Sequence[float] | None = None,
    landmarks: np.ndarray | None = None,
) -> Placement:
    """Where the sticker goes on the face ``box`` (``s.place``: by the box, or by the eyes of ``landmarks``, MTCNN's
    ``x0, y0, ..., x4, y4``); ``jitter``: four uniforms in 0..1 (scale, shift along and across, angle)."""
    if s.place == "landmarks":
        if landmarks is None or len(landmarks) < 4 or not np.isfinite(landmarks[:4]).all():
            raise ValueError("the sticker is placed by landmarks, and this face has none")
        return eyes_placement(np.asarray(landmarks, np.float64)[:4], s, jitter)
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


def eyes_placement(eyes: np.ndarray, s: FacePatchSettings, jitter: Sequence[float] | None = None) -> Placement:
    """The sticker by the eyes (``xl, yl, xr, yr``: the eye on the image's left first): rotated with their line,
    scaled by their distance, centred above their midpoint (module docstring)."""
    xl, yl, xr, yr = (float(v) for v in eyes)
    dist = max(math.hypot(xr - xl, yr - yl), 1.0)
    angle = math.degrees(math.atan2(yr - yl, xr - xl))
    along = np.array([xr - xl, yr - yl]) / dist  # the eyes' line, image-left to image-right
    up = np.array([along[1], -along[0]])  # perpendicular, towards the forehead (image y points down)
    face_w = FACE_W_PER_EYES * dist
    side, rise, shift = s.side_frac * face_w, RISE_PER_EYES * dist, 0.0
    if jitter is not None:
        a, b, c, d = jitter
        side *= 1 + JITTER_SCALE * (2 * a - 1)
        shift = JITTER_SHIFT * face_w * (2 * b - 1)
        rise += JITTER_SHIFT * face_w * (2 * c - 1)
        angle += JITTER_DEG * (2 * d - 1)
    cx, cy = np.array([(xl + xr) / 2, (yl + yr) / 2]) + shift * along + rise * up
    return Placement(float(cx), float(cy), max(side, 2.0), angle)


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
    landmarks: Sequence[np.ndarray | None] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Optimise one sticker over the photos (``H x W x 3`` uint8, each with its face box and, to place it by
    them, its landmarks); returns the patch (``3 x P x P``, 0..1) and the loss per step."""
    marks = list(landmarks) if landmarks is not None else [None] * len(boxes)
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
        for x, box, lm in zip(xs, boxes, marks, strict=True):
            u = torch.rand(s.copies, 4, generator=g, dtype=torch.float64).tolist()
            where = [face_placement(box, s, j, lm) for j in u]
            with torch.enable_grad():
                img = paste(x.expand(s.copies, -1, -1, -1), param * 255.0, mask, where)
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
