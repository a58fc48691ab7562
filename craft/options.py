"""The craft options, declared once: each field of :class:`craft.config.CraftConfig` carries its flag and help.

``photoproof craft`` builds its command-line parameters from those fields
(:func:`cli_parameters`) and turns the parsed text back into a typed config
(:func:`from_cli`): comma lists into lists, a profile name into a
:class:`~contracts.profile.ChannelProfile`, a group of flags (the preprocessing
spec of a foreign model) into one field (:func:`option_group`). Torch-free.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from contracts.errors import UserError

T = TypeVar("T")


def parse_list(text: str, option: str, cast: Callable[[str], T]) -> list[T]:
    """Split ``a,b,c``; a bad element is a one-line error naming ``option``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{option}: empty list")
    try:
        return [cast(p) for p in parts]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a comma-separated list of numbers") from None


def option(
    flags: str,
    help: str,
    default: Any = None,
    *,
    factory: Callable[[], Any] | None = None,
    cli_type: Any = None,
    cli_default: Any = None,
    parse: Callable[[Any, str], Any] | None = None,
    identity: bool = True,
    panel: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        flags: the option's names, ``"--eps"`` or ``"--random-start/--no-random-start"`` (space-separated aliases).
        help: its help text.
        default, factory: the field's default (or default factory).
        cli_type: the type the command line parses (default: the field's own); ``str`` for comma lists.
        cli_default: the command line's default (default: ``default``).
        parse: ``parse(cli_value, flag)`` gives the field's value (a comma list, a profile name).
        identity: whether a resumed run must agree on it (``craft.config.IDENTITY_KEYS``).
        panel: the ``--help`` panel it is listed in (default: the options panel).
    """
    meta = {
        "flags": tuple(flags.split()),
        "help": help,
        "cli_type": cli_type,
        "cli_default": cli_default if cli_default is not None else default,
        "parse": parse,
        "identity": identity,
        "panel": panel,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_group(
    parts: Sequence[tuple[str, str, type, str]],
    parse: Callable[[dict[str, Any]], Any],
    *,
    factory: Callable[[], Any],
    identity: bool = True,
    panel: str | None = None,
) -> Any:
    """A dataclass field that several command-line options make together.

    Args:
        parts: one ``(parameter name, flag, type, help)`` per option; each defaults to ``None`` (not given).
        parse: ``parse({name: value})`` gives the field's value; called only when at least one option is given.
        factory: the field's default factory (also what no option given means).
        identity: whether a resumed run must agree on it.
        panel: the ``--help`` panel its options are listed in.
    """
    meta = {"group": tuple(parts), "parse_group": parse, "identity": identity, "panel": panel}
    return dataclasses.field(default_factory=factory, metadata=meta)


def comma_list(cast: Callable[[str], Any]) -> Callable[[Any, str], Any]:
    """A ``parse`` for comma-separated lists."""
    return lambda text, flag: parse_list(text, flag, cast)


def cli_parameters(cls: type) -> list[inspect.Parameter]:
    """Keyword-only parameters with ``typer.Option`` defaults, one per option field of the dataclass ``cls``."""
    import typer

    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        for name, flag, typ, help in m.get("group", ()):
            out.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=typ | None,
                    default=typer.Option(None, flag, help=help, rich_help_panel=m["panel"]),
                )
            )
        if "flags" not in m:
            continue
        annotation = m["cli_type"] or hints[f.name]
        default = m["cli_default"]
        if default is None and annotation in (int, float, str, bool):
            annotation = annotation | None
        out.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(default, *m["flags"], help=m["help"], rich_help_panel=m["panel"]),
                annotation=annotation,
            )
        )
    return out


def from_cli(cls: type[T], values: dict[str, Any]) -> T:
    """Build ``cls`` from command-line values, parsing each with its field's ``parse``."""
    kw = {}
    for f in dataclasses.fields(cast(Any, cls)):
        if "group" in f.metadata:
            given = {name: values.get(name) for name, *_ in f.metadata["group"]}
            if any(v is not None for v in given.values()):
                kw[f.name] = f.metadata["parse_group"](given)
            continue
        if f.name not in values:
            continue
        v, parse = values[f.name], f.metadata.get("parse")
        kw[f.name] = parse(v, f.metadata["flags"][0].split("/")[0]) if parse is not None and v is not None else v
    return cls(**kw)


def identity_keys(cls: type) -> tuple[str, ...]:
    """The option fields a resumed run must agree on."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("identity", True))


def _hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)
