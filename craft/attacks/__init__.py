"""The attack registry: one attack per file, a plain dict from name to class.

Input transforms (``+di``, ``+eot``) and update rules (momentum) are small
objects that every gradient attack accepts; see :mod:`craft.attacks.spec` for
``NAME[+di][+eot]`` strings.

- ``base``: what every attack shares (call signature, goal, gradient, 8-bit lattice);
- ``iterative``: the one gradient loop of the iterative attacks;
- ``fgsm``, ``bim``, ``ll``, ``pgd``, ``mifgsm``, ``difgsm``: one attack per file;
- ``norms``: the L∞ threat model (random start, step, projection);
- ``updates``: gradient update rules (momentum);
- ``transforms``: input transforms (diverse inputs, composition);
- ``eot``: Expectation over Transformation through the channel twin;
- ``rng``: one generator per image;
- ``spec``: ``NAME[+di][+eot]`` strings and the settings that build an attack;
- ``patch``: the universal adversarial patch (Brown et al. 2017), optimised over all images at once (``UNIVERSAL``).
"""

from __future__ import annotations

from contracts.errors import UserError
from craft.attacks.base import Attack, AttackOutput, Goal, ascent_gradient, kurakin_steps
from craft.attacks.bim import BIM
from craft.attacks.difgsm import DIFGSM
from craft.attacks.eot import EOT
from craft.attacks.fgsm import FGSM
from craft.attacks.iterative import IterativeAttack
from craft.attacks.ll import LeastLikely, least_likely
from craft.attacks.mifgsm import MIFGSM
from craft.attacks.norms import LINF, project, to_lattice
from craft.attacks.patch import AdversarialPatch
from craft.attacks.pgd import PGD
from craft.attacks.rng import ItemRng
from craft.attacks.spec import ALIASES, AttackSettings, AttackSpec, build_attack, parse_spec
from craft.attacks.transforms import Compose, DiverseInputs

ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, BIM, LeastLikely, PGD, MIFGSM, DIFGSM)}
# Universal attacks: optimised over all the batch's images at once (craft.patchjob runs them as a stage).
UNIVERSAL: dict[str, type[AdversarialPatch]] = {AdversarialPatch.name: AdversarialPatch}


def get_attack(name: str) -> type[Attack]:
    """Look an attack up by name; an unknown name is a one-line error listing the known ones."""
    try:
        return ATTACKS[name]
    except KeyError:
        raise UserError(f"--attack {name!r}: unknown attack; choose from {', '.join([*ATTACKS, *ALIASES])}") from None


__all__ = [
    "ALIASES",
    "ATTACKS",
    "AdversarialPatch",
    "Attack",
    "AttackOutput",
    "AttackSettings",
    "AttackSpec",
    "BIM",
    "Compose",
    "DIFGSM",
    "DiverseInputs",
    "EOT",
    "FGSM",
    "Goal",
    "ItemRng",
    "IterativeAttack",
    "LINF",
    "LeastLikely",
    "MIFGSM",
    "PGD",
    "ascent_gradient",
    "build_attack",
    "get_attack",
    "kurakin_steps",
    "least_likely",
    "parse_spec",
    "project",
    "to_lattice",
    "UNIVERSAL",
]
