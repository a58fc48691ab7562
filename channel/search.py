"""One-dimensional searches for the calibration fits: golden-section search (Kiefer 1953), and a grid first.

Pure numpy; the fits need a few dozen evaluations of cheap, bounded, roughly unimodal costs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def golden(f: Any, lo: float, hi: float, tol: float = 1e-4) -> tuple[float, float]:
    """Minimum of a unimodal ``f`` on [lo, hi] (golden-section search)."""
    r = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - r * (hi - lo), lo + r * (hi - lo)
    fc, fd = f(c), f(d)
    while hi - lo > tol:
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - r * (hi - lo)
            fc = f(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + r * (hi - lo)
            fd = f(d)
    return (c, fc) if fc < fd else (d, fd)


def grid_golden(f: Any, lo: float, hi: float, n: int = 41, tol: float = 1e-4) -> tuple[float, float]:
    """A grid over [lo, hi], then golden-section search between the best point's neighbours."""
    xs = np.linspace(lo, hi, n)
    k = int(np.argmin([f(x) for x in xs]))
    return golden(f, xs[max(0, k - 1)], xs[min(n - 1, k + 1)], tol)
