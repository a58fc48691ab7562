"""The differentiable twin agrees with the numpy channel, passes gradients, and replays exactly.

Agreement bound (also in docs/channel-profile.md): with the noise switched off and the
same sampled parameters, the mean absolute difference between ``channel.tile.apply_tile``
and ``ChannelTwin.apply`` on a 128 x 128 test card is below 1/255 of the range for every
chain of stages up to and including ``sensor`` (the numpy sensor quantises to 8 bits), and
below 3/255 once ``jpeg`` is included (libjpeg against kornia's differentiable codec).
A chain through ``isp`` (without ``jpeg``) is held to 1.5/255: the numpy ISP reads the sensor's
8-bit codes through an 8-bit table, and its levels stretch, tone curve and unsharp mask multiply
that rounding (harsh's ISP: 1.11/255 measured); with ``jpeg`` the bound stays 3/255.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from channel import model as ch
from channel import tile
from channel.twin import STAGES, ChannelTwin, params_from_channel
from contracts.profile import PRESETS, Isp, load_profile
from testkit.sim import make_test_card

BOUND_NO_JPEG = 1.0  # in 0..255 pixel units
BOUND_JPEG = 3.0
BOUND_ISP = 1.5
SIZE = 128


def _to_tensor(card: np.ndarray) -> torch.Tensor:
    return torch.tensor(card, dtype=torch.float32).permute(2, 0, 1)[None]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("seed", [0, 1])
def test_stage_chains_agree(preset: str, seed: int) -> None:
    profile = load_profile(preset)
    twin = ChannelTwin(profile, SIZE)
    card = make_test_card(SIZE, seed=seed)
    p = ch.sample_params(profile, np.random.default_rng(100 + seed)).replace(shot_noise=0.0, read_noise=0.0)
    for k in range(1, len(STAGES) + 1):
        stages = STAGES[:k]
        a = tile.apply_tile(card, p, profile, stages)
        b = twin.apply(_to_tensor(card), params_from_channel(p), stages)[0].permute(1, 2, 0).numpy()
        mad = float(np.abs(a - b).mean())
        bound = BOUND_JPEG if "jpeg" in stages else BOUND_ISP if "isp" in stages else BOUND_NO_JPEG
        assert mad < bound, f"{preset}: stages {stages} differ by {mad:.2f}/255 (bound {bound})"


@pytest.mark.parametrize("stage", STAGES)
def test_single_stages_agree(stage: str) -> None:
    profile = load_profile("harsh")  # the strongest settings
    card = make_test_card(SIZE)
    p = ch.sample_params(profile, np.random.default_rng(7)).replace(shot_noise=0.0, read_noise=0.0)
    a = tile.apply_tile(card, p, profile, (stage,))
    b = ChannelTwin(profile, SIZE).apply(_to_tensor(card), params_from_channel(p), (stage,))[0].permute(1, 2, 0).numpy()
    assert float(np.abs(a - b).mean()) < (BOUND_JPEG if stage == "jpeg" else BOUND_NO_JPEG)


def test_a_strong_isp_agrees_stage_by_stage() -> None:
    """An ISP with every step switched on (a colour matrix too) agrees alone and after the sensor."""
    base = load_profile("office-laser-webcam")
    s_curve = tuple(x - 0.35 * np.sin(2 * np.pi * x) / (2 * np.pi) for x in np.linspace(0, 1, 17))
    isp = Isp(
        awb_strength=1.0,
        levels_strength=0.8,
        levels_black=0.02,
        levels_white=0.95,
        tone_r=tuple(float(v) ** 0.9 for v in s_curve),
        tone_g=tuple(float(v) for v in s_curve),
        tone_b=tuple(float(v) ** 1.1 for v in s_curve),
        colour_matrix=(1.2, -0.15, -0.05, -0.05, 1.1, -0.05, -0.05, -0.15, 1.2),
        sharpen_amount=0.8,
        sharpen_sigma_px=1.5,
    )
    profile = replace(base, isp=isp)
    card = make_test_card(SIZE, seed=2)
    twin = ChannelTwin(profile, SIZE)
    p = ch.sample_params(profile, np.random.default_rng(11)).replace(shot_noise=0.0, read_noise=0.0)
    for stages, bound in ((("isp",), BOUND_NO_JPEG), (("sensor", "isp"), BOUND_ISP), (STAGES[:-1], BOUND_ISP)):
        a = tile.apply_tile(card, p, profile, stages)
        b = twin.apply(_to_tensor(card), params_from_channel(p), stages)[0].permute(1, 2, 0).numpy()
        assert float(np.abs(a - b).mean()) < bound, stages
    # and the ISP does something: levels lift the sensor's black, the matrix moves colours
    plain = tile.apply_tile(card, p, base, ("sensor",))
    assert float(np.abs(tile.apply_tile(card, p, profile, ("sensor", "isp")) - plain).mean()) > 10


def test_noise_statistics_agree() -> None:
    """Same noise model: the noise std on the card differs by less than 25% and the means by < 1/255."""
    profile = load_profile("harsh")
    card = make_test_card(SIZE)
    p = ch.sample_params(profile, np.random.default_rng(3))
    stages = ("print", "light", "sensor")
    clean_np = tile.apply_tile(card, p.replace(shot_noise=0.0, read_noise=0.0), profile, stages)
    noisy_np = tile.apply_tile(card, p, profile, stages)
    twin = ChannelTwin(profile, SIZE)
    clean_t = (
        twin.apply(_to_tensor(card), params_from_channel(p.replace(shot_noise=0.0, read_noise=0.0)), stages)[0]
        .permute(1, 2, 0)
        .numpy()
    )
    noisy_t = twin.apply(_to_tensor(card), params_from_channel(p), stages)[0].permute(1, 2, 0).numpy()
    sd_np, sd_t = float((noisy_np - clean_np).std()), float((noisy_t - clean_t).std())
    assert sd_np > 0.5 and abs(sd_np - sd_t) < 0.25 * sd_np
    assert abs(float(noisy_np.mean() - noisy_t.mean())) < 1.0


def test_gradients_flow_through_every_stage() -> None:
    profile = load_profile("office-laser-webcam")
    twin = ChannelTwin(profile, 64)
    x = (_to_tensor(make_test_card(64)).repeat(2, 1, 1, 1) * 0.9 + 10).requires_grad_(True)
    y = twin(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_sampling_is_deterministic_and_within_ranges() -> None:
    profile = load_profile("inkjet-phone")
    twin = ChannelTwin(profile, 32)
    a = twin.sample(16, torch.Generator().manual_seed(5), "cpu", torch.float32)
    b = twin.sample(16, torch.Generator().manual_seed(5), "cpu", torch.float32)
    c = twin.sample(16, torch.Generator().manual_seed(6), "cpu", torch.float32)
    assert a.to_dict() == b.to_dict() and a.to_dict() != c.to_dict()
    lo, hi = profile.scene.tilt_deg
    assert float(a.tilt_deg.min()) >= lo and float(a.tilt_deg.max()) <= hi
    lo, hi = profile.camera.jpeg_quality
    assert float(a.jpeg_quality.min()) >= round(lo) and float(a.jpeg_quality.max()) <= round(hi)
    x = _to_tensor(make_test_card(32)).repeat(16, 1, 1, 1)
    assert torch.equal(twin.apply(x, a), twin.apply(x, b))


def test_device_and_dtype_come_from_the_input() -> None:
    profile = load_profile("office-laser-webcam")
    twin = ChannelTwin(profile, 32)
    p = twin.sample(2, torch.Generator().manual_seed(0))
    x = _to_tensor(make_test_card(32)).repeat(2, 1, 1, 1).double()
    assert twin.apply(x, p).dtype == torch.float64


def test_bad_arguments_name_themselves() -> None:
    twin = ChannelTwin(load_profile("harsh"), 32)
    p = twin.sample(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="stages"):
        twin.apply(torch.zeros(2, 3, 32, 32), p, ("print", "scan"))
    with pytest.raises(ValueError, match="x:"):
        twin.apply(torch.zeros(3, 3, 32, 32), p)
