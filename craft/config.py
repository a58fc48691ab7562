"""The options of ``photoproof craft``, declared once, as :class:`CraftConfig`.

Each field carries its flag and help (:func:`craft.options.option`); the command
line is built from them, and a config is validated when it is made. Torch-free:
the checks that need the attack registry or the zoo import them when they run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.options import LABELS_HELP, PANEL, SPEC_FLAGS, UNSAFE_HELP, model_flags
from contracts.classes import imagenet_names, parse_label
from contracts.errors import UserError
from contracts.facetruth import FaceTruth, read_face_truth
from contracts.labels import index_of
from contracts.profile import DEFAULT_PRESET, ChannelProfile, default_profile, load_profile
from contracts.units import parse_eps
from craft.options import comma_list, identity_keys, option, option_group

if TYPE_CHECKING:
    from craft.attacks import AttackSettings, AttackSpec
    from craft.sources import ModelOptions

TARGET_MODES = ("ll", "random")


def parse_px_range(text: str, flag: str = "--eot-tile-px") -> tuple[float, float]:
    """``"480-580"`` (or ``"480,580"``, or one number) -> ``(480.0, 580.0)``: a range of tile sides in camera pixels."""
    parts = str(text).replace(",", "-").split("-")
    try:
        lo, hi = (float(parts[0]), float(parts[-1])) if 1 <= len(parts) <= 2 else (float("nan"), float("nan"))
    except ValueError:
        lo = hi = float("nan")
    if not (16 <= lo <= hi <= 20000):
        raise UserError(f"{flag} {text!r}: expected camera pixels as LO-HI with 16 <= LO <= HI <= 20000, e.g. 480-580")
    return lo, hi


@dataclass
class CraftConfig:
    """Every option of ``photoproof craft``, fully resolved, declared once.

    Each field carries its command-line flag and help (:func:`craft.options.option`);
    ``photoproof craft`` is built from them. A config is validated when it is made.
    """

    images: str = option(
        "--images",
        "'samples' (photos shipped with installed packages), 'tuning' or 'validation' "
        "(the fixed photo split) or a folder.",
        "samples",
    )
    attacks: list[str] = option(
        "--attack",
        "Attack(s), comma-separated: fgsm, bim, ll, pgd, mifgsm, difgsm, eot (= bim+eot), patch; add +di and/or +eot, "
        "e.g. mifgsm+di+eot, patch+eot.",
        factory=lambda: ["fgsm"],
        cli_type=str,
        cli_default="fgsm",
        parse=comma_list(str),
    )
    eps: list[float] = option(
        "--eps",
        "ε values, comma-separated: 16 (0-255 pixel units), 8/255 or 0.0314 ([0, 1] units: any value below 1).",
        factory=lambda: [16.0],
        cli_type=str,
        cli_default="16",
        parse=parse_eps,
    )
    source: list[str] = option(
        "--source",
        "Source model(s), comma-separated; several make an ensemble: a zoo name, FILE.onnx, FILE.pt2, TorchScript "
        "FILE.pt, or package.module:factory (runs your code: a classifier, or a face detector, docs/detectors.md).",
        factory=lambda: ["lite0"],
        cli_type=str,
        cli_default="lite0",
        parse=comma_list(str),
    )
    ensemble: str = option("--ensemble", "How an ensemble combines: average the 'logits' or the 'loss'.", "logits")
    target: str | None = option(
        "--target", "Targeted: a class (index, WordNet id or name), 'll' (least likely) or 'random'."
    )
    steps: int | None = option("--steps", "Iterations of the iterative attacks (default: each attack's own).")
    alpha: float | None = option("--alpha", "Step size in 0-255 pixel units (default: each attack's own).")
    momentum: float | None = option("--momentum", "mifgsm's decay μ (default 1.0).")
    random_start: bool | None = option("--random-start/--no-random-start", "pgd's random start (default on).")
    # --di and --eot fold into the canonical attack names, which are compared on resume.
    di: bool = option("--di", "Add input diversity (Xie et al. 2019) to every attack.", False, identity=False)
    di_prob: float | None = option("--di-prob", "Probability of the DI transform per step (default 0.5).")
    eot: bool = option(
        "--eot",
        "Average gradients over the print-and-photograph channel (EOT) for every attack.",
        False,
        identity=False,
    )
    eot_samples: int = option("--eot-samples", "Channel samples per image and step for EOT.", 8)
    eot_tile_px: tuple[float, float] | None = option(
        "--eot-tile-px",
        "EOT: the tiles' side in camera pixels that the channel twin samples, LO-HI, e.g. 480-580 "
        "(default: the tiles of print's default layout at the profile's frame size, 618-790 at 1080p; print "
        "--frame-size names the range of its layout).",
        cli_type=str,
        parse=parse_px_range,
    )
    profile: ChannelProfile = option(
        "--profile",
        "Channel profile for EOT: a preset name or a .toml file.",
        factory=default_profile,
        cli_type=str,
        cli_default=DEFAULT_PRESET,
        parse=lambda text, _flag: load_profile(text),
    )
    repair_steps: int = option(
        "--repair-steps", "Most lattice repair steps when rounding to 8 bits undoes an attack (0: off).", 10
    )
    amp: bool = option("--amp", "bf16 autocast for gradients on CUDA (final checks stay fp32).", False)
    # --attack patch (craft.patchjob): its size, shape and optimiser; steps: --steps (default 200).
    patch_area: float = option(
        "--patch-area",
        "--attack patch: share of the image area the patch covers (--source mtcnn: of the face box's area).",
        0.1,
    )
    patch_shape: str = option("--patch-shape", "--attack patch: square or circle.", "square")
    patch_place: str | None = option(
        "--patch-place",
        "--source mtcnn --attack patch: place the sticker by the face's landmarks (it turns with the eyes' line; the "
        "default) or by its box (upright).",
    )
    lr: float = option(
        "--lr", "--attack patch: Adam's learning rate (patch in 0..1 units); steps: --steps (default 200).", 0.05
    )
    truth: FaceTruth | None = option(
        "--truth",
        'Face-detector sources: a JSON labels file of true face boxes per photo, {"faces": {PHOTO: [[x0, y0, x1, '
        "y1], ...]}} (default: the source's own detections on each clean image).",
        cli_type=str,
        parse=lambda text, flag: read_face_truth(Path(text), flag),
    )
    limit: int | None = option("--limit", "Use only the first N photos.")
    seed: int = option("--seed", "Seed recorded with every item.", 0)
    batch_size: int = option("--batch-size", "Images per forward/backward pass.", 16, identity=False)
    device: str = option("--device", "auto, cpu or cuda[:N].", "auto", identity=False)
    # Foreign source models (not the zoo's): a label file, and spec fields from the flags of console.options.
    labels: str | None = option("--labels", LABELS_HELP.replace("The model's", "The source's"), panel=PANEL)
    model_spec: dict[str, Any] = option_group(SPEC_FLAGS, lambda v: model_flags(**v), factory=dict, panel=PANEL)
    unsafe_native_code: bool = option("--unsafe-native-code", UNSAFE_HELP, False, identity=False, panel=PANEL)

    def __post_init__(self) -> None:
        self.validate()

    def model_options(self) -> ModelOptions:
        """What the flags say about foreign source models (their spec fields and label file)."""
        from craft.sources import ModelOptions

        return ModelOptions(dict(self.model_spec), self.labels, self.unsafe_native_code)

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
            steps=self.steps,
            alpha=self.alpha,
            momentum=self.momentum,
            random_start=self.random_start,
            di_prob=self.di_prob,
            eot_samples=self.eot_samples,
            eot_tile_px=self.eot_tile_px,
            profile=self.profile,
            repair_steps=self.repair_steps,
            amp=self.amp,
        )

    def target_class(self, classes: tuple[str, ...] | None = None) -> int | None:
        """The fixed target class of ``--target CLASS`` in ``classes`` (ImageNet-1k by default); ``None`` for no target,
        ``ll`` or ``random``.
        """
        if self.target is None or self.target in TARGET_MODES:
            return None
        if classes is not None and classes != imagenet_names():
            return index_of(self.target, classes, where="--target")
        return parse_label(self.target, where="--target")

    def validate(self) -> None:
        """Check every option; a bad one raises a one-line :class:`UserError` naming it. Runs when a config is made."""
        from craft.attacks import UNIVERSAL

        if not self.eps:
            raise UserError("--eps: give at least one value")
        for e in self.eps:
            if not (0 < e <= 255):
                raise UserError(f"--eps {e:g}: must be in (0, 255] pixel units (or give 8/255 or 0.03 in [0, 1] units)")
        if not self.attacks:
            raise UserError("--attack: give at least one attack")
        specs = self.specs()
        self._check_sources(specs)
        self._check_numbers()
        self._check_attack_options(specs)
        if not isinstance(self.profile, ChannelProfile):
            raise TypeError(
                "profile: expected a ChannelProfile (contracts.profile.load_profile), got "
                f"{type(self.profile).__name__}"
            )
        if any(s.name in UNIVERSAL for s in specs):
            self.check_patch(specs)
        if self.target is not None:
            self._check_target(specs)

    def _check_sources(self, specs: list[AttackSpec]) -> None:
        """``--source``: at least one, none twice; own-model flags only with own models; a face detector alone
        (:meth:`check_detector`); a known ensemble mode."""
        from craft.ensemble import ENSEMBLE_MODES
        from craft.sources import source_kind, source_name

        if not self.source:
            raise UserError("--source: give at least one model")
        names = [source_name(s) for s in self.source]
        if len(set(names)) != len(names):
            raise UserError(f"--source {','.join(self.source)}: a model is listed twice")
        if (self.labels is not None or self.model_spec) and all(source_kind(s) == "zoo" for s in self.source):
            flags = ["--labels"] * (self.labels is not None) + [
                f"--{'crop' if k == 'crop_pct' else k.replace('_', '-')}" for k in self.model_spec
            ]
            raise UserError(
                f"{', '.join(dict.fromkeys(flags))}: these describe your own source models; the zoo's "
                f"{', '.join(self.source)} have their own preprocessing and ImageNet labels"
            )
        self.check_detector(specs)
        if self.ensemble not in ENSEMBLE_MODES:
            raise UserError(f"--ensemble {self.ensemble!r}: choose {' or '.join(ENSEMBLE_MODES)}")

    def _check_numbers(self) -> None:
        """The counts and step sizes are in range."""
        minimum = (
            ("--limit", self.limit, 1),
            ("--batch-size", self.batch_size, 1),
            ("--steps", self.steps, 1),
            ("--eot-samples", self.eot_samples, 1),
            ("--repair-steps", self.repair_steps, 0),
        )
        for flag, value, low in minimum:
            if value is not None and value < low:
                raise UserError(f"{flag} {value}: must be at least {low}")
        if self.alpha is not None and not (0 < self.alpha <= 255):
            raise UserError(f"--alpha {self.alpha:g}: must be in (0, 255] (pixel units)")
        if self.momentum is not None and self.momentum < 0:
            raise UserError(f"--momentum {self.momentum:g}: must be >= 0")
        if self.di_prob is not None and not (0 <= self.di_prob <= 1):
            raise UserError(f"--di-prob {self.di_prob:g}: must be in 0..1")

    def _check_attack_options(self, specs: list[AttackSpec]) -> None:
        """An option that only some attacks use needs one of them in ``--attack``."""
        needs = (
            (
                "--momentum",
                self.momentum,
                lambda s: s.name == "mifgsm",
                "only the mifgsm attack uses it; add --attack mifgsm or drop the option",
            ),
            (
                "--random-start/--no-random-start",
                self.random_start,
                lambda s: s.name == "pgd",
                "only the pgd attack uses it",
            ),
            (
                "--di-prob",
                self.di_prob,
                lambda s: s.di or s.name == "difgsm",
                "no attack uses input diversity; add --di or --attack difgsm",
            ),
            (
                "--eot-tile-px",
                self.eot_tile_px,
                lambda s: s.eot,
                "no attack uses EOT; add --eot or an attack with +eot",
            ),
            ("--patch-place", self.patch_place, lambda s: s.name == "patch", "only the face sticker (--attack patch)"),
        )
        for flag, value, uses, why in needs:
            if value is not None and not any(uses(s) for s in specs):
                raise UserError(f"{flag}: {why}")

    def _check_target(self, specs: list[AttackSpec]) -> None:
        """``--target``: a known class (zoo sources: checked before any model loads); not with ll."""
        from craft.sources import source_name

        if self.labels is None and all(source_name(s) == s and not s.count(":") for s in self.source):
            self.target_class()  # zoo sources: ImageNet names, checked before any model loads
        if any(s.name == "ll" for s in specs):
            raise UserError(
                "--target: the ll attack picks its own target (the least-likely class); use bim with --target ll"
            )

    def check_detector(self, specs: list[AttackSpec]) -> None:
        """A face detector as the source (``--source mtcnn`` or a factory of one): alone, untargeted, an ε-bounded
        attack or the sticker; ``--truth`` only with one."""
        from craft.attacks import UNIVERSAL
        from craft.sources import is_face_source

        if isinstance(self.truth, (str, Path)):  # the Python API passes the file's path
            self.truth = read_face_truth(Path(self.truth))
        if not any(is_face_source(s) for s in self.source):
            if self.truth is not None:
                raise UserError(
                    "--truth: true face boxes are for a face-detector source (--source mtcnn or your own detector); "
                    "a classifier's truth is each photo's label"
                )
            return
        if len(self.source) != 1:
            raise UserError(
                f"--source {','.join(self.source)}: a face detector is a source on its own, not in an ensemble"
            )
        if self.target is not None:
            raise UserError("--target: a face detector's attack makes the faces vanish; drop --target")
        if any(s.name in UNIVERSAL and s.di for s in specs):
            raise UserError("--attack patch+di: the face sticker has its own placement EOT; use patch or patch+eot")
        if self.labels is not None or self.model_spec:
            raise UserError("--labels and the preprocessing flags describe classifiers; a face detector has its own")
        if self.patch_place not in (None, "box", "landmarks"):
            raise UserError(f"--patch-place {self.patch_place!r}: choose landmarks or box")

    def check_patch(self, specs: list[AttackSpec]) -> None:
        """The options of a run with ``--attack patch``; errors name the option."""
        from craft.attacks.patch import check_patch_options

        check_patch_options(self.patch_area, self.patch_shape, self.lr)
        from craft.sources import source_kind

        if self.patch_place is not None and not any(source_kind(s) == "detector" for s in self.source):
            raise UserError(
                "--patch-place: places the face sticker (--source mtcnn); a classifier's patch goes anywhere"
            )
        if self.target in TARGET_MODES:
            raise UserError(
                f"--target {self.target}: a universal patch needs one class for all images; give a class, or no "
                "--target"
            )
        if self.alpha is not None:
            raise UserError("--alpha: the patch uses --lr (Adam's learning rate) instead")
        if any(s.name == "patch" and s.di for s in specs):
            raise UserError(
                "--attack patch+di: input diversity is not used with the patch (it has its own placement EOT)"
            )

    def resolved(self) -> dict[str, Any]:
        """The config as recorded in ``batch.json``: attacks canonical, the
        profile by name, the EOT channel resolved.
        """
        d = asdict(self)
        specs = self.specs()
        d["attacks"] = [s.label for s in specs]
        d["profile"] = self.profile.name
        d["channel"] = self.profile.to_dict() if any(s.eot for s in specs) else None
        d["truth"] = None if self.truth is None else self.truth.record()
        return dict(json.loads(json.dumps(d)))


# Options that change what is produced; a resumed run must agree on all of them.
# ``attacks`` is compared in canonical form (``--attack bim --eot`` is ``bim+eot``),
# so the ``di``/``eot`` flags are not listed; ``channel`` is the resolved profile of EOT runs.
IDENTITY_KEYS = (*identity_keys(CraftConfig), "channel")
