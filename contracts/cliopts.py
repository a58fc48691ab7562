"""The preprocessing and label flags, declared once for every command that feeds a model.

``photoproof craft``, ``capture``, ``sweep`` and ``models export`` take the same
``--input-size``, ``--mean``, ``--std``, ``--scale``, ``--resize``, ``--crop``,
``--channel-order``, ``--labels`` (and, on the target side, ``--label-map``);
:func:`model_flags` checks them once into the overrides of
:func:`contracts.modelspec.resolve_spec`. Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from contracts.modelspec import parse_floats, spec_overrides

PANEL = "Your own models (flags > model.toml > metadata)"

# What ``capture`` asks of a webcam and classifies with when not told, and so what ``print`` lays
# sheets out for when not told: the defaults of the stages must fit together (issue 28).
DEFAULT_TARGET = "lite2"
DEFAULT_CAMERA = (1920, 1080)


def model_flags(
    input_size: int | None,
    mean: str | None,
    std: str | None,
    scale: float | None,
    resize: str | None,
    crop: str | None,
    channel_order: str | None,
) -> dict[str, Any]:
    """The flags' spec fields (only those given), checked: a bad one is a one-line error naming it."""
    return spec_overrides(
        input_size, parse_floats(mean, "--mean"), parse_floats(std, "--std"), scale, channel_order, resize, crop
    )


# The spec flags, declared once: (parameter name, flag, type, help). ``craft`` declares its
# options from this table (craft.config); the other commands take them through the opt_* helpers.
SPEC_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("input_size", "--input-size", int, "Model input side in pixels."),
    ("mean", "--mean", str, "Per-channel mean, 0..255 or 0..1 units: 0.485,0.456,0.406."),
    ("std", "--std", str, "Per-channel std, same units as --mean."),
    ("scale", "--scale", float, "Feed pixels / SCALE instead of --mean/--std (255: 0..1 input)."),
    ("resize", "--resize", str, "Interpolation: bicubic, bilinear, nearest or area."),
    ("crop", "--crop", str, "center, squash, or a crop fraction such as 0.875 (timm's crop_pct)."),
    ("channel_order", "--channel-order", str, "RGB or BGR (default RGB)."),
)
LABELS_HELP = "The model's class names, one per line (default: its metadata, or ImageNet-1k)."
UNSAFE_HELP = (
    "UNSAFE: load a .pt2 that carries compiled AOTInductor code (shared libraries); loading it runs that native code "
    "with your rights. Only for files you built yourself."
)
_SPEC = {name: (flag, help) for name, flag, _, help in SPEC_FLAGS}


def _spec_opt(name: str) -> Any:
    flag, help = _SPEC[name]
    return typer.Option(None, flag, help=help, rich_help_panel=PANEL)


def opt_input_size() -> Any:
    return _spec_opt("input_size")


def opt_mean() -> Any:
    return _spec_opt("mean")


def opt_std() -> Any:
    return _spec_opt("std")


def opt_scale() -> Any:
    return _spec_opt("scale")


def opt_resize() -> Any:
    return _spec_opt("resize")


def opt_crop() -> Any:
    return _spec_opt("crop")


def opt_channel_order() -> Any:
    return _spec_opt("channel_order")


def opt_labels(help: str = LABELS_HELP) -> Any:
    return typer.Option(None, "--labels", help=help, rich_help_panel=PANEL)


def opt_label_map() -> Any:
    return typer.Option(
        None,
        "--label-map",
        help="CSV 'batch_name,target_name' where the batch's class names differ from the model's.",
        rich_help_panel=PANEL,
    )


def labels_arg(path: Path | None) -> str | None:
    return None if path is None else str(path)
