"""Attack specs: ``NAME[+di][+eot]`` strings as typed after ``--attack``, and building attacks from them.

``mifgsm+di+eot`` is MI-FGSM whose gradient is taken through input diversity on
top of the print-and-photograph channel. Aliases: ``eot`` is ``bim+eot`` and
``mi-difgsm`` is ``mifgsm+di``. ``difgsm+di`` is ``difgsm``. Every error names the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.errors import UserError
from contracts.profile import ChannelProfile
from craft.attacks.base import Attack
from craft.attacks.eot import EOT
from craft.attacks.transforms import DiverseInputs, InputTransform, compose

MODIFIERS = ("di", "eot")
ALIASES = {"eot": "bim+eot", "mi-difgsm": "mifgsm+di"}


@dataclass(frozen=True)
class AttackSpec:
    """An attack name and the input transforms added to it."""

    name: str
    di: bool = False
    eot: bool = False

    @property
    def label(self) -> str:
        """Canonical form, e.g. ``mifgsm+di+eot`` (recorded as each item's ``attack``)."""
        return "+".join([self.name, *(m for m in MODIFIERS if getattr(self, m))])

    @property
    def slug(self) -> str:
        """The label as it appears in item ids and file names (``mifgsm-di-eot``)."""
        return self.label.replace("+", "-")


def parse_spec(text: str, *, di: bool = False, eot: bool = False) -> AttackSpec:
    """Parse ``NAME[+di][+eot]``; ``di``/``eot`` add the modifier (the ``--di``/``--eot`` flags).

    Raises:
        UserError: naming ``--attack`` for an unknown attack or modifier.
    """
    from craft.attacks import ATTACKS, UNIVERSAL

    raw = text.strip().lower()
    parts = ALIASES.get(raw, raw).split("+")
    name, mods = parts[0], parts[1:]
    if name in ALIASES:
        expanded = ALIASES[name].split("+")
        name, mods = expanded[0], expanded[1:] + mods
    if name not in ATTACKS and name not in UNIVERSAL:
        known = ", ".join([*ATTACKS, *ALIASES, *UNIVERSAL])
        raise UserError(f"--attack {text!r}: unknown attack; choose from {known} (add +di and/or +eot)")
    for m in mods:
        if m not in MODIFIERS:
            raise UserError(f"--attack {text!r}: unknown modifier {m!r}; use +di and/or +eot")
    di = (di or "di" in mods) and name != "difgsm"
    return AttackSpec(name, di=di, eot=eot or "eot" in mods)


@dataclass(frozen=True)
class AttackSettings:
    """The algorithm options of ``photoproof craft``; ``None`` keeps each attack's default."""

    steps: int | None = None
    alpha: float | None = None
    momentum: float | None = None
    random_start: bool | None = None
    di_prob: float | None = None
    eot_samples: int = 8
    eot_tile_px: tuple[float, float] | None = (
        None  # EOT's tile sides in camera pixels; None: the profile's framing of a 60 mm tile
    )
    profile: ChannelProfile | None = None  # EOT's channel; None: the default preset
    repair_steps: int = 10
    amp: bool = False


def build_attack(spec: AttackSpec, settings: AttackSettings = AttackSettings()) -> Attack:
    """An attack object for ``spec`` with the settings that apply to it."""
    from craft.attacks import ATTACKS

    cls = ATTACKS[spec.name]
    transforms: list[InputTransform] = []
    if spec.eot:
        transforms.append(EOT(settings.profile, settings.eot_samples, settings.eot_tile_px))
    if spec.di:
        transforms.append(DiverseInputs(settings.di_prob if settings.di_prob is not None else 0.5))
    kw: dict[str, Any] = {k: getattr(settings, k) for k in cls.options if getattr(settings, k) is not None}
    return cls(transform=compose(transforms), repair_steps=settings.repair_steps, amp=settings.amp, **kw)
