"""A user's own torch face detector, as a user would write one: ``--source pnet_detector:make_detector`` (from tests/).

A real, small, one-stage detector built on MTCNN's proposal network (PNet, Zhang et
al. 2016, https://arxiv.org/abs/1604.02878), written here to match facenet-pytorch's
``pnet.pt`` and loaded with ``torch.load(weights_only=True)``. PNet slides its 12 x 12
window over a small image pyramid of the fixed ``input_size`` input, and every cell
is a candidate with its face probability and its regressed box. It follows the
protocol of :mod:`craft.detectors.userdet` and uses nothing of Photoproof but where
the weights lie, so the tests exercise what a user's detector goes through. The
other factories here are the wrong kinds the protocol refuses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contracts.detection import get_detector, weights_path


class PNet(nn.Module):
    """MTCNN's proposal network, written to match facenet-pytorch's ``pnet.pt``; returns the face logit margin and
    the box regression per 12 x 12 window at stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        z = self.conv4_1(x)
        return z[:, 1] - z[:, 0], self.conv4_2(x)


class PNetFaces(nn.Module):
    """PNet as a dense face detector on ``N x 3 x S x S`` images normalised as MTCNN's (``(x - 127.5) / 128``)."""

    task = "face-detector"
    score_threshold = 0.95
    nms_iou = 0.3
    input_size = 96
    mean = (127.5, 127.5, 127.5)
    std = (128.0, 128.0, 128.0)
    scales = (0.5, 0.35, 0.25)  # 12-pixel windows: faces of about 24, 34 and 48 pixels of the 96-pixel input

    def __init__(self) -> None:
        super().__init__()
        self.pnet = PNet()
        path = weights_path(get_detector("mtcnn")) / "pnet.pt"
        self.pnet.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``N x K`` (face probability per PNet cell) and boxes ``N x K x 4`` in ``x``'s pixels."""
        n, _, h, w = x.shape
        scores, boxes = [], []
        for s in self.scales:
            d, reg = self.pnet(F.interpolate(x, size=(int(h * s), int(w * s)), mode="area"))
            gy, gx = torch.meshgrid(
                torch.arange(d.shape[1], dtype=x.dtype), torch.arange(d.shape[2], dtype=x.dtype), indexing="ij"
            )
            x0, y0 = (2 * gx) / s, (2 * gy) / s
            side = 12 / s
            base = torch.stack([x0, y0, x0 + side, y0 + side], dim=-1)  # h' x w' x 4
            b = base[None] + reg.permute(0, 2, 3, 1) * side  # the cell's regression, in units of its window
            scores.append(torch.sigmoid(d).reshape(n, -1))
            boxes.append(b.reshape(n, -1, 4))
        return torch.cat(scores, dim=1), torch.cat(boxes, dim=1)


def make_detector() -> nn.Module:
    """The factory ``--source`` names."""
    return PNetFaces().eval()


class _Wrapped(nn.Module):
    """The protocol's marker around :class:`PNetFaces`, for the wrong kinds below."""

    task = "face-detector"

    def __init__(self) -> None:
        super().__init__()
        self.inner = PNetFaces()


class _Logits(_Wrapped):
    score_threshold = 0.95

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)[0]  # one tensor, a classifier's output


class _Detached(_Wrapped):
    score_threshold = 0.95

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, b = self.inner(x)
        return s.detach(), b


class _NoThreshold(_Wrapped):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, b = self.inner(x)
        return s, b


def make_classifier_shaped() -> nn.Module:
    """Declares the protocol but returns one tensor (a classifier's output): refused at load."""
    return _Logits()


def make_detached() -> nn.Module:
    """Scores computed without a gradient to the input: refused at load (the attacks need one)."""
    return _Detached()


def make_no_threshold() -> nn.Module:
    """The protocol without its threshold: refused at load."""
    return _NoThreshold()


def make_a_string() -> str:
    """Not a module at all."""
    return "a face detector"


NOT_CALLABLE = 3
