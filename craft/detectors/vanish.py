"""The vanishing objective: a detector wrapped so that the ε-bounded attacks make its faces disappear.

The attacks of :mod:`craft.attacks` ascend ``objective(model, x, labels)``, which
is the model's own ``loss`` when it has one, and check success with
``Goal.reached(model(x))`` (top-1 differs from the label). :class:`Vanish`
provides both for MTCNN, so fgsm, bim, pgd, mifgsm, difgsm and ``+di``/``+eot``
run unchanged:

- ``loss`` is minus the summed hinge ``max(0, d - t + κ)`` over every candidate
  of every stage (PNet's cells at all scales, RNet's and ONet's crops), where
  ``d`` is the stage's face logit margin and ``t`` its threshold: ascending it
  pushes every face score below its stage's threshold by ``κ`` (the "vanishing"
  or disappearance attack on a cascade, in the spirit of Kaziakhmedov et al.
  2019, https://arxiv.org/abs/1910.06261, and of the detector attacks of
  Xie et al. 2017, https://arxiv.org/abs/1703.08603);
- ``forward`` returns two "logits" per image, ``[0.5, faces > 0]``, so with the
  label 1 ("a face is present") an untargeted goal is reached exactly when the
  detector finds no face at all; the least-likely class is then 0 ("no face"),
  so ``ll``, a targeted attack on it, descends the same energy.
"""

from __future__ import annotations

import torch
from torch import nn

from craft.detectors.mtcnn import MTCNN
from craft.detectors.userdet import UserDetector

PRESENT = 1  # the label every item carries: "a face is present"
FaceSource = MTCNN | UserDetector  # the zoo's MTCNN, or a user's detector (craft.detectors.userdet)


class Vanish(nn.Module):
    """A face detector seen by the attacks: ``loss`` to ascend, ``forward`` logits whose top-1 is 0 once no face is
    found.

    Args:
        detector: the MTCNN to attack, or a user's detector (its own hinge energy, :mod:`craft.detectors.userdet`).
        margin: κ, how far below each stage's threshold the margins are pushed (logit units).
    """

    def __init__(self, detector: FaceSource, margin: float = 2.0) -> None:
        super().__init__()
        self.detector = detector
        self.margin = float(margin)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Per image (``N``): the summed hinge of every candidate's margin above its stage's threshold minus κ."""
        if isinstance(self.detector, UserDetector):
            return self.detector.energy(x, self.margin)
        out = []
        for img in x:
            run = self.detector.cascade(img.float())
            terms = [
                torch.relu(d - cut + self.margin).sum() for d, cut in zip(run.margins, self.detector.cuts, strict=False)
            ]
            out.append(torch.stack(terms).sum())
        return torch.stack(out)

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The summed loss: ``-energy`` where the label is :data:`PRESENT` (untargeted attacks ascend it),
        ``+energy`` where it is 0, "no face" (a targeted attack, such as ll's least-likely class, descends it)."""
        sign = torch.where(labels == PRESENT, -1.0, 1.0).to(x)
        return (sign * self.energy(x)).sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 2``: ``[0.5, 1]`` while a face is found, ``[0.5, 0]`` once none is."""
        found = (self.detector(x) > 0).to(torch.float32)
        return torch.stack([torch.full_like(found, 0.5), found], dim=1)


def labels_for(x: torch.Tensor) -> torch.Tensor:
    """The label tensor to pass to an attack with :class:`Vanish`: :data:`PRESENT` per image."""
    return torch.full((len(x),), PRESENT, dtype=torch.long, device=x.device)
