"""What every attack shares: the call signature, the goal, the gradient and the 8-bit lattice.

In the manner of foolbox 3: settings go to the constructor, the budget ε to the
call. :meth:`Attack.attack` does the bookkeeping once (ε checks, the goal, the
ε-ball and [0, 255] clip, and the step onto the 8-bit lattice); a subclass
implements only :meth:`Attack.run`. All tensors are ``N x 3 x S x S`` RGB in
0..255 pixel units (float); device and dtype come from the input.

The lattice step (printability): a saved PNG holds integers, and rounding a
float result can undo a small perturbation. When the float result reaches the
goal on the check model but its rounding does not, the rounded image is
repaired with signed steps of exactly 1 on the lattice (so iterates stay
integer), inside the ε-ball, until it reaches the goal or ``repair_steps`` run
out. Results that round to themselves (Kurakin's attacks with an integer ε)
are never touched, so fgsm, bim and ll stay exact.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from craft.attacks.norms import project, to_lattice
from craft.attacks.rng import ItemRng
from craft.attacks.transforms import InputTransform


def kurakin_steps(eps: float) -> int:
    """Iterations of Kurakin et al.'s iterative methods: ``min(ε+4, ⌈1.25ε⌉)`` (α = 1)."""
    return int(min(eps + 4, math.ceil(1.25 * eps)))


@dataclass
class Goal:
    """What the attack aims at: the labels to move away from, or a target to reach."""

    labels: torch.Tensor  # true labels (untargeted) or target classes (targeted)
    targeted: bool

    def reached(self, logits: torch.Tensor) -> torch.Tensor:
        """Per image: top-1 is the target (targeted) or is not the true label (untargeted)."""
        top1 = logits.argmax(dim=1)
        return top1 == self.labels if self.targeted else top1 != self.labels


