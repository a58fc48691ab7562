"""The adversarial patch (Brown et al. 2017): optimisation, placement replay, resume, the craft stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from contracts.errors import UserError
from contracts.manifest import load_batch
from craft.attacks.patch import AdversarialPatch, PatchState, Placement, paste, paste_uint8, patch_side, shape_mask
from craft.config import CraftConfig
from craft.job import craft_batch
from craft.patchjob import replay_item

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ConvToy(nn.Module):
    """A tiny fixed-weight conv net with global max pooling: a patch can act wherever it lands."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) / 3)
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g))
            self.fc.bias.zero_()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x / 127.5 - 1)).amax((2, 3)))


def _images(n: int, seed: int, size: int = 24) -> torch.Tensor:
    """Smooth images: one random colour each plus mild noise, on the 8-bit lattice."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, 1, generator=g) * 255
    return (base + torch.randn(n, 3, size, size, generator=g) * 20).clamp(0, 255).round()


def _target_prob(model: nn.Module, x: torch.Tensor, patch: torch.Tensor, target: int, atk: AdversarialPatch) -> float:
    side = patch.shape[-1]
    g = torch.Generator().manual_seed(123)
    from craft.attacks.patch import sample_placements

    pl = sample_placements(len(x), x.shape[-1], side, g, (1.0, 1.0), atk.max_angle_deg)
    with torch.no_grad():
        return float(model(paste(x, patch * 255, shape_mask(atk.shape, side), pl)).softmax(1)[:, target].mean())


@pytest.mark.parametrize("shape", ["square", "circle"])
def test_patch_raises_target_probability_on_held_back_images(shape: str) -> None:
    model, target = ConvToy(), 7
    train, held = _images(6, 1), _images(6, 2)
    atk = AdversarialPatch(area=0.2, shape=shape, steps=30, lr=0.1)
    start = atk.init_patch(atk.side(24), seed=0)
    res = atk.fit(model, train, torch.zeros(6, dtype=torch.long), target=target, seed=0)
    before, after = _target_prob(model, held, start, target, atk), _target_prob(model, held, res.patch, target, atk)
    assert after > before + 0.2, (before, after)
    assert res.losses[-1] < res.losses[0]


def test_untargeted_patch_lowers_true_class_probability() -> None:
    model = ConvToy()
    train, held = _images(6, 3), _images(6, 4)
    with torch.no_grad():
        y_train, y_held = model(train).argmax(1), model(held).argmax(1)
    atk = AdversarialPatch(area=0.2, steps=30, lr=0.1)
    res = atk.fit(model, train, y_train, target=None, seed=0)
    side = atk.side(24)
    pl = [Placement(12, 12, side, 0.0)] * 6
    with torch.no_grad():
        p0 = (
            model(paste(held, atk.init_patch(side, 0) * 255, shape_mask("square", side), pl))
            .softmax(1)
            .gather(1, y_held[:, None])
            .mean()
        )
        p1 = (
            model(paste(held, res.patch * 255, shape_mask("square", side), pl))
            .softmax(1)
            .gather(1, y_held[:, None])
            .mean()
        )
    assert p1 < p0 - 0.1, (float(p0), float(p1))


def test_resumed_optimisation_equals_an_unbroken_one(tmp_path: Path) -> None:
    model, x, y = ConvToy(), _images(3, 5), torch.zeros(3, dtype=torch.long)
    full = AdversarialPatch(area=0.15, steps=6, lr=0.05).fit(model, x, y, target=3, seed=9)
    ckpt = tmp_path / "p.state.pt"
    AdversarialPatch(area=0.15, steps=3, lr=0.05).fit(
        model, x, y, target=3, seed=9, checkpoint=lambda s: s.save(ckpt), every=3
    )
    state = PatchState.load(ckpt)
    assert state.step == 3
    resumed = AdversarialPatch(area=0.15, steps=6, lr=0.05).fit(model, x, y, target=3, seed=9, state=state)
    assert torch.equal(full.patch, resumed.patch)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="p.state.pt"):
        PatchState.load(ckpt)


def test_paste_places_the_patch_where_recorded() -> None:
    clean = np.zeros((40, 40, 3), np.uint8)
    patch = np.full((10, 10, 3), 200, np.uint8)
    out = paste_uint8(clean, patch, "square", Placement(cx=25.0, cy=15.0, side=10.0, angle_deg=0.0))
    ys, xs = np.nonzero(out[..., 0] == 200)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 29, 10, 19)
    assert out.sum() == 200 * 3 * 100
    turned = paste_uint8(clean, patch, "square", Placement(cx=20.0, cy=20.0, side=10.0, angle_deg=45.0))
    assert turned[20, 15, 0] > 150 and turned[14, 14, 0] == 0, "rotated 45 degrees: a diamond"
    assert patch_side(0.1, 224, "square") == 71 and patch_side(0.1, 224, "circle") == 80


def test_bad_patch_options_name_the_option() -> None:
    with pytest.raises(UserError, match="--patch-area"):
        CraftConfig(attacks=["patch"], patch_area=0.9).validate()
    with pytest.raises(UserError, match="--patch-shape"):
        CraftConfig(attacks=["patch"], patch_shape="star").validate()
    with pytest.raises(UserError, match="--target random"):
        CraftConfig(attacks=["patch"], target="random").validate()


@pytest.mark.slow
def test_craft_patch_stage_records_replayable_items_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "b"
    cfg = dict(limit=2, attacks=["patch"], steps=2, target="859", patch_shape="circle", seed=4)
    batch = craft_batch(out, CraftConfig(**cfg))  # type: ignore[arg-type]
    assert len(batch.items) == 2
    meta = json.loads((out / "patches" / "patch-circle-a10-t859.json").read_text())
    png = out / meta["path"]
    with Image.open(png) as im:
        assert im.mode == "RGB" and im.size == (80, 80)
    for it in batch.items:
        assert it.attack == "patch" and it.target == 859 and it.params["steps"] == 2 and it.params["lr"] == 0.05
        with Image.open(out / it.adv.path) as im:
            saved = np.asarray(im.convert("RGB"))
        assert np.array_equal(replay_item(out, it), saved), "the recorded placement replays the saved PNG"
        assert it.adv.top5["lite0"][0][1] > 0
    stamp = png.stat().st_mtime_ns
    again = craft_batch(out, CraftConfig(**cfg))  # type: ignore[arg-type]
    assert png.stat().st_mtime_ns == stamp, "a finished patch is not optimised again"
    assert [i.adv.sha256 for i in again.items] == [i.adv.sha256 for i in load_batch(out).items]
    assert [i.adv.sha256 for i in again.items] == [i.adv.sha256 for i in batch.items]
