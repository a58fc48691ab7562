"""Calibration from the strip seen in a capture: measure it while capturing, fit a profile afterwards.

**Measure** (:mod:`capture.sheets.strip`, following :mod:`contracts.strip`: :func:`measure_hits`, called by the capture
loop every ``PATCH_EVERY``-th
frame): for every detected sheet, the mean and standard deviation of each grey and
colour patch over the central half of the patch (raw frame pixels, a plane removed,
no resampling), and the Gaussian blur sigma of the sheet's black-to-white edges from an
edge-spread-function fit (the slanted-edge idea of ISO 12233) in frame pixels.
Rows go to the ``patches`` and ``blur`` tables (``contracts.capturedb``).

**Fit** (:func:`calibrate`, ``photoproof calibrate``): the printer's tone curve and the
colour transform from the patch means, the camera's defocus from the edge sigmas and its
noise from the patch spreads (EMVA 1288 linear model), written as a channel-profile TOML
(``docs/channel-profile.md``). The fits are in ``channel.calibrate_fit``, with the forward models of
``channel.model``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from channel.calibrate_edges import SIGMAS, EdgeFit, fit_edges, load_esf
from channel.calibrate_fit import SIM_SIGMA0_PX, Fit, fit_all, fit_noise, load_groups
from channel.calibrate_framing import fit_framing
from channel.calibrate_isp import IspFit, check_strip, fit_isp, physical_fit_ok, static_table
from channel.model import illuminant_rgb, reference_cct
from contracts.batchdir import capture_db, capture_dbs, captures_dir, check_session_name
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.profile import DEFAULT_PRESET, SECTIONS, ChannelProfile, load_profile, write_profile

log = logging.getLogger(__name__)


def _r3(v: Any, nd: int) -> tuple[float, float, float]:
    a, b, c = (round(float(x), nd) for x in v)
    return a, b, c


def _r2(v: Any, nd: int) -> tuple[float, float]:
    a, b = (round(float(x), nd) for x in v)
    return a, b


def profile_notes(
    profile: ChannelProfile,
    base: ChannelProfile,
    fit: Fit,
    isp: IspFit,
    framing: tuple[tuple[float, float], int] | None,
    views: str,
    gamma: float,
    quality: int,
    quality_given: bool,
) -> dict[str, str]:
    """A comment for every key of the fitted profile: measured, estimated (from what), assumed, or from the base."""
    notes = {
        f"{sec}.{f.name}": f"from base profile {base.name} (not measured by calibrate)"
        for sec in SECTIONS
        for f in fields(getattr(profile, sec))
    }
    printer = (
        {
            "printer.tone_gamma": f"estimated: grey ramp, {views}; coverage rms {fit.tone_rms:.3f}; "
            f"given camera gamma {gamma:g}",
            "printer.dot_gain": "estimated with tone_gamma (the two trade off in the mid-tones: weakly separable)",
            "printer.paper_white": "estimated: white patch in linear units, taking illuminance x exposure to average 1 "
            "(includes any fixed colour cast)",
            "printer.ink_black": "estimated: black patch, same units",
            "printer.gamut_compression": f"estimated: colour patches relative to white, rms {fit.colour_rms:.3f}",
        }
        if isp.printer_ok
        else {
            **{
                f"printer.{k}": f"from base profile {base.name}: the strip cannot tell it from the camera's ISP "
                f"(a printer alone leaves coverage rms {fit.tone_rms:.3f} on the grey ramp or runs to a bound); "
                "[isp] carries the difference"
                for k in ("paper_white", "ink_black", "gamut_compression")
            },
            **{
                f"printer.{k}": "neutral: the printer's tone response is in the [isp] tone curves, which the grey "
                "ramp determines together with it"
                for k in ("tone_gamma", "dot_gain")
            },
        }
    )
    notes.update(printer)
    notes.update(
        {
            "scene.illuminance": f"estimated: 5-95 % of the white patch's brightness over {views}, relative to its "
            "median (exposure included)",
            "scene.colour_temperature_k": "fixed at the base's reference white: the colour cast is in paper_white "
            "(fixed) and white_balance_error (changing)",
            "camera.width": "measured: the captured frames",
            "camera.height": "measured: the captured frames",
            "camera.exposure": "folded into illuminance",
            "camera.white_balance_error": f"estimated: 90 % quantile of the white patch's R/G and B/G changes "
            f"over {views}",
            "camera.gamma": "assumed (--camera-gamma), not measured: it trades off against the tone curves",
        }
    )
    if framing is not None:
        notes["scene.sheet_fill"] = (
            f"measured: 5-95 % of the fill implied by {framing[1]} tiles' size in pixels, each against the region "
            "its frame framed (the sheet, or on a dense sheet one pair or the strip's row)"
        )
    notes["scene.tilt_deg"] = (
        f"from base profile {base.name}: the tiles' viewing angle mixes tilt with their place in the frame"
    )
    if fit.defocus is not None:
        notes["camera.defocus_sigma_px"] = (
            f"estimated: 10-90 % of the edge blur of {fit.n_blur} views, less the simulator's own "
            f"{SIM_SIGMA0_PX} px in quadrature; includes any motion blur and the camera's sharpening"
        )
        notes["camera.motion_blur_px"] = "0: folded into defocus_sigma_px (the strip's edges cannot tell them apart)"
    if fit.shot_noise is not None:
        notes["camera.shot_noise"] = (
            f"estimated: {fit.n_noise} grey-patch spreads, matched by the simulator's sensor"
            + (", its ISP" if isp.used else "")
            + f" and its JPEG at quality {quality}"
        )
        notes["camera.read_noise"] = "estimated with shot_noise (weakly identifiable unless it dominates dark patches)"
    notes["camera.jpeg_quality"] = (
        "assumed (--jpeg-quality), not measured: the noise was fitted through it"
        if quality_given
        else f"from base profile {base.name}, not measured by the strip; the noise was fitted through JPEG at {quality}"
    )
    notes.update(isp.notes(views))
    return notes


def edge_notes(edges: EdgeFit | None, quality: int) -> dict[str, str]:
    """Comments for the keys fitted from the edges' spread functions (:mod:`channel.calibrate_edges`)."""
    if edges is None:
        return {}
    how = (
        f"estimated: {edges.n} edge spread functions (ISO 12233 slanted edge), forward-modelled through the "
        f"fitted ISP and JPEG at {quality}; rms {edges.rms:.3f} of the step (blur alone {edges.rms_blur_only:.3f})"
    )
    out = {
        "camera.defocus_sigma_px": f"{how}; the range from the spread of the edges' sigmas; includes any motion blur",
        "camera.motion_blur_px": "0: folded into defocus_sigma_px (the strip's edges cannot tell them apart)",
    }
    if edges.amount > 0:
        out["isp.sharpen_amount"] = how
        out["isp.sharpen_sigma_px"] = f"{how}; one of {', '.join(map(str, SIGMAS))} px"
    else:
        out["isp.sharpen_amount"] = f"0: {how}; the edges show no overshoot"
    return out


