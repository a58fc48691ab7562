"""The Wilson score interval, shared by analysis and the sweep CLI (which may not import analysis).

E. B. Wilson, 1927, "Probable inference, the law of succession, and statistical
inference", JASA 22:209-212. Pure math: no I/O.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_p(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a proportion ``p`` on a (possibly fractional) sample size ``n > 0``.

    A fractional ``n`` is an effective sample size (clustered observations)."""
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``k`` successes in ``n`` trials (Wilson 1927).

    Returns ``(low, high)`` clipped to [0, 1], or ``None`` when ``n == 0``.
    """
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    lo, hi = wilson_p(k / n, n, z)
    return (0.0 if k == 0 else lo), (1.0 if k == n else hi)
