"""The report's calibration section: each profile ``photoproof calibrate`` fitted from this batch's sessions, against
its base (``BATCH/calibrations/<profile>.json``, :mod:`contracts.calibration`; issue 27).

Four tables (what each was fitted to; the fitted keys against the base's and where each came from; the fitted tone
curves; the grey ramp observed and predicted by the fitted profile, the residual per strip patch) and one figure row
per profile (the tone curves against the identity; the edge spread function observed and fitted). The numbers are
calibrate's own, as its console printed them. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from analysis.plots import COLORS, legend_outside, rendered
from analysis.tables import Table
from contracts.calibration import CalibrationRecord

TONE_AT = (0, 4, 8, 12, 16)  # knots shown in the table: input 0, 0.25, 0.5, 0.75, 1


def calibration_tables(recs: Sequence[CalibrationRecord]) -> list[Table]:
    """The fitted keys, the tone curves and the grey ramp's residuals of every record (none without records)."""
    if not recs:
        return []
    keys = [
        {"profile": r.profile, "sessions": ", ".join(r.sessions), "key": k.key, "fitted": k.fitted, "base": r.base,
         "base_value": k.base, "from": k.source}
        for r in recs
        for k in r.keys
    ]  # fmt: skip
    tone = [
        {"profile": r.profile, "channel": ch, **{f"in_{x / 16:.2f}": round(255 * knots[x], 1) for x in TONE_AT}}
        for r in recs
        if r.tone is not None
        for ch, knots in zip("RGB", r.tone, strict=True)
    ]
    ramp = [
        {
            "profile": r.profile,
            "step": lv,
            "observed": " ".join(f"{v:.0f}" for v in o),
            "predicted": " ".join(f"{v:.0f}" for v in q),
            "residual": round(max(abs(a - b) for a, b in zip(o, q, strict=True)), 1),
        }
        for r in recs
        if r.ramp_predicted is not None
        for lv, o, q in zip(r.ramp_levels, r.ramp_observed, r.ramp_predicted, strict=True)
    ]
    fits = [
        {"profile": r.profile, "base": r.base, "sessions": ", ".join(r.sessions), "strip": r.views,
         "edges": r.esf_fit or "no edge measured", "written": r.written}
        for r in recs
    ]  # fmt: skip
    out = [
        Table(
            "calibration_fits",
            "Calibrated profiles: what each was fitted to",
            ["profile", "base", "sessions", "strip", "edges", "written"],
            fits,
            [],
            "strip: the calibration strip's views the fit used; edges: the blur and sharpening the strip's edges gave "
            "(when they fit other pairs as well, 'not determined' and the range).",
        ),
        Table(
            "calibration",
            "Calibrated profiles: the fitted keys against the base profile's",
            ["profile", "sessions", "key", "fitted", "base", "base_value", "from"],
            keys,
            [],
            "Each profile photoproof calibrate fitted to this batch's sessions (BATCH/calibrations/). Keys left at the "
            "base's value are not listed; 'from' says whether a key was measured, estimated or kept from the base "
            "(the profile file's comments say how).",
        ),
    ]
    if tone:
        cols = ["profile", "channel", *(f"in_{x / 16:.2f}" for x in TONE_AT)]
        out.append(Table("calibration_tone", "Calibrated profiles: the fitted tone curves (8-bit output)", cols, tone))
    if ramp:
        out.append(
            Table(
                "calibration_ramp",
                "Calibrated profiles: the strip's grey ramp observed and predicted by the fitted profile",
                ["profile", "step", "observed", "predicted", "residual"],
                ramp,
                [],
                "8-bit RGB, the median over the strip's views; residual: the largest difference of the three channels.",
            )
        )
    return out


@rendered
def calibration_plot(recs: Sequence[CalibrationRecord]) -> Figure | None:
    """One row per profile: its tone curves against the identity, and its edge spread function observed and fitted."""
    shown = [r for r in recs if r.tone is not None or r.esf_observed]
    if not shown:
        return None
    fig = Figure(figsize=(8.5, 3.0 * len(shown)), layout="constrained")
    handles: dict[str, object] = {}
    for i, r in enumerate(shown):
        ax = fig.add_subplot(len(shown), 2, 2 * i + 1)
        ax.plot([0, 1], [0, 255], color="0.6", linestyle=":", label="identity")
        if r.tone is not None:
            xs = [k / (len(r.tone[0]) - 1) for k in range(len(r.tone[0]))]
            for ch, knots, colour in zip("RGB", r.tone, ("#d62728", "#2ca02c", "#1f77b4"), strict=True):
                (h,) = ax.plot(xs, [255 * v for v in knots], color=colour, label=ch)
                handles.setdefault(f"tone {ch}", h)
        ax.set_title(f"{r.profile}: tone curves", fontsize=10)
        ax.set_xlabel("input (0..1)")
        ax.set_ylabel("output (8-bit)")
        ax.grid(alpha=0.3)
        ax = fig.add_subplot(len(shown), 2, 2 * i + 2)
        if r.esf_observed:
            (o,) = ax.plot(r.esf_offsets_px, r.esf_observed, "o", color=COLORS[0], markersize=3)
            (p,) = ax.plot(r.esf_offsets_px, r.esf_predicted, "-", color="0.2")
            handles.setdefault("edge observed", o)
            handles.setdefault("edge fitted", p)
        ax.set_title(f"{r.profile}: edge spread function", fontsize=9)
        ax.set_xlabel("distance from the edge (px)")
        ax.set_ylabel("black 0 .. white 1")
        ax.grid(alpha=0.3)
    legend_outside(fig, list(handles.values()), list(handles))
    fig.suptitle("Calibrated profiles (photoproof calibrate)", fontsize=11)
    return fig