@dataclass
class Calibration:
    """What :func:`calibrate` wrote."""

    path: Path
    profile: ChannelProfile
    fit: Fit
    session: str
    isp: IspFit
    base: ChannelProfile
    notes: dict[str, str]
    edges: EdgeFit | None = None


def _session_db(batch_dir: Path, session: str) -> Path:
    db = capture_db(batch_dir, check_session_name(session))
    if not db.is_file():
        known = [p.stem for p in capture_dbs(batch_dir)]
        raise UserError(
            f"--session {session}: no such capture in {captures_dir(batch_dir)}; "
            + (f"known sessions: {', '.join(known)}" if known else "capture one first with 'photoproof capture'")
        )
    return db


def calibrate(
    batch_dir: Path,
    session: str,
    out: Path,
    base: str = DEFAULT_PRESET,
    camera_gamma: float | None = None,
    jpeg_quality: int | None = None,
) -> Calibration:
    """Fit a channel profile to the calibration strip seen in capture ``session`` and write it to ``out`` (.toml).

    Keys the strip cannot measure come from the ``base`` profile; every key carries a
    comment saying which it is. ``camera_gamma`` (default: the base's) is assumed, not
    fitted; so is ``jpeg_quality`` (default: the middle of the base's range), through
    which the noise is fitted and which is written when given.
    """
    batch_dir, out = Path(batch_dir), Path(out)
    if out.suffix.lower() != ".toml":
        raise UserError(f"--out {out}: the profile must be a .toml file")
    base_prof = load_profile(base)
    gamma = float(camera_gamma if camera_gamma is not None else base_prof.camera.gamma)
    if not 1.0 <= gamma <= 3.0:
        raise UserError(f"--camera-gamma {gamma}: expected 1.0..3.0 (2.2 for an sRGB camera)")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise UserError(f"--jpeg-quality {jpeg_quality}: expected 1..100")
    quality = int(jpeg_quality if jpeg_quality is not None else round(sum(base_prof.camera.jpeg_quality) / 2))
    layout = load_layout(batch_dir)
    con = open_db_readonly(_session_db(batch_dir, session))
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM sessions")]
        sid = session if session in ids else (ids[0] if len(ids) == 1 else session)
        groups, blur = load_groups(con, sid, layout)
        check_strip(groups, session)
        batch_id = con.execute("SELECT value FROM meta WHERE key='batch_id'").fetchone()
        sizes = [(w, h) for _, w, h in blur]
        width, height = max(set(sizes), key=sizes.count) if sizes else (base_prof.camera.width, base_prof.camera.height)
        framing = fit_framing(con, sid, layout, (int(width), int(height)))
        esf = load_esf(con, sid)
    finally:
        con.close()
    cct = reference_cct(base_prof)
    gains = 1.0 / illuminant_rgb(cct)
    try:
        fit = fit_all(groups, blur, gamma, gains, quality)
    except ValueError as e:
        raise UserError(
            f"--session {session}: cannot fit the calibration strip ({e}); is it a Photoproof layout with a grey ramp?"
        ) from None
    printer_ok = physical_fit_ok(fit)
    pr = (
        replace(
            base_prof.printer,
            tone_gamma=round(fit.tone_gamma, 4),
            dot_gain=round(fit.dot_gain, 4),
            gamut_compression=round(fit.gamut_compression, 4),
            paper_white=_r3(fit.paper_white, 4),
            ink_black=_r3(fit.ink_black, 4),
        )
        if printer_ok
        else replace(base_prof.printer, tone_gamma=1.0, dot_gain=0.0)  # every ramp step distinct before the ISP
    )
    light = 1.0 - 0.5 * float(np.mean(base_prof.scene.gradient))  # mean fall-off over the sheet
    isp_fit = fit_isp(groups, pr, gamma, printer_ok, 1.0 if printer_ok else light)
    sigmas = np.array([s for s, _, _ in blur if s is not None], float)
    edges = fit_edges(esf, sigmas, pr, isp_fit.isp, gamma, quality, 1.0 if printer_ok else light)
    if edges is not None and edges.amount > 0:
        isp_fit.isp = replace(isp_fit.isp, sharpen_amount=edges.amount, sharpen_sigma_px=edges.sigma)
        isp_fit.used = True
    if isp_fit.used:
        fit.shot_noise, fit.read_noise, fit.n_noise = fit_noise(
            groups,
            gamma,
            gains,
            quality,
            isp=(static_table(isp_fit.isp), isp_fit.pre_grey),
            sharpen=(isp_fit.isp.sharpen_amount, isp_fit.isp.sharpen_sigma_px),
        )
    sc = replace(
        base_prof.scene, illuminance=_r2(fit.illuminance, 4), colour_temperature_k=(round(cct, 1), round(cct, 1))
    )
    if framing is not None:
        sc = replace(sc, sheet_fill=_r2(framing[0], 3))
    cam = replace(
        base_prof.camera,
        width=int(width),
        height=int(height),
        exposure=(1.0, 1.0),
        gamma=gamma,
        jpeg_quality=(float(quality),) * 2 if jpeg_quality is not None else base_prof.camera.jpeg_quality,
        white_balance_error=(-round(fit.wb_error, 4), round(fit.wb_error, 4)),
    )
    if edges is not None:
        cam = replace(cam, defocus_sigma_px=_r2(edges.defocus, 3), motion_blur_px=(0.0, 0.0))
    elif fit.defocus is not None:
        cam = replace(cam, defocus_sigma_px=_r2(fit.defocus, 3), motion_blur_px=(0.0, 0.0))
    if fit.shot_noise is not None and fit.read_noise is not None:
        cam = replace(
            cam, shot_noise=(float(f"{fit.shot_noise:.3g}"),) * 2, read_noise=(float(f"{fit.read_noise:.3g}"),) * 2
        )
    name = batch_id[0] if batch_id else "?"
    profile = ChannelProfile(
        out.stem, f"calibrated from capture session {sid} of batch {name}", pr, sc, cam, isp_fit.isp
    )
    views = f"{fit.n_groups} strip views in {fit.n_frames} frames"
    notes = profile_notes(profile, base_prof, fit, isp_fit, framing, views, gamma, quality, jpeg_quality is not None)
    notes.update(edge_notes(edges, quality))
    header = [
        f"Photoproof channel profile calibrated from capture session {sid} of batch {name}",
        f"({views}; written {time.strftime('%Y-%m-%d %H:%M')}). Units and formulas: docs/channel-profile.md.",
    ]
    write_profile(out, profile, header, notes)
    log.info("wrote %s from %s", out, views)
    return Calibration(out, profile, fit, sid, isp_fit, base_prof, notes, edges)
