"""Attack mechanics on weight-free toy models and tiny images: fast, no zoo weights.

Properties, not magic numbers: every attack stays in the ε-ball, in [0, 255] and
on the 8-bit lattice; targeted attacks raise the target; the randomness of an
item does not depend on the other items of its batch; the lattice step repairs
what rounding undid; bad options are one-line errors naming the option.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contracts.errors import UserError
from contracts.profile import load_profile
from craft.attacks import (
    ALIASES,
    ATTACKS,
    BIM,
    DIFGSM,
    FGSM,
    MIFGSM,
    PGD,
    Attack,
    AttackSpec,
    DiverseInputs,
    Goal,
    ItemRng,
    LeastLikely,
    ascent_gradient,
    build_attack,
    kurakin_steps,
    parse_spec,
)
from craft.attacks.updates import Momentum
from craft.ensemble import Ensemble
from craft.job import CraftConfig, item_id, random_target
from testkit.toys import ConvToy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def toy() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (4, 3, 12, 12), generator=g).float()
    x[0, :, 0, 0] = 0.0
    x[1, :, 0, 0] = 255.0
    return ConvToy(), x, torch.tensor([1, 2, 3, 4])


SPECS = [*ATTACKS, "mifgsm+di", "pgd+di", "bim+di"]


@pytest.mark.parametrize("eps", [1.0, 2.5, 8.0])
@pytest.mark.parametrize("spec", SPECS)
def test_every_attack_stays_in_the_ball_on_the_lattice(spec: str, eps: float, toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    adv = build_attack(parse_spec(spec))(model, x, y, eps)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 255
    assert torch.equal(adv, adv.round()), "adversarial images must sit on the 8-bit lattice"


@pytest.mark.parametrize("name", [n for n in ATTACKS if n != "ll"])
def test_targeted_attacks_raise_the_target_class(name: str, toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    with torch.no_grad():
        target = model(x).argmin(dim=1)  # the hardest target
        before = model(x).softmax(1).gather(1, target[:, None])
    adv = ATTACKS[name]()(model, x, y, 16.0, target=target)
    with torch.no_grad():
        after = model(adv).softmax(1).gather(1, target[:, None])
    assert (after > before).all()


@pytest.mark.parametrize("name", ["bim", "pgd", "mifgsm", "difgsm"])
def test_untargeted_attacks_lower_the_true_class(name: str, toy) -> None:  # type: ignore[no-untyped-def]
    model, x, _ = toy
    with torch.no_grad():
        y = model(x).argmax(dim=1)
        before = model(x).softmax(1).gather(1, y[:, None])
        after = model(ATTACKS[name]()(model, x, y, 8.0)).softmax(1).gather(1, y[:, None])
    assert (after < before).all()


def test_fgsm_is_one_sign_step_of_eps(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    expected = (x + 8 * xr.grad.sign()).clamp(0, 255)
    assert torch.equal(FGSM()(model, x, y, 8.0), expected)


@pytest.mark.parametrize("cls", [BIM, LeastLikely])
@pytest.mark.parametrize("eps", [1, 4, 8, 16, 32])
def test_kurakin_attacks_take_kurakins_steps_of_one(cls: type[Attack], eps: int, toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    grads = []
    model.register_forward_hook(lambda m, i, o: grads.append(i[0].requires_grad))
    cls()(model, x, y, float(eps))
    assert sum(grads) == kurakin_steps(eps) == min(eps + 4, -(-5 * eps // 4))
    assert cls().params(eps)["alpha"] == 1.0


def test_bim_matches_a_hand_written_loop(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    adv = x.clone()
    for _ in range(kurakin_steps(4)):
        a = adv.clone().requires_grad_(True)
        F.cross_entropy(model(a), y, reduction="sum").backward()
        adv = torch.min(torch.max(adv + a.grad.sign(), x - 4), x + 4).clamp(0, 255)
    assert torch.equal(BIM()(model, x, y, 4.0), adv)


def test_pgd_defaults_and_random_start(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    p = PGD().params(8.0)
    assert p["steps"] == 10 and p["alpha"] == pytest.approx(2.0) and p["random_start"] is True
    a = PGD(steps=1, alpha=0.001)(model, x, y, 8.0, generator=ItemRng.from_seeds([1, 2, 3, 4]))
    b = PGD(steps=1, alpha=0.001)(model, x, y, 8.0, generator=ItemRng.from_seeds([5, 6, 7, 8]))
    assert not torch.equal(a, b), "the random start depends on the seeds"
    assert not torch.equal(PGD(steps=1, alpha=0.001, random_start=False)(model, x, y, 8.0), a)


def test_momentum_accumulates_l1_normalised_gradients() -> None:
    step = Momentum(0.5).start()
    g1 = torch.tensor([[[[1.0, -3.0]]]])
    g2 = torch.tensor([[[[-2.0, 2.0]]]])
    step(g1.clone())
    out = step(g2.clone())
    expected = 0.5 * g1 / g1.abs().mean() + g2 / g2.abs().mean()
    assert torch.allclose(out, expected)
    assert MIFGSM(momentum=0.5).params(16)["momentum"] == 0.5


def test_mifgsm_with_zero_decay_and_full_step_equals_fgsm(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    assert torch.equal(MIFGSM(steps=1, momentum=0.0)(model, x, y, 8.0), FGSM()(model, x, y, 8.0))


class Scale:
    """A toy transform: ``k`` copies of each image scaled by known factors."""

    name = "scale"

    def __init__(self, factors: list[float]) -> None:
        self.factors = factors
        self.repeats = len(factors)

    def __call__(self, x: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        f = torch.tensor(self.factors, dtype=x.dtype).repeat(len(x))[:, None, None, None]
        return x.repeat_interleave(self.repeats, dim=0) * f

    def params(self) -> dict[str, object]:
        return {}


def test_transform_gradient_is_the_mean_over_copies(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    t = Scale([1.0, 0.5, 0.25])
    got = ascent_gradient(model, x, y, False, t, ItemRng.coerce(None, len(x)))
    want = torch.zeros_like(x)
    for c in t.factors:
        xr = x.clone().requires_grad_(True)
        F.cross_entropy(model(xr * c), y, reduction="sum").backward()
        want += xr.grad / len(t.factors)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7)


def test_diverse_inputs_resize_and_pad_per_item(toy) -> None:  # type: ignore[no-untyped-def]
    _, x, _ = toy
    di = DiverseInputs(prob=1.0)
    out = di(x, ItemRng.from_seeds([0, 1, 2, 3]))
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(DiverseInputs(prob=0.0)(x, ItemRng.from_seeds([0, 1, 2, 3])), x)
    alone = di(x[2:3], ItemRng.from_seeds([2]))
    assert torch.equal(alone, out[2:3]), "an item's draw does not depend on the rest of the batch"


@pytest.mark.parametrize("spec", ["pgd", "difgsm", "mifgsm+di"])
def test_random_attacks_are_per_item_deterministic_whatever_the_batching(spec: str, toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    attack = build_attack(parse_spec(spec))
    seeds = [11, 22, 33, 44]
    whole = attack(model, x, y, 8.0, generator=ItemRng.from_seeds(seeds))
    again = attack(model, x, y, 8.0, generator=ItemRng.from_seeds(seeds))
    assert torch.equal(whole, again)
    parts = torch.cat(
        [
            attack(model, x[i : i + 1], y[i : i + 1], 8.0, generator=ItemRng.from_seeds(seeds[i : i + 1]))
            for i in range(4)
        ]
    )
    assert torch.equal(whole, parts)


class Nudge(Attack):
    """A stub attack whose float result fools the threshold model by a margin that rounding undoes."""

    name = "nudge"
    paper = ""

    def run(self, model, x, goal, eps, rng):  # type: ignore[no-untyped-def]
        return x + 0.4


class Threshold(nn.Module):
    """Class 1 once the mean pixel rises 0.3 above 100, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3)) - 100.3
        return torch.stack([-m, m], dim=1)


