"""The comments calibrate writes beside each key of a fitted profile: measured, estimated or from the base, and how.

:func:`profile_notes` for every key (the printer, the scene's light, the camera's noise and white balance, the ISP),
:func:`framing_notes` for the tiles' framing (``channel.calibrate_framing``) and :func:`edge_notes` for the blur and
sharpening of the strip's edges (``channel.calibrate_edges``), whose bootstrap says when they are weakly determined.
"""

from __future__ import annotations

from dataclasses import fields

from channel.calibrate_edges import BOOT_RESAMPLES, SIGMAS, EdgeFit
from channel.calibrate_fit import SIM_SIGMA0_PX, Fit
from channel.calibrate_framing import FramingFit
from channel.calibrate_isp import IspFit
from channel.calibrate_jpeg import JpegFit
from contracts.profile import SECTIONS, ChannelProfile


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
