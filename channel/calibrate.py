"""Calibration from the strip seen in a capture: measure it while capturing, fit a profile afterwards.

**Measure** (:mod:`capture.sheets.strip`, following :mod:`contracts.strip`: :func:`measure_hits`, called by the capture
loop on a frame with the whole strip in view, at most every ``PATCH_EVERY``-th frame): for every detected sheet,
the mean and standard deviation of each grey and colour patch over the central half of the patch (raw frame
pixels, a plane removed, no resampling), and the Gaussian blur sigma of the sheet's black-to-white edges from an
edge-spread-function fit (the slanted-edge idea of ISO 12233) in frame pixels. Rows go to the ``patches`` and
``blur`` tables (``contracts.capturedb``); the first frames' JPEG quality to ``jpeg`` (``capture.jpegquality``).

**Fit** (:func:`calibrate`, ``photoproof calibrate``; one session, or several of one camera pooled): the
printer's tone curve and the colour transform from the patch means, the camera's defocus from the edge sigmas and
its noise from the patch spreads (EMVA 1288 linear model), the JPEG quality (``channel.calibrate_jpeg``) and the
framing the tiles were seen at (``channel.calibrate_framing``), written as a channel-profile TOML
(``docs/channel-profile.md``). The fits are in ``channel.calibrate_fit``, with the forward models of
``channel.model``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from channel.calibrate_edges import BOOT_RESAMPLES, SIGMAS, EdgeFit, fit_edges, load_esf
from channel.calibrate_fit import SIM_SIGMA0_PX, Fit, Group, fit_all, fit_noise, load_groups
from channel.calibrate_framing import FramingFit, fit_framing, load_framing
from channel.calibrate_isp import IspFit, check_strip, fit_isp, physical_fit_ok, static_table
from channel.calibrate_jpeg import JpegFit, JpegRow, fit_jpeg, load_jpeg
from channel.model import illuminant_rgb, reference_cct
from contracts.batchdir import capture_db, capture_dbs, captures_dir, check_session_name
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.layout import Layout, load_layout
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
    framing: FramingFit | None,
    views: str,
    gamma: float,
    quality: int,
    jpeg: JpegFit | None,
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
    notes.update(framing_notes(framing, base.name))
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
        jpeg.note
        if jpeg is not None
        else f"from base profile {base.name}: not determined (no JPEG tables reached capture and the frames show no "
        f"8x8 quantisation lattice); the noise was fitted through JPEG at {quality}"
    )
    notes.update(isp.notes(views))
    return notes


def framing_notes(framing: FramingFit | None, base: str) -> dict[str, str]:
    """Comments for the framing keys (:mod:`channel.calibrate_framing`)."""
    if framing is None:
        why = f"from base profile {base}: too few tile observations to fit the framing"
        return {"scene.sheet_fill": why, "scene.tilt_deg": why}
    framed = "a dense sheet pair by pair" if framing.close_up else "whole sheets"
    how = (
        f"measured: the simulated camera's framing ({framed}) fitted to the 5-95 % quantiles of {framing.n} tile "
        f"observations' side in pixels and viewing angle (rms {100 * framing.rms_px:.1f} % and "
        f"{framing.rms_deg:.1f} deg)"
    )
    return {
        "scene.sheet_fill": how,
        "scene.tilt_deg": f"{how}; the angle includes capture's error in it (a 78 deg lens is assumed)",
        "scene.rotation_deg": f"from base profile {base}: capture records no in-plane angle",
    }


def edge_notes(edges: EdgeFit | None, quality: int) -> dict[str, str]:
    """Comments for the keys fitted from the edges' spread functions (:mod:`channel.calibrate_edges`)."""
    if edges is None:
        return {}
    detail = (
        f"{edges.n} edge spread functions (ISO 12233 slanted edge), forward-modelled through the "
        f"fitted ISP and JPEG at {quality}; rms {edges.rms:.3f} of the step (blur alone {edges.rms_blur_only:.3f})"
    )
    trade = ""
    if not edges.determined:
        (alo, ahi), (dlo, dhi) = edges.amounts, edges.defocus_alike
        trade = (
            f"unsharp amounts {alo:g} to {ahi:g} with a defocus of {dlo:.2f} to {dhi:.2f} px fit the "
            f"{edges.n} edges alike (a bootstrap over them, {BOOT_RESAMPLES} resamples, seed {edges.seed}; the "
            f"median edge's noise rms {edges.noise_rms:.3f} of the step), so the strip cannot tell sharpening from "
            "blur here and the pair written is one of them; more frames with the strip in view narrow the choice"
        )

    def note(head: str, other: str, rest: str) -> str:
        return (
            f"{head}: {rest}" if not trade else f"{head}, weakly determined (trades off with {other}): {trade}; {rest}"
        )

    out = {
        "camera.defocus_sigma_px": note(
            "estimated",
            "sharpen_amount",
            f"{detail}; the range from the spread of the edges' sigmas; includes any motion blur",
        ),
        "camera.motion_blur_px": "0: folded into defocus_sigma_px (the strip's edges cannot tell them apart)",
    }
    if edges.amount > 0:
        out["isp.sharpen_amount"] = note("estimated", "defocus_sigma_px", detail)
        out["isp.sharpen_sigma_px"] = f"estimated: {detail}; one of {', '.join(map(str, SIGMAS))} px"
    else:
        out["isp.sharpen_amount"] = note("0", "defocus_sigma_px", f"estimated: {detail}; the edges show no overshoot")
    return out


