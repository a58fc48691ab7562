"""MTCNN in torch: the three networks, their weights, and the detection cascade, differentiable end to end.

Zhang, Zhang, Li & Qiao 2016, "Joint Face Detection and Alignment using
Multi-task Cascaded Convolutional Networks" (https://arxiv.org/abs/1604.02878).
The networks are written here to match the state dicts ``pnet.pt``, ``rnet.pt``
and ``onet.pt`` that ship inside ``facenet-pytorch`` 2.6.0 (read as data files with
``torch.load(weights_only=True)``; the package itself is never imported, so
torchvision is not needed). The cascade follows facenet-pytorch's ``detect_face``:
an image pyramid through PNet, RNet on 24 x 24 crops of its proposals, ONet on
48 x 48 crops; NMS is :func:`contracts.detection.nms` in numpy.

Each network returns the face logit margin ``d = z_face - z_background``
(``softmax > t`` exactly when ``d > log(t / (1 - t))``) next to its box regression,
so the vanishing attack can push every margin below its stage's threshold.
The candidates a stage keeps are chosen on detached values; the margins of
the kept candidates carry gradients to the input pixels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from contracts.detection import Detections, get_detector, nms, weights_path

log = logging.getLogger(__name__)


class PNet(nn.Module):
    """The proposal network: fully convolutional, a 12 x 12 window at stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``N x 3 x H x W`` normalised. Returns (margin ``N x h x w``, regression ``N x 4 x h x w``)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        z = self.conv4_1(x)
        return z[:, 1] - z[:, 0], self.conv4_2(x)


class RNet(nn.Module):
    """The refinement network on 24 x 24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``K x 3 x 24 x 24``. Returns (margin ``K``, regression ``K x 4``)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()  # the Caffe weights' flattening order
        x = self.prelu4(self.dense4(x.view(len(x), -1)))
        z = self.dense5_1(x)
        return z[:, 1] - z[:, 0], self.dense5_2(x)


class ONet(nn.Module):
    """The output network on 48 x 48 crops, with five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x``: ``K x 3 x 48 x 48``. Returns (margin ``K``, regression ``K x 4``, landmarks ``K x 10``)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(len(x), -1)))
        z = self.dense6_1(x)
        return z[:, 1] - z[:, 0], self.dense6_2(x), self.dense6_3(x)


def _load(net: nn.Module, path: Path) -> nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def logit(p: float) -> float:
    """The margin ``d`` at which the two-way softmax gives the face probability ``p``."""
    return math.log(p / (1 - p))


@dataclass
class Cascade:
    """One image's pass: the detections, and the margins of every candidate each stage saw (with gradients)."""

    detections: Detections
    margins: list[torch.Tensor] = field(default_factory=list)  # [PNet cells of all scales, RNet crops, ONet crops]