def test_lattice_step_repairs_what_rounding_undid() -> None:
    x = torch.full((3, 3, 4, 4), 100.0)
    x[1] = 101.0  # fooled with or without the nudge: nothing to repair
    y = torch.zeros(3, dtype=torch.long)
    model = Threshold()
    assert (model(x + 0.4).argmax(1) == 1).all() and (model(x).argmax(1) == torch.tensor([0, 1, 0])).all()
    out = Nudge().attack(model, x, y, 2.0)
    assert torch.equal(out.adv, out.adv.round())
    assert (model(out.adv).argmax(1) == 1).all(), "the saved image still fools the model"
    assert out.repair_steps.tolist() == [1, 0, 1] and (out.adv - x).abs().max() <= 2
    plain = Nudge(repair_steps=0).attack(model, x, y, 2.0)
    assert torch.equal(plain.adv, x) and (plain.repair_steps == 0).all()


def test_lattice_step_leaves_kurakins_integer_results_alone(toy) -> None:  # type: ignore[no-untyped-def]
    model, x, y = toy
    out = BIM().attack(model, x, y, 4.0)
    assert (out.repair_steps == 0).all()


def test_goal_reached() -> None:
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert Goal(torch.tensor([1, 1]), False).reached(logits).tolist() == [False, True]
    assert Goal(torch.tensor([1, 1]), True).reached(logits).tolist() == [True, False]