@dataclass
class Calibration:
    """What :func:`calibrate` wrote."""

    path: Path
    profile: ChannelProfile
    fit: Fit
    sessions: tuple[str, ...]  # the ids of the sessions fitted to, pooled
    isp: IspFit
    base: ChannelProfile
    notes: dict[str, str]
    edges: EdgeFit | None = None
    framing: FramingFit | None = None
    jpeg: JpegFit | None = None


def _session_db(batch_dir: Path, session: str) -> Path:
    db = capture_db(batch_dir, check_session_name(session))
    if not db.is_file():
        known = [p.stem for p in capture_dbs(batch_dir)]
        raise UserError(
            f"--session {session}: no such capture in {captures_dir(batch_dir)}; "
            + (f"known sessions: {', '.join(known)}" if known else "capture one first with 'photoproof capture'")
        )
    return db


FRAME_STRIDE = 1_000_000_000  # added to the k-th pooled session's frame numbers, so that no two sessions' frames meet


@dataclass
class SessionData:
    """What calibrate reads of one capture session (its frame numbers moved by ``FRAME_STRIDE`` per session)."""

    name: str  # as given (--session)
    sid: str  # the session's id in its database
    batch_id: str | None
    groups: list[Group]
    blur: list[tuple[float | None, int, int]]
    framing: np.ndarray  # calibrate_framing.load_framing
    esf: np.ndarray  # calibrate_edges.load_esf
    jpeg: list[JpegRow]
    size: tuple[int, int] | None  # the frames' (width, height), most common over the measured frames

    @classmethod
    def read(cls, batch_dir: Path, session: str, layout: Layout, k: int = 0) -> SessionData:
        """Session ``session`` of ``batch_dir``, the ``k``-th of those pooled; its strip checked on its own."""
        con = open_db_readonly(_session_db(batch_dir, session))
        try:
            ids = [r[0] for r in con.execute("SELECT id FROM sessions")]
            sid = session if session in ids else (ids[0] if len(ids) == 1 else session)
            groups, blur = load_groups(con, sid, layout)
            check_strip(groups, session)
            row = con.execute("SELECT value FROM meta WHERE key='batch_id'").fetchone()
            obs, esf, jpeg = load_framing(con, sid), load_esf(con, sid), load_jpeg(con, sid)
        finally:
            con.close()
        for g in groups:
            g.frame_idx += k * FRAME_STRIDE
        sizes = [(w, h) for _, w, h in blur]
        size = max(set(sizes), key=sizes.count) if sizes else None
        return cls(session, sid, str(row[0]) if row else None, groups, blur, obs, esf, jpeg, size)


def read_sessions(batch_dir: Path, sessions: Sequence[str], layout: Layout) -> list[SessionData]:
    """The named sessions of one camera, each checked on its own, in the order given.

    Raises:
        UserError: no session, one named twice, or sessions whose frames differ in size (two cameras, or one
            camera at two resolutions: its blur and framing are in pixels, so they take a profile each).
    """
    if not sessions:
        raise UserError("--session: name the capture session to calibrate from (captures/<session>.sqlite)")
    twice = sorted({s for s in sessions if list(sessions).count(s) > 1})
    if twice:
        raise UserError(f"--session {twice[0]}: named twice; name each session once")
    data = [SessionData.read(batch_dir, s, layout, k) for k, s in enumerate(sessions)]
    sized = [(d.name, d.size) for d in data if d.size is not None]
    for name, (w, h) in sized[1:]:
        if (w, h) != sized[0][1]:
            (w0, h0) = sized[0][1]
            raise UserError(
                f"--session {name}: its frames are {w}x{h}, those of --session {sized[0][0]} {w0}x{h0}; pool "
                "only sessions of one camera at one resolution (blur and framing are in pixels): calibrate the "
                "others into a profile of their own"
            )
    return data


