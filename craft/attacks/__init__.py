"""The attack registry: one attack per file, a plain dict from name to class."""

from __future__ import annotations

from craft.attacks.base import Attack, kurakin_steps
from craft.attacks.bim import BIM
from craft.attacks.fgsm import FGSM
from craft.attacks.ll import LeastLikely

from contracts.errors import UserError

ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, BIM, LeastLikely)}


def get_attack(name: str) -> type[Attack]:
    """Look an attack up by name; an unknown name is a one-line error listing the known ones."""
    try:
        return ATTACKS[name]
    except KeyError:
        raise UserError(f"--attack {name!r}: unknown attack; choose from {', '.join(ATTACKS)}") from None


__all__ = ["ATTACKS", "Attack", "BIM", "FGSM", "LeastLikely", "get_attack", "kurakin_steps"]
