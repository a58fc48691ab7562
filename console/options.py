"""The flags several commands share, declared once; the deprecated spellings of renamed flags.

``photoproof craft``, ``capture``, ``sweep`` and ``models export`` take the same
``--input-size``, ``--mean``, ``--std``, ``--scale``, ``--resize``, ``--crop``,
``--channel-order``, ``--labels`` (and, on the target side, ``--label-map``): ``craft``
declares them from :data:`SPEC_FLAGS` as one field of its config, the other commands through
:func:`model_options`, and :func:`model_flags` checks them once into the overrides of
:func:`contracts.modelspec.resolve_spec`.

A flag renamed for one vocabulary across the commands keeps its old spelling for one release,
hidden from ``--help``: :func:`deprecated_option` declares it, :func:`renamed` takes its value
and warns on stderr. Torch-free.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from console.terminal import err_console
from contracts.errors import UserError
from contracts.modelspec import parse_floats, spec_overrides

T = TypeVar("T")

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
# options from this table (craft.config); the other commands take them through model_options.
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
LABEL_MAP_HELP = "CSV 'batch_name,target_name' where the batch's class names differ from the model's."
UNSAFE_HELP = (
    "UNSAFE: load a .pt2 that carries compiled AOTInductor code (shared libraries); loading it runs that native code "
    "with your rights. Only for files you built yourself."
)


@dataclass(frozen=True)
class ModelFlags:
    """The model flags of one command, parsed: the preprocessing overrides (checked) and the label files."""

    overrides: dict[str, Any]
    labels: Path | None = None
    label_map: Path | None = None


def model_options(
    *, label_map: bool = False, labels_help: str = LABELS_HELP
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a typer command the model flags: ``--input-size`` ... ``--channel-order``, ``--labels`` and, with
    ``label_map``, ``--label-map``. The command declares a ``flags: ModelFlags`` parameter and receives them
    parsed and checked in it (a bad one is a one-line error naming it)."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn, eval_str=True)
        if "flags" not in sig.parameters:
            raise TypeError(f"{fn.__name__}: a model_options command takes a 'flags: ModelFlags' parameter")
        own = [p for p in sig.parameters.values() if p.name != "flags"]
        added = [
            _param(name, typ | None, typer.Option(None, flag, help=h, rich_help_panel=PANEL))
            for name, flag, typ, h in SPEC_FLAGS
        ]
        added.append(
            _param("labels", Path | None, typer.Option(None, "--labels", help=labels_help, rich_help_panel=PANEL))
        )
        if label_map:
            option = typer.Option(None, "--label-map", help=LABEL_MAP_HELP, rich_help_panel=PANEL)
            added.append(_param("label_map", Path | None, option))

        def command(*args: Any, **kw: Any) -> None:
            spec = model_flags(**{name: kw.pop(name) for name, *_ in SPEC_FLAGS})
            fn(*args, flags=ModelFlags(spec, kw.pop("labels"), kw.pop("label_map", None)), **kw)

        command.__name__, command.__qualname__, command.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        command.__module__ = fn.__module__
        command.__dict__["__signature__"] = sig.replace(parameters=[*own, *added])  # what typer reads
        return command

    return decorate


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


_FRAME_SIZE_RE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


def parse_frame_size(text: str, flag: str = "--frame-size") -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``: a camera frame's size (``print`` and ``capture --frame-size``)."""
    m = _FRAME_SIZE_RE.match(str(text))
    if not m or min(int(m.group(1)), int(m.group(2))) < 64:
        raise UserError(f"{flag} {text!r}: expected the frame size as WIDTHxHEIGHT, e.g. 1280x720 or 4000x3000")
    return int(m.group(1)), int(m.group(2))


def deprecated_option(old: str) -> Any:
    """A flag's old spelling, hidden from ``--help`` and kept for one release; read it with :func:`renamed`."""
    return typer.Option(None, old, hidden=True)


def renamed(value: T, old_value: T | None, old: str, new: str) -> T:
    """The option's value: ``old_value`` when the deprecated spelling ``old`` was given (with a warning on stderr
    that names ``new``), else ``value``."""
    if old_value is None:
        return value
    err_console.print(
        f"warning: {old} is deprecated and goes in the next release; use {new}", markup=False, highlight=False
    )
    return old_value