def calibrate(
    batch_dir: Path,
    session: str | Sequence[str],
    out: Path,
    base: str = DEFAULT_PRESET,
    camera_gamma: float | None = None,
    jpeg_quality: int | None = None,
    seed: int = 0,
) -> Calibration:
    """Fit a channel profile to the calibration strip seen in capture ``session`` and write it to ``out`` (.toml).

    ``session``: one session's name, or several of one camera at one resolution (other distances, light, days),
    whose measurements are pooled as if one long session: every strip view and edge, every tile's framing.
    Keys the strip cannot measure come from the ``base`` profile; every key carries a
    comment saying which it is. ``camera_gamma`` (default: the base's) is assumed, not
    fitted. ``jpeg_quality``, when given, is assumed (the noise is fitted through it); else it is read from the
    frames' JPEG tables or estimated from their 8x8 DCT lattice (``channel.calibrate_jpeg``), else the middle of
    the base's range is used and the base's range written. ``seed``: the bootstrap's over the strip's edges that
    finds the sharpening and blur they cannot tell apart (``channel.calibrate_edges``); written in the comments.
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
    layout = load_layout(batch_dir)
    data = read_sessions(batch_dir, [session] if isinstance(session, str) else list(session), layout)
    groups = [g for d in data for g in d.groups]
    blur = [b for d in data for b in d.blur]
    sizes = [d.size for d in data if d.size is not None]
    width, height = sizes[0] if sizes else (base_prof.camera.width, base_prof.camera.height)
    framed = replace(base_prof, camera=replace(base_prof.camera, width=int(width), height=int(height)))
    framing = fit_framing(np.concatenate([d.framing for d in data]), layout, framed)
    esf = np.concatenate([d.esf for d in data])
    jpeg = fit_jpeg([r for d in data for r in d.jpeg]) if jpeg_quality is None else JpegFit.given(jpeg_quality)
    sids = tuple(d.sid for d in data)
    batch_id = next((d.batch_id for d in data if d.batch_id), None)
    quality = jpeg.quality if jpeg is not None else int(round(sum(base_prof.camera.jpeg_quality) / 2))
    cct = reference_cct(base_prof)
    gains = 1.0 / illuminant_rgb(cct)
    try:
        fit = fit_all(groups, blur, gamma, gains, quality)
    except ValueError as e:
        raise UserError(
            f"--session {', '.join(d.name for d in data)}: cannot fit the calibration strip ({e}); is it a Photoproof "
            "layout with a grey ramp?"
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
    edges = fit_edges(esf, sigmas, pr, isp_fit.isp, gamma, quality, 1.0 if printer_ok else light, seed=seed)
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
        sc = replace(sc, sheet_fill=framing.sheet_fill, tilt_deg=framing.tilt_deg)
    cam = replace(
        base_prof.camera,
        width=int(width),
        height=int(height),
        exposure=(1.0, 1.0),
        gamma=gamma,
        jpeg_quality=jpeg.range if jpeg is not None else base_prof.camera.jpeg_quality,
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
    name = batch_id or "?"
    source = f"capture session{'s' if len(sids) > 1 else ''} {', '.join(sids)} of batch {name}"
    profile = ChannelProfile(out.stem, f"calibrated from {source}", pr, sc, cam, isp_fit.isp, calibrated_from=sids)
    views = f"{fit.n_groups} strip views in {fit.n_frames} frames" + (
        f" of {len(sids)} sessions" if len(sids) > 1 else ""
    )
    notes = profile_notes(profile, base_prof, fit, isp_fit, framing, views, gamma, quality, jpeg)
    notes.update(edge_notes(edges, quality))
    header = [
        f"Photoproof channel profile calibrated from {source}",
        f"({views}; written {time.strftime('%Y-%m-%d %H:%M')}). Units and formulas: docs/channel-profile.md.",
    ]
    write_profile(out, profile, header, notes)
    log.info("wrote %s from %s", out, views)
    return Calibration(out, profile, fit, sids, isp_fit, base_prof, notes, edges, framing, jpeg)
