"""ε in the two units the field uses: 0-255 pixel units and the [0, 1] convention.

``--eps`` takes a comma-separated list; each value is read by one rule:

- ``A/B`` (``8/255``): a fraction of the [0, 1] range, so ``8/255`` is 8 pixel units;
- a number below 1 (``0.0314``): the [0, 1] convention, times 255 (8.007 pixel units);
- a number of 1 or more (``16``): 0-255 pixel units.

So ``0.5`` means 127.5 pixel units, never half a pixel unit; write ``0.5/255`` for that.
Values are kept in pixel units, rounded to 1e-3.
"""

from __future__ import annotations

from contracts.errors import UserError


def parse_eps_value(text: str, flag: str = "--eps") -> float:
    """One ε value in pixel units (rule in the module docstring)."""
    t = text.strip()
    try:
        if "/" in t:
            a, b = t.split("/", 1)
            num, den = float(a), float(b)
            if den <= 0:
                raise ValueError
            v = num / den * 255.0
        else:
            v = float(t)
            if v < 1:
                v *= 255.0
    except ValueError:
        raise UserError(
            f"{flag} {text!r}: expected a number (16 in 0-255 units, 0.0314 in [0, 1] units) or a fraction such as "
            "8/255"
        ) from None
    v = round(v, 3)
    if not (0 < v <= 255):
        raise UserError(
            f"{flag} {text!r}: out of range; give 1..255 (pixel units), or a value below 1 or a fraction such as 8/255 "
            "([0, 1] units)"
        )
    return v


def parse_eps(text: str, flag: str = "--eps") -> list[float]:
    """A comma-separated ``--eps`` list in pixel units."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{flag}: empty list")
    return [parse_eps_value(p, flag) for p in parts]


def eps_both(eps: float) -> str:
    """``16 (0.0627)``: ε in 0-255 pixel units and, in brackets, in [0, 1] units."""
    return f"{eps:g} ({eps / 255:.4g})"
