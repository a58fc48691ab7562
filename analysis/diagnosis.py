"""Why a session lost clean accuracy: every cause the capture measured, and nothing it did not.

Measured per session (medians over the clean tiles' good observations, :func:`analysis.quality.session_quality`):
the tile's side in camera pixels against the model's input, the viewing angle, the
sheet's edge blur, clipped pixels, the print's tone from the calibration strip (black
level and paper white against their digital 0 and 255), the camera's resolution
(the most common frame size; the layout's tiles at best, with the sheet filling the
frame: :mod:`contracts.framing`), the share of observations that passed the gates, and
the model's own fragility (the digital stability baseline, :mod:`contracts.verdict`).
A cause is blamed only when its measurement is out of range; what was not measured
(glare and uneven light short of clipping, colour casts, the printer's colours) is
named as not measured, never blamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.framing import FRAME_FILL, PLATEAU_TILE_FRACTION, tile_px_at_fill
from contracts.verdict import DROP_POINTS, MIN_GOOD_FRACTION

TILE_FRACTION = 0.75  # tiles smaller than this fraction of the model's input side lose detail the model needs
MAX_FRONTAL_DEG = 30.0  # README: hold the camera within about 30 degrees of square to the page
MAX_BLUR_SIGMA_PX = 1.5  # median edge blur of the sheet (Gaussian sigma, camera px) beyond which the frame is soft
MAX_CLIPPED = 0.01  # median share of clipped pixels in a clean tile
MAX_BLACK_LEVEL = 70.0  # the strip's black patch (digital 0) read brighter than this (luma 0..255): washed-out print
MIN_PAPER_WHITE = 150.0  # the strip's white patch (digital 255) read darker than this: under-exposed or dim light
NOT_MEASURED = "glare and uneven light short of clipping, colour casts and the printer's colours were not measured"


@dataclass
class Diagnosis:
    """What was measured (``facts``), what is out of range (``off``), and what to do (``todo``)."""

    facts: list[str] = field(default_factory=list)
    off: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


def _geometry(d: Diagnosis, q: dict[str, Any], size: int | None, model: str, fix_print: str) -> None:
    px, ang, blur, clip = (q.get(k) for k in ("tile_px", "angle_deg", "blur_sigma_px", "clipped"))
    if px is not None:
        d.facts.append(f"median tile {px:.0f} px" + (f" for a {size} px model input" if size else ""))
        if size and px < TILE_FRACTION * size:
            d.off.append(
                f"tiles of {px:.0f} px in the camera, under {TILE_FRACTION:.0%} of the {size} px {model} takes "
                f"(needs >= {TILE_FRACTION * size:.0f} px)"
            )
            d.todo.append(f"move the camera closer, or print bigger tiles: {fix_print}")
    if ang is not None:
        d.facts.append(f"median viewing angle {ang:.0f}°")
        if ang > MAX_FRONTAL_DEG:
            d.off.append(f"viewed at a median {ang:.0f}° off the sheet's normal (more than {MAX_FRONTAL_DEG:.0f}°)")
            d.todo.append(f"hold the camera more frontal, within about {MAX_FRONTAL_DEG:.0f}° of square to the page")
    if blur is not None:
        d.facts.append(f"median edge blur σ {blur:.2f} px")
        if blur > MAX_BLUR_SIGMA_PX:
            d.off.append(f"blurred frames (median edge blur σ {blur:.2f} px > {MAX_BLUR_SIGMA_PX} px)")
            d.todo.append(
                "hold the camera steadier (rest it or the sheet), focus on the sheet, add light for a shorter exposure"
            )
    if clip is not None:
        d.facts.append(f"{100 * clip:.1f}% of a clean tile's pixels clipped (median)")
        if clip > MAX_CLIPPED:
            d.off.append(
                f"{100 * clip:.1f}% of a clean tile's pixels clipped (median; more than {100 * MAX_CLIPPED:.0f}%)"
            )
            d.todo.append("better light: even and diffuse, no lamp reflected in the paper, lower the exposure")


def _tone(d: Diagnosis, q: dict[str, Any]) -> None:
    black, white = q.get("black_level"), q.get("paper_white")
    if black is None or white is None:
        d.facts.append("print tone not measured (no calibration strip read)")
        return
    d.facts.append(f"print tone: black reads {black:.0f} and paper white {white:.0f} (digital 0 and 255)")
    if black > MAX_BLACK_LEVEL:
        d.off.append(
            f"washed-out blacks: the strip's black patch reads {black:.0f} of 255 (more than {MAX_BLACK_LEVEL:.0f})"
        )
        d.todo.append("print darker (a better printer or photo paper, no toner saving) and keep glare off the sheet")
    if white < MIN_PAPER_WHITE:
        d.off.append(f"a dark image: the paper's white reads {white:.0f} of 255 (less than {MIN_PAPER_WHITE:.0f})")
        d.todo.append("more light on the sheet, or a longer exposure, without clipping the white")


def _camera(
    d: Diagnosis, q: dict[str, Any], size: int | None, model: str, sheet: tuple[tuple[float, float], float] | None
) -> None:
    w, h = q.get("frame_w"), q.get("frame_h")
    if not w or not h:
        d.facts.append("camera resolution not recorded")
        return
    if sheet is None or not size:
        d.facts.append(f"camera {w}x{h}")
        return
    paper, tile_mm = sheet
    best = tile_px_at_fill((int(w), int(h)), paper, tile_mm)
    d.facts.append(
        f"camera {w}x{h}: at most about {best:.0f} px per {tile_mm:g} mm tile with the sheet (on a dense sheet, "
        "one pair and its markers) filling the frame"
    )
    if best < TILE_FRACTION * size:
        d.off.append(
            f"the camera's resolution: a {w}x{h} frame gives the {tile_mm:g} mm tiles at most {best:.0f} px "
            f"(filling {100 * FRAME_FILL:.0f}% of it as the layout is framed), under the {TILE_FRACTION * size:.0f} px "
            f"{model} needs"
        )
        d.todo.append(
            f"a camera with more pixels (12 MP stills with --photos), or sheets laid out for this one: "
            f"photoproof print BATCH --frame-size {w}x{h} --model {model}"
        )
    elif (
        best < PLATEAU_TILE_FRACTION * size
        and q.get("tile_px") is not None
        and q["tile_px"] < PLATEAU_TILE_FRACTION * size
    ):
        d.facts.append(f"below the {PLATEAU_TILE_FRACTION * size:.0f} px where clean accuracy levels off")


def diagnose(
    q: dict[str, Any],
    size: int | None,
    model: str,
    fix_print: str,
    sheet: tuple[tuple[float, float], float] | None = None,
    fragility: float | None = None,
    unstable: list[str] | None = None,
) -> Diagnosis:
    """Every measured cause, in the order a user fixes them.

    Args:
        q: the session's quality medians (:func:`analysis.quality.session_quality`).
        size, model: the model's input side and name.
        fix_print: the print command that lays the sheets out for the camera.
        sheet: the paper (width, height mm) and tile width of the layout the session read; ``None``: unknown.
        fragility: ``D - B`` (:mod:`contracts.verdict`), ``None`` when no baseline was recorded.
        unstable: the photos whose clean image a mild transform flips digitally.
    """
    d = Diagnosis()
    _geometry(d, q, size, model, fix_print)
    _tone(d, q)
    _camera(d, q, size, model, sheet)
    good = q.get("good_fraction")
    if good is not None:
        d.facts.append(f"{100 * good:.0f}% of clean observations passed the quality gates")
        if good < MIN_GOOD_FRACTION:
            d.off.append(
                f"only {100 * good:.0f}% of clean observations passed the quality gates (needs {MIN_GOOD_FRACTION:.0%})"
            )
            if not d.todo:
                d.todo.append("follow the live window's gate hints until most tiles pass")
    if fragility is None:
        d.facts.append("the model's digital stability not measured (a capture before the stability baseline)")
    else:
        d.facts.append(f"mild resampling, blur and JPEG cost the model {100 * fragility:.0f} points digitally")
        if fragility > DROP_POINTS:
            names = ", ".join((unstable or [])[:8]) + (" ..." if len(unstable or []) > 8 else "")
            d.off.append(
                "the model's fragility: mild resampling, blur and JPEG alone, with no camera, cost "
                f"{100 * fragility:.0f} "
                f"points of clean accuracy (unstable photos: {names or 'none listed'})"
            )
            d.todo.append(
                "use photos the model is sure of (Kurakin's prefiltered case: clean confidence >= 0.8), or a sturdier "
                "target model; no camera can keep photos that mild digital changes already flip"
            )
    if q.get("over") == "all":
        d.facts.append("medians over every clean observation (none passed the gates)")
    d.facts.append(NOT_MEASURED)
    return d
