"""``photoproof calibrate``: fit a channel profile to the calibration strip seen in a capture.

::

    photoproof calibrate BATCH --session 20261122-101500-camera --out my-setup.toml --jpeg-quality 90
    photoproof calibrate BATCH -s 20261122-101500-camera -s 20261123-090000-camera --out my-setup.toml
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from console.terminal import console
from contracts.profile import DEFAULT_PRESET
from contracts.strip import ESF_STEP_PX


def _fmt(v: object) -> str:
    if isinstance(v, tuple):
        return ", ".join(f"{x:.3g}" for x in v) if len(v) != 2 or v[0] != v[1] else f"{v[0]:.3g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def report_tables(res: Any) -> list[Table]:
    """The fitted profile against its base, the fitted tone curves, and the residual per strip patch."""
    f, p, b = res.fit, res.profile, res.base
    keys = Table(
        title=f"fitted from session{'s' if len(res.sessions) > 1 else ''} {', '.join(res.sessions)} "
        f"({f.n_groups} strip views in {f.n_frames} frames) "
        f"against base {b.name}",
        show_edge=False,
    )
    for col in ("key", "fitted", b.name, "from"):
        keys.add_column(col)
    for sec in ("printer", "scene", "camera", "isp"):
        for fl in fields(getattr(p, sec)):
            if sec == "isp" and fl.name.startswith("tone_"):
                continue
            v, bv = getattr(getattr(p, sec), fl.name), getattr(getattr(b, sec), fl.name)
            note = res.notes.get(f"{sec}.{fl.name}", "")
            how = note.split(":")[0].split(" (")[0] if note else ""
            if v != bv or not how.startswith("from base"):
                keys.add_row(f"{sec}.{fl.name}", _fmt(v), _fmt(bv), escape(how))
    out = [keys]
    isp = res.isp
    if isp.used:
        curves = Table(title="fitted tone curves (output at input 0 .. 1, 8-bit)", show_edge=False)
        curves.add_column("channel")
        for x in range(0, 17, 4):
            curves.add_column(f"{x / 16:.2f}", justify="right")
        for name, knots in zip("RGB", (p.isp.tone_r, p.isp.tone_g, p.isp.tone_b), strict=True):
            curves.add_row(name, *(f"{255 * knots[x]:.0f}" for x in range(0, 17, 4)))
        out.append(curves)
    resid = Table(title="grey ramp: observed and predicted by the fitted profile (8-bit RGB)", show_edge=False)
    for col in ("step", "observed", "predicted", "residual"):
        resid.add_column(col, justify="right")
    for lv, o, q in zip(isp.levels.tolist(), isp.observed, isp.predicted, strict=True):
        resid.add_row(
            str(lv),
            " ".join(f"{v:.0f}" for v in o),
            " ".join(f"{v:.0f}" for v in q) if isp.used else "-",
            f"{float(abs(o - q).max()):.1f}" if isp.used else "-",
        )
    if isp.used:
        out.append(resid)
    edges = getattr(res, "edges", None)
    if edges is not None:
        esf = Table(
            title=f"edge spread function (black 0, white 1; {edges.n} views): observed and fitted "
            f"(defocus {edges.defocus[0]:.2f}-{edges.defocus[1]:.2f} px, "
            f"unsharp {edges.amount:g} at {edges.sigma:g} px"
            + (
                ""
                if edges.determined
                else f"; amounts {edges.amounts[0]:g}-{edges.amounts[1]:g} with defocus "
                f"{edges.defocus_alike[0]:.2f}-{edges.defocus_alike[1]:.2f} px fit as well: not determined"
            )
            + ")",
            show_edge=False,
        )
        esf.add_column("")
        half = (len(edges.observed) - 1) // 2
        picks = list(range(0, len(edges.observed), 2))
        for i in picks:
            esf.add_column(f"{(i - half) * ESF_STEP_PX:+.1f}", justify="right")
        esf.add_row("observed", *(f"{edges.observed[i]:.2f}" for i in picks))
        esf.add_row("fitted", *(f"{edges.predicted[i]:.2f}" for i in picks))
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
        for t in report_tables(res):
            console.print(t)
        console.print(
            f"wrote [bold]{escape(str(res.path))}[/]; use it with 'photoproof capture BATCH --simulate --profile "
            f"{escape(str(res.path))}'",
            soft_wrap=True,
        )
        console.print(
            "does it predict your camera? capture the camera twice more and the profile twice (--simulate --seed 1, "
            "--seed 2), then 'photoproof report BATCH': its prediction check leaves out "
            f"{escape(', '.join(res.sessions))}, the session(s) fitted to",
            soft_wrap=True,
        )
