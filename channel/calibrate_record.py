"""What a calibration is written into the batch as (``contracts.calibration``): the fitted keys against the base's,
the tone curves, the grey ramp's residuals and the edge spread function, for calibrate's console and the report."""

from __future__ import annotations

import time
from dataclasses import fields

from channel.calibrate_edges import EdgeFit
from channel.calibrate_isp import IspFit
from contracts.calibration import CalibrationRecord, KeyRow
from contracts.profile import ChannelProfile
from contracts.strip import ESF_STEP_PX


def show(v: object) -> str:
    """A profile value as the tables print it: 3 significant digits, a range of two equal ends as one value."""
    if isinstance(v, tuple):
        return ", ".join(f"{x:.3g}" for x in v) if len(v) != 2 or v[0] != v[1] else f"{v[0]:.3g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def key_rows(p: ChannelProfile, b: ChannelProfile, notes: dict[str, str]) -> tuple[KeyRow, ...]:
    """Every key the fit set or measured, against the base's value; keys left at the base's are not listed."""
    rows = []
    for sec in ("printer", "scene", "camera", "isp"):
        for fl in fields(getattr(p, sec)):
            if sec == "isp" and fl.name.startswith("tone_"):
                continue
            v, bv = getattr(getattr(p, sec), fl.name), getattr(getattr(b, sec), fl.name)
            note = notes.get(f"{sec}.{fl.name}", "")
            how = note.split(":")[0].split(" (")[0] if note else ""
            if v != bv or not how.startswith("from base"):
                rows.append(KeyRow(f"{sec}.{fl.name}", show(v), show(bv), how))
    return tuple(rows)


def esf_words(e: EdgeFit | None) -> str:
    """The fitted blur and sharpening, and the alternatives the edges fit as well when they cannot tell."""
    if e is None:
        return ""
    fit = f"{e.n} views; defocus {e.defocus[0]:.2f}-{e.defocus[1]:.2f} px, unsharp {e.amount:g} at {e.sigma:g} px"
    if e.determined:
        return fit
    return (
        f"{fit}; amounts {e.amounts[0]:g}-{e.amounts[1]:g} with defocus {e.defocus_alike[0]:.2f}-"
        f"{e.defocus_alike[1]:.2f} px fit as well: not determined"
    )


def calibration_record(
    p: ChannelProfile,
    base: ChannelProfile,
    notes: dict[str, str],
    views: str,
    isp: IspFit,
    e: EdgeFit | None,
) -> CalibrationRecord:
    """The record of a calibration (``BATCH/calibrations/<profile>.json``): profile ``p`` fitted over ``base``, with
    the comments of its keys, the strip views it came from (in words), its ISP fit and edge fit."""
    half = 0 if e is None else (len(e.observed) - 1) // 2
    return CalibrationRecord(
        profile=p.name,
        base=base.name,
        sessions=p.calibrated_from,
        views=views,
        written=time.strftime("%Y-%m-%d %H:%M"),
        keys=key_rows(p, base, notes),
        tone=(tuple(p.isp.tone_r), tuple(p.isp.tone_g), tuple(p.isp.tone_b)) if isp.used else None,
        ramp_levels=tuple(int(v) for v in isp.levels.tolist()),
        ramp_observed=tuple((float(a), float(b), float(c)) for a, b, c in isp.observed),
        ramp_predicted=tuple((float(a), float(b), float(c)) for a, b, c in isp.predicted) if isp.used else None,
        esf_offsets_px=() if e is None else tuple((i - half) * ESF_STEP_PX for i in range(len(e.observed))),
        esf_observed=() if e is None else tuple(float(v) for v in e.observed),
        esf_predicted=() if e is None else tuple(float(v) for v in e.predicted),
        esf_fit=esf_words(e),
    )
