"""``photoproof calibrate``: fit a channel profile to the calibration strip seen in a capture.

::

    photoproof calibrate BATCH --session 20261122-101500-camera --out my-setup.toml --jpeg-quality 90
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from console.terminal import console
from contracts.profile import DEFAULT_PRESET


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to ``app``."""

    @app.command("calibrate")
    def calibrate_cmd(
        batch: Path = typer.Argument(..., help="The batch directory."),
        session: str = typer.Option(
            ..., "--session", "-s", help="The capture session (the name of captures/<session>.sqlite)."
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
            help="The camera's JPEG quality, if known; the noise is fitted through it (default: the middle of the "
            "base's range).",
        ),
    ) -> None:
        """Fit a channel profile (tone curve, colours, blur, noise) to the calibration strip seen in a capture."""
        from channel.calibrate import calibrate

        res = calibrate(batch, session, out, base=base, camera_gamma=camera_gamma, jpeg_quality=jpeg_quality)
        f, p = res.fit, res.profile
        table = Table(
            title=f"estimated from session {res.session} ({f.n_groups} strip views in {f.n_frames} frames)",
            show_edge=False,
        )
        table.add_column("key")
        table.add_column("value", justify="right")
        rows = [
            ("printer.tone_gamma", f"{p.printer.tone_gamma:.3f}"),
            ("printer.dot_gain", f"{p.printer.dot_gain:.3f}"),
            ("printer.paper_white", ", ".join(f"{v:.3f}" for v in p.printer.paper_white)),
            ("printer.ink_black", ", ".join(f"{v:.3f}" for v in p.printer.ink_black)),
            ("printer.gamut_compression", f"{p.printer.gamut_compression:.3f}"),
            ("scene.illuminance", "{:.3f} .. {:.3f}".format(*p.scene.illuminance)),
            ("camera.white_balance_error", f"±{p.camera.white_balance_error[1]:.3f}"),
            (
                "camera.defocus_sigma_px",
                "{:.2f} .. {:.2f}".format(*p.camera.defocus_sigma_px) + ("" if f.defocus else " (base)"),
            ),
            ("camera.shot_noise", f"{p.camera.shot_noise[0]:.3g}" + ("" if f.shot_noise is not None else " (base)")),
            ("camera.read_noise", f"{p.camera.read_noise[0]:.3g}" + ("" if f.read_noise is not None else " (base)")),
            ("camera.width x height", f"{p.camera.width} x {p.camera.height}"),
        ]
        for k, v in rows:
            table.add_row(k, v)
        console.print(table)
        console.print(
            f"wrote [bold]{escape(str(res.path))}[/]; use it with 'photoproof capture BATCH --simulate --profile "
            f"{escape(str(res.path))}'",
            soft_wrap=True,
        )
