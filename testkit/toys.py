"""Weight-free toy models for the attack tests (torch): small, frozen, seeded."""

from __future__ import annotations

import torch
from torch import nn


class ConvToy(nn.Module):
    """A frozen random conv net for any image size: conv, tanh, global mean, linear (10 classes)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) / 3)
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g))
            for bias in (self.conv.bias, self.fc.bias):
                assert bias is not None  # both layers are built with a bias
                bias.zero_()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.conv((x - 127.5) / 64)).mean(dim=(2, 3))) * 4
