"""EOT over the differentiable print-and-photograph twin (channel/twin.py), on toy models and tiny images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from contracts.errors import UserError
from contracts.framing import default_tile_px_range
from contracts.manifest import load_batch
from contracts.profile import load_profile
from craft.attacks import EOT, AttackSettings, ItemRng, ascent_gradient, build_attack, parse_spec
from craft.job import CraftConfig, craft_batch
from craft.options import from_cli
from testkit.toys import ConvToy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def small() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return ConvToy(), torch.randint(0, 256, (3, 3, 16, 16), generator=g).float(), torch.tensor([0, 1, 2])


def test_eot_gradient_is_the_mean_of_the_sampled_transforms_gradients(small) -> None:  # type: ignore[no-untyped-def]
    model, x, y = small
    eot = EOT(load_profile("office-laser-webcam"), samples=3)
    got = ascent_gradient(model, x, y, False, eot, ItemRng.from_seeds([1, 2, 3]))
    params = eot.sample(x, ItemRng.from_seeds([1, 2, 3]))  # the same draws, replayed
    twin = eot.twin(16)
    want = torch.zeros_like(x)
    for i in range(len(x)):
        for j in range(3):
            row = i * 3 + j
            sel = type(params)(**{k: v[row : row + 1] for k, v in vars(params).items()})
            xi = x[i : i + 1].clone().requires_grad_(True)
            F.cross_entropy(model(twin.apply(xi, sel)), y[i : i + 1], reduction="sum").backward()
            want[i] += xi.grad[0] / 3
    # Not bitwise: the twin sizes its blur kernel from the largest sigma of the whole batch.
    assert (got - want).norm() <= 1e-3 * want.norm()
    assert got.abs().sum() > 0


def test_eot_is_deterministic_for_a_seed(small) -> None:  # type: ignore[no-untyped-def]
    model, x, y = small
    attack = build_attack(parse_spec("bim+eot"), AttackSettings(eot_samples=2, steps=3))
    a = attack(model, x, y, 8.0, generator=ItemRng.from_seeds([7, 8, 9]))
    b = attack(model, x, y, 8.0, generator=ItemRng.from_seeds([7, 8, 9]))
    c = attack(model, x, y, 8.0, generator=ItemRng.from_seeds([1, 2, 3]))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a - x).abs().max() <= 8 and torch.equal(a, a.round())


def test_eot_samples_come_from_each_items_generator(small) -> None:  # type: ignore[no-untyped-def]
    _, x, _ = small
    eot = EOT(load_profile("office-laser-webcam"), samples=4)
    whole = eot.sample(x, ItemRng.from_seeds([4, 5, 6]))
    alone = eot.sample(x[1:2], ItemRng.from_seeds([5]))
    assert torch.equal(whole.tilt_deg[4:8], alone.tilt_deg) and torch.equal(whole.noise_seed[4:8], alone.noise_seed)
    assert len(whole) == 12 and eot.apply(x, whole).shape == (12, 3, 16, 16)


def test_eot_combines_with_other_attacks(small) -> None:  # type: ignore[no-untyped-def]
    model, x, y = small
    s = AttackSettings(eot_samples=2, steps=2)
    for spec in ("mifgsm+eot", "pgd+di+eot", "difgsm+eot"):
        attack = build_attack(parse_spec(spec), s)
        adv = attack(model, x, y, 4.0)
        assert (adv - x).abs().max() <= 4 and torch.equal(adv, adv.round())
        assert "eot" in attack.params(4.0) and attack.params(4.0)["eot"]["samples"] == 2
    assert build_attack(parse_spec("pgd+di+eot"), s).label == "pgd+di+eot"


def test_eot_profile_comes_from_the_channel_profile(tmp_path: Path) -> None:
    assert EOT(load_profile("harsh"), samples=1).profile == load_profile("harsh")
    assert EOT(samples=1).profile == load_profile("office-laser-webcam")  # the default preset
    with pytest.raises(UserError, match="--profile"):
        from_cli(
            CraftConfig, {"attacks": "eot", "profile": "no-such-preset"}
        )  # the name is parsed at the CLI edge, once
    with pytest.raises(TypeError, match="ChannelProfile"):
        CraftConfig(attacks=["eot"], profile="harsh")  # type: ignore[arg-type]  # a name never reaches the library


def test_eot_run_records_the_channel_and_refuses_another_profile(tmp_path: Path) -> None:
    cfg = dict(limit=1, attacks=["eot"], eps=[4.0], steps=1, eot_samples=2)
    batch = craft_batch(tmp_path / "b", CraftConfig(**cfg))  # type: ignore[arg-type]
    (it,) = batch.items
    assert it.attack == "bim+eot" and it.id == "foolbox-00-bim-eot-e4"
    lo, hi = default_tile_px_range(load_profile("office-laser-webcam"))
    assert it.params["eot"] == {"samples": 2, "profile": "office-laser-webcam", "tile_px": [round(lo, 1), round(hi, 1)]}
    assert load_batch(tmp_path / "b").config["channel"]["name"] == "office-laser-webcam"
    with pytest.raises(UserError, match="other options"):
        craft_batch(tmp_path / "b", CraftConfig(**{**cfg, "profile": load_profile("harsh")}))  # type: ignore[arg-type]
    with pytest.raises(
        UserError, match="eot_tile_px"
    ):  # the twin's tile range is part of what a resumed run must agree on
        craft_batch(tmp_path / "b", CraftConfig(**{**cfg, "eot_tile_px": (480.0, 580.0)}))  # type: ignore[arg-type]


def test_eot_tile_px_sets_the_resolution_the_twin_samples(tmp_path: Path) -> None:
    # 'print --frame-size 1920x1080' gives 118 mm tiles of about 516 px: craft for them with --eot-tile-px 480-580
    cfg = from_cli(
        CraftConfig,
        {"attacks": "bim", "eot": True, "eot_tile_px": "480-580", "limit": 1, "eps": "4", "steps": 1, "eot_samples": 2},
    )
    assert cfg.eot_tile_px == (480.0, 580.0)
    eot = EOT(cfg.profile, 16, cfg.eot_tile_px)
    p = eot.sample(torch.zeros(1, 3, 224, 224), ItemRng.from_seeds([0]))
    assert p.tile_px is not None and 480 <= float(p.tile_px.min()) and float(p.tile_px.max()) <= 580
    (it,) = craft_batch(tmp_path / "b", cfg).items
    assert it.params["eot"]["tile_px"] == [480.0, 580.0]
    assert load_batch(tmp_path / "b").config["eot_tile_px"] == [480.0, 580.0]


def test_craft_says_what_to_do_when_adversarial_pngs_miss_digitally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """EOT spreads its steps over the channel's views: at a small ε and few steps its PNGs can miss the source model
    digitally, and the craft console names them and says to craft again with more steps; with enough steps, or for
    a patch, it names the other knobs (real crafts of lite0)."""
    from app import main

    argv = ["craft", "--out", str(tmp_path / "b"), "--attack", "bim", "--eot", "--eot-samples", "2"]
    assert main([*argv, "--eps", "1", "--steps", "1", "--limit", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "bim+eot e1: 1 of 1 adversarial PNGs do not fool lite0 digitally (foolbox-00-bim-eot-e1)" in out
    assert "EOT needs more steps than the digital attack: craft into a new --out with --steps 10 (these used 1)" in out
    # with enough steps: the photographs may still fool (EOT optimises through the channel), else a larger ε
    # (the same photo at 10 steps still misses at ε 1)
    argv[2] = str(tmp_path / "b10")
    assert main([*argv, "--eps", "1", "--steps", "10", "--limit", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "do not fool lite0 digitally" in out and "EOT needs more steps" not in out
    assert "EOT optimises through the channel, so these may still fool the model once photographed" in out
    assert out.endswith("for survival figures craft into a new --out with a larger --eps")
    # a patch that misses its target: the advice is the patch's own knobs, and the line says "target"
    patch = ["craft", "--out", str(tmp_path / "p"), "--attack", "patch", "--target", "toaster", "--steps", "1"]
    assert main([*patch, "--limit", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 of 1 adversarial PNGs do not reach their target on lite0 digitally" in out
    assert out.endswith("craft into a new --out with a larger --patch-area or more --steps (docs/patch.md)")