def test_ensemble_resizes_for_each_member_and_averages(toy) -> None:  # type: ignore[no-untyped-def]
    _, x, y = toy
    a, b = ConvToy(0), ConvToy(1)
    seen: list[tuple[int, ...]] = []
    b.register_forward_pre_hook(lambda m, i: seen.append(tuple(i[0].shape[-2:])))
    ens = Ensemble([a, b], [12, 16], mode="logits")
    with torch.no_grad():
        z = ens(x)
    assert seen == [(16, 16)]
    assert torch.allclose(
        z, (a(x) + b(F.interpolate(x, size=(16, 16), mode="bicubic", align_corners=False))) / 2, atol=1e-5
    )
    g_logits = ascent_gradient(ens, x, y, False)
    g_loss = ascent_gradient(Ensemble([a, b], [12, 16], mode="loss"), x, y, False)
    assert g_logits.abs().sum() > 0 and g_loss.abs().sum() > 0 and not torch.allclose(g_logits, g_loss)
    adv = PGD(steps=2)(ens, x, y, 4.0)
    assert (adv - x).abs().max() <= 4


def test_specs_labels_and_aliases() -> None:
    assert parse_spec("eot") == AttackSpec("bim", eot=True)
    assert parse_spec("mi-difgsm").label == "mifgsm+di"
    assert parse_spec("mifgsm", di=True, eot=True).label == "mifgsm+di+eot"
    assert parse_spec("MIFGSM+EOT+DI").slug == "mifgsm-di-eot"
    assert parse_spec("difgsm+di").label == "difgsm", "DI is implied by difgsm"
    assert set(ALIASES) == {"eot", "mi-difgsm"}
    assert DIFGSM().label == "difgsm" and build_attack(parse_spec("pgd+di")).label == "pgd+di"


def test_targeted_item_ids_are_distinct_and_random_targets_avoid_the_label() -> None:
    spec = parse_spec("bim")
    ids = {
        item_id("p", spec, 16.0),
        item_id("p", spec, 16.0, "ll"),
        item_id("p", spec, 16.0, "random"),
        item_id("p", spec, 16.0, "7", 7),
    }
    assert len(ids) == 4
    for seed in range(200):
        t = random_target(seed, seed % 1000)
        assert 0 <= t < 1000 and t != seed % 1000
    assert random_target(5, 3) == random_target(5, 3)


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"attacks": ["deepfool"]}, "--attack"),
        ({"attacks": ["bim+xyz"]}, "--attack"),
        ({"eps": [0.0]}, "--eps"),
        ({"eps": [-4.0]}, "--eps"),
        ({"eps": [256.0]}, "--eps"),
        ({"target": "not-a-class"}, "--target"),
        ({"target": "1000"}, "--target"),
        ({"steps": 0}, "--steps"),
        ({"steps": -2}, "--steps"),
        ({"alpha": 0.0}, "--alpha"),
        ({"attacks": ["eot"], "profile": "no-such-profile"}, "--profile"),
        ({"eot": True, "profile": "/nonexistent/channel.toml"}, "--profile"),
        ({"eot": True, "eot_samples": 0}, "--eot-samples"),
        ({"attacks": ["bim"], "eot_tile_px": (400.0, 500.0)}, "--eot-tile-px"),
        ({"source": ["lite0", "resnet"]}, "resnet"),
        ({"source": ["lite0", "lite1"], "ensemble": "vote"}, "--ensemble"),
        ({"momentum": 0.5}, "--momentum"),
        ({"attacks": ["difgsm"], "di_prob": 1.5}, "--di-prob"),
        ({"attacks": ["ll"], "target": "random"}, "--target"),
        ({"repair_steps": -1}, "--repair-steps"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={v}" for k, v in v.items()),
)
def test_bad_options_are_one_line_errors_naming_the_option(kw: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UserError) as e:  # the profile is loaded at the CLI edge, as 'photoproof craft' does
        CraftConfig(**{k: load_profile(v) if k == "profile" else v for k, v in kw.items()})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_targets_parse_by_index_wordnet_id_and_name() -> None:
    assert CraftConfig(target="1").target_class() == 1
    assert CraftConfig(target="n01443537").target_class() == 1
    assert CraftConfig(target="goldfish").target_class() == 1
    assert CraftConfig(target="ll").target_class() is None
    CraftConfig(attacks=["bim", "mifgsm+di"], target="random", momentum=0.9, di_prob=0.3).validate()
