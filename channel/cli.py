"""``photoproof calibrate``: fit a channel profile to the calibration strip seen in a capture.

::

    photoproof calibrate BATCH --session 20261122-101500-camera --out my-setup.toml --jpeg-quality 90
    photoproof calibrate BATCH -s 20261122-101500-camera -s 20261123-090000-camera --out my-setup.toml
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from console.terminal import console
from contracts.calibration import CalibrationRecord, calibration_path
from contracts.profile import DEFAULT_PRESET


def report_tables(rec: CalibrationRecord) -> list[Table]:
    """The fitted profile against its base, the fitted tone curves, the residual per strip patch and the edge spread
    function, from the record the batch keeps (``contracts.calibration``; the report draws the same)."""
    which = f"session{'s' if len(rec.sessions) > 1 else ''} {', '.join(rec.sessions)}"
    keys = Table(
        title=f"fitted from {which} ({rec.views}) against base {rec.base}",
        show_edge=False,
    )
    for col in ("key", "fitted", rec.base, "from"):
        keys.add_column(col)
    for k in rec.keys:
        keys.add_row(k.key, k.fitted, k.base, escape(k.source))
    out = [keys]
    if rec.tone is not None:
        curves = Table(title="fitted tone curves (output at input 0 .. 1, 8-bit)", show_edge=False)
        curves.add_column("channel")
        for x in range(0, 17, 4):
            curves.add_column(f"{x / 16:.2f}", justify="right")
        for name, knots in zip("RGB", rec.tone, strict=True):
            curves.add_row(name, *(f"{255 * knots[x]:.0f}" for x in range(0, 17, 4)))
        out.append(curves)
    if rec.ramp_predicted is not None:
        resid = Table(title="grey ramp: observed and predicted by the fitted profile (8-bit RGB)", show_edge=False)
        for col in ("step", "observed", "predicted", "residual"):
            resid.add_column(col, justify="right")
        for lv, o, q in zip(rec.ramp_levels, rec.ramp_observed, rec.ramp_predicted, strict=True):
            worst = max(abs(a - b) for a, b in zip(o, q, strict=True))
            resid.add_row(str(lv), " ".join(f"{v:.0f}" for v in o), " ".join(f"{v:.0f}" for v in q), f"{worst:.1f}")
        out.append(resid)
    if rec.esf_observed:
        esf = Table(
            title=f"edge spread function (black 0, white 1): observed and fitted ({rec.esf_fit})", show_edge=False
        )
        esf.add_column("")
        picks = range(0, len(rec.esf_observed), 2)
        for i in picks:
            esf.add_column(f"{rec.esf_offsets_px[i]:+.1f}", justify="right")
        esf.add_row("observed", *(f"{rec.esf_observed[i]:.2f}" for i in picks))
        esf.add_row("fitted", *(f"{rec.esf_predicted[i]:.2f}" for i in picks))
        out.append(esf)
    return out


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to ``app``."""

    @app.command("calibrate")
    def calibrate_cmd(
        batch: Path = typer.Argument(..., help="The batch directory."),
        session: list[str] = typer.Option(
            ...,
            "--session",
            "-s",
            metavar="<str>",
            help="The capture session (the name of captures/<session>.sqlite); repeat it to pool several sessions "
            "of one camera at one resolution into one profile.",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="The profile to write, a .toml file."),
        base: str = typer.Option(
            DEFAULT_PRESET, "--base", help="Preset or .toml giving every key the strip cannot measure."
        ),
        camera_gamma: float | None = typer.Option(
            None, "--camera-gamma", help="The camera's output encoding (default: the base's, 2.2 = sRGB-like)."
        ),
        jpeg_quality: int | None = typer.Option(
            None,
            "--jpeg-quality",
            help="The camera's JPEG quality, if known; the noise is fitted through it (default: read from the "
            "photos' JPEG tables, or estimated from the frames' 8x8 blocks, else the middle of the base's range).",
        ),
        seed: int = typer.Option(
            0, "--seed", help="Seed of the bootstrap that finds the blur and sharpening the strip's edges fit alike."
        ),
    ) -> None:
        """Fit a channel profile (printer, the camera's ISP, blur, noise, framing) to the strip seen in a capture."""
        from channel.calibrate import calibrate

        res = calibrate(batch, session, out, base=base, camera_gamma=camera_gamma, jpeg_quality=jpeg_quality, seed=seed)
        for t in report_tables(res.record):
            console.print(t)
        kept = escape(str(calibration_path(batch, res.profile.name)))
        console.print(
            f"wrote [bold]{escape(str(res.path))}[/]; use it with 'photoproof capture BATCH --simulate --profile "
            f"{escape(str(res.path))}'; the batch keeps the fit ({kept}), which 'photoproof report BATCH' shows",
            soft_wrap=True,
        )
        console.print(
            "does it predict your camera? capture the camera twice more and the profile twice (--simulate --seed 1, "
            "--seed 2), then 'photoproof report BATCH': its prediction check leaves out "
            f"{escape(', '.join(res.sessions))}, the session(s) fitted to",
            soft_wrap=True,
        )
