"""Crafting: the attacks' defining properties, the manifest, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contracts.manifest import load_batch, save_batch
from craft.attacks import ATTACKS, BIM, FGSM, LeastLikely, kurakin_steps
from craft.job import CraftConfig, craft_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Toy(nn.Module):
    """A weight-free-ish toy classifier on 8x8 images (fixed random weights)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(10, 3 * 8 * 8, generator=g) / 50, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh((x.flatten(1) - 127) / 128) @ self.w.T * 10


@pytest.fixture
def toy_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (4, 3, 8, 8), generator=g).float()
    x[0, :, 0, 0] = 0.0
    x[1, :, 0, 0] = 255.0
    return Toy(), x, torch.tensor([1, 2, 3, 4])


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("eps", [1.0, 4.0, 16.0])
def test_every_attack_stays_in_eps_ball_and_range(name: str, eps: float, toy_batch) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy_batch
    adv = ATTACKS[name]()(model, x, y, eps)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 255
    assert torch.equal(adv, adv.round()), "adversarial images must sit on the 8-bit lattice"


def test_fgsm_equals_hand_computed_sign_step(toy_batch) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy_batch
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    expected = (x + 8 * xr.grad.sign()).clamp(0, 255)
    assert torch.equal(FGSM()(model, x, y, 8.0), expected)


def test_fgsm_moves_every_pixel_by_eps_or_to_the_clip(toy_batch) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy_batch
    adv = FGSM()(model, x, y, 16.0)
    moved = (adv - x).abs()
    at_clip = (adv == 0) | (adv == 255)
    assert ((moved == 16) | at_clip).all()
    assert at_clip.any(), "the fixture has pixels at 0 and 255 that must clip"


@pytest.mark.parametrize("eps,steps", [(1, 2), (2, 3), (4, 5), (8, 10), (16, 20), (32, 36), (64, 68)])
def test_kurakin_step_counts(eps: int, steps: int) -> None:
    assert kurakin_steps(eps) == steps
    assert BIM().params(eps)["steps"] == steps
    assert LeastLikely().params(eps)["steps"] == steps


def test_bim_runs_kurakins_number_of_gradient_steps(toy_batch) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy_batch
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].requires_grad))
    BIM()(model, x, y, 8.0)
    assert sum(calls) == kurakin_steps(8.0)


def test_ll_raises_the_least_likely_class(toy_batch) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy_batch
    with torch.no_grad():
        ll = model(x).argmin(1)
        before = model(x).softmax(1).gather(1, ll[:, None])
        after = model(LeastLikely()(model, x, y, 16.0)).softmax(1).gather(1, ll[:, None])
    assert (after > before).all()


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("craft") / "batch"
    craft_batch(out, CraftConfig(limit=3, attacks=["fgsm"], eps=[8.0], seed=3))
    return out


def test_manifest_records_items_on_saved_pngs(crafted: Path) -> None:
    from PIL import Image

    batch = load_batch(crafted)
    assert len(batch.items) == 3
    assert batch.models[0].name == "lite0" and len(batch.models[0].weights_sha256) == 64
    for it in batch.items:
        clean = np.asarray(Image.open(crafted / it.clean.path)).astype(int)
        adv = np.asarray(Image.open(crafted / it.adv.path)).astype(int)
        assert clean.shape == (224, 224, 3)
        d = np.abs(adv - clean)
        assert ((d == 8) | (adv == 0) | (adv == 255)).all()
        assert len(it.adv.top5["lite0"]) == 5 and it.label.source == "filename"


def test_batch_json_round_trips(crafted: Path, tmp_path: Path) -> None:
    batch = load_batch(crafted)
    save_batch(tmp_path, batch)
    assert json.loads((tmp_path / "batch.json").read_text()) == json.loads((crafted / "batch.json").read_text())
    assert load_batch(crafted).to_dict() == batch.to_dict()


def test_resume_skips_finished_items_and_redoes_damaged_ones(crafted: Path) -> None:
    batch = load_batch(crafted)
    victim = crafted / batch.items[1].adv.path
    victim.write_bytes(b"truncated")
    stamps = {it.id: (crafted / it.adv.path).stat().st_mtime_ns for it in batch.items}
    craft_batch(crafted, CraftConfig(limit=3, attacks=["fgsm"], eps=[8.0], seed=3))
    after = load_batch(crafted)
    assert [it.id for it in after.items] == [it.id for it in batch.items]
    for it in after.items:
        same = (crafted / it.adv.path).stat().st_mtime_ns == stamps[it.id]
        assert same == (it.id != batch.items[1].id)
    assert after.items[1].adv.sha256 == batch.items[1].adv.sha256, "re-crafting is deterministic"


def test_resume_with_other_options_is_refused(crafted: Path) -> None:
    from contracts.errors import UserError

    with pytest.raises(UserError, match="other options"):
        craft_batch(crafted, CraftConfig(limit=3, attacks=["fgsm"], eps=[4.0], seed=3))