class MTCNN(nn.Module):
    """The MTCNN face detector on RGB pixels in 0..255 (``N x 3 x H x W``, any size).

    Args:
        min_face: the smallest face searched for, in pixels (facenet-pytorch's default 20).
        thresholds: PNet, RNet and ONet face probabilities (0.6, 0.7, 0.7).
        factor: the image pyramid's scale step.
    """

    def __init__(
        self, min_face: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709
    ) -> None:
        super().__init__()
        folder = weights_path(get_detector("mtcnn"))
        self.pnet = _load(PNet(), folder / "pnet.pt")
        self.rnet = _load(RNet(), folder / "rnet.pt")
        self.onet = _load(ONet(), folder / "onet.pt")
        self.min_face, self.factor = int(min_face), float(factor)
        self.thresholds = thresholds
        self.cuts = tuple(logit(t) for t in thresholds)
        self.eval()

    def scales(self, h: int, w: int) -> list[float]:
        """The pyramid: ``12 / min_face`` times powers of ``factor`` while the shorter side stays >= 12."""
        m = 12.0 / self.min_face
        side, s, out = min(h, w) * m, m, []
        while side >= 12:
            out.append(s)
            s *= self.factor
            side *= self.factor
        return out

    def cascade(self, img: torch.Tensor) -> Cascade:
        """Run the three stages on one image ``3 x H x W`` (0..255); margins keep their gradients."""
        h, w = img.shape[-2:]
        x = ((img - 127.5) * 0.0078125).unsqueeze(0)
        out = Cascade(Detections.empty())
        cand, margins = [], []
        for s in self.scales(h, w):
            d, reg = self.pnet(F.interpolate(x, size=(int(h * s + 1), int(w * s + 1)), mode="area"))
            margins.append(d.flatten())
            boxes = _pnet_boxes(d[0].detach(), reg[0].detach(), s, self.cuts[0])
            if len(boxes):
                cand.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        out.margins.append(torch.cat(margins))
        if not cand:
            return out
        b = np.concatenate(cand)
        b = b[nms(b[:, :4], b[:, 4], 0.7)]
        b = _square(_regress(b[:, :5], b[:, 5:9]))
        # RNet
        d, reg = self.rnet(_crops(x, b, w, h, 24))
        out.margins.append(d)
        ok = (d > self.cuts[1]).detach().cpu().numpy()
        if not ok.any():
            return out
        b = np.concatenate([b[ok, :4], d.detach().cpu().numpy()[ok, None]], axis=1)
        reg_np = reg.detach().cpu().numpy()[ok]
        keep = nms(b[:, :4], b[:, 4], 0.7)
        b = _square(_regress(b[keep], reg_np[keep]))
        # ONet
        d, reg, marks = self.onet(_crops(x, b, w, h, 48))
        out.margins.append(d)
        ok = (d > self.cuts[2]).detach().cpu().numpy()
        if not ok.any():
            return out
        prob = torch.sigmoid(d.detach()).cpu().numpy()[ok]
        bw, bh = b[ok, 2] - b[ok, 0] + 1, b[ok, 3] - b[ok, 1] + 1
        mk = marks.detach().cpu().numpy()[ok]
        lx = bw[:, None] * mk[:, :5] + b[ok, 0:1] - 1
        ly = bh[:, None] * mk[:, 5:] + b[ok, 1:2] - 1
        fb = _regress(np.concatenate([b[ok, :4], prob[:, None]], axis=1), reg.detach().cpu().numpy()[ok])
        keep = nms(fb[:, :4], fb[:, 4], 0.7, mode="min")
        lm = np.stack([lx, ly], axis=2).reshape(-1, 10)
        out.detections = Detections(fb[keep, :4].astype(np.float32), fb[keep, 4].astype(np.float32), lm[keep])
        return out

    @torch.no_grad()
    def detect(self, x: torch.Tensor) -> list[Detections]:
        """Faces in each image of ``x`` (``N x 3 x H x W``, 0..255)."""
        return [self.cascade(img).detections for img in x.float()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Faces found per image, a float ``N`` tensor (the attacks read it through :mod:`craft.detectors.vanish`)."""
        return torch.tensor([float(len(d)) for d in self.detect(x)], device=x.device)


def _pnet_boxes(d: torch.Tensor, reg: torch.Tensor, scale: float, cut: float) -> np.ndarray:
    """PNet cells above ``cut`` as ``K x 9`` rows: box in image pixels, probability, regression (facenet-pytorch)."""
    ys, xs = torch.nonzero(d > cut, as_tuple=True)
    if not len(ys):
        return np.zeros((0, 9), np.float32)
    prob = torch.sigmoid(d[ys, xs])
    bb = torch.stack([xs, ys], dim=1).to(d.dtype)
    q1 = ((2 * bb + 1) / scale).floor()
    q2 = ((2 * bb + 12) / scale).floor()
    r = reg[:, ys, xs].T
    return torch.cat([q1, q2, prob[:, None], r], dim=1).cpu().numpy().astype(np.float64)


def _regress(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply a stage's box regression (offsets in units of the box's size) to ``b``'s first four columns."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] += reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return b


def _square(b: np.ndarray) -> np.ndarray:
    """Each box made square around its centre, side the longer of the two."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += w * 0.5 - side * 0.5
    b[:, 1] += h * 0.5 - side * 0.5
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def _crops(x: torch.Tensor, b: np.ndarray, w: int, h: int, size: int) -> torch.Tensor:
    """Crops of ``x`` (``1 x 3 x H x W``) at boxes ``b`` clamped to the image, resized to ``size`` (area)."""
    ib = np.trunc(b[:, :4]).astype(np.int64)
    x0, y0 = np.maximum(ib[:, 0], 1), np.maximum(ib[:, 1], 1)
    x1, y1 = np.minimum(ib[:, 2], w), np.minimum(ib[:, 3], h)
    out = []
    for a, c, e, f in zip(x0, y0, x1, y1, strict=True):
        a, c = min(a, e), min(c, f)  # a box wholly outside the image still gives a one-pixel crop
        crop = x[:, :, c - 1 : f, a - 1 : e]
        out.append(F.interpolate(crop, size=(size, size), mode="area"))
    return torch.cat(out)
