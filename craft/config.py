"""The options of ``photoproof craft``, declared once, as :class:`CraftConfig`.

Each field carries its flag and help (:func:`craft.options.option`); the command
line is built from them, and a config is validated when it is made. Torch-free:
the checks that need the attack registry or the zoo import them when they run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from contracts.classes import parse_label
from contracts.errors import UserError
from contracts.profile import DEFAULT_PRESET, ChannelProfile, default_profile, load_profile
from craft.options import comma_list, identity_keys, option

if TYPE_CHECKING:
    from craft.attacks import AttackSettings, AttackSpec

TARGET_MODES = ("ll", "random")


@dataclass
class CraftConfig:
    """Every option of ``photoproof craft``, fully resolved, declared once.

    Each field carries its command-line flag and help (:func:`craft.options.option`);
    ``photoproof craft`` is built from them. A config is validated when it is made.
    """

    images: str = option("--images", "'samples' (photos shipped with installed packages) or a folder.", "samples")
    attacks: list[str] = option(
        "--attack", "Attack(s), comma-separated: fgsm, bim, ll, pgd, mifgsm, difgsm, eot (= bim+eot); add +di and/or +eot, e.g. mifgsm+di+eot.",
        factory=lambda: ["fgsm"], cli_type=str, cli_default="fgsm", parse=comma_list(str))
    eps: list[float] = option("--eps", "ε values in 0-255 pixel units, comma-separated.", factory=lambda: [16.0], cli_type=str,
                              cli_default="16", parse=comma_list(float))
    source: list[str] = option("--source", "Source model(s), comma-separated; several make an ensemble.", factory=lambda: ["lite0"],
                               cli_type=str, cli_default="lite0", parse=comma_list(str))
    ensemble: str = option("--ensemble", "How an ensemble combines: average the 'logits' or the 'loss'.", "logits")
    target: str | None = option("--target", "Targeted: a class (index, WordNet id or name), 'll' (least likely) or 'random'.")
    steps: int | None = option("--steps", "Iterations of the iterative attacks (default: each attack's own).")
    alpha: float | None = option("--alpha", "Step size in 0-255 pixel units (default: each attack's own).")
    momentum: float | None = option("--momentum", "mifgsm's decay μ (default 1.0).")
    random_start: bool | None = option("--random-start/--no-random-start", "pgd's random start (default on).")
    # --di and --eot fold into the canonical attack names, which are compared on resume.
    di: bool = option("--di", "Add input diversity (Xie et al. 2019) to every attack.", False, identity=False)
    di_prob: float | None = option("--di-prob", "Probability of the DI transform per step (default 0.5).")
    eot: bool = option("--eot", "Average gradients over the print-and-photograph channel (EOT) for every attack.", False, identity=False)
    eot_samples: int = option("--eot-samples", "Channel samples per image and step for EOT.", 8)
    profile: ChannelProfile = option("--profile", "Channel profile for EOT: a preset name or a .toml file.", factory=default_profile,
                                     cli_type=str, cli_default=DEFAULT_PRESET, parse=lambda text, _flag: load_profile(text))
    repair_steps: int = option("--repair-steps", "Most lattice repair steps when rounding to 8 bits undoes an attack (0: off).", 10)
    amp: bool = option("--amp", "bf16 autocast for gradients on CUDA (final checks stay fp32).", False)
    limit: int | None = option("--limit", "Use only the first N photos.")
    seed: int = option("--seed", "Seed recorded with every item.", 0)
    batch_size: int = option("--batch-size", "Images per forward/backward pass.", 16, identity=False)
    device: str = option("--device", "auto, cpu or cuda[:N].", "auto", identity=False)

    def __post_init__(self) -> None:
        self.validate()

    def specs(self) -> list[AttackSpec]:
        """The attacks in canonical form, the ``--di``/``--eot`` flags folded in, duplicates dropped."""
        from craft.attacks import parse_spec

        out: list[AttackSpec] = []
        for a in self.attacks:
            spec = parse_spec(a, di=self.di, eot=self.eot)
            if spec not in out:
                out.append(spec)
        return out

    def settings(self) -> AttackSettings:
        """The algorithm options the attacks take."""
        from craft.attacks import AttackSettings

        return AttackSettings(
            steps=self.steps, alpha=self.alpha, momentum=self.momentum, random_start=self.random_start,
            di_prob=self.di_prob, eot_samples=self.eot_samples, profile=self.profile,
            repair_steps=self.repair_steps, amp=self.amp,
        )

    def target_class(self) -> int | None:
        """The fixed target class of ``--target CLASS``; ``None`` for no target, ``ll`` or ``random``."""
        if self.target is None or self.target in TARGET_MODES:
            return None
        return parse_label(self.target, where="--target")

    def validate(self) -> None:
        """Check every option; a bad one raises a one-line :class:`UserError` naming it. Runs when a config is made."""
        from craft.ensemble import ENSEMBLE_MODES
        from craft.zoo import get_entry

        if not self.eps:
            raise UserError("--eps: give at least one value")
        for e in self.eps:
            if not (1 <= e <= 255):
                raise UserError(f"--eps {e:g}: must be in 1..255 (pixel units)")
        if not self.attacks:
            raise UserError("--attack: give at least one attack")
        specs = self.specs()
        if not self.source:
            raise UserError("--source: give at least one model")
        for s in self.source:
            get_entry(s)
        if len(set(self.source)) != len(self.source):
            raise UserError(f"--source {','.join(self.source)}: a model is listed twice")
        if self.ensemble not in ENSEMBLE_MODES:
            raise UserError(f"--ensemble {self.ensemble!r}: choose {' or '.join(ENSEMBLE_MODES)}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit {self.limit}: must be at least 1")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps {self.steps}: must be at least 1")
        if self.alpha is not None and not (0 < self.alpha <= 255):
            raise UserError(f"--alpha {self.alpha:g}: must be in (0, 255] (pixel units)")
        if self.momentum is not None and self.momentum < 0:
            raise UserError(f"--momentum {self.momentum:g}: must be >= 0")
        if self.momentum is not None and not any(s.name == "mifgsm" for s in specs):
            raise UserError("--momentum: only the mifgsm attack uses it; add --attack mifgsm or drop the option")
        if self.random_start is not None and not any(s.name == "pgd" for s in specs):
            raise UserError("--random-start/--no-random-start: only the pgd attack uses it")
        if self.di_prob is not None and not (0 <= self.di_prob <= 1):
            raise UserError(f"--di-prob {self.di_prob:g}: must be in 0..1")
        if self.di_prob is not None and not any(s.di or s.name == "difgsm" for s in specs):
            raise UserError("--di-prob: no attack uses input diversity; add --di or --attack difgsm")
        if not isinstance(self.profile, ChannelProfile):
            raise TypeError(f"profile: expected a ChannelProfile (contracts.profile.load_profile), got {type(self.profile).__name__}")
        if self.eot_samples < 1:
            raise UserError(f"--eot-samples {self.eot_samples}: must be at least 1")
        if self.repair_steps < 0:
            raise UserError(f"--repair-steps {self.repair_steps}: must be >= 0")
        if self.target is not None:
            self.target_class()
            if any(s.name == "ll" for s in specs):
                raise UserError("--target: the ll attack picks its own target (the least-likely class); use bim with --target ll")

    def resolved(self) -> dict[str, Any]:
        """The config as recorded in ``batch.json``: attacks canonical, the profile by name, the EOT channel resolved."""
        d = asdict(self)
        specs = self.specs()
        d["attacks"] = [s.label for s in specs]
        d["profile"] = self.profile.name
        d["channel"] = self.profile.to_dict() if any(s.eot for s in specs) else None
        return dict(json.loads(json.dumps(d)))


# Options that change what is produced; a resumed run must agree on all of them.
# ``attacks`` is compared in canonical form (``--attack bim --eot`` is ``bim+eot``),
# so the ``di``/``eot`` flags are not listed; ``channel`` is the resolved profile of EOT runs.
IDENTITY_KEYS = (*identity_keys(CraftConfig), "channel")
