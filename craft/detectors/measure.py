"""The digital hiding measurement: attack MTCNN on each photo, then ask every detector what it still finds.

Per photo, the ground truth is MTCNN's detections on the clean 8-bit image (the
faces the source detects). For each detector D (the source, and each target):

- ``clean``: truth faces D finds on the clean image (IoU >= 0.5);
- ``hidden``: of those, the ones D no longer finds on the adversarial image.

The hiding rate of D is ``Σ hidden / Σ clean`` (paired: a face counts only where D
found it clean); ``python -m tools.face_hiding`` adds its 95% interval clustered by photo.
The target detectors are passed in as functions (craft never imports capture).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from channel.controls import sign_noise as noise_u8
from contracts.detection import Detections, found
from craft.attacks.base import Attack
from craft.detectors.mtcnn import MTCNN
from craft.detectors.photos import FacePhoto
from craft.detectors.vanish import Vanish, labels_for

log = logging.getLogger(__name__)

Detect = Callable[[np.ndarray], Detections]


@dataclass
class PhotoResult:
    """One photo: its truth boxes, and per detector (faces found clean, of those hidden by the attack)."""

    key: str
    truth: Detections
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # detector -> (hidden, found clean)
    adv: np.ndarray | None = None  # the adversarial image, H x W x 3 uint8


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 to ``1 x 3 x H x W`` float pixels."""
    return torch.from_numpy(np.array(rgb, np.uint8, copy=True)).permute(2, 0, 1)[None].float()


def sign_noise(x: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
    """The control: every pixel moved by ``±ε`` at random (the budget spent with no gradient), clipped to 0..255
    (:func:`channel.controls.sign_noise`, which the face sweep's control uses too; its seed drawn from ``gen``)."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    out = [noise_u8(im.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy(), eps, rng) for im in x]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x)


def hide_faces(
    photo: FacePhoto,
    attack: Attack | None,
    eps: float,
    mtcnn: MTCNN,
    targets: dict[str, Detect],
    *,
    seed: int = 0,
    iou: float = 0.5,
) -> PhotoResult:
    """Attack one photo with the vanishing objective (``attack`` None: :func:`sign_noise`, the control)
    and count what each detector still finds."""
    x = to_tensor(photo.rgb)
    truth = mtcnn.detect(x)[0]
    res = PhotoResult(photo.key, truth)
    if not len(truth):
        return res
    gen = torch.Generator().manual_seed(seed)
    if attack is None:
        adv_t = sign_noise(x, eps, gen)
    else:
        adv_t = attack.attack(Vanish(mtcnn), x, labels_for(x), eps, generator=gen).adv
    adv = adv_t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    res.adv = adv
    detectors: dict[str, Detect] = {"mtcnn": lambda im: mtcnn.detect(to_tensor(im))[0], **targets}
    for name, detect in detectors.items():
        before = found(truth.boxes, detect(photo.rgb).boxes, iou)
        after = found(truth.boxes, detect(adv).boxes, iou)
        res.counts[name] = (int((before & ~after).sum()), int(before.sum()))
    return res
