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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from channel.calibrate_edges import EdgeFit, fit_edges, load_esf
from channel.calibrate_fit import Fit, Group, fit_all, fit_noise, load_groups
from channel.calibrate_framing import FramingFit, fit_framing, load_framing
from channel.calibrate_isp import IspFit, check_strip, fit_isp, physical_fit_ok, static_table
from channel.calibrate_jpeg import JpegFit, JpegRow, fit_jpeg, load_jpeg
from channel.calibrate_notes import edge_notes, profile_notes
from channel.calibrate_record import calibration_record
from channel.model import illuminant_rgb, reference_cct
from contracts.batchdir import capture_db, capture_dbs, captures_dir, check_session_name
from contracts.calibration import CalibrationRecord, write_calibration
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.layout import Layout, load_layout
from contracts.profile import DEFAULT_PRESET, ChannelProfile, load_profile, write_profile

log = logging.getLogger(__name__)


def _r3(v: Any, nd: int) -> tuple[float, float, float]:
    a, b, c = (round(float(x), nd) for x in v)
    return a, b, c


def _r2(v: Any, nd: int) -> tuple[float, float]:
    a, b = (round(float(x), nd) for x in v)
    return a, b


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
    record: CalibrationRecord  # what the batch keeps of it (BATCH/calibrations/<profile>.json)
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
    strip = f"{fit.n_groups} strip views in {fit.n_frames} frames"
    views = strip + (f" of {len(sids)} sessions" if len(sids) > 1 else "")
    notes = profile_notes(profile, base_prof, fit, isp_fit, framing, views, gamma, quality, jpeg)
    notes.update(edge_notes(edges, quality))
    header = [
        f"Photoproof channel profile calibrated from {source}",
        f"({views}; written {time.strftime('%Y-%m-%d %H:%M')}). Units and formulas: docs/channel-profile.md.",
    ]
    write_profile(out, profile, header, notes)
    log.info("wrote %s from %s", out, views)
    rec = calibration_record(profile, base_prof, notes, strip, isp_fit, edges)
    write_calibration(batch_dir, rec)  # for the report: the fit against its base, its curves and residuals
    return Calibration(out, profile, fit, sids, isp_fit, base_prof, notes, rec, edges, framing, jpeg)