def objective(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The summed loss to ascend (before orientation): the model's own ``loss`` if it has one
    (ensembles averaging losses), else the cross-entropy of its logits, in fp32."""
    own = getattr(model, "loss", None)
    if callable(own):
        return own(x, labels)
    return F.cross_entropy(model(x).float(), labels, reduction="sum")


def ascent_gradient(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    targeted: bool,
    transform: InputTransform | None = None,
    rng: ItemRng | None = None,
    amp: bool = False,
) -> torch.Tensor:
    """Gradient of the attack objective w.r.t. ``x``, oriented so that ascending it helps the attack.

    Untargeted: ``+∇ CE(f(x), y)``; targeted: ``-∇ CE(f(x), t)``. With a
    ``transform`` that makes ``k`` copies per image, the loss is summed over the
    copies in one forward pass and the gradient divided by ``k`` (the mean over
    transforms, Athalye et al. 2018). The loss is summed over the batch, so each
    image's gradient does not depend on the others. ``amp`` runs the model under
    bf16 autocast on CUDA (off by default; ignored on the CPU).
    """
    x = x.detach().requires_grad_(True)
    xt, k = x, 1
    if transform is not None:
        if rng is None:
            rng = ItemRng.coerce(None, len(x))
        xt, k = transform(x, rng), transform.repeats
    lab = labels if k == 1 else labels.repeat_interleave(k)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp and x.device.type == "cuda"):
        loss = objective(model, xt, lab)
    (grad,) = torch.autograd.grad(loss, x)
    if k != 1:
        grad = grad.div_(k)
    return grad.neg_() if targeted else grad


@dataclass
class AttackOutput:
    """One batch's result: images on the lattice, the goal, and what the lattice step did."""

    adv: torch.Tensor  # N x 3 x S x S, integers in 0..255 within ε of x
    goal: Goal
    repair_steps: torch.Tensor  # N long: lattice repair steps taken per image


class Attack(abc.ABC):
    """Base class of every attack; see the module docstring.

    Args:
        transform: an input transform (DI, EOT, or both) applied at each gradient step.
        repair_steps: most lattice repair steps (0 turns the repair off).
        amp: bf16 autocast for the gradient on CUDA; the final checks stay in fp32.
    """

    name: ClassVar[str]
    paper: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()  # constructor settings that CLI options may set
    on_step: Callable[[], None] | None = None  # called after each gradient step (progress display)

    def __init__(self, *, transform: InputTransform | None = None, repair_steps: int = 10, amp: bool = False) -> None:
        if repair_steps < 0:
            raise ValueError("repair_steps must be >= 0")
        self.transform = transform
        self.repair_steps = int(repair_steps)
        self.amp = bool(amp)

    @property
    def label(self) -> str:
        """The name recorded per item: the attack plus its transforms, e.g. ``mifgsm+di+eot``."""
        ts = getattr(self.transform, "transforms", [self.transform] if self.transform is not None else [])
        order = ("di", "eot")
        names = sorted((t.name for t in ts), key=lambda n: order.index(n) if n in order else len(order))
        return "+".join([self.name, *names])

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        *,
        target: torch.Tensor | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | ItemRng | None = None,
        check_model: nn.Module | None = None,
    ) -> torch.Tensor:
        """Attack a batch and return adversarial images on the 8-bit lattice (see :meth:`attack`)."""
        return self.attack(model, x, y, eps, target=target, generator=generator, check_model=check_model).adv

    def attack(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        *,
        target: torch.Tensor | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | ItemRng | None = None,
        check_model: nn.Module | None = None,
    ) -> AttackOutput:
        """Attack a batch.

        Args:
            model: takes ``N x 3 x S x S`` pixels in 0..255, returns logits; used for gradients.
            x: clean images, integer values in 0..255.
            y: true labels, ``N`` long.
            eps: L∞ budget in 0..255 pixel units, in (0, 255].
            target: target classes (``N`` long) for a targeted attack, else ``None``.
            generator: randomness for attacks that use any: one generator per image
                (results then do not depend on batching), one for all, or ``None``.
            check_model: the model whose decision the lattice step checks (default ``model``);
                e.g. the reference model when ``model`` is a faster copy of it.

        Returns:
            Images on the 8-bit lattice, within ε of ``x`` and in [0, 255], with the goal.
        """
        if not (0 < eps <= 255):  # the library's domain; the CLI asks for 1..255 (CraftConfig.validate)
            raise ValueError(f"eps {eps:g}: must be in (0, 255] (pixel units)")
        check = check_model if check_model is not None else model
        rng = ItemRng.coerce(generator, len(x))
        goal = Goal(target, True) if target is not None else self.default_goal(check, x, y)
        with torch.enable_grad():
            adv = self.run(model, x, goal, float(eps), rng)
        adv_f = project(adv.detach(), x, eps)
        adv_q, steps = self.lattice(model, check, x, goal, float(eps), adv_f)
        return AttackOutput(adv_q, goal, steps)

    def lattice(
        self, model: nn.Module, check: nn.Module, x: torch.Tensor, goal: Goal, eps: float, adv_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Round ``adv_f`` onto the lattice and repair what rounding undid (module docstring)."""
        adv_q = to_lattice(adv_f, x, eps)
        steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
        if self.repair_steps == 0 or torch.equal(adv_q, adv_f):
            return adv_q, steps
        with torch.inference_mode():  # usually most rounded images succeed: check the float ones only where not
            miss = (~goal.reached(check(adv_q))).nonzero().squeeze(1)
            if miss.numel():
                miss = miss[Goal(goal.labels[miss], goal.targeted).reached(check(adv_f[miss]))]
        todo = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        todo[miss.clone()] = True
        for _ in range(self.repair_steps):
            idx = todo.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            sub, part = adv_q[idx], Goal(goal.labels[idx], goal.targeted)
            with torch.enable_grad():
                g = ascent_gradient(model, sub, part.labels, part.targeted, amp=self.amp)
            sub = to_lattice(sub + g.sign(), x[idx], eps)
            adv_q[idx] = sub
            steps[idx] += 1
            with torch.no_grad():
                todo[idx] = ~part.reached(check(sub))
        return adv_q, steps

    def default_goal(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Goal:
        """Untargeted by default; the least-likely-class attack overrides this."""
        return Goal(y, False)

    @abc.abstractmethod
    def run(self, model: nn.Module, x: torch.Tensor, goal: Goal, eps: float, rng: ItemRng) -> torch.Tensor:
        """Return adversarial images (float; projected and put on the lattice by the caller)."""

    def settings(self, eps: float) -> dict[str, Any]:
        """The algorithm's resolved settings at budget ``eps`` (subclasses)."""
        return {}

    def params(self, eps: float) -> dict[str, Any]:
        """The resolved settings recorded in the manifest."""
        out = self.settings(eps)
        if self.transform is not None:
            ts = getattr(self.transform, "transforms", [self.transform])
            for t in ts:
                out[t.name] = t.params()
        out["repair_steps_max"] = self.repair_steps
        if self.amp:
            out["amp"] = "bf16"
        return out
