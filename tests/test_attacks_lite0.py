"""The properties users care about, on the real lite0 and six labelled sample photos.

Each attack at ε = 8 must beat random ±ε noise of the same size by a wide
margin; the lattice step must keep every success of the float result on the
saved PNG; the folded gradient model must be the reference model's function.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from contracts.profile import load_profile
from craft.attacks import AttackSettings, ItemRng, build_attack, parse_spec, project, to_lattice
from craft.attacks.base import Goal
from craft.fastgrad import gradient_model
from craft.images import load_rgb, sample_photos
from craft.zoo import ZOO, load_model

N_PHOTOS = 6
EPS = 8.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lite0() -> tuple[torch.nn.Module, torch.nn.Module]:
    ref = load_model("lite0")
    return ref, gradient_model(ref)


@pytest.fixture(scope="module")
def photos(lite0) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    """The first six labelled sample photos that lite0 classifies right."""
    spec = ZOO["lite0"].spec
    labelled = [p for p in sample_photos() if p.label is not None][: 2 * N_PHOTOS]
    x = torch.from_numpy(np.stack([spec.resize_center_crop(load_rgb(p)) for p in labelled])).permute(0, 3, 1, 2).float()
    y = torch.tensor([p.label for p in labelled])
    right = ~fooled(lite0[0], x, y)
    assert right.sum() >= N_PHOTOS
    keep = right.nonzero().squeeze(1)[:N_PHOTOS]
    return x[keep].contiguous(memory_format=torch.channels_last), y[keep]


def fooled(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).argmax(dim=1) != y


def test_gradient_model_is_the_reference_function(lite0, photos) -> None:  # type: ignore[no-untyped-def]
    ref, fast = lite0
    x, _ = photos
    with torch.inference_mode():
        a, b = ref(x[:2]), fast(x[:2])
    assert (a - b).abs().max() < 1e-3
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()), "batch norms are folded"


# Short schedules keep the test fast (Kurakin's step counts are tested on toys); the defaults are stronger still.
SCHEDULES = {
    "fgsm": {},
    "bim": {"steps": 4},
    "ll": {"steps": 4},
    "pgd": {"steps": 4},
    "mifgsm": {"steps": 4},
    "difgsm": {"steps": 4},
    "eot": {"steps": 2, "alpha": 4.0, "samples": 2},
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_attacks_beat_random_noise_of_the_same_size(name: str, lite0, photos) -> None:  # type: ignore[no-untyped-def]
    ref, fast = lite0
    x, y = photos
    sched = dict(SCHEDULES[name])
    # EOT through a webcam's twin optimises for the ~190 camera pixels a 60 mm tile gets at 1080p, which need not
    # fool the model digitally (docs/physical-fidelity.md); careful-lab's 12 MP stills resolve every image pixel.
    settings = AttackSettings(
        steps=sched.get("steps"),
        alpha=sched.get("alpha"),
        eot_samples=sched.get("samples", 8),
        profile=load_profile("careful-lab"),
    )
    attack = build_attack(parse_spec(name), settings)
    adv = attack(fast, x, y, EPS, generator=ItemRng.from_seeds(range(N_PHOTOS)), check_model=ref)
    assert (adv - x).abs().max() <= EPS
    g = torch.Generator().manual_seed(0)
    noise = (x + EPS * (torch.randint(0, 2, x.shape, generator=g) * 2 - 1)).clamp(0, 255)
    attack_rate = fooled(ref, adv, y).float().mean().item()
    noise_rate = fooled(ref, noise, y).float().mean().item()
    assert attack_rate >= noise_rate + 0.5, (attack_rate, noise_rate)


def test_saved_png_still_fools_where_the_float_result_did(lite0, photos) -> None:  # type: ignore[no-untyped-def]
    """Float results just past the decision boundary: rounding them to 8 bits often undoes them."""
    ref, fast = lite0
    x, y = photos
    eps = 4.0
    attack = build_attack(parse_spec("pgd"), AttackSettings(steps=2))
    delta = attack(fast, x, y, eps, generator=ItemRng.from_seeds(range(N_PHOTOS)), check_model=ref) - x
    ok = fooled(ref, x + delta, y)
    lo, hi = torch.zeros(N_PHOTOS), torch.ones(N_PHOTOS)
    for _ in range(6):  # bisect the scale of the perturbation down to the boundary
        mid = (lo + hi) / 2
        f = fooled(ref, x + mid[:, None, None, None] * delta, y)
        hi, lo = torch.where(f, mid, hi), torch.where(f, lo, mid)
    adv_f = project(x + hi[:, None, None, None] * delta, x, eps)
    float_ok = fooled(ref, adv_f, y) & ok
    rounded_ok = fooled(ref, to_lattice(adv_f, x, eps), y)
    assert (float_ok & ~rounded_ok).any(), "plain rounding undoes some of them"
    adv, steps = attack.lattice(fast, ref, x, Goal(y, False), eps, adv_f)
    saved = []
    for img in adv.round().to(torch.uint8).permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        saved.append(np.asarray(Image.open(io.BytesIO(buf.getvalue()))))
    png = torch.from_numpy(np.stack(saved)).permute(0, 3, 1, 2).float()
    assert torch.equal(png, adv) and (png - x).abs().max() <= eps
    assert (fooled(ref, png, y) | ~float_ok).all(), "every float success survives on the saved PNG"
    assert steps.sum() > 0 and (steps[~(float_ok & ~rounded_ok)] == 0).all(), "only undone items are repaired"
