"""Figures of rates against a swept quantity: a transform's strength (the channel sweep, ``sweep.json``) and
the adversarial patch's apparent size in the scene.

Same conventions as :mod:`analysis.plots` (its rendering, interval bars and legend outside the axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from analysis.plots import COLORS, MARKERS, err, legend_outside, pct_points, rendered
from analysis.sweep import SweepPoint


@rendered
def sweep_plot(points: list[SweepPoint], units: dict[str, str] | None = None) -> Figure | None:
    """One panel per transform: destruction rate (%) against strength (in the transform's unit), top-1 and top-5."""
    units = units or {}
    transforms = sorted({p.transform for p in points})
    if not transforms:
        return None
    ncol = min(3, len(transforms))
    nrow = (len(transforms) + ncol - 1) // ncol
    fig = Figure(figsize=(max(6.5, 3.8 * ncol + 1.5), 3.2 * nrow), layout="constrained")
    handles: dict[str, Any] = {}
    for i, tr in enumerate(transforms):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for k, marker, ls in ((1, "o", "-"), (5, "s", "--")):
            pts = sorted(
                ((p.strength, p.rates["destruction"]) for p in points if p.transform == tr and p.topk == k),
                key=lambda t: t[0],
            )
            xs, vs, los, his = pct_points(pts)
            if not xs:
                continue
            h = ax.errorbar(
                xs, vs, yerr=err(vs, los, his), marker=marker, linestyle=ls, color=COLORS[k == 5], capsize=3
            )
            handles.setdefault(f"top-{k}", h)
        ax.set_title(tr, fontsize=10)
        ax.set_xlabel(f"strength ({units[tr]})" if tr in units else "strength (transform units)")
        ax.set_ylabel("destruction rate (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    legend_outside(fig, list(handles.values()), list(handles))
    fig.suptitle("Transformation sweep: destruction rate (95% intervals)", fontsize=11)
    return fig


SHARE_FLOOR_PCT = 0.1  # the share axis is logarithmic: smaller shares are drawn here


@rendered
def scene_vs_share(series: Sequence[Any], class_names: Sequence[str] = ()) -> Figure | None:
    """Target-class and untargeted fooling rates (%) against the patch's share of the view (%, log axis).

    ``series`` are :class:`analysis.scene.SceneSeries`: one colour per patch
    target and session, a point per share bin at the bin's median share, 95%
    Wilson bars; the session's rate without the patch is a dashed line of the
    same colour over its interval's band.
    """
    series = [s for s in series if s.points]
    if not series:
        return None
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    multi = len({s.session for s in series}) > 1
    handles: dict[str, Any] = {}
    xs_all = [max(SHARE_FLOOR_PCT, 100 * p.median_share) for s in series for p in s.points]
    for j, s in enumerate(series):
        color, marker = COLORS[j % len(COLORS)], MARKERS[j % len(MARKERS)]
        name = f"{s.target} ({class_names[s.target]})" if 0 <= s.target < len(class_names) else str(s.target)
        label = f"target {name}" + (f", session {s.session}" if multi else "")
        nudge = 10 ** (
            (j - (len(series) - 1) / 2) * 0.03
        )  # series apart on the log axis, so bars do not hide each other
        for ax, attr, ref in ((axes[0], "target_rate", s.without_target), (axes[1], "fooling_rate", s.without_fooling)):
            pts = [(max(SHARE_FLOOR_PCT, 100 * p.median_share) * nudge, getattr(p, attr)) for p in s.points]
            xs, vs, los, his = pct_points(pts)
            if xs:
                h = ax.errorbar(
                    xs,
                    vs,
                    yerr=err(vs, los, his),
                    color=color,
                    marker=marker,
                    linestyle="-",
                    capsize=3,
                    linewidth=1.2,
                    markersize=5,
                )
                handles.setdefault(f"{label}, with patch", h)
            if ref.value is not None:
                ax.axhspan(
                    100 * (ref.lo if ref.lo is not None else ref.value),
                    100 * (ref.hi if ref.hi is not None else ref.value),
                    color=color,
                    alpha=0.12,
                    linewidth=0,
                )
                r = ax.axhline(100 * ref.value, color=color, linestyle="--", linewidth=1.0)
                handles.setdefault(f"{label}, without patch (n={ref.n})", r)
    lo, hi = min(xs_all), max(xs_all)
    for ax, ylabel in zip(
        axes, ("target-class rate (% of frames)", "untargeted fooling rate (% of frames)"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.6, min(100.0, hi * 1.6))
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo / 1.6 <= t <= min(100.0, hi * 1.6)]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("patch area, share of the view (%)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("top-1 is the patch's target", fontsize=9)
    axes[1].set_title("top-1 is not the true class", fontsize=9)
    legend_outside(fig, list(handles.values()), list(handles), below=True)
    fig.suptitle("Adversarial patch in the scene: rates against its apparent size (95% intervals)", fontsize=10)
    return fig


__all__ = ["scene_vs_share", "sweep_plot"]
